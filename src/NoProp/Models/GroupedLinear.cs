using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Models;

/// <summary>
/// T linear layers, one per group of a channels-last feature map, computed here: the fully connected layer of T fused
/// conv encoders at inference (FC(256) of each block's 128 × h × w features), reading conv3's pooled output
/// [B, T·128, h, w] as it lies (channels-last) instead of reordering it into [T, B, 128·h·w] for a batched matrix
/// product (a copy of 80 KB an image, and MKL's packing of it again).
/// <para>
/// Block t's outputs are y[b, t] = bias_t + W_t · x_t[b], x_t[b] its group's features in PyTorch's flattening order
/// (channel, row, column). The weights are packed once per set of encoders (<see cref="Pack"/>) as [T, N/64, h·w, C, 64]:
/// in the order the channels-last features are read, each block of 64 outputs' weights contiguous (with rows of N
/// floats, 1 KB apart for N = 256, the 256 bytes read of each row would fall into a quarter of the cache's sets, and a
/// block's 512 KB would not stay in L2). Four images × 64 outputs are kept in sixteen 16-lane registers,
/// each weight vector loaded once for the four images and each feature broadcast once for the four vectors (the
/// <see cref="GroupedConvolution"/> kernel's scheme); a thread's consecutive items share one block's 64 columns of
/// weights (C·h·w × 64 floats, 512 KB for MNIST's 2048 features), which stay in L2 for all its images. Each output is
/// summed in a fixed order by one thread: the results do not depend on the thread count.
/// </para>
/// <para>
/// It runs where <see cref="GroupedConvolution"/> does (a CPU with 512-bit vectors, <c>NOPROP_CONV_KERNEL</c> not 0),
/// for float32 and output sizes that are multiples of 64; elsewhere callers use <c>bmm</c>.
/// </para>
/// </summary>
internal static class GroupedLinear
{
    /// <summary>Output columns per register block: four 16-lane vectors.</summary>
    private const int ColumnBlock = 64;

    /// <summary>Images per item: the batch is split into panels of this many images, each an item per group.</summary>
    private const int Panel = 64;

    /// <summary>Whether the kernel runs where it can (the same values as <c>bmm</c> to rounding): a switch for tests and benchmarks.</summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>Whether the kernel takes T linear layers with <paramref name="outputs"/> outputs each (float32 weights).</summary>
    public static bool Supports(Tensor weight, long outputs) =>
        Enabled && GroupedConvolution.Enabled && GroupedConvolution.Accelerated && weight.device_type == DeviceType.CPU
        && weight.dtype == ScalarType.Float32 && outputs > 0 && outputs % ColumnBlock == 0;

    /// <summary>
    /// T linear layers' weights [N, C·h·w] (PyTorch's flattening of [C, h, w] features) packed for <see cref="Apply"/>:
    /// [T, N/64, h·w, C, 64]. The tensor belongs to the caller's dispose scope.
    /// </summary>
    public static Tensor Pack(IReadOnlyList<Tensor> weights, long channels)
    {
        if (weights.Count == 0) throw new ArgumentException("no linear layers to pack", nameof(weights));
        long outputs = weights[0].shape[0], inputs = weights[0].shape[1];
        if (channels <= 0 || inputs % channels != 0)
            throw new ArgumentException($"{inputs} inputs are not {channels} channels × positions", nameof(channels));
        if (outputs % ColumnBlock != 0)
            throw new ArgumentException($"{outputs} outputs are not a multiple of {ColumnBlock}", nameof(weights));
        using var scope = NewDisposeScope();
        var packed = empty([weights.Count, outputs / ColumnBlock, inputs / channels, channels, ColumnBlock], ScalarType.Float32);
        for (int t = 0; t < weights.Count; t++)   // block by block: no stacked copy of all T layers
        {
            using var view = weights[t].detach().view(outputs / ColumnBlock, ColumnBlock, channels, inputs / channels).permute(0, 3, 2, 1);
            using var target = packed[t];
            target.copy_(view);
        }
        return packed.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The T layers on <paramref name="features"/> [B, T·C, h, w] (channels-last float32 CPU; group t is block t's
    /// features) with the <see cref="Pack"/>ed weights [T, N/64, h·w, C, 64] and <paramref name="bias"/> [T, N]: [T, B, N] (a
    /// view of a [B, T, N] tensor). Throws, naming the problem, on operands it cannot take. No autograd.
    /// </summary>
    public static Tensor Apply(Tensor features, Tensor packed, Tensor bias)
    {
        if (!GroupedConvolution.Accelerated) throw new PlatformNotSupportedException("the grouped linear kernel needs 512-bit vectors (AVX-512)");
        if (features.device_type != DeviceType.CPU || features.dtype != ScalarType.Float32 || features.dim() != 4 || !GroupedConvolution.IsChannelsLast(features))
            throw new ArgumentException($"the grouped linear layers take channels-last float32 CPU features [B, C, h, w], not {features.dtype} [{string.Join(", ", features.shape)}] on {features.device}", nameof(features));
        if (packed.dim() != 5 || packed.dtype != ScalarType.Float32 || !packed.is_contiguous() || packed.shape[4] != ColumnBlock)
            throw new ArgumentException($"packed weights must be a contiguous float32 [T, N/{ColumnBlock}, h·w, C, {ColumnBlock}], not {packed.dtype} [{string.Join(", ", packed.shape)}]", nameof(packed));
        long n = features.shape[0], groups = packed.shape[0], positions = packed.shape[2], channels = packed.shape[3], outputs = packed.shape[1] * ColumnBlock;
        if (features.shape[1] != groups * channels || features.shape[2] * features.shape[3] != positions)
            throw new ArgumentException($"features [{string.Join(", ", features.shape)}] are not {groups} groups of {channels} channels × {positions} positions", nameof(features));
        if (bias.numel() != groups * outputs || bias.dtype != ScalarType.Float32 || !bias.is_contiguous())
            throw new ArgumentException($"the bias must be a contiguous float32 of {groups * outputs} elements, not {bias.dtype} [{string.Join(", ", bias.shape)}]", nameof(bias));
        if (features.numel() > CpuKernels.MaxElements || packed.numel() > CpuKernels.MaxElements || n * groups * outputs > CpuKernels.MaxElements)
            throw new ArgumentException($"the grouped linear kernel takes at most {CpuKernels.MaxElements} elements in a tensor; split the batch", nameof(features));

        Interlocked.Increment(ref calls);
        using var scope = NewDisposeScope();
        var output = empty([n, groups, outputs], ScalarType.Float32);
        using (var view = features.permute(0, 2, 3, 1))
        {
            var shape = new Shape((int)n, (int)groups, (int)positions, (int)channels, (int)outputs);
            nint source = CpuKernels.Address(view), weights = CpuKernels.Address(packed), biases = CpuKernels.Address(bias), target = CpuKernels.Address(output);
            int panels = (shape.N + Panel - 1) / Panel;
            // Items (group, panel of images), panel fastest: each image's features are read from memory once, for all
            // the group's outputs.
            CpuKernels.For((long)groups * panels, (long)Panel * positions * channels * outputs,
                (start, count) => Run(shape, source, weights, biases, target, panels, start, count));
            GC.KeepAlive(features);
            GC.KeepAlive(packed);
            GC.KeepAlive(bias);
        }
        return output.transpose(0, 1).MoveToOuterDisposeScope();
    }

    private static long calls;

    /// <summary>How many times the kernel has run in this process (tests check that a path took it).</summary>
    internal static long Calls => Interlocked.Read(ref calls);

    private readonly record struct Shape(int N, int Groups, int Positions, int Channels, int Outputs)
    {
        /// <summary>Floats from one image's features to the next, and from one position to the next.</summary>
        public long Image => (long)Positions * Position;
        public int Position => Groups * Channels;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Run(Shape s, nint source, nint weights, nint biases, nint target, int panels, long start, long count)
    {
        int blocks = s.Outputs / ColumnBlock;
        long outputRow = (long)s.Groups * s.Outputs;
        for (long item = start; item < start + count; item++)
        {
            int panel = (int)(item % panels), group = (int)(item / panels);
            int first = panel * Panel, end = Math.Min(s.N, first + Panel);
            float* input = (float*)source + (long)group * s.Channels;
            for (int block = 0; block < blocks; block++)
            {
                float* weight = (float*)weights + ((long)group * blocks + block) * s.Positions * s.Channels * ColumnBlock;
                float* bias = (float*)biases + (long)group * s.Outputs + block * ColumnBlock;
                float* output = (float*)target + (long)group * s.Outputs + block * ColumnBlock;
                // One position's weights (C × 64 floats, 32 KB for 128 channels) at a time, from L1 for all the panel's
                // images (whose features stay in L2 for all blocks); the sums so far are kept in the output between
                // positions (the bias starts them).
                for (int p = 0; p < s.Positions; p++)
                {
                    float* w = weight + (long)p * s.Channels * ColumnBlock, x = input + (long)p * s.Position;
                    int b = first;
                    for (; b + 4 <= end; b += 4)
                        Four(s, x + b * s.Image, w, p == 0 ? bias : null, output + b * outputRow, outputRow);
                    for (; b < end; b++)
                        One(s, x + b * s.Image, w, p == 0 ? bias : null, output + b * outputRow);
                }
            }
        }
    }

    /// <summary>
    /// One position's contribution to 64 outputs of four consecutive images (features from x, outputs at o, one image's
    /// stride apart): added to the sums in o, or to <paramref name="bias"/> at the first position.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Four(Shape s, float* x, float* weight, float* bias, float* o, long outputRow)
    {
        float* o1 = o + outputRow, o2 = o1 + outputRow, o3 = o2 + outputRow;
        Vector512<float> a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
        if (bias is not null)
        {
            a00 = a10 = a20 = a30 = Vector512.Load(bias); a01 = a11 = a21 = a31 = Vector512.Load(bias + 16);
            a02 = a12 = a22 = a32 = Vector512.Load(bias + 32); a03 = a13 = a23 = a33 = Vector512.Load(bias + 48);
        }
        else
        {
            a00 = Vector512.Load(o); a01 = Vector512.Load(o + 16); a02 = Vector512.Load(o + 32); a03 = Vector512.Load(o + 48);
            a10 = Vector512.Load(o1); a11 = Vector512.Load(o1 + 16); a12 = Vector512.Load(o1 + 32); a13 = Vector512.Load(o1 + 48);
            a20 = Vector512.Load(o2); a21 = Vector512.Load(o2 + 16); a22 = Vector512.Load(o2 + 32); a23 = Vector512.Load(o2 + 48);
            a30 = Vector512.Load(o3); a31 = Vector512.Load(o3 + 16); a32 = Vector512.Load(o3 + 32); a33 = Vector512.Load(o3 + 48);
        }
        long image = s.Image;
        float* x0 = x, x1 = x0 + image, x2 = x1 + image, x3 = x2 + image;
        float* w = weight;
        for (int c = 0; c < s.Channels; c++, w += ColumnBlock)
        {
            var w0 = Vector512.Load(w); var w1 = Vector512.Load(w + 16); var w2 = Vector512.Load(w + 32); var w3 = Vector512.Load(w + 48);
            var v0 = Vector512.Create(x0[c]);
            a00 = Vector512.FusedMultiplyAdd(v0, w0, a00); a01 = Vector512.FusedMultiplyAdd(v0, w1, a01);
            a02 = Vector512.FusedMultiplyAdd(v0, w2, a02); a03 = Vector512.FusedMultiplyAdd(v0, w3, a03);
            var v1 = Vector512.Create(x1[c]);
            a10 = Vector512.FusedMultiplyAdd(v1, w0, a10); a11 = Vector512.FusedMultiplyAdd(v1, w1, a11);
            a12 = Vector512.FusedMultiplyAdd(v1, w2, a12); a13 = Vector512.FusedMultiplyAdd(v1, w3, a13);
            var v2 = Vector512.Create(x2[c]);
            a20 = Vector512.FusedMultiplyAdd(v2, w0, a20); a21 = Vector512.FusedMultiplyAdd(v2, w1, a21);
            a22 = Vector512.FusedMultiplyAdd(v2, w2, a22); a23 = Vector512.FusedMultiplyAdd(v2, w3, a23);
            var v3 = Vector512.Create(x3[c]);
            a30 = Vector512.FusedMultiplyAdd(v3, w0, a30); a31 = Vector512.FusedMultiplyAdd(v3, w1, a31);
            a32 = Vector512.FusedMultiplyAdd(v3, w2, a32); a33 = Vector512.FusedMultiplyAdd(v3, w3, a33);
        }
        a00.Store(o); a01.Store(o + 16); a02.Store(o + 32); a03.Store(o + 48);
        a10.Store(o1); a11.Store(o1 + 16); a12.Store(o1 + 32); a13.Store(o1 + 48);
        a20.Store(o2); a21.Store(o2 + 16); a22.Store(o2 + 32); a23.Store(o2 + 48);
        a30.Store(o3); a31.Store(o3 + 16); a32.Store(o3 + 32); a33.Store(o3 + 48);
    }

    /// <summary>One position's contribution to 64 outputs of one image (those left after the blocks of four).</summary>
    private static unsafe void One(Shape s, float* x, float* weight, float* bias, float* o)
    {
        float* start = bias != null ? bias : o;
        var a0 = Vector512.Load(start); var a1 = Vector512.Load(start + 16); var a2 = Vector512.Load(start + 32); var a3 = Vector512.Load(start + 48);
        float* w = weight;
        for (int c = 0; c < s.Channels; c++, w += ColumnBlock)
        {
            var v = Vector512.Create(x[c]);
            a0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w), a0); a1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + 32), a2); a3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(w + 48), a3);
        }
        a0.Store(o); a1.Store(o + 16); a2.Store(o + 32); a3.Store(o + 48);
    }
}
