using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Losses;

/// <summary>The terms of the NoProp objectives (Eqs. 8, 9), each averaged over the batch.</summary>
public static class NoPropLosses
{
    /// <summary>
    /// D_KL(q(z_0|y) ‖ N(0, I)) with q(z_0|y) = N(√ᾱ_0·u_y, (1 − ᾱ_0)·I), in closed form:
    /// ½ [ᾱ_0 ‖u_y‖² − d·ᾱ_0 − d·log(1 − ᾱ_0)], averaged over the rows of <paramref name="u"/> [B, d].
    /// </summary>
    public static Tensor KlToStandardNormal(Tensor u, double alphaBar0)
    {
        long d = u.shape[^1];
        double constant = d * (-alphaBar0 - Math.Log(1 - alphaBar0));
        return u.Squared().sum(1).mean().Times(alphaBar0).Plus(constant).Times(0.5);
    }

    /// <summary>The same KL with a learnable ᾱ_0 (a scalar tensor; NoProp-CT's schedule).</summary>
    public static Tensor KlToStandardNormal(Tensor u, Tensor alphaBar0)
    {
        long d = u.shape[^1];
        return (u.Squared().sum(1).mean() * alphaBar0 - alphaBar0.Times(d) - alphaBar0.SubtractedFrom(1).log().Times(d)).Times(0.5);
    }

    /// <summary>Mean over the batch of the squared Euclidean distance between rows: (1/B) Σ ‖û_i − u_i‖².</summary>
    public static Tensor MeanSquaredDistance(Tensor prediction, Tensor target) =>
        (prediction - target).Squared().sum(1).mean();
}
