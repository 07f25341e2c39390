using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Models;

/// <summary>
/// Inverted dropout (p = probability of zeroing; kept elements scaled by 1/(1 − p)) whose keep mask on the CPU comes from
/// uniform draws, <c>rand &lt; 1 − p</c>, instead of ATen's <c>bernoulli_</c>. Both are Bernoulli(1 − p) masks; the
/// difference is cost: libtorch's CPU <c>bernoulli_</c> turns one 64-bit draw per element into a double on one thread
/// (~7 ns per element), <c>rand</c> one 32-bit draw (~2.4 ns), and <see cref="CpuGeneratorDraws"/> computes the same
/// draws, compared and scaled, eight lanes at a time (~0.4 ns). With three dropouts after the paper's convolutions
/// (19 M mask elements per minibatch of 128 through ten DT blocks) the masks took ~137 ms of a ~850 ms training step at
/// one thread with <c>bernoulli_</c>, ~47 ms with <c>rand</c>, and now under 10 ms, on no other thread's time
/// (BENCHMARKS.md, "Dropout masks from uniform draws" and "Dropout masks from the generator's state, ..."). The
/// masks are those <c>rand</c> gives, bit for bit, so runs are unchanged. On other devices ATen's fused dropout is used.
/// </summary>
public static class UniformDropout
{
    /// <summary>
    /// Dropout of x in training mode; x itself otherwise (or when p = 0). <paramref name="drawSides"/> (height, width):
    /// x [N, C, h, w] is the top-left part of an activation of that size which the computation cropped (see
    /// <see cref="ConvImageEncoder.CropToReceptiveField"/>); the CPU mask is drawn for the whole activation and cropped
    /// alike, so the random streams, and the run, are those of the uncropped computation.
    /// </summary>
    public static Tensor Apply(Tensor x, double p, bool training, (long Height, long Width)? drawSides = null)
    {
        CheckProbability(p);
        if (!training || p == 0) return x;
        if (x.device_type != DeviceType.CPU || p == 1) return nn.functional.dropout(x, p, true);
        using var scope = NewDisposeScope();
        return Masked(x, p, drawSides).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Dropout of ReLU(x) (the paper's block puts one after every ReLU), computed as ReLU, in place, of the dropped-out
    /// x: the mask is non-negative, so for finite x the values are the same (up to the sign of a zero), and so is every
    /// gradient (an element passes it when x is positive and kept; a dropped −∞ would now give NaN instead of 0).
    /// Autograd then keeps the mask and the output, which the next layer keeps anyway, instead of ReLU's own output as
    /// well: a float per element less (BENCHMARKS.md). On the CPU (contiguous float32) the product and ReLU run as one
    /// operation (<see cref="ReluDropout"/>: the same bits), which keeps one byte per element instead of the float mask.
    /// Outside training, or at p = 0, it is ReLU.
    /// </summary>
    public static Tensor AfterRelu(Tensor x, double p, bool training, (long Height, long Width)? drawSides = null)
    {
        CheckProbability(p);
        if (!training || p == 0) return nn.functional.relu(x);
        if (x.device_type != DeviceType.CPU || p == 1) return nn.functional.dropout(nn.functional.relu(x), p, true);
        using var scope = NewDisposeScope();
        if (FusedAfterRelu && x.dtype == ScalarType.Float32 && x.is_contiguous() && CpuMaskFits(x.shape, drawSides))
        {
            // One pass each way, one byte per element kept for the backward pass (ReluDropout): the same bits.
            using var mask = CpuMask(x.shape, p, drawSides);
            return ReluDropout.Apply(x, mask, KeptScale(p)).MoveToOuterDisposeScope();
        }
        return Masked(x, p, drawSides).relu_().MoveToOuterDisposeScope();
    }

    /// <summary>Whether <see cref="AfterRelu"/> runs as one fused operation where it can (the same results either way): a switch for tests and benchmarks.</summary>
    internal static bool FusedAfterRelu { get; set; } = true;

    private static void CheckProbability(double p)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1]");
    }

    /// <summary>x · mask, the mask 1/(1 − p) where the uniform draw u &lt; 1 − p and 0 elsewhere (its own tensor: no autograd).</summary>
    private static Tensor Masked(Tensor x, double p, (long, long)? drawSides)
    {
        using var scope = NewDisposeScope();
        var mask = Mask(x, p, drawSides);   // no autograd: a constant factor of the product below
        return x.mul(mask).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// x's mask: 1/(1 − p) where the uniform draw of <c>rand_like(x)</c> (or of the draws for [N, C, drawSides], cropped
    /// to x's top-left part) is below 1 − p, 0 elsewhere. For float32 it is computed from the CPU generator directly
    /// (<see cref="CpuGeneratorDraws"/>: the same mask, and generator state, as rand's, in one vectorised pass instead of
    /// rand's serial one and two more).
    /// </summary>
    private static Tensor Mask(Tensor x, double p, (long Height, long Width)? drawSides)
    {
        bool contiguous = x.is_contiguous();
        if (x.dtype == ScalarType.Float32 && contiguous && CpuMaskFits(x.shape, drawSides)) return CpuMask(x.shape, p, drawSides);
        CheckDrawSides(x.shape, drawSides);
        // rand_like keeps x's strides (a channels-last x draws in its memory order). A non-contiguous x draws for its
        // own shape. The kept part is copied out: the product then runs over contiguous memory.
        using var held = HeldScalars.Hold(1 - p);
        return drawSides is (long height, long width) && contiguous && (height != x.shape[2] || width != x.shape[3])
            ? rand([x.shape[0], x.shape[1], height, width], dtype: x.dtype, device: x.device)
                .narrow(2, 0, x.shape[2]).narrow(3, 0, x.shape[3]).contiguous().lt_(held).div_(held)
            : rand_like(x).lt_(held).div_(held);   // 1/(1 − p) where u < 1 − p
    }

    /// <summary>
    /// The mask <see cref="Apply"/> draws for a contiguous float32 CPU activation of the given shape, from the CPU
    /// generator's state (needs <see cref="CpuGeneratorDraws.Supported"/>): for the fused pooling, which draws it before
    /// the activation exists.
    /// </summary>
    internal static Tensor CpuMask(long[] shape, double p, (long Height, long Width)? drawSides)
    {
        CheckDrawSides(shape, drawSides);
        float keep = (float)(1 - p);
        // rand fills in memory order; for an NCHW activation cropped from a larger one that is the larger one's order.
        if (drawSides is (long height, long width) && (height != shape[2] || width != shape[3]))
            return CpuGeneratorDraws.KeepMask([shape[0], shape[1], height, width], keep, KeptScale(p), (shape[2], shape[3]));
        return CpuGeneratorDraws.KeepMask(shape, keep, KeptScale(p));
    }

    /// <summary>The factor of a kept element, 1/(1 − p) in float32, as ATen's <c>div_</c> of the 0/1 mask by 1 − p gives it.</summary>
    internal static float KeptScale(double p) => 1f / (float)(1 - p);

    /// <summary>
    /// Whether <see cref="CpuMask"/> can draw the mask of an activation of this shape: this libtorch's generator state is
    /// readable (<see cref="CpuGeneratorDraws.Supported"/>) and the draws fit the C# kernels (<see cref="CpuKernels.MaxElements"/>).
    /// </summary>
    internal static bool CpuMaskFits(long[] shape, (long Height, long Width)? drawSides)
    {
        CheckDrawSides(shape, drawSides);
        long draws = drawSides is (long height, long width) ? shape[0] * shape[1] * height * width : shape.Aggregate(1L, (a, b) => a * b);
        return draws <= CpuKernels.MaxElements && CpuGeneratorDraws.Supported;
    }

    private static void CheckDrawSides(long[] shape, (long Height, long Width)? drawSides)
    {
        if (drawSides is not (long height, long width)) return;
        if (shape.Length != 4)
            throw new ArgumentException($"a mask drawn for {height}×{width} needs an activation [N, C, H, W], not one of {shape.Length} dimensions", nameof(drawSides));
        if (height < shape[2] || width < shape[3])
            throw new ArgumentException($"a mask drawn for {height}×{width} cannot cover an activation of {shape[2]}×{shape[3]}", nameof(drawSides));
    }
}
