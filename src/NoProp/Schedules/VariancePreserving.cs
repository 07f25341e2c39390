using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Schedules;

/// <summary>The Gaussian marginals of the variance-preserving process (paper Eq. 6).</summary>
public static class VariancePreserving
{
    /// <summary>z ~ q(z_t|y) = N(√ᾱ·u, (1 − ᾱ)·I), by reparameterisation so gradients reach a learned u.</summary>
    public static Tensor SampleMarginal(Tensor u, double alphaBar)
    {
        using var noise = randn_like(u);
        return u.Times(Math.Sqrt(alphaBar)).Plus(noise.Times(Math.Sqrt(1 - alphaBar)));
    }

    /// <summary>Per-example ᾱ (a column [B, 1]) for the continuous-time methods.</summary>
    public static Tensor SampleMarginal(Tensor u, Tensor alphaBar)
    {
        using var noise = randn_like(u);
        return (u * alphaBar.sqrt()).Plus(noise * alphaBar.SubtractedFrom(1).sqrt());
    }
}
