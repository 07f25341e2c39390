using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Data;

/// <summary>Per-channel mean and standard deviation applied to pixel intensities scaled to [0, 1].</summary>
public sealed record Normalization(float[] Mean, float[] Std)
{
    /// <summary>The usual MNIST statistics (training set, one channel).</summary>
    public static Normalization Mnist { get; } = new([0.1307f], [0.3081f]);

    /// <summary>Fashion-MNIST training-set statistics.</summary>
    public static Normalization FashionMnist { get; } = new([0.2860f], [0.3530f]);

    /// <summary>CIFAR-10 training-set statistics (R, G, B).</summary>
    public static Normalization Cifar10 { get; } = new([0.4914f, 0.4822f, 0.4465f], [0.2470f, 0.2435f, 0.2616f]);

    /// <summary>CIFAR-100 training-set statistics (R, G, B).</summary>
    public static Normalization Cifar100 { get; } = new([0.5071f, 0.4865f, 0.4409f], [0.2673f, 0.2564f, 0.2762f]);

    /// <summary>Per-channel mean and standard deviation of byte images (N × C × H × W), e.g. an image folder's training set.</summary>
    public static Normalization Measure(byte[] pixels, int channels, int height, int width)
    {
        int plane = height * width;
        long images = pixels.LongLength / (channels * plane);
        var mean = new float[channels];
        var std = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double sum = 0, squares = 0;
            for (long n = 0; n < images; n++)
            {
                long start = (n * channels + c) * plane;
                for (int i = 0; i < plane; i++) { double v = pixels[start + i] / 255.0; sum += v; squares += v * v; }
            }
            double count = (double)images * plane;
            double m = sum / count;
            mean[c] = (float)m;
            std[c] = (float)Math.Max(1e-3, Math.Sqrt(Math.Max(0, squares / count - m * m)));
        }
        return new Normalization(mean, std);
    }

    /// <summary>No normalisation: intensities stay in [0, 1].</summary>
    public static Normalization Identity(int channels) =>
        new(Enumerable.Repeat(0f, channels).ToArray(), Enumerable.Repeat(1f, channels).ToArray());
}

/// <summary>
/// Images held as bytes (N × C × H × W, channel-major like the CIFAR binary format) with integer labels
/// and class names. Converted to a normalised float tensor once, when training or evaluation starts.
/// </summary>
public sealed class ImageDataset
{
    public ImageDataset(string name, byte[] pixels, int[] labels, int channels, int height, int width,
        IReadOnlyList<string> classNames, Normalization normalization)
    {
        long imageSize = (long)channels * height * width;
        if (imageSize <= 0) throw new NoPropException($"{name}: invalid image shape {channels}×{height}×{width}");
        if (pixels.LongLength != imageSize * labels.Length)
            throw new NoPropException($"{name}: {pixels.LongLength} pixel bytes do not make {labels.Length} images of {channels}×{height}×{width}");
        if (normalization.Mean.Length != channels || normalization.Std.Length != channels)
            throw new NoPropException($"{name}: normalisation has {normalization.Mean.Length} channels, the images have {channels}");
        foreach (var label in labels)
            if (label < 0 || label >= classNames.Count)
                throw new NoPropException($"{name}: label {label} is outside 0..{classNames.Count - 1}");
        Name = name; Pixels = pixels; Labels = labels; Channels = channels; Height = height; Width = width;
        ClassNames = classNames; Normalization = normalization;
    }

    public string Name { get; }
    public byte[] Pixels { get; }
    public int[] Labels { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count => Labels.Length;
    public int ImageSize => Channels * Height * Width;
    public IReadOnlyList<string> ClassNames { get; }
    public int ClassCount => ClassNames.Count;
    public Normalization Normalization { get; }

    /// <summary>The images at the given indices, in that order.</summary>
    public ImageDataset Select(IReadOnlyList<int> indices, string? name = null)
    {
        int size = ImageSize;
        var pixels = new byte[(long)indices.Count * size];
        var labels = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            int src = indices[i];
            Buffer.BlockCopy(Pixels, src * size, pixels, i * size, size);
            labels[i] = Labels[src];
        }
        return new ImageDataset(name ?? Name, pixels, labels, Channels, Height, Width, ClassNames, Normalization);
    }

    /// <summary>The first <paramref name="count"/> images (all when null or larger than the set).</summary>
    public ImageDataset Take(int? count)
    {
        if (count is null || count >= Count) return this;
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        return Select(Enumerable.Range(0, count.Value).ToArray());
    }

    /// <summary>Normalised float images [N, C, H, W] and int64 labels [N] on the given device.</summary>
    public (Tensor Images, Tensor Labels) ToTensors(Device? device = null)
    {
        device ??= CPU;
        using var scope = NewDisposeScope();
        var images = tensor(Pixels, [Count, Channels, Height, Width], ScalarType.Byte);
        var floats = images.to_type(ScalarType.Float32).div_(255f);
        var mean = tensor(Normalization.Mean).view(1, Channels, 1, 1);
        var std = tensor(Normalization.Std).view(1, Channels, 1, 1);
        floats.sub_(mean).div_(std);
        var labels = tensor(Labels.Select(l => (long)l).ToArray(), ScalarType.Int64);
        var x = floats.to(device);
        var y = labels.to(device);
        return (x.MoveToOuterDisposeScope(), y.MoveToOuterDisposeScope());
    }
}
