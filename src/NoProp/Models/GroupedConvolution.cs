using System.Runtime.CompilerServices;
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
/// computed outputs have even sides, Winograd's algorithms (<see cref="RunWinograd"/>) need fewer multiplications:
/// F(4×4, 3×3) 36 per 4×4 outputs and input channel instead of 144, over the largest part 4×4 tiles cover (conv3's
/// pooled 8×8, conv2's 10×10 but for its last two rows and columns), and F(2×2, 3×3) 16 per 2×2 outputs instead of 36
/// over the rest (<see cref="Plan"/>). Each output element is computed in a fixed order by one thread, whatever the
/// thread split: the results do not depend on the thread count. Winograd's sums are float32: the outputs agree with
/// the direct convolution to ~1e-6 relative; a NaN or infinity in an input tile may make more outputs of its F(4×4) tile
/// NaN than read it (every output that reads it is NaN either way).
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

    /// <summary>
    /// The kernel's algorithms, by the side of the output tile each input tile gives (0: direct, no tiles). Where an
    /// algorithm does not apply (see <see cref="Plan"/>), the kernel takes the next smaller one.
    /// </summary>
    internal enum Algorithm
    {
        /// <summary>Directly: 9 multiplications per output and input channel.</summary>
        Direct = 0,
        /// <summary>Winograd's F(2×2, 3×3): 4 per output and input channel, from 4×4 input tiles.</summary>
        Winograd2 = 2,
        /// <summary>Winograd's F(4×4, 3×3): 2.25 per output and input channel, from 6×6 input tiles.</summary>
        Winograd4 = 4,
    }

    /// <summary>The largest algorithm the kernel takes where it applies: a switch for tests and benchmarks.</summary>
    internal static Algorithm Largest { get; set; } = Algorithm.Winograd4;

    /// <summary>
    /// A rectangle of outputs computed by one Winograd algorithm: <see cref="Rows"/> × <see cref="Columns"/> tiles of
    /// m × m outputs (m = (int)<see cref="Algorithm"/>), the first at output row <see cref="Row"/>, column <see cref="Column"/>.
    /// </summary>
    internal readonly record struct Tiling(Algorithm Algorithm, int Row, int Column, int Rows, int Columns)
    {
        public int Side => (int)Algorithm;
    }

    /// <summary>
    /// How <see cref="Apply"/> covers the outputs it computes for an input of <paramref name="height"/>×<paramref name="width"/>
    /// (all of them, or with <paramref name="pool"/> the 2×2 windows', each window within one tile): empty for the direct
    /// algorithm (C_in not a multiple of 16, an odd unpooled side, or <see cref="Largest"/> direct); otherwise F(4×4, 3×3)
    /// tiles over the largest part they cover (where <see cref="Largest"/> allows), F(2×2, 3×3) tiles over the rest (the
    /// last two columns and rows of conv2's 10×10 outputs).
    /// </summary>
    internal static Tiling[] Plan(PackedWeights weights, long height, long width, bool pool)
    {
        int rows = (int)(pool ? (height - 2) / 2 * 2 : height - 2), columns = (int)(pool ? (width - 2) / 2 * 2 : width - 2);
        if (Largest == Algorithm.Direct || weights.Winograd2 is null || rows % 2 != 0 || columns % 2 != 0) return [];
        if (Largest == Algorithm.Winograd2 || weights.Winograd4 is null || rows < 4 || columns < 4)
            return [new Tiling(Algorithm.Winograd2, 0, 0, rows / 2, columns / 2)];
        int rows4 = rows / 4 * 4, columns4 = columns / 4 * 4;
        var plan = new List<Tiling> { new(Algorithm.Winograd4, 0, 0, rows4 / 4, columns4 / 4) };
        if (columns4 < columns) plan.Add(new Tiling(Algorithm.Winograd2, 0, columns4, rows / 2, 1));   // the last two columns
        if (rows4 < rows) plan.Add(new Tiling(Algorithm.Winograd2, rows4, 0, 1, columns4 / 2));        // the last two rows, but for those
        return [.. plan];
    }

    /// <summary>
    /// A convolution's weights as the kernel reads them: <see cref="Direct"/> [G, 3, 3, C_in, C_out], and where C_in is a
    /// multiple of 16, Winograd's G g Gᵀ of every 3×3 kernel g, <see cref="Winograd2"/> [G, 16, C_in, C_out] for
    /// F(2×2, 3×3) and <see cref="Winograd4"/> [G, 36, C_in, C_out] for F(4×4, 3×3), computed in float64. Its tensors
    /// belong to the dispose scope <see cref="Pack"/> was called in.
    /// </summary>
    public sealed record PackedWeights(Tensor Direct, Tensor? Winograd2, Tensor? Winograd4)
    {
        /// <summary>The transformed weights of a Winograd <paramref name="algorithm"/> (null where not packed).</summary>
        public Tensor? Transformed(Algorithm algorithm) => algorithm switch
        {
            Algorithm.Winograd2 => Winograd2,
            Algorithm.Winograd4 => Winograd4,
            _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "no transformed weights for the direct algorithm"),
        };
    }

    // Winograd's F(m×m, 3×3) (Lavin and Gray, 2016): Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for an (m + 2)×(m + 2) input tile d
    // and a 3×3 kernel g gives the m×m outputs of the tile with (m + 2)² multiplications per input channel instead of
    // 9m². G is applied once, to the weights (in float64); Bᵀ and Aᵀ (TransformInput2/4 and TransformOutput2/4 below)
    // are additions and small multiples. F(2×2, 3×3) interpolates at 0, ±1 and ∞, F(4×4, 3×3) at 0, ±1, ±2 and ∞.
    private static readonly double[] WinogradG2 = [1, 0, 0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0, 0, 1];

    private static readonly double[] WinogradG4 =
    [
        1 / 4.0, 0, 0,
        -1 / 6.0, -1 / 6.0, -1 / 6.0,
        -1 / 6.0, 1 / 6.0, -1 / 6.0,
        1 / 24.0, 1 / 12.0, 1 / 6.0,
        1 / 24.0, -1 / 12.0, 1 / 6.0,
        0, 0, 1,
    ];

    /// <summary>The weights [G·C_out, C_in, 3, 3] (any strides) as the kernel reads them (see <see cref="PackedWeights"/>).</summary>
    public static PackedWeights Pack(Tensor weight, long groups)
    {
        using var scope = NewDisposeScope();
        long outPerGroup = weight.shape[0] / groups, inPerGroup = weight.shape[1];
        var kernels = weight.detach().reshape(groups, outPerGroup, inPerGroup, 3, 3);
        var direct = kernels.permute(0, 3, 4, 2, 1).contiguous();
        if (inPerGroup % 16 != 0) return new PackedWeights(direct.MoveToOuterDisposeScope(), null, null);
        // Every kernel g as a row of 9, ordered [C_in, C_out] as the transformed weights are: G g Gᵀ is then one matrix
        // product with G ⊗ G (vec(G g Gᵀ) = (G ⊗ G) vec(g), row-major), not C_out·C_in products of 3×3 matrices. Group
        // by group, each group's float64 temporaries released before the next (all of conv3's at once: 74 MB).
        var g2 = tensor(WinogradG2, ScalarType.Float64).view(4, 3);
        var g4 = tensor(WinogradG4, ScalarType.Float64).view(6, 3);
        var (kron2, kron4) = (kron(g2, g2).t(), kron(g4, g4).t());   // [9, α²]
        var winograd2 = empty([groups, 16, inPerGroup, outPerGroup], ScalarType.Float32);
        var winograd4 = empty([groups, 36, inPerGroup, outPerGroup], ScalarType.Float32);
        for (long group = 0; group < groups; group++)
        {
            using var groupScope = NewDisposeScope();
            var rows = kernels[group].permute(1, 0, 2, 3).reshape(-1, 9).to_type(ScalarType.Float64);   // [C_in·C_out, 9]
            winograd2[group].copy_(rows.matmul(kron2).t().view(16, inPerGroup, outPerGroup));
            winograd4[group].copy_(rows.matmul(kron4).t().view(36, inPerGroup, outPerGroup));
        }
        return new PackedWeights(direct.MoveToOuterDisposeScope(), winograd2.MoveToOuterDisposeScope(), winograd4.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The convolution of <paramref name="input"/> [N, G·C_in, H, W] (channels-last strides, float32, CPU) with the
    /// <see cref="Pack"/>ed weights [G, 3, 3, C_in, C_out] and <paramref name="bias"/> [G·C_out]: [N, G·C_out, H − 2,
    /// W − 2] with channels-last strides; with <paramref name="pool"/> its 2×2 max-pool (stride 2, floor: [N, G·C_out,
    /// (H − 2) / 2, (W − 2) / 2]), the positions no window covers never computed; then ReLU when <paramref name="relu"/>.
    /// Throws, naming the problem, on operands it cannot take (see <see cref="Supports"/>). No autograd: the result has
    /// no gradient. With <paramref name="into"/> (a channels-last float32 CPU tensor of the result's shape, e.g. a
    /// chunk's rows of a batch's output), the result is written there and returned.
    /// </summary>
    public static Tensor Apply(Tensor input, PackedWeights weights, Tensor bias, bool relu, bool pool = false, Tensor? into = null)
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

        var plan = Plan(weights, height, width, pool);
        Interlocked.Increment(ref calls);

        using var scope = NewDisposeScope();
        if (into is not null && (into.device_type != DeviceType.CPU || into.dtype != ScalarType.Float32 || !IsChannelsLast(into)
                                 || !into.shape.SequenceEqual([n, groups * outPerGroup, outHeight, outWidth])))
            throw new ArgumentException($"the output must be a channels-last float32 CPU tensor [{n}, {groups * outPerGroup}, {outHeight}, {outWidth}], not {into.dtype} [{string.Join(", ", into.shape)}] on {into.device}", nameof(into));
        var output = into?.permute(0, 2, 3, 1) ?? empty([n, outHeight, outWidth, groups * outPerGroup], ScalarType.Float32);
        using (var inputView = input.permute(0, 2, 3, 1))
        {
            var shape = new Shape((int)n, (int)height, (int)width, (int)groups, (int)inPerGroup, (int)outPerGroup);
            nint source = CpuKernels.Address(inputView), biases = CpuKernels.Address(bias), target = CpuKernels.Address(output);
            // Group-major items: one thread's consecutive items share a group's weights (read from L2 or L3 by all its
            // images' tiles).
            long cost = (height - 2) * (width - 2) * outPerGroup * inPerGroup;
            if (plan.Length == 0)
            {
                nint kernels = CpuKernels.Address(packed);
                CpuKernels.For(groups * n, cost, (start, count) => Run(shape, source, kernels, biases, target, relu, pool, start, count));
            }
            else
            {
                var transformed = plan.Select(t => CpuKernels.Address(weights.Transformed(t.Algorithm)!)).ToArray();
                CpuKernels.For(groups * n, cost, (start, count) => RunWinograd(shape, plan, transformed, biases, source, target, relu, pool, start, count));
            }
            // The kernel read only their addresses: a caller's last reference must not let a finalizer free them during it.
            GC.KeepAlive(input);
            GC.KeepAlive(weights);
            GC.KeepAlive(bias);
            GC.KeepAlive(into);
        }
        return into ?? output.permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    private static long calls;

    /// <summary>How many convolutions the kernel has computed in this process (tests check that a path took it).</summary>
    internal static long Calls => Interlocked.Read(ref calls);

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
    /// The items of <see cref="Run"/> by Winograd's algorithms, over the rectangles of a <see cref="Plan"/>
    /// (<paramref name="weights"/>: each one's transformed weights): each m×m output tile (with <paramref name="pool"/>,
    /// (m/2)² pooling windows) from its (m + 2)×(m + 2) input tile. The tiles of a thread's consecutive images of one
    /// group are taken <see cref="Slots"/> at a time, across images: their inputs transformed (Bᵀ d B, (m + 2)² values
    /// per input channel), then for each of the (m + 2)² values one product over the input channels with the transformed
    /// weights (blocks of four tiles × 64 output channels in registers, as the direct kernel), then the outputs
    /// (Aᵀ M A), the bias, the pooling and ReLU.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RunWinograd(Shape s, Tiling[] plan, nint[] weights, nint biases, nint source, nint target, bool relu, bool pool, long start, long count)
    {
        int largest = plan.Max(t => (t.Side + 2) * (t.Side + 2));
        int inputStride = InputStride(s);
        // This thread's scratch: the transformed inputs, then the products.
        float* transformed = ThreadScratch.Floats((long)largest * (inputStride + ProductStride));
        float* products = transformed + (long)largest * inputStride;
        {
            var tileOutputs = stackalloc float*[Slots];
            int outputs = pool ? s.PooledHeight * s.PooledWidth : s.OutHeight * s.OutWidth;
            long end = start + count;
            for (long item = start; item < end;)
            {
                // The thread's images of one group: their tiles share the group's transformed weights.
                int group = (int)(item / s.N), firstImage = (int)(item % s.N), images = (int)Math.Min(s.N - firstImage, end - item);
                item += images;
                float* bias = (float*)biases + group * s.OutPerGroup;
                for (int part = 0; part < plan.Length; part++)
                {
                    var tiling = plan[part];
                    int m = tiling.Side, points = (m + 2) * (m + 2), tilesPerImage = tiling.Rows * tiling.Columns, tiles = images * tilesPerImage;
                    float* weight = (float*)weights[part] + group * (long)points * s.InPerGroup * s.OutPerGroup;
                    // Up to Slots tiles at a time, so that each transformed position's weights (C_in × 64 floats, 16 KB
                    // for conv3) are read once for all of them (from L1), not once per block of four (from L2 or L3).
                    for (int first = 0; first < tiles; first += Slots)
                    {
                        int used = Math.Min(Slots, tiles - first), blocks = (used + 3) / 4;
                        for (int slot = 0; slot < 4 * blocks; slot++)
                        {
                            int tile = first + Math.Min(slot, used - 1);   // a last block of fewer than four repeats its last tile (not stored)
                            int image = firstImage + tile / tilesPerImage, inImage = tile % tilesPerImage;
                            int row = tiling.Row + inImage / tiling.Columns * m, column = tiling.Column + inImage % tiling.Columns * m;
                            float* input = (float*)source + (long)image * s.Height * s.Width * s.InChannels + group * s.InPerGroup;
                            // The tile's first output: its first pooled position, or its top-left output position.
                            long position = pool ? (long)row / 2 * s.PooledWidth + column / 2 : (long)row * s.OutWidth + column;
                            tileOutputs[slot] = (float*)target + ((long)image * outputs + position) * s.OutChannels + group * s.OutPerGroup;
                            float* tileInput = At(s, input, row, column), slotInputs = transformed + slot * s.InPerGroup;
                            if (m == 2) TransformInput2(s, tileInput, slotInputs, inputStride);
                            else TransformInput4(s, tileInput, slotInputs, inputStride);
                        }
                        for (int block = 0; block < s.OutPerGroup; block += ChannelBlock)
                        {
                            for (int xi = 0; xi < points; xi++)
                            {
                                float* w = weight + (long)xi * s.InPerGroup * s.OutPerGroup + block;
                                for (int b = 0; b < blocks; b++)
                                    Products(s, transformed + xi * inputStride + 4 * b * s.InPerGroup, w, products + xi * ProductStride + 4 * b * ChannelBlock);
                            }
                            for (int slot = 0; slot < used; slot++)
                                for (int v = 0; v < ChannelBlock; v += 16)
                                {
                                    float* tileProducts = products + slot * ChannelBlock + v, o = tileOutputs[slot] + block + v;
                                    if (m == 2) TransformOutput2(s, tileProducts, bias + block + v, o, relu, pool);
                                    else TransformOutput4(s, tileProducts, bias + block + v, o, relu, pool);
                                }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Tiles transformed and multiplied at a time by <see cref="RunWinograd"/> (four blocks of four).</summary>
    private const int Slots = 16;

    // The transformed inputs and the products are [ξ][slot][channel], one ξ's slots a line (64 bytes) more than their
    // values apart: at 4 KB apart, the (m + 2)² values of a tile's channels fall into one set of the L1 cache (12-way on
    // Zen 5) and evict each other, and stores alias loads ("4K aliasing"); F(4×4)'s input transform took 40 % of its time.
    private static int InputStride(Shape s) => Slots * s.InPerGroup + 16;

    private const int ProductStride = Slots * ChannelBlock + 16;

    /// <summary>
    /// Bᵀ d B of the 4×4 input tile at <paramref name="tile"/> (F(2×2, 3×3)), 16 channels at a time: into the tile's slot
    /// of transformed[ξ][slot][c] (ξ = 4i + j the transformed position; <paramref name="slot"/> points at ξ = 0, c = 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void TransformInput2(Shape s, float* tile, float* slot, int stride)
    {
        long row = (long)s.Width * s.InChannels, column = s.InChannels;
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
    /// Bᵀ d B of the 6×6 input tile at <paramref name="tile"/> (F(4×4, 3×3)), 16 channels at a time, into the tile's slot
    /// of transformed[ξ][slot][c] (ξ = 6i + j), with
    /// Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void TransformInput4(Shape s, float* tile, float* slot, int stride)
    {
        long row = (long)s.Width * s.InChannels, column = s.InChannels;
        for (int c = 0; c < s.InPerGroup; c += 16)
        {
            float* d = tile + c;
            float* o = slot + c;
            // Bᵀ d, column by column, into rows i = 0..5 of column j; then the same across the columns, in place.
            for (int j = 0; j < 6; j++)
            {
                float* dj = d + j * column;
                Rows4(Vector512.Load(dj), Vector512.Load(dj + row), Vector512.Load(dj + 2 * row),
                      Vector512.Load(dj + 3 * row), Vector512.Load(dj + 4 * row), Vector512.Load(dj + 5 * row), o + j * stride, 6 * stride);
            }
            for (int i = 0; i < 6; i++)
            {
                float* r = o + i * 6 * stride;
                Rows4(Vector512.Load(r), Vector512.Load(r + stride), Vector512.Load(r + 2 * stride),
                      Vector512.Load(r + 3 * stride), Vector512.Load(r + 4 * stride), Vector512.Load(r + 5 * stride), r, stride);
            }
        }
    }

    /// <summary>Bᵀ (F(4×4, 3×3)) of six vectors d0 … d5, stored at o, o + step, …, o + 5 step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Rows4(Vector512<float> d0, Vector512<float> d1, Vector512<float> d2, Vector512<float> d3,
                                     Vector512<float> d4, Vector512<float> d5, float* o, int step)
    {
        var four = Vector512.Create(4f);
        var minusFour = Vector512.Create(-4f);
        var minusFive = Vector512.Create(-5f);
        var a = Vector512.FusedMultiplyAdd(minusFour, d2, d4);   // d4 − 4 d2
        var b = Vector512.FusedMultiplyAdd(minusFour, d1, d3);   // d3 − 4 d1
        var e = d4 - d2;
        var f = (d3 - d1) * Vector512.Create(2f);
        Vector512.Store(Vector512.FusedMultiplyAdd(four, d0, Vector512.FusedMultiplyAdd(minusFive, d2, d4)), o);
        Vector512.Store(a + b, o + step);
        Vector512.Store(a - b, o + 2 * step);
        Vector512.Store(e + f, o + 3 * step);
        Vector512.Store(e - f, o + 4 * step);
        Vector512.Store(Vector512.FusedMultiplyAdd(four, d1, Vector512.FusedMultiplyAdd(minusFive, d3, d5)), o + 5 * step);
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
    /// Aᵀ M A + bias (F(2×2, 3×3)) for 16 output channels of one tile (M: <paramref name="products"/>[ξ] at a stride of
    /// one ξ's <see cref="Slots"/> tiles), then the 2×2 max-pool into one output (<paramref name="pool"/>) or the four
    /// outputs, through ReLU when asked.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void TransformOutput2(Shape s, float* products, float* bias, float* output, bool relu, bool pool)
    {
        const int stride = ProductStride;
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

    /// <summary>
    /// Aᵀ M A + bias (F(4×4, 3×3)) for 16 output channels of one tile (M: <paramref name="products"/>[ξ], ξ = 6i + j, at
    /// a stride of one ξ's <see cref="Slots"/> tiles), with Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1];
    /// then the 2×2 max-pool into 2×2 outputs (<paramref name="pool"/>, <paramref name="output"/> the first) or the 4×4
    /// outputs, through ReLU when asked.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void TransformOutput4(Shape s, float* products, float* bias, float* output, bool relu, bool pool)
    {
        const int stride = ProductStride;
        var b = Vector512.Load(bias);
        long right = s.OutChannels;
        // Two rows of Aᵀ M at a time (one row of pooling windows), column by column, then across the columns: each
        // column's products are loaded once per pair of rows, and nothing goes through memory in between.
        for (int r = 0; r < 4; r += 2)
        {
            RowPair4(products, r, out var t0, out var u0);
            RowPair4(products + stride, r, out var t1, out var u1);
            RowPair4(products + 2 * stride, r, out var t2, out var u2);
            RowPair4(products + 3 * stride, r, out var t3, out var u3);
            RowPair4(products + 4 * stride, r, out var t4, out var u4);
            RowPair4(products + 5 * stride, r, out var t5, out var u5);
            Columns4(t0, t1, t2, t3, t4, t5, out var y0, out var y1, out var y2, out var y3);
            Columns4(u0, u1, u2, u3, u4, u5, out var z0, out var z1, out var z2, out var z3);
            y0 += b; y1 += b; y2 += b; y3 += b; z0 += b; z1 += b; z2 += b; z3 += b;
            if (pool)
            {
                float* o = output + (long)(r / 2) * s.PooledWidth * s.OutChannels;
                var p0 = Max(Max(y0, y1), Max(z0, z1));
                var p1 = Max(Max(y2, y3), Max(z2, z3));
                (relu ? Relu(p0) : p0).Store(o);
                (relu ? Relu(p1) : p1).Store(o + right);
                continue;
            }
            float* above = output + (long)r * s.OutWidth * s.OutChannels, below = above + (long)s.OutWidth * s.OutChannels;
            (relu ? Relu(y0) : y0).Store(above); (relu ? Relu(y1) : y1).Store(above + right);
            (relu ? Relu(y2) : y2).Store(above + 2 * right); (relu ? Relu(y3) : y3).Store(above + 3 * right);
            (relu ? Relu(z0) : z0).Store(below); (relu ? Relu(z1) : z1).Store(below + right);
            (relu ? Relu(z2) : z2).Store(below + 2 * right); (relu ? Relu(z3) : z3).Store(below + 3 * right);
        }
    }

    /// <summary>
    /// Rows <paramref name="row"/> and <paramref name="row"/> + 1 (0 or 2) of Aᵀ m for the six products m0 … m5 of one
    /// column (<paramref name="column"/>: m0, one ξ row of six apart): the same sums as <see cref="Columns4"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void RowPair4(float* column, int row, out Vector512<float> first, out Vector512<float> second)
    {
        const int next = 6 * ProductStride;
        var m1 = Vector512.Load(column + next); var m2 = Vector512.Load(column + 2 * next);
        var m3 = Vector512.Load(column + 3 * next); var m4 = Vector512.Load(column + 4 * next);
        var sum12 = m1 + m2; var difference12 = m1 - m2;
        var sum34 = m3 + m4; var difference34 = m3 - m4;
        if (row == 0)
        {
            first = Vector512.Load(column) + sum12 + sum34;
            second = Vector512.FusedMultiplyAdd(Vector512.Create(2f), difference34, difference12);
        }
        else
        {
            first = Vector512.FusedMultiplyAdd(Vector512.Create(4f), sum34, sum12);
            second = Vector512.FusedMultiplyAdd(Vector512.Create(8f), difference34, difference12) + Vector512.Load(column + 5 * next);
        }
    }

    /// <summary>Aᵀ (F(4×4, 3×3)) of six vectors m0 … m5.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns4(Vector512<float> m0, Vector512<float> m1, Vector512<float> m2, Vector512<float> m3, Vector512<float> m4, Vector512<float> m5,
                                 out Vector512<float> r0, out Vector512<float> r1, out Vector512<float> r2, out Vector512<float> r3)
    {
        var sum12 = m1 + m2; var difference12 = m1 - m2;
        var sum34 = m3 + m4; var difference34 = m3 - m4;
        r0 = m0 + sum12 + sum34;
        r1 = Vector512.FusedMultiplyAdd(Vector512.Create(2f), difference34, difference12);
        r2 = Vector512.FusedMultiplyAdd(Vector512.Create(4f), sum34, sum12);
        r3 = Vector512.FusedMultiplyAdd(Vector512.Create(8f), difference34, difference12) + m5;
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
