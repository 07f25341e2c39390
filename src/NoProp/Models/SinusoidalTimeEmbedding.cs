using TorchSharp;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Models;

/// <summary>
/// The 64-dimensional positional embedding of t (Fig. 6, right: "pos emb (64)"): [sin(s·ω_k), cos(s·ω_k)] with
/// s = 1000·t (t ∈ [0, 1] read on the 1000-step grid the paper uses) and ω_k = 10000^(−k/32), k = 0..31.
/// </summary>
public static class SinusoidalTimeEmbedding
{
    public const int Dimension = 64;

    /// <summary>t [B] (or [B, 1]) → [B, 64].</summary>
    public static Tensor Embed(Tensor t)
    {
        using var scope = NewDisposeScope();
        int half = Dimension / 2;
        using var end = half.ToScalar();
        var frequencies = exp(arange(HeldScalars.Zero, end, HeldScalars.One, dtype: ScalarType.Float32, device: t.device).Times(-Math.Log(10000.0) / half));
        var angles = t.reshape(-1, 1).to_type(ScalarType.Float32).Times(1000f) * frequencies.unsqueeze(0);
        return cat([angles.sin(), angles.cos()], 1).MoveToOuterDisposeScope();
    }
}
