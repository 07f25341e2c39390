using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Models;

/// <summary>
/// A 3×3 grouped convolution (stride 1, no padding, with bias and optionally ReLU) of channels-last float32 CPU tensors
/// without autograd, computed here: the paper conv module's second and third convolutions at inference, T blocks
/// grouped (32 → 64 and 64 → 128 channels per group).
/// <para>
/// libtorch's oneDNN kernels ran these two at 37 % and 64 % of what the same cores give a large matrix product
/// (BENCHMARKS.md: conv2 ~147 GFLOP/s, conv3 ~256, sgemm ~395 on 2 threads), the grouped conv2 with its 32 input
/// channels worst. Here each output position's 64-channel block is computed in registers: four positions × four
/// 16-lane accumulators, each weight vector loaded once for the four positions and each input value broadcast once
/// for the four vectors, the input rows of a position read straight from the channels-last tensor (no im2col copy),
/// the bias loaded into the accumulators and ReLU applied as they are stored. Each output element is one dot product
/// in a fixed order (kh, kw, input channel), whatever the thread split: the results do not depend on the thread count.
/// </para>
/// <para>
/// Where 512-bit vectors are not accelerated, or the shapes are others (output channels per group not a multiple of
/// 64, other kernel sizes), <see cref="Supports"/> says no and callers use libtorch's convolution.
/// </para>
/// </summary>
internal static class GroupedConvolution
{
    /// <summary>Output channels per register block: four 16-lane vectors.</summary>
    public const int ChannelBlock = 64;

    private const int Positions = 4;

    /// <summary>Whether the kernel runs where it can (the same values as libtorch's to rounding): a switch for tests and benchmarks.</summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>Whether this CPU runs the kernel (AVX-512).</summary>
    public static bool Accelerated => Vector512.IsHardwareAccelerated;

    /// <summary>
    /// Whether the kernel takes the weights [G·C_out, C_in, 3, 3] of a convolution with <paramref name="groups"/> groups:
    /// float32 on the CPU, C_out a multiple of <see cref="ChannelBlock"/>, and a CPU with 512-bit vectors.
    /// </summary>
    public static bool Supports(Tensor weight, long groups) =>
        Enabled && Accelerated && weight.device_type == DeviceType.CPU && weight.dtype == ScalarType.Float32
        && weight.dim() == 4 && weight.shape[2] == 3 && weight.shape[3] == 3 && groups > 0
        && weight.shape[0] % groups == 0 && weight.shape[0] / groups % ChannelBlock == 0;

    /// <summary>The weights [G·C_out, C_in, 3, 3] (any strides) as the kernel reads them: [G, 3, 3, C_in, C_out], contiguous.</summary>
    public static Tensor Pack(Tensor weight, long groups)
    {
        using var scope = NewDisposeScope();
        long outPerGroup = weight.shape[0] / groups;
        return weight.detach().reshape(groups, outPerGroup, weight.shape[1], 3, 3).permute(0, 3, 4, 2, 1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The convolution of <paramref name="input"/> [N, G·C_in, H, W] (channels-last strides, float32, CPU) with the
    /// <see cref="Pack"/>ed weights [G, 3, 3, C_in, C_out] and <paramref name="bias"/> [G·C_out]: [N, G·C_out, H − 2,
    /// W − 2] with channels-last strides; with <paramref name="pool"/> its 2×2 max-pool (stride 2, floor: [N, G·C_out,
    /// (H − 2) / 2, (W − 2) / 2]), the positions no window covers never computed; then ReLU when <paramref name="relu"/>.
    /// Throws, naming the problem, on operands it cannot take (see <see cref="Supports"/>). No autograd: the result has
    /// no gradient.
    /// </summary>
    public static Tensor Apply(Tensor input, Tensor packed, Tensor bias, bool relu, bool pool = false)
    {
        if (!Accelerated) throw new PlatformNotSupportedException("the grouped convolution kernel needs 512-bit vectors (AVX-512)");
        if (input.device_type != DeviceType.CPU || input.dtype != ScalarType.Float32 || input.dim() != 4 || !IsChannelsLast(input))
            throw new ArgumentException($"the grouped convolution takes a channels-last float32 CPU tensor [N, C, H, W], not {input.dtype} [{string.Join(", ", input.shape)}] on {input.device}", nameof(input));
        if (packed.dim() != 5 || packed.dtype != ScalarType.Float32 || !packed.is_contiguous() || packed.shape[1] != 3 || packed.shape[2] != 3
            || packed.shape[4] % ChannelBlock != 0)
            throw new ArgumentException($"packed weights must be a contiguous float32 [G, 3, 3, C_in, C_out] with C_out a multiple of {ChannelBlock}, not {packed.dtype} [{string.Join(", ", packed.shape)}]", nameof(packed));
        long n = input.shape[0], height = input.shape[2], width = input.shape[3], groups = packed.shape[0], inPerGroup = packed.shape[3], outPerGroup = packed.shape[4];
        if (input.shape[1] != groups * inPerGroup)
            throw new ArgumentException($"the input has {input.shape[1]} channels; the weights take {groups} groups of {inPerGroup}", nameof(input));
        if (height < (pool ? 4 : 3) || width < (pool ? 4 : 3))
            throw new ArgumentException($"a 3×3 convolution without padding{(pool ? " and a 2×2 pooling" : "")} needs planes of at least {(pool ? 4 : 3)}×{(pool ? 4 : 3)}, not {height}×{width}", nameof(input));
        if (bias.numel() != groups * outPerGroup || bias.dtype != ScalarType.Float32 || !bias.is_contiguous())
            throw new ArgumentException($"the bias must be a contiguous float32 of {groups * outPerGroup} elements, not {bias.dtype} [{string.Join(", ", bias.shape)}]", nameof(bias));
        long outHeight = pool ? (height - 2) / 2 : height - 2, outWidth = pool ? (width - 2) / 2 : width - 2;
        if (input.numel() > CpuKernels.MaxElements || n * (height - 2) * (width - 2) * groups * outPerGroup > CpuKernels.MaxElements)
            throw new ArgumentException($"the grouped convolution takes at most {CpuKernels.MaxElements} elements in a tensor; split the batch", nameof(input));

        using var scope = NewDisposeScope();
        var output = empty([n, outHeight, outWidth, groups * outPerGroup], ScalarType.Float32);
        using (var inputView = input.permute(0, 2, 3, 1))
        {
            var shape = new Shape((int)n, (int)height, (int)width, (int)groups, (int)inPerGroup, (int)outPerGroup);
            nint source = CpuKernels.Address(inputView), weights = CpuKernels.Address(packed), biases = CpuKernels.Address(bias), target = CpuKernels.Address(output);
            // Group-major items: one thread's consecutive items share a group's weights (up to 295 KB, kept in L2).
            CpuKernels.For(groups * n, (height - 2) * (width - 2) * outPerGroup * inPerGroup, (start, count) =>
                Run(shape, source, weights, biases, target, relu, pool, start, count));
        }
        return output.permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    /// <summary>Whether t [N, C, H, W] has dense channels-last strides (C fastest, then W, then H, then N).</summary>
    internal static bool IsChannelsLast(Tensor t)
    {
        long c = t.shape[1], h = t.shape[2], w = t.shape[3];
        return (c == 1 || t.stride(1) == 1) && (w == 1 || t.stride(3) == c) && (h == 1 || t.stride(2) == w * c)
               && (t.shape[0] == 1 || t.stride(0) == h * w * c);
    }

    private readonly record struct Shape(int N, int Height, int Width, int Groups, int InPerGroup, int OutPerGroup)
    {
        public int OutHeight => Height - 2;
        public int OutWidth => Width - 2;
        public int InChannels => Groups * InPerGroup;
        public int OutChannels => Groups * OutPerGroup;
        public int PooledHeight => OutHeight / 2;
        public int PooledWidth => OutWidth / 2;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Run(Shape s, nint source, nint weights, nint biases, nint target, bool relu, bool pool, long start, long count)
    {
        int positions = s.OutHeight * s.OutWidth, outputs = pool ? s.PooledHeight * s.PooledWidth : positions;
        long groupWeights = 9L * s.InPerGroup * s.OutPerGroup;
        for (long item = start; item < start + count; item++)
        {
            int group = (int)(item / s.N), image = (int)(item % s.N);
            float* input = (float*)source + (long)image * s.Height * s.Width * s.InChannels + group * s.InPerGroup;
            float* output = (float*)target + (long)image * outputs * s.OutChannels + group * s.OutPerGroup;
            float* weight = (float*)weights + group * groupWeights;
            float* bias = (float*)biases + group * s.OutPerGroup;
            for (int block = 0; block < s.OutPerGroup; block += ChannelBlock)
            {
                float* w = weight + block, b = bias + block, o = output + block;
                if (pool)
                {
                    // The four positions of each 2×2 window (floor: a last odd row or column is never computed).
                    for (int ph = 0; ph < s.PooledHeight; ph++)
                        for (int pw = 0; pw < s.PooledWidth; pw++)
                        {
                            float* i0 = At(s, input, 2 * ph, 2 * pw);
                            Four(s, i0, i0 + s.InChannels, i0 + (long)s.Width * s.InChannels, i0 + ((long)s.Width + 1) * s.InChannels,
                                 w, b, o + (long)(ph * s.PooledWidth + pw) * s.OutChannels, relu, pool: true);
                        }
                    continue;
                }
                int p = 0;
                for (; p + 4 <= positions; p += 4)
                    Four(s, At(s, input, p), At(s, input, p + 1), At(s, input, p + 2), At(s, input, p + 3), w, b, o + (long)p * s.OutChannels, relu, pool: false);
                for (; p < positions; p++)
                    One(s, At(s, input, p), w, b, o + (long)p * s.OutChannels, relu);
            }
        }
    }

    /// <summary>The input under output position p (flat, row-major) at kernel offset (0, 0), input channel 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float* At(Shape s, float* input, int p) => At(s, input, p / s.OutWidth, p % s.OutWidth);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float* At(Shape s, float* input, int row, int column) => input + ((long)row * s.Width + column) * s.InChannels;

    /// <summary>
    /// 64 output channels of four output positions whose inputs start at i0 … i3: stored at o, o + C, o + 2C, o + 3C
    /// (C the output's channels), or with <paramref name="pool"/> their maximum at o.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Four(Shape s, float* i0, float* i1, float* i2, float* i3, float* weight, float* bias, float* o, bool relu, bool pool)
    {
        var b0 = Vector512.Load(bias); var b1 = Vector512.Load(bias + 16); var b2 = Vector512.Load(bias + 32); var b3 = Vector512.Load(bias + 48);
        Vector512<float> a00 = b0, a01 = b1, a02 = b2, a03 = b3, a10 = b0, a11 = b1, a12 = b2, a13 = b3,
                         a20 = b0, a21 = b1, a22 = b2, a23 = b3, a30 = b0, a31 = b1, a32 = b2, a33 = b3;
        int inPerGroup = s.InPerGroup, outPerGroup = s.OutPerGroup;
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++)
            {
                long offset = ((long)kh * s.Width + kw) * s.InChannels;
                float* w = weight + (kh * 3 + kw) * inPerGroup * outPerGroup;
                for (int c = 0; c < inPerGroup; c++, w += outPerGroup)
                {
                    var w0 = Vector512.Load(w); var w1 = Vector512.Load(w + 16); var w2 = Vector512.Load(w + 32); var w3 = Vector512.Load(w + 48);
                    var x0 = Vector512.Create(i0[offset + c]);
                    a00 = Vector512.FusedMultiplyAdd(x0, w0, a00); a01 = Vector512.FusedMultiplyAdd(x0, w1, a01);
                    a02 = Vector512.FusedMultiplyAdd(x0, w2, a02); a03 = Vector512.FusedMultiplyAdd(x0, w3, a03);
                    var x1 = Vector512.Create(i1[offset + c]);
                    a10 = Vector512.FusedMultiplyAdd(x1, w0, a10); a11 = Vector512.FusedMultiplyAdd(x1, w1, a11);
                    a12 = Vector512.FusedMultiplyAdd(x1, w2, a12); a13 = Vector512.FusedMultiplyAdd(x1, w3, a13);
                    var x2 = Vector512.Create(i2[offset + c]);
                    a20 = Vector512.FusedMultiplyAdd(x2, w0, a20); a21 = Vector512.FusedMultiplyAdd(x2, w1, a21);
                    a22 = Vector512.FusedMultiplyAdd(x2, w2, a22); a23 = Vector512.FusedMultiplyAdd(x2, w3, a23);
                    var x3 = Vector512.Create(i3[offset + c]);
                    a30 = Vector512.FusedMultiplyAdd(x3, w0, a30); a31 = Vector512.FusedMultiplyAdd(x3, w1, a31);
                    a32 = Vector512.FusedMultiplyAdd(x3, w2, a32); a33 = Vector512.FusedMultiplyAdd(x3, w3, a33);
                }
            }
        if (pool)
        {
            Store(o, Max(Max(a00, a10), Max(a20, a30)), Max(Max(a01, a11), Max(a21, a31)),
                     Max(Max(a02, a12), Max(a22, a32)), Max(Max(a03, a13), Max(a23, a33)), relu);
            return;
        }
        Store(o, a00, a01, a02, a03, relu);
        Store(o + s.OutChannels, a10, a11, a12, a13, relu);
        Store(o + 2L * s.OutChannels, a20, a21, a22, a23, relu);
        Store(o + 3L * s.OutChannels, a30, a31, a32, a33, relu);
    }

    /// <summary>64 output channels of one output position (those left after the blocks of four), stored at o.</summary>
    private static unsafe void One(Shape s, float* i0, float* weight, float* bias, float* o, bool relu)
    {
        var a0 = Vector512.Load(bias); var a1 = Vector512.Load(bias + 16); var a2 = Vector512.Load(bias + 32); var a3 = Vector512.Load(bias + 48);
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++)
            {
                long offset = ((long)kh * s.Width + kw) * s.InChannels;
                float* w = weight + (kh * 3 + kw) * s.InPerGroup * s.OutPerGroup;
                for (int c = 0; c < s.InPerGroup; c++, w += s.OutPerGroup)
                {
                    var x0 = Vector512.Create(i0[offset + c]);
                    a0 = Vector512.FusedMultiplyAdd(x0, Vector512.Load(w), a0); a1 = Vector512.FusedMultiplyAdd(x0, Vector512.Load(w + 16), a1);
                    a2 = Vector512.FusedMultiplyAdd(x0, Vector512.Load(w + 32), a2); a3 = Vector512.FusedMultiplyAdd(x0, Vector512.Load(w + 48), a3);
                }
            }
        Store(o, a0, a1, a2, a3, relu);
    }

    // The larger of a and b, lane by lane, a NaN in either winning (as ATen's max-pool).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Max(Vector512<float> a, Vector512<float> b) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(a, b) | ~Vector512.Equals(a, a), a, b);

    /// <summary>Four vectors to o … o + 63, through ReLU when asked (as ATen's: a NaN stays NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* o, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3, bool relu)
    {
        if (relu)
        {
            v0 = Relu(v0); v1 = Relu(v1); v2 = Relu(v2); v3 = Relu(v3);
        }
        v0.Store(o); v1.Store(o + 16); v2.Store(o + 32); v3.Store(o + 48);
    }

    // max(v, 0) that keeps NaN (clamp_min's NaN propagation): zero only where v < 0.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Relu(Vector512<float> v) => Vector512.ConditionalSelect(Vector512.LessThan(v, Vector512<float>.Zero), Vector512<float>.Zero, v);
}
