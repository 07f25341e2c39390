using NoProp.Runtime;
using NoProp.Runtime.Native;
using static TorchSharp.torch;

namespace NoProp.Tests.Runtime;

/// <summary>libtorch's use of NNPACK turned off where NNPACK cannot run (Native/NnpackCheck.cs).</summary>
[TestClass]
public sealed class NnpackCheckTests
{
    [TestMethod]
    public void LibtorchUsesNnpackExactlyWhereItInitialises()
    {
        TorchRuntime.Initialize();
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("the libtorch symbols are read on Linux");
        bool? uses = NnpackCheck.LibtorchUsesNnpack();
        if (uses is null) Assert.Inconclusive("this libtorch exposes no NNPACK switch: " + NnpackCheck.Status);
        if (NnpackCheck.Status.StartsWith("NNPACK cannot run", StringComparison.Ordinal))
            Assert.IsFalse(uses.Value, NnpackCheck.Status);
        else
        {
            StringAssert.StartsWith(NnpackCheck.Status, "NNPACK initialised", "on Linux with libtorch the check runs");
            Assert.IsTrue(uses.Value, NnpackCheck.Status);
        }
        // Convolutions of one image, which libtorch considers for NNPACK, still run (and agree with a batch of two).
        using var _ = no_grad();
        var x = randn(2, 3, 12, 12);
        var w = randn(8, 3, 3, 3);
        var one = nn.functional.conv2d(x.narrow(0, 0, 1), w);
        var both = nn.functional.conv2d(x, w);
        Assert.IsTrue((one - both.narrow(0, 0, 1)).abs().max().item<float>() < 1e-5);
    }
}
