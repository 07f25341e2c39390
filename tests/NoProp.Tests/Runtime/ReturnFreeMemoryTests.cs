using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Tests.Runtime;

/// <summary><see cref="TorchRuntime.ReturnFreeMemory"/>: the native heap's free pages go back to the system.</summary>
[TestClass]
public sealed class ReturnFreeMemoryTests
{
    private static long ResidentMb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0]) / 1024;
        throw new InvalidOperationException("no VmRSS in /proc/self/status");
    }

    [TestMethod]
    public void TheFreedNativeHeapLeavesTheResidentSet()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("glibc's heap: Linux only");
        if (Environment.GetEnvironmentVariable("NOPROP_DEFAULT_MALLOC") == "1")
            Assert.Inconclusive("glibc's default thresholds give freed memory back by themselves");
        TorchRuntime.Initialize();   // the raised thresholds: 2 MB tensors come from the heap, and freeing them keeps their pages
        // Collected and finalised first: earlier tests' undisposed tensors, freed by the finalizer during the measurement,
        // would leave resident free chunks that the allocations below reuse.
        TorchRuntime.ReturnFreeMemory(collectManaged: true);
        long start = ResidentMb();
        var tensors = new List<Tensor>();
        for (int i = 0; i < 96; i++) tensors.Add(ones(512 * 1024));   // 192 MB, every page written
        long allocated = ResidentMb();
        foreach (var t in tensors) t.Dispose();
        long freed = ResidentMb();
        TorchRuntime.ReturnFreeMemory(collectManaged: false);
        long returned = ResidentMb();

        string figures = $"resident MB: {start} at the start, {allocated} with the tensors, {freed} after freeing them, {returned} after ReturnFreeMemory";
        // The allocations may reuse a few tens of MB that were resident and free already (what the heap held at the
        // start depends on the tests before): their growth is only checked to be most of the 192 MB.
        Assert.IsGreaterThanOrEqualTo(100, allocated - start, figures);
        Assert.IsLessThanOrEqualTo(20, allocated - freed, "the raised trim threshold keeps freed pages: " + figures);
        Assert.IsGreaterThanOrEqualTo(150, freed - returned, figures);
    }
}
