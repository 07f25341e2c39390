using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Runtime;

/// <summary>What the kernels written here (the fused pooling and dropout) need from a tensor and from the CPU.</summary>
internal static class CpuKernels
{
    /// <summary>
    /// The most float32 elements a kernel here takes in one tensor (TorchSharp's <c>bytes</c> span is int-sized); callers
    /// take ATen's operations above it.
    /// </summary>
    public const long MaxElements = int.MaxValue / sizeof(float);

    /// <summary>
    /// Refuses, naming the problem, operands a kernel here cannot take: the input must be a contiguous float32 CPU tensor
    /// (of <paramref name="dimensions"/> dimensions when given), the mask a contiguous float32 tensor of <paramref name="maskShape"/>.
    /// </summary>
    public static void CheckOperands(string operation, Tensor input, int? dimensions, Tensor mask, long[] maskShape)
    {
        if (input.device_type != DeviceType.CPU || input.dtype != ScalarType.Float32 || !input.is_contiguous()
            || (dimensions is int d && input.dim() != d))
            throw new ArgumentException($"{operation} takes a contiguous float32 CPU tensor{(dimensions is 4 ? " [N, C, H, W]" : "")}, not {input.dtype} [{string.Join(", ", input.shape)}] on {input.device}", nameof(input));
        if (!mask.shape.SequenceEqual(maskShape) || mask.dtype != ScalarType.Float32 || !mask.is_contiguous())
            throw new ArgumentException($"the mask of {operation} must be a contiguous float32 [{string.Join(", ", maskShape)}], not {mask.dtype} [{string.Join(", ", mask.shape)}]", nameof(mask));
    }

    /// <summary>The address of a contiguous CPU tensor's first element.</summary>
    public static unsafe nint Address(Tensor t) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));

    /// <summary>
    /// <paramref name="kernel"/>(start, count) over [0, <paramref name="count"/>) items of <paramref name="itemSize"/>
    /// elements each, split between up to torch's intra-op thread count when there is enough work (at least ~64 K
    /// elements a part: below that the hand-off costs more than it saves), on libtorch's own OpenMP threads where it
    /// has them (<see cref="Native.OpenMpTeam"/>), else on .NET's pool. Each item goes to exactly one call, so the
    /// results do not depend on the split.
    /// </summary>
    public static void For(long count, long itemSize, Action<long, long> kernel)
    {
        int threads = Math.Max(1, get_num_threads());
        int parts = (int)Math.Min(Math.Min(threads, count), Math.Max(1, count * itemSize / 65536));
        if (parts <= 1)
        {
            kernel(0, count);
            return;
        }
        if (UseOpenMpTeam && Native.OpenMpTeam.Available)
        {
            Native.OpenMpTeam.Run(parts, (index, team) =>
            {
                long share = (count + team - 1) / team, first = index * share;
                if (first < count) kernel(first, Math.Min(share, count - first));
            });
            return;
        }
        long per = (count + parts - 1) / parts;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            long start = part * per;
            if (start < count) kernel(start, Math.Min(per, count - start));
        });
    }

    /// <summary>Whether <see cref="For"/> takes libtorch's OpenMP team where there is one: a switch for tests.</summary>
    internal static bool UseOpenMpTeam { get; set; } = true;

    /// <summary>
    /// Hands a gradient back from a custom autograd function's backward (TorchSharp's <c>SingleTensorFunction</c>).
    /// libtorch takes its own reference to it once the call has returned, so the managed handle must outlive the call;
    /// inside the caller's dispose scope it would also outlive the training step, holding every such gradient (tens of MB
    /// per chunk of fused activations) until the step ends where ATen frees each as soon as the next node has consumed
    /// it. The handle is kept instead until this thread's next call into such a function (<see cref="ReleaseReturned"/>),
    /// by which time libtorch holds its own.
    /// </summary>
    public static Tensor Returned(Tensor gradient)
    {
        ReleaseReturned();
        gradient.DetachFromDisposeScope();
        returned = gradient;
        return gradient;
    }

    /// <summary>Releases the handle of the gradient this thread last handed back (see <see cref="Returned"/>).</summary>
    public static void ReleaseReturned()
    {
        returned?.Dispose();
        returned = null;
    }

    [ThreadStatic] private static Tensor? returned;
}
