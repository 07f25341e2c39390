using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Models;

/// <summary>
/// Inverted dropout (p = probability of zeroing; kept elements scaled by 1/(1 − p)) whose keep mask on the CPU comes from
/// uniform draws, <c>rand &lt; 1 − p</c>, instead of ATen's <c>bernoulli_</c>. Both are Bernoulli(1 − p) masks; the
/// difference is cost: libtorch's CPU <c>bernoulli_</c> turns one 64-bit draw per element into a double on one thread
/// (~7 ns per element), <c>rand</c> one 32-bit draw (~2.4 ns). With three dropouts after the paper's convolutions
/// (19 M mask elements per minibatch of 128 through ten DT blocks) the masks took ~137 ms of a ~850 ms training step
/// at one thread, now ~47 ms: the step is 8–9 % faster (BENCHMARKS.md, "Dropout masks from uniform draws"). On other
/// devices ATen's fused dropout is used.
/// </summary>
public static class UniformDropout
{
    /// <summary>Dropout of x in training mode; x itself otherwise (or when p = 0).</summary>
    public static Tensor Apply(Tensor x, double p, bool training)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1]");
        if (!training || p == 0) return x;
        if (x.device_type != DeviceType.CPU || p == 1) return nn.functional.dropout(x, p, true);
        using var scope = NewDisposeScope();
        double keep = 1 - p;
        var mask = rand_like(x);            // no autograd: a constant factor of the product below
        mask.lt_(keep).div_(keep);          // 1/(1 − p) where u < 1 − p, 0 elsewhere
        return x.mul(mask).MoveToOuterDisposeScope();
    }
}
