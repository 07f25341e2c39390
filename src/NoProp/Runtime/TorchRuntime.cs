using System.Runtime.InteropServices;
using TorchSharp;

namespace NoProp.Runtime;

/// <summary>
/// Process-wide set-up for TorchSharp: allocator tuning, thread count, device selection and seeding.
/// Call <see cref="Initialize"/> once before the first tensor is created.
/// </summary>
public static class TorchRuntime
{
    private static int initialized;

    // glibc mallopt parameters (malloc.h).
    private const int M_TRIM_THRESHOLD = -1;
    private const int M_MMAP_THRESHOLD = -3;

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int param, int value);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>
    /// Raises glibc's mmap and trim thresholds. With the defaults every large short-lived tensor buffer
    /// is mmapped and unmapped again, which made TorchSharp training 1.3–1.8× slower on our 2-core
    /// machines (see BENCHMARKS.md); the cost is a somewhat higher peak RSS.
    /// Set NOPROP_DEFAULT_MALLOC=1 to keep glibc's defaults.
    /// </summary>
    public static void Initialize(int? threads = null)
    {
        Native.TorchSharpNative.Prepare();   // before any TorchSharp call: the Debian 12 libstdc++ fix, a no-op elsewhere
        if (Interlocked.Exchange(ref initialized, 1) == 0)
        {
            if (OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("NOPROP_DEFAULT_MALLOC") != "1")
            {
                try
                {
                    Mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
                    Mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
                }
                catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
                {
                    // Not glibc (musl, say): nothing to tune.
                }
            }
            // Loads libtorch (TorchSharp's first native call), then lets its MKL take the AVX-512 kernels on AMD CPUs
            // before the first matrix product (Native/MklCpuDispatch.cs). Where libtorch cannot load (no libtorch
            // package, say), the first real TorchSharp call reports that as it always has.
            bool loaded;
            try { torch.get_num_threads(); loaded = true; }
            catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException) { loaded = false; }
            if (loaded)
            {
                Native.MklCpuDispatch.Apply();
                Native.NnpackCheck.Apply();   // no "Could not initialize NNPACK!" on every small convolution where it cannot run
            }
        }
        if (threads is int n)
        {
            if (n < 1) throw new ArgumentOutOfRangeException(nameof(threads), "the thread count must be at least 1");
            torch.set_num_threads(n);
        }
    }

    /// <summary>
    /// Hands memory this process has freed back to the operating system, between the phases of a run (after the data
    /// is split, after training): on glibc <c>malloc_trim</c>, which releases the free pages of the native heap that
    /// <see cref="Initialize"/>'s raised trim threshold keeps, and with <paramref name="collectManaged"/> a full,
    /// compacting collection of the managed heap first (for a process that owns its heap, such as the CLI's runs; a
    /// library call in someone's application leaves their heap to their GC). Costs milliseconds; the next phase then
    /// starts from what is still in use instead of adding its own allocations on top of the last phase's free memory.
    /// </summary>
    public static void ReturnFreeMemory(bool collectManaged)
    {
        if (collectManaged)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();   // undisposed tensors' finalizers free their native memory before the trim
        }
        if (!OperatingSystem.IsLinux()) return;
        try { MallocTrim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl, say): its allocator returns memory by itself.
        }
    }

    /// <summary>Resolves "cpu" or "cuda[:k]" to a device, failing clearly where CUDA is not available.</summary>
    public static torch.Device ResolveDevice(string name)
    {
        var lower = name.Trim().ToLowerInvariant();
        if (lower == "cpu") return torch.CPU;
        if (lower == "cuda" || lower.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new NoPropException(
                    "--device cuda: no CUDA device is available (this build carries the CPU libtorch, or the machine has no " +
                    "NVIDIA GPU); build from source with -p:NoPropBackend=cuda, or reference libtorch-cuda-12.8-linux-x64 " +
                    "instead of libtorch-cpu-linux-x64 in your application");
            return new torch.Device(lower);
        }
        throw new NoPropException($"unknown device '{name}' (expected cpu or cuda)");
    }

    /// <summary>Seeds every random source the library uses (torch's global generator).</summary>
    public static void Seed(long seed) => torch.random.manual_seed(seed);

    /// <summary>Peak resident set size of this process in MiB (VmHWM on Linux; the working set elsewhere).</summary>
    public static double PeakMemoryMb()
    {
        try
        {
            if (File.Exists("/proc/self/status"))
                foreach (var line in File.ReadLines("/proc/self/status"))
                    if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                        return double.Parse(line[6..].Trim().Split(' ')[0]) / 1024.0;
        }
        catch (IOException) { }
        using var p = System.Diagnostics.Process.GetCurrentProcess();
        return p.PeakWorkingSet64 / (1024.0 * 1024.0);
    }
}

/// <summary>An error whose message is meant for the user: it names the option, file or value at fault.</summary>
public class NoPropException : Exception
{
    public NoPropException(string message) : base(message) { }
    public NoPropException(string message, Exception inner) : base(message, inner) { }
}
