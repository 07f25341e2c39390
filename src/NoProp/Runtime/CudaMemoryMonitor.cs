using System.Runtime.InteropServices;

namespace NoProp.Runtime;

/// <summary>
/// Peak GPU memory of this process while training on CUDA, sampled through NVML (the NVIDIA driver's management
/// library, libnvidia-ml.so.1): the memory the driver reports for this process on every GPU — what nvidia-smi
/// lists and what the paper's Table 2 calls "process GPU memory allocated" — including the CUDA context and
/// the caching allocator's reserve. TorchSharp exposes no CUDA memory statistics, hence the driver.
/// <para>
/// Where the driver does not list this process (a container with its own PID namespace reports host PIDs), the
/// monitor falls back to the growth of the device's used memory since it started, and <see cref="Source"/>
/// says so. Samples are taken every <c>interval</c> on a background thread and once more on <see cref="Stop"/>,
/// so a short spike between samples can be missed.
/// </para>
/// </summary>
public sealed class CudaMemoryMonitor : IDisposable
{
    private const string Library = "libnvidia-ml.so.1";
    private const int Success = 0, InsufficientSize = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct ProcessInfo
    {
        public uint Pid;
        public ulong UsedGpuMemory;
        public uint GpuInstanceId;
        public uint ComputeInstanceId;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MemoryInfo
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    [DllImport(Library, EntryPoint = "nvmlInit_v2")] private static extern int Init();
    [DllImport(Library, EntryPoint = "nvmlShutdown")] private static extern int Shutdown();
    [DllImport(Library, EntryPoint = "nvmlDeviceGetCount_v2")] private static extern int DeviceCount(out uint count);
    [DllImport(Library, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")] private static extern int DeviceHandle(uint index, out IntPtr device);
    [DllImport(Library, EntryPoint = "nvmlDeviceGetComputeRunningProcesses_v3")]
    private static extern int ComputeProcesses(IntPtr device, ref uint count, [Out] ProcessInfo[] infos);
    [DllImport(Library, EntryPoint = "nvmlDeviceGetMemoryInfo")] private static extern int DeviceMemory(IntPtr device, out MemoryInfo memory);

    private readonly IntPtr[] devices;
    private readonly ulong[] usedAtStart;
    private readonly uint pid = (uint)Environment.ProcessId;
    private readonly Thread thread;
    private readonly ManualResetEventSlim stopping = new();
    private readonly object gate = new();
    private ulong peakProcessBytes, peakDeviceGrowthBytes;
    private bool processSeen, stopped;

    private CudaMemoryMonitor(IntPtr[] devices, TimeSpan interval)
    {
        this.devices = devices;
        usedAtStart = devices.Select(d => DeviceMemory(d, out var m) == Success ? m.Used : 0).ToArray();
        thread = new Thread(() =>
        {
            do Sample(); while (!stopping.Wait(interval));
        }) { IsBackground = true, Name = "cuda-memory-monitor" };
        thread.Start();
    }

    /// <summary>Starts sampling, or returns null with the reason when NVML is not available (no NVIDIA driver).</summary>
    public static CudaMemoryMonitor? TryStart(TimeSpan interval, out string? unavailable)
    {
        unavailable = null;
        try
        {
            int status = Init();
            if (status != Success) { unavailable = $"NVML could not be initialised (error {status})"; return null; }
            if (DeviceCount(out uint count) != Success || count == 0) { Shutdown(); unavailable = "NVML sees no GPU"; return null; }
            var handles = new List<IntPtr>();
            for (uint i = 0; i < count; i++)
                if (DeviceHandle(i, out var handle) == Success) handles.Add(handle);
            return new CudaMemoryMonitor([.. handles], interval);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            unavailable = $"{Library} is not available ({e.GetType().Name})";
            return null;
        }
    }

    /// <summary>"process" (NVML listed this process) or "device" (growth of the devices' used memory since the start).</summary>
    public string Source { get { lock (gate) return processSeen ? "process" : "device"; } }

    /// <summary>The peak so far in MiB.</summary>
    public double PeakMb { get { lock (gate) return (processSeen ? peakProcessBytes : peakDeviceGrowthBytes) / (1024.0 * 1024.0); } }

    private void Sample()
    {
        var infos = new ProcessInfo[256];
        ulong processBytes = 0, growth = 0;
        bool seen = false;
        for (int d = 0; d < devices.Length; d++)
        {
            uint n = (uint)infos.Length;
            int status = ComputeProcesses(devices[d], ref n, infos);
            if (status == Success)
                for (int i = 0; i < n; i++)
                    if (infos[i].Pid == pid && infos[i].UsedGpuMemory != ulong.MaxValue)
                    {
                        processBytes += infos[i].UsedGpuMemory;
                        seen = true;
                    }
            if (DeviceMemory(devices[d], out var memory) == Success && memory.Used > usedAtStart[d]) growth += memory.Used - usedAtStart[d];
        }
        lock (gate)
        {
            processSeen |= seen;
            peakProcessBytes = Math.Max(peakProcessBytes, processBytes);
            peakDeviceGrowthBytes = Math.Max(peakDeviceGrowthBytes, growth);
        }
    }

    /// <summary>Takes a last sample and stops the thread; the peak stays readable.</summary>
    public void Stop()
    {
        lock (gate) { if (stopped) return; stopped = true; }
        stopping.Set();
        thread.Join();
        Sample();
        Shutdown();
    }

    public void Dispose()
    {
        Stop();
        stopping.Dispose();
    }
}
