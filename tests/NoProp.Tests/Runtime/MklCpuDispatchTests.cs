using System.Runtime.Intrinsics.X86;
using NoProp.Runtime;
using NoProp.Runtime.Native;
using static TorchSharp.torch;

namespace NoProp.Tests.Runtime;

/// <summary>MKL's AVX-512 kernels on AMD CPUs (Native/MklCpuDispatch.cs).</summary>
[TestClass]
public sealed class MklCpuDispatchTests
{
    [TestMethod]
    public void AppliesOnlyToAmdCpusWithAvx512AndCanBeTurnedOff()
    {
        Assert.IsTrue(MklCpuDispatch.ShouldApply(null, amd: true, avx512: true));
        Assert.IsTrue(MklCpuDispatch.ShouldApply("1", amd: true, avx512: true));
        Assert.IsFalse(MklCpuDispatch.ShouldApply("0", amd: true, avx512: true));
        Assert.IsFalse(MklCpuDispatch.ShouldApply(null, amd: false, avx512: true));
        Assert.IsFalse(MklCpuDispatch.ShouldApply(null, amd: true, avx512: false));
    }

    [TestMethod]
    public void OnThisMachineItAppliedExactlyWhereItShould()
    {
        TorchRuntime.Initialize();
        bool amdWithAvx512 = OperatingSystem.IsLinux() && X86Base.IsSupported && IsAmd() &&
                             Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported;
        if (Environment.GetEnvironmentVariable("NOPROP_MKL_AVX512") == "0") amdWithAvx512 = false;
        Assert.AreEqual(amdWithAvx512, MklCpuDispatch.Applied, MklCpuDispatch.Status);
    }

    [TestMethod]
    public void MatrixProductsStayCorrect()
    {
        // Whatever kernel MKL runs, a linear layer agrees with a float64 reference to float32 rounding.
        TorchRuntime.Seed(3);
        var a = randn(300, 768);
        var w = randn(256, 768);
        var b = randn(256);
        using var y = nn.functional.linear(a, w, b);
        using var reference = nn.functional.linear(a.to_type(ScalarType.Float64), w.to_type(ScalarType.Float64), b.to_type(ScalarType.Float64));
        double error = (y.to_type(ScalarType.Float64) - reference).abs().max().item<double>();
        Assert.IsTrue(error < 1e-3, $"largest error {error} (values of magnitude ~30)");
    }

    private static bool IsAmd()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        var vendor = new byte[12];
        BitConverter.GetBytes(ebx).CopyTo(vendor, 0);
        BitConverter.GetBytes(edx).CopyTo(vendor, 4);
        BitConverter.GetBytes(ecx).CopyTo(vendor, 8);
        return System.Text.Encoding.ASCII.GetString(vendor) == "AuthenticAMD";
    }
}
