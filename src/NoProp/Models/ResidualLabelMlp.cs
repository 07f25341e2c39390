using NoProp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Models;

/// <summary>
/// The noised-label path of a DT block when the embedding is not image-sized (Fig. 6, left):
/// h = ReLU(BN(FC256(z))), then h + BN(FC256(ReLU(BN(FC256(h))))).
/// </summary>
public sealed class ResidualLabelMlp : Module<Tensor, Tensor>
{
    private readonly Sequential input, residual;

    public ResidualLabelMlp(int embeddingDimension, int width = ConvImageEncoder.Features) : base(nameof(ResidualLabelMlp))
    {
        input = Sequential(Linear(embeddingDimension, width), BatchNorm1d(width), ReLU());
        residual = Sequential(Linear(width, width), BatchNorm1d(width), ReLU(), Linear(width, width), BatchNorm1d(width));
        RegisterComponents();
    }

    // The two stacks, for FusedDtBlocks.
    internal Sequential Input => input;
    internal Sequential Residual => residual;

    public override Tensor forward(Tensor z)
    {
        using var h = input.forward(z);
        using var r = residual.forward(h);
        return h.Plus(r);
    }
}
