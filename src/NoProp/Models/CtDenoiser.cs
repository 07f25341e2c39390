using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Models;

/// <summary>
/// The continuous-time network û_θ(z_t, x, t) shared by NoProp-CT and NoProp-FM (Fig. 6, right; no BatchNorm):
/// image path → 256 (the paper's conv module or a ResNet), noisy-label path FC256 + ReLU (or, for image-sized
/// embeddings, a conv module of its own), time path: 64-dim sinusoidal embedding → FC256 + ReLU; head on the
/// 768 concatenated features: FC256 → ReLU → FC128 → ReLU → FC(classes). It returns class logits.
/// <para>
/// The image path depends on x alone, so inference computes <see cref="EncodeImage"/> once per batch and
/// reuses the features at every solver step (<see cref="Logits(Tensor, Tensor, Tensor)"/>).
/// </para>
/// </summary>
public sealed class CtDenoiser : Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> imagePath;
    private readonly Module<Tensor, Tensor> labelPath;
    private readonly Sequential timePath;
    private readonly Sequential head;
    private readonly long[] labelImageShape;

    public CtDenoiser(ImageShape image, int embeddingDimension, int classes, bool imageShapedLabel, BackboneKind backbone)
        : base(nameof(CtDenoiser))
    {
        int f = ConvImageEncoder.Features;
        imagePath = Backbones.CreateImageEncoder(backbone, image);
        if (imageShapedLabel)
        {
            labelImageShape = [-1, image.Channels, image.Height, image.Width];
            labelPath = new ConvImageEncoder(image.Channels, image.Height, image.Width, EncoderOutputLayer.Relu);
        }
        else
        {
            labelImageShape = [];
            labelPath = Sequential(Linear(embeddingDimension, f), ReLU());
        }
        timePath = Sequential(Linear(SinusoidalTimeEmbedding.Dimension, f), ReLU());
        head = Sequential(Linear(3 * f, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, classes));
        RegisterComponents();
    }

    /// <summary>Image features [B, 256]: independent of z and t.</summary>
    public Tensor EncodeImage(Tensor x) => imagePath.forward(x);

    /// <summary>Class logits from cached image features, the noisy label z [B, d] and times t [B].</summary>
    public Tensor Logits(Tensor imageFeatures, Tensor z, Tensor t)
    {
        using var scope = NewDisposeScope();
        var label = labelPath.forward(labelImageShape.Length > 0 ? z.view(labelImageShape) : z);
        var time = timePath.forward(SinusoidalTimeEmbedding.Embed(t));
        return head.forward(cat([imageFeatures, label, time], 1)).MoveToOuterDisposeScope();
    }

    /// <summary>Logits from the image itself (training: every example has its own t).</summary>
    public override Tensor forward(Tensor x, Tensor z, Tensor t)
    {
        using var features = EncodeImage(x);
        return Logits(features, z, t);
    }
}
