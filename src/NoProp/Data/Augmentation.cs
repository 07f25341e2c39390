using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Data;

/// <summary>
/// Train-time augmentation for CIFAR-style images: random crop after zero padding (in normalised space, so the
/// padding is the mean colour) and random horizontal flip. The trainer applies it to training minibatches only;
/// validation and test images are never augmented. Draws come from torch's global generator, so a seeded run,
/// and a resumed one, sees the same augmentations.
/// </summary>
public sealed record AugmentationOptions
{
    /// <summary>Pixels of padding on every side before the random crop back to the original size (0: no crop).</summary>
    public int CropPadding { get; init; } = 4;

    public bool HorizontalFlip { get; init; } = true;

    /// <summary>Augments a batch [B, C, H, W]; returns a new tensor.</summary>
    public Tensor Apply(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], h = x.shape[2], w = x.shape[3];
        var result = x;
        if (CropPadding > 0)
        {
            int p = CropPadding;
            var padded = nn.functional.pad(x, [p, p, p, p]);
            var offsets = randint(0, 2 * p + 1, [b, 2], dtype: ScalarType.Int64).data<long>().ToArray();
            var crops = new Tensor[b];
            for (int i = 0; i < b; i++)
                crops[i] = padded[i].narrow(1, offsets[2 * i], h).narrow(2, offsets[2 * i + 1], w);
            result = stack(crops);
        }
        if (HorizontalFlip)
        {
            using var half = HeldScalars.Hold(0.5);
            var flip = rand(b, device: x.device).lt(half).view(b, 1, 1, 1);
            result = where(flip, result.flip(3), result);
        }
        return (ReferenceEquals(result, x) ? x.clone() : result).MoveToOuterDisposeScope();
    }
}
