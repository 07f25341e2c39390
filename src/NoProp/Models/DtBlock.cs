using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Models;

/// <summary>
/// One NoProp-DT block û_θt(z_{t−1}, x) (Fig. 6, left). It returns class logits; the block's prediction of the
/// clean label embedding is <see cref="EmbeddingReadout.ConvexCombination"/>(logits, W_Embed).
/// The noised label goes through the residual MLP, or, when the embedding is image-sized (prototype), is reshaped
/// into an image and goes through a conv module of its own.
/// </summary>
public sealed class DtBlock : Module<Tensor, Tensor, Tensor>
{
    private readonly ConvImageEncoder imagePath;
    private readonly Module<Tensor, Tensor> labelPath;
    private readonly Sequential head;
    private readonly long[] labelImageShape;

    /// <param name="image">The input images' shape.</param>
    /// <param name="embeddingDimension">d, the label embedding's dimension (z_t's).</param>
    /// <param name="classes">The class count (the output head's width).</param>
    /// <param name="imageShapedLabel">Read z_t as an image through a conv module of its own (prototype embeddings).</param>
    /// <param name="dropout">The dropout probability of the conv modules (the paper's 0.2).</param>
    public DtBlock(ImageShape image, int embeddingDimension, int classes, bool imageShapedLabel, double dropout = 0.2) : base(nameof(DtBlock))
    {
        imagePath = new ConvImageEncoder(image.Channels, image.Height, image.Width, EncoderOutputLayer.BatchNorm, dropout);
        if (imageShapedLabel)
        {
            labelImageShape = [-1, image.Channels, image.Height, image.Width];
            labelPath = new ConvImageEncoder(image.Channels, image.Height, image.Width, EncoderOutputLayer.BatchNorm, dropout);
        }
        else
        {
            labelImageShape = [];
            labelPath = new ResidualLabelMlp(embeddingDimension);
        }
        int f = ConvImageEncoder.Features;
        head = Sequential(
            Linear(2 * f, 256), BatchNorm1d(256), ReLU(),
            Linear(256, 128), BatchNorm1d(128), ReLU(),
            Linear(128, classes));
        RegisterComponents();
    }

    // The parts, for FusedDtBlocks.
    internal ConvImageEncoder ImagePath => imagePath;
    internal Module<Tensor, Tensor> LabelPath => labelPath;
    internal Sequential Head => head;

    /// <summary>Class logits [B, m] from the image x [B, C, H, W] and the noisy label z [B, d].</summary>
    public override Tensor forward(Tensor x, Tensor z)
    {
        using var imageFeatures = ImageFeatures(x);
        return Logits(imageFeatures, z);
    }

    /// <summary>
    /// Class probabilities [B, m] of x at the noisy label's prior mean z = 0 [B, <paramref name="embeddingDimension"/>]:
    /// the image path alone (the <c>--image-only</c> ablation of a chain's first block).
    /// </summary>
    public Tensor ImageOnlyProbabilities(Tensor x, int embeddingDimension)
    {
        using var scope = NewDisposeScope();
        var z = zeros(x.shape[0], embeddingDimension, device: x.device);
        return functional.softmax(forward(x, z), 1).MoveToOuterDisposeScope();
    }

    /// <summary>The image path's features [B, 256] of x [B, C, H, W]: they do not depend on z, so inference computes them once.</summary>
    public Tensor ImageFeatures(Tensor x) => imagePath.forward(x);

    /// <summary>Class logits [B, m] from image features [B, 256] (<see cref="ImageFeatures"/>) and the noisy label z [B, d].</summary>
    public Tensor Logits(Tensor imageFeatures, Tensor z)
    {
        using var scope = NewDisposeScope();
        var labelFeatures = labelPath.forward(labelImageShape.Length > 0 ? z.view(labelImageShape) : z);
        var logits = head.forward(cat([imageFeatures, labelFeatures], 1));
        return logits.MoveToOuterDisposeScope();
    }
}

/// <summary>The shape of one input image.</summary>
public readonly record struct ImageShape(int Channels, int Height, int Width)
{
    public int Size => Channels * Height * Width;
    public override string ToString() => $"{Channels}×{Height}×{Width}";
}
