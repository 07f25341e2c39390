using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Models;

/// <summary>The image path of the continuous-time model.</summary>
[NamedAs("backbone")]
public enum BackboneKind
{
    /// <summary>The paper's conv module (Fig. 6, right): 3 convs, FC256 + ReLU.</summary>
    [Name("paper")] Paper,
    [Name("resnet18")] ResNet18,
    [Name("resnet50")] ResNet50,
    [Name("resnet152")] ResNet152,
}

/// <summary>Factories for image encoders that map [B, C, H, W] to 256 features.</summary>
public static class Backbones
{
    /// <summary>An encoder to 256 features, finished with ReLU (the CT model has no BatchNorm after its FC).</summary>
    public static Module<Tensor, Tensor> CreateImageEncoder(BackboneKind kind, ImageShape image) => kind switch
    {
        BackboneKind.Paper => new ConvImageEncoder(image.Channels, image.Height, image.Width, EncoderOutputLayer.Relu),
        _ => new ResNetImageEncoder(kind, image.Channels),
    };
}

/// <summary>
/// A torchvision ResNet trained from scratch as the image path: its final fc is sized to 256 outputs (the
/// projection), followed by ReLU. One-channel images are repeated to three channels, so the standard stem applies.
/// </summary>
public sealed class ResNetImageEncoder : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> resnet;
    private readonly int channels;

    public ResNetImageEncoder(BackboneKind kind, int channels) : base(nameof(ResNetImageEncoder))
    {
        if (channels is not (1 or 3)) throw new NoPropException($"the ResNet backbones take 1- or 3-channel images, not {channels}");
        this.channels = channels;
        resnet = kind switch
        {
            BackboneKind.ResNet18 => torchvision.models.resnet18(num_classes: ConvImageEncoder.Features),
            BackboneKind.ResNet50 => torchvision.models.resnet50(num_classes: ConvImageEncoder.Features),
            BackboneKind.ResNet152 => torchvision.models.resnet152(num_classes: ConvImageEncoder.Features),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var input = channels == 1 ? x.expand(-1, 3, -1, -1) : x;
        return functional.relu(resnet.forward(input)).MoveToOuterDisposeScope();
    }
}
