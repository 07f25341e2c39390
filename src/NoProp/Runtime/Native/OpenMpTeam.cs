using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace NoProp.Runtime.Native;

/// <summary>
/// Runs the CPU kernels written here on libtorch's own OpenMP threads (GNU libgomp, which the Linux libtorch packages
/// carry), not on .NET's thread pool.
/// <para>
/// After each parallel operation libgomp's worker threads spin for a while before they sleep, waiting for the next one.
/// A kernel that ran on .NET's pool between two libtorch operations therefore shared the cores with a spinning worker:
/// on 2 cores, DT inference with the grouped convolution kernel took 1.25× as long as with oneDNN's convolution while
/// the same kernel, once the workers were told not to spin (<c>OMP_WAIT_POLICY=PASSIVE</c>), took 0.87× (BENCHMARKS.md).
/// On the team itself there is no one to compete with, and its threads are awake already.
/// </para>
/// <para>
/// <c>GOMP_parallel</c> and the thread-number queries are looked up in libtorch_cpu.so's dependencies; where they are
/// not there (another OpenMP runtime, another OS) or <c>NOPROP_KERNEL_THREADS=dotnet</c> is set,
/// <see cref="Available"/> is false and callers use .NET's pool.
/// </para>
/// </summary>
internal static unsafe class OpenMpTeam
{
    private static readonly delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void> parallel;
    private static readonly delegate* unmanaged<int> threadNumber, teamSize, inParallel;

    /// <summary>Whether <see cref="Run"/> uses libgomp's team.</summary>
    public static bool Available { get; }

    /// <summary>What was found, for diagnostics.</summary>
    public static string Status { get; }

    static OpenMpTeam()
    {
        if (!WantedBy(Environment.GetEnvironmentVariable("NOPROP_KERNEL_THREADS")))
        {
            Status = "off (NOPROP_KERNEL_THREADS=dotnet): .NET's thread pool";
            return;
        }
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libtorch_cpu.so", out var library))
        {
            Status = "libtorch_cpu.so not found: .NET's thread pool";
            return;
        }
        // dlsym on libtorch's handle searches its dependencies too, where libgomp is.
        if (!NativeLibrary.TryGetExport(library, "GOMP_parallel", out var parallelAddress)
            || !NativeLibrary.TryGetExport(library, "omp_get_thread_num", out var numberAddress)
            || !NativeLibrary.TryGetExport(library, "omp_get_num_threads", out var sizeAddress)
            || !NativeLibrary.TryGetExport(library, "omp_in_parallel", out var inParallelAddress))
        {
            Status = "libtorch does not use GNU OpenMP: .NET's thread pool";
            return;
        }
        parallel = (delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void>)parallelAddress;
        threadNumber = (delegate* unmanaged<int>)numberAddress;
        teamSize = (delegate* unmanaged<int>)sizeAddress;
        inParallel = (delegate* unmanaged<int>)inParallelAddress;
        Available = true;
        Status = "libtorch's OpenMP threads";
    }

    /// <summary>Whether a <c>NOPROP_KERNEL_THREADS</c> setting asks for the team: anything but "dotnet".</summary>
    internal static bool WantedBy(string? setting) => setting != "dotnet";

    /// <summary>
    /// <paramref name="body"/>(index, size) on each thread of a team of up to <paramref name="threads"/> threads, this
    /// one among them (index 0); size is the team's actual size, which OpenMP may make smaller. Inside a parallel region
    /// already, the body runs here alone (0, 1). The first exception thrown by any thread is rethrown here once all
    /// have finished.
    /// </summary>
    public static void Run(int threads, Action<int, int> body)
    {
        if (!Available) throw new InvalidOperationException($"no OpenMP team: {Status}");
        if (threads <= 1 || inParallel() != 0)
        {
            body(0, 1);
            return;
        }
        var work = new Work(body);
        var handle = GCHandle.Alloc(work);
        try
        {
            parallel(&Enter, GCHandle.ToIntPtr(handle), (uint)threads, 0);
        }
        finally
        {
            handle.Free();
        }
        if (work.Error is not null) ExceptionDispatchInfo.Throw(work.Error);
    }

    private sealed class Work(Action<int, int> body)
    {
        public readonly Action<int, int> Body = body;
        public Exception? Error;
    }

    // Called by every thread of the team, libgomp's workers included (the runtime attaches them on their first call).
    // Nothing may escape into the native frames: the first exception is kept for Run.
    [UnmanagedCallersOnly]
    private static void Enter(nint data)
    {
        var work = (Work)GCHandle.FromIntPtr(data).Target!;
        try
        {
            work.Body(threadNumber(), teamSize());
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref work.Error, e, null);
        }
    }
}
