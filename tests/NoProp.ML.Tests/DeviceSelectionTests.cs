using Microsoft.ML;
using NoProp.Runtime;
using TorchSharp;

namespace NoProp.ML.Tests;

/// <summary>MLContext.GpuDeviceId and FallbackToCpu decide the device, as for ML.NET's own TorchSharp trainers.</summary>
[TestClass]
public sealed class DeviceSelectionTests
{
    [ClassInitialize]
    public static void Initialize(TestContext _) => TorchRuntime.Initialize();

    [TestMethod]
    public void WithoutAGpuIdTheCpuIsUsed()
    {
        Assert.AreEqual(DeviceType.CPU, DeviceSelection.For(new MLContext(seed: 1)).type);
    }

    [TestMethod]
    public void AGpuIdWithoutCudaFailsWithCauseAndRemedy()
    {
        if (torch.cuda.is_available()) Assert.Inconclusive("this build has CUDA: see AnAvailableGpuIdIsUsed");
        var context = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = false };
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => DeviceSelection.For(context));
        StringAssert.Contains(e.Message, "GpuDeviceId is 0");
        StringAssert.Contains(e.Message, "libtorch-cuda-12.8-linux-x64");
        StringAssert.Contains(e.Message, "FallbackToCpu");
    }

    [TestMethod]
    public void FallbackToCpuTakesTheCpuWhenTheGpuIsMissing()
    {
        int count = torch.cuda.is_available() ? torch.cuda.device_count() : 0;
        var context = new MLContext(seed: 1) { GpuDeviceId = count, FallbackToCpu = true };   // one past the last device
        Assert.AreEqual(DeviceType.CPU, DeviceSelection.For(context).type);
        var strict = new MLContext(seed: 1) { GpuDeviceId = count, FallbackToCpu = false };
        Assert.ThrowsExactly<InvalidOperationException>(() => DeviceSelection.For(strict));
    }

    [TestMethod]
    public void AnAvailableGpuIdIsUsed()
    {
        if (!torch.cuda.is_available()) Assert.Inconclusive("no CUDA device in this build (the CPU libtorch)");
        var device = DeviceSelection.For(new MLContext(seed: 1) { GpuDeviceId = 0 });
        Assert.AreEqual(DeviceType.CUDA, device.type);
        Assert.AreEqual(0, device.index);
    }
}
