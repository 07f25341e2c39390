using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Models;

/// <summary>
/// A 3×3 grouped convolution (stride 1, no padding, with bias; optionally its 2×2 max-pool and ReLU) of channels-last
/// float32 CPU tensors without autograd, computed here: the paper conv module's three convolutions at inference, T
/// blocks fused (conv1 one group of T × 32 channels, conv2 and conv3 T groups of 32 → 64 and 64 → 128).
/// <para>
/// libtorch's oneDNN kernels ran the fused conv2 at 142–340 GFLOP/s and conv3 at 264–320 on 2 cores that give a large
/// matrix product ~395 (BENCHMARKS.md, "Inference convolutions of our own"). Here, directly: four output positions ×
/// four 16-lane accumulators (64 channels) in registers, each weight vector loaded once for the four positions and
/// each input value broadcast once for the four vectors, the inputs read straight from the channels-last tensor (no
/// im2col copy), the bias loaded into the accumulators, and the pooling and ReLU applied as they are stored (conv1's
/// output, the largest activation, is never written). Where a group has a multiple of 16 input channels and the
/// output is pooled or even, Winograd's F(2×2, 3×3) (<see cref="RunWinograd"/>) needs 16 multiplications per 2×2
/// outputs and input channel instead of 36. Each output element is computed in a fixed order by one thread, whatever
/// the thread split: the results do not depend on the thread count.
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

    /// <summary>
    /// Whether the kernel runs where it can (the same values as libtorch's to rounding): a switch for tests and
    /// benchmarks; <c>NOPROP_CONV_KERNEL=0</c> turns it off (libtorch's convolutions, as before it).
    /// </summary>
    internal static bool Enabled { get; set; } = EnabledBy(Environment.GetEnvironmentVariable("NOPROP_CONV_KERNEL"));

    /// <summary>Whether a <c>NOPROP_CONV_KERNEL</c> setting leaves the kernel on: anything but "0".</summary>
    internal static bool EnabledBy(string? setting) => setting != "0";

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

    /// <summary>Whether convolutions with C_in a multiple of 16 and an even output (or pooled) take Winograd's algorithm: a switch for tests and benchmarks.</summary>
    internal static bool Winograd { get; set; } = true;

    /// <summary>
    /// A convolution's weights as the kernel reads them: <see cref="Direct"/> [G, 3, 3, C_in, C_out], and where C_in is a
    /// multiple of 16, <see cref="Transformed"/> [G, 16, C_in, C_out], Winograd's G g Gᵀ of every 3×3 kernel g (F(2×2, 3×3)).
    /// Its tensors belong to the dispose scope <see cref="Pack"/> was called in.
    /// </summary>
    public sealed record PackedWeights(Tensor Direct, Tensor? Transformed);

    // Winograd's F(2×2, 3×3) (Lavin and Gray, 2016): Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for a 4×4 input tile d and a 3×3 kernel
    // g gives the 2×2 outputs of the tile with 16 multiplications per input channel instead of 36. Bᵀ and Aᵀ hold only
    // 0 and ±1 (TransformInput and TransformOutput below are additions); G, with its halves, is applied once, to the
    // weights.
    private static readonly double[] WinogradG = [1, 0, 0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0, 0, 1];

    /// <summary>The weights [G·C_out, C_in, 3, 3] (any strides) as the kernel reads them (see <see cref="PackedWeights"/>).</summary>
    public static PackedWeights Pack(Tensor weight, long groups)
    {
        using var scope = NewDisposeScope();
        long outPerGroup = weight.shape[0] / groups, inPerGroup = weight.shape[1];
        var kernels = weight.detach().reshape(groups, outPerGroup, inPerGroup, 3, 3);
        var direct = kernels.permute(0, 3, 4, 2, 1).contiguous();
        Tensor? transformed = null;
        if (inPerGroup % 16 == 0)
        {
            var g = tensor(WinogradG, ScalarType.Float64).view(4, 3);
            transformed = g.matmul(kernels.to_type(ScalarType.Float64)).matmul(g.t())      // [G, C_out, C_in, 4, 4]
                .permute(0, 3, 4, 2, 1).reshape(groups, 16, inPerGroup, outPerGroup).to_type(ScalarType.Float32).contiguous();
        }
        return new PackedWeights(direct.MoveToOuterDisposeScope(), transformed?.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The convolution of <paramref name="input"/> [N, G·C_in, H, W] (channels-last strides, float32, CPU) with the
    /// <see cref="Pack"/>ed weights [G, 3, 3, C_in, C_out] and <paramref name="bias"/> [G·C_out]: [N, G·C_out, H − 2,
    /// W − 2] with channels-last strides; with <paramref name="pool"/> its 2×2 max-pool (stride 2, floor: [N, G·C_out,
    /// (H − 2) / 2, (W − 2) / 2]), the positions no window covers never computed; then ReLU when <paramref name="relu"/>.
    /// Throws, naming the problem, on operands it cannot take (see <see cref="Supports"/>). No autograd: the result has
    /// no gradient.
    /// </summary>
    public static Tensor Apply(Tensor input, PackedWeights weights, Tensor bias, bool relu, bool pool = false)
    {
        var packed = weights.Direct;
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

        // Winograd's tiles are the 2×2 pooling windows, or tile an even output.
        bool winograd = Winograd && weights.Transformed is not null && (pool || ((height - 2) % 2 == 0 && (width - 2) % 2 == 0));

        using var scope = NewDisposeScope();
        var output = empty([n, outHeight, outWidth, groups * outPerGroup], ScalarType.Float32);
        using (var inputView = input.permute(0, 2, 3, 1))
        {
            var shape = new Shape((int)n, (int)height, (int)width, (int)groups, (int)inPerGroup, (int)outPerGroup);
            nint source = CpuKernels.Address(inputView), biases = CpuKernels.Address(bias), target = CpuKernels.Address(output);
            nint kernels = CpuKernels.Address(winograd ? weights.Transformed! : packed);
            // Group-major items: one thread's consecutive items share a group's weights (up to 512 KB, kept in L2).
            CpuKernels.For(groups * n, (height - 2) * (width - 2) * outPerGroup * inPerGroup, (start, count) =>
            {
                if (winograd) RunWinograd(shape, source, kernels, biases, target, relu, pool, start, count);
                else Run(shape, source, kernels, biases, target, relu, pool, start, count);
            });
            // The kernel read only their addresses: a caller's last reference must not let a finalizer free them during it.
            GC.KeepAlive(input);
            GC.KeepAlive(weights);
            GC.KeepAlive(bias);
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

    /// <summary>
    /// The items of <see cref="Run"/> by Winograd's F(2×2, 3×3): each 2×2 output tile (a pooling window, with
    /// <paramref name="pool"/>) from its 4×4 input tile. Up to <see cref="Slots"/> tiles at a time: their inputs
    /// transformed (Bᵀ d B, 16 values per input channel), then for each of the 16 values one product over the input
    /// channels with the transformed weights (blocks of four tiles × 64 output channels in registers, as the direct
    /// kernel), then the outputs (Aᵀ m A), the bias, the pooling and ReLU.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RunWinograd(Shape s, nint source, nint weights, nint biases, nint target, bool relu, bool pool, long start, long count)
    {
        int tileRows = s.OutHeight / 2, tileColumns = s.OutWidth / 2, tiles = tileRows * tileColumns;
        int outputs = pool ? s.PooledHeight * s.PooledWidth : s.OutHeight * s.OutWidth;
        long groupWeights = 16L * s.InPerGroup * s.OutPerGroup;
        float* transformed = (float*)NativeMemory.AlignedAlloc((nuint)(16 * Slots * s.InPerGroup * sizeof(float)), 64);
        float* products = (float*)NativeMemory.AlignedAlloc((nuint)(16 * Slots * ChannelBlock * sizeof(float)), 64);
        try
        {
            var tileOutputs = stackalloc long[Slots];
            for (long item = start; item < start + count; item++)
            {
                int group = (int)(item / s.N), image = (int)(item % s.N);
                float* input = (float*)source + (long)image * s.Height * s.Width * s.InChannels + group * s.InPerGroup;
                float* output = (float*)target + (long)image * outputs * s.OutChannels + group * s.OutPerGroup;
                float* weight = (float*)weights + group * groupWeights;
                float* bias = (float*)biases + group * s.OutPerGroup;
                // Up to Slots tiles at a time, so that each transformed position's weights (C_in × 64 floats, 16 KB for
                // conv3) are read once for all of them (from L1), not once per block of four (from L2).
                for (int first = 0; first < tiles; first += Slots)
                {
                    int used = Math.Min(Slots, tiles - first), blocks = (used + 3) / 4;
                    for (int slot = 0; slot < 4 * blocks; slot++)
                    {
                        int tile = first + Math.Min(slot, used - 1);   // a last block of fewer than four repeats its last tile (not stored)
                        int row = tile / tileColumns, column = tile % tileColumns;
                        // The output offset (in floats) of the tile: its pooled position, or its top-left output position.
                        tileOutputs[slot] = (pool ? (long)row * s.PooledWidth + column : (long)2 * row * s.OutWidth + 2 * column) * s.OutChannels;
                        TransformInput(s, At(s, input, 2 * row, 2 * column), transformed + slot * s.InPerGroup);
                    }
                    for (int block = 0; block < s.OutPerGroup; block += ChannelBlock)
                    {
                        for (int xi = 0; xi < 16; xi++)
                        {
                            float* w = weight + (long)xi * s.InPerGroup * s.OutPerGroup + block;
                            for (int b = 0; b < blocks; b++)
                                Products(s, transformed + (xi * Slots + 4 * b) * s.InPerGroup, w, products + (xi * Slots + 4 * b) * ChannelBlock);
                        }
                        for (int slot = 0; slot < used; slot++)
                            for (int v = 0; v < ChannelBlock; v += 16)
                                TransformOutput(s, products + slot * ChannelBlock + v, bias + block + v, output + tileOutputs[slot] + block + v, relu, pool);
                    }
                }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(transformed);
            NativeMemory.AlignedFree(products);
        }
    }

    /// <summary>Tiles transformed and multiplied at a time by <see cref="RunWinograd"/> (four blocks of four).</summary>
    private const int Slots = 16;

    /// <summary>
    /// Bᵀ d B of the 4×4 input tile at <paramref name="tile"/>, 16 channels at a time: into the tile's slot of
    /// transformed[ξ][slot][c] (ξ = 4i + j the transformed position; <paramref name="slot"/> points at ξ = 0, c = 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void TransformInput(Shape s, float* tile, float* slot)
    {
        long row = (long)s.Width * s.InChannels, column = s.InChannels;
        int stride = Slots * s.InPerGroup;   // from one ξ to the next
        for (int c = 0; c < s.InPerGroup; c += 16)
        {
            float* d = tile + c;
            float* o = slot + c;
            // Bᵀ d: rows r0 − r2, r1 + r2, r2 − r1, r1 − r3, column by column; then the same across columns.
            for (int j = 0; j < 4; j++)
            {
                var d0 = Vector512.Load(d + j * column); var d1 = Vector512.Load(d + row + j * column);
                var d2 = Vector512.Load(d + 2 * row + j * column); var d3 = Vector512.Load(d + 3 * row + j * column);
                // Into rows i = 0..3 of column j; transformed across the columns below.
                Vector512.Store(d0 - d2, o + (0 * 4 + j) * stride);
                Vector512.Store(d1 + d2, o + (1 * 4 + j) * stride);
                Vector512.Store(d2 - d1, o + (2 * 4 + j) * stride);
                Vector512.Store(d1 - d3, o + (3 * 4 + j) * stride);
            }
            for (int i = 0; i < 4; i++)
            {
                float* r = o + i * 4 * stride;
                var t0 = Vector512.Load(r); var t1 = Vector512.Load(r + stride); var t2 = Vector512.Load(r + 2 * stride); var t3 = Vector512.Load(r + 3 * stride);
                Vector512.Store(t0 - t2, r);
                Vector512.Store(t1 + t2, r + stride);
                Vector512.Store(t2 - t1, r + 2 * stride);
                Vector512.Store(t1 - t3, r + 3 * stride);
            }
        }
    }

    /// <summary>
    /// For one transformed position ξ: products[t][64 channels] = Σ_c transformed[t][c] · weight[c][64 channels] for the
    /// four tiles t of a block (<paramref name="inputs"/>: their rows of transformed[ξ]; <paramref name="weight"/>: the
    /// transformed weights of ξ at the channel block).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Products(Shape s, float* inputs, float* weight, float* products)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default,
                         a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        int inPerGroup = s.InPerGroup, outPerGroup = s.OutPerGroup;
        float* i0 = inputs, i1 = inputs + inPerGroup, i2 = inputs + 2 * inPerGroup, i3 = inputs + 3 * inPerGroup;
        float* w = weight;
        for (int c = 0; c < inPerGroup; c++, w += outPerGroup)
        {
            var w0 = Vector512.Load(w); var w1 = Vector512.Load(w + 16); var w2 = Vector512.Load(w + 32); var w3 = Vector512.Load(w + 48);
            var x0 = Vector512.Create(i0[c]);
            a00 = Vector512.FusedMultiplyAdd(x0, w0, a00); a01 = Vector512.FusedMultiplyAdd(x0, w1, a01);
            a02 = Vector512.FusedMultiplyAdd(x0, w2, a02); a03 = Vector512.FusedMultiplyAdd(x0, w3, a03);
            var x1 = Vector512.Create(i1[c]);
            a10 = Vector512.FusedMultiplyAdd(x1, w0, a10); a11 = Vector512.FusedMultiplyAdd(x1, w1, a11);
            a12 = Vector512.FusedMultiplyAdd(x1, w2, a12); a13 = Vector512.FusedMultiplyAdd(x1, w3, a13);
            var x2 = Vector512.Create(i2[c]);
            a20 = Vector512.FusedMultiplyAdd(x2, w0, a20); a21 = Vector512.FusedMultiplyAdd(x2, w1, a21);
            a22 = Vector512.FusedMultiplyAdd(x2, w2, a22); a23 = Vector512.FusedMultiplyAdd(x2, w3, a23);
            var x3 = Vector512.Create(i3[c]);
            a30 = Vector512.FusedMultiplyAdd(x3, w0, a30); a31 = Vector512.FusedMultiplyAdd(x3, w1, a31);
            a32 = Vector512.FusedMultiplyAdd(x3, w2, a32); a33 = Vector512.FusedMultiplyAdd(x3, w3, a33);
        }
        a00.Store(products); a01.Store(products + 16); a02.Store(products + 32); a03.Store(products + 48);
        a10.Store(products + 64); a11.Store(products + 80); a12.Store(products + 96); a13.Store(products + 112);
        a20.Store(products + 128); a21.Store(products + 144); a22.Store(products + 160); a23.Store(products + 176);
        a30.Store(products + 192); a31.Store(products + 208); a32.Store(products + 224); a33.Store(products + 240);
    }

    /// <summary>
    /// Aᵀ m A + bias for 16 output channels of one tile (m: <paramref name="products"/>[ξ] at a stride of one ξ's
    /// <see cref="Slots"/> tiles), then the 2×2 max-pool into one output (<paramref name="pool"/>) or the four outputs, through ReLU when asked.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void TransformOutput(Shape s, float* products, float* bias, float* output, bool relu, bool pool)
    {
        const int stride = Slots * ChannelBlock;
        var b = Vector512.Load(bias);
        // Aᵀ m: rows m0 + m1 + m2 and m1 − m2 − m3 of each column j; then the same across the columns.
        Vector512<float> s00, s01, s02, s03, s10, s11, s12, s13;
        {
            var m0 = Vector512.Load(products); var m1 = Vector512.Load(products + 4 * stride); var m2 = Vector512.Load(products + 8 * stride); var m3 = Vector512.Load(products + 12 * stride);
            s00 = m0 + m1 + m2; s10 = m1 - m2 - m3;
            m0 = Vector512.Load(products + stride); m1 = Vector512.Load(products + 5 * stride); m2 = Vector512.Load(products + 9 * stride); m3 = Vector512.Load(products + 13 * stride);
            s01 = m0 + m1 + m2; s11 = m1 - m2 - m3;
            m0 = Vector512.Load(products + 2 * stride); m1 = Vector512.Load(products + 6 * stride); m2 = Vector512.Load(products + 10 * stride); m3 = Vector512.Load(products + 14 * stride);
            s02 = m0 + m1 + m2; s12 = m1 - m2 - m3;
            m0 = Vector512.Load(products + 3 * stride); m1 = Vector512.Load(products + 7 * stride); m2 = Vector512.Load(products + 11 * stride); m3 = Vector512.Load(products + 15 * stride);
            s03 = m0 + m1 + m2; s13 = m1 - m2 - m3;
        }
        var y00 = s00 + s01 + s02 + b; var y01 = s01 - s02 - s03 + b;
        var y10 = s10 + s11 + s12 + b; var y11 = s11 - s12 - s13 + b;
        if (pool)
        {
            var y = Max(Max(y00, y01), Max(y10, y11));
            (relu ? Relu(y) : y).Store(output);
            return;
        }
        long right = s.OutChannels, below = (long)s.OutWidth * s.OutChannels;
        (relu ? Relu(y00) : y00).Store(output);
        (relu ? Relu(y01) : y01).Store(output + right);
        (relu ? Relu(y10) : y10).Store(output + below);
        (relu ? Relu(y11) : y11).Store(output + below + right);
    }

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
