using NoProp.Models;
using NoProp.Runtime;
using NoProp.Runtime.Native;
using TorchSharp;
using static NoProp.Tests.TensorAssertions;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Tests.Models;

/// <summary>
/// The inference convolution kernel (GroupedConvolution) against libtorch's convolution, ReLU and max-pool, and the
/// OpenMP team the CPU kernels run on.
/// </summary>
[TestClass]
public sealed class GroupedConvolutionTests
{
    [TestInitialize]
    public void Seed()
    {
        TorchRuntime.Initialize();
        TorchRuntime.Seed(17);
        if (!GroupedConvolution.Accelerated) Assert.Inconclusive("no AVX-512 on this CPU: the kernel does not run here");
        if (!GroupedConvolution.EnabledBy(Environment.GetEnvironmentVariable("NOPROP_CONV_KERNEL")))
            Assert.Inconclusive("NOPROP_CONV_KERNEL=0: the kernel is switched off");
    }

    [TestCleanup]
    public void Restore()
    {
        set_num_threads(threads);
        GroupedConvolution.Winograd = true;
    }

    private readonly int threads = get_num_threads();

    private static Tensor ChannelsLast(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    /// <summary>
    /// libtorch's convolution, then its 2×2 max-pool and ReLU when asked, in float64 (a reviewer's probe found libtorch
    /// 2.10's float32 NCHW convolution giving NaN for 17 or 18 input channels on the Zen 5 machines: the reference does
    /// not rely on that path), returned as float32.
    /// </summary>
    private static Tensor Reference(Tensor x, Tensor weight, Tensor bias, long groups, bool relu, bool pool)
    {
        var y = functional.conv2d(x.to_type(ScalarType.Float64).contiguous(), weight.to_type(ScalarType.Float64), bias.to_type(ScalarType.Float64), groups: groups);
        if (pool) y = functional.max_pool2d(y, 2);
        return (relu ? functional.relu(y) : y).to_type(ScalarType.Float32);
    }

    [TestMethod]
    // Output positions in whole blocks of four (8×8) or with one to three left over (5×7 = 35, 9×9 = 81, 13×13 = 169);
    // one group or several; one input channel (conv1) to 64; 64 or 128 output channels per group (one or two register
    // blocks); pooled outputs of even and odd sides (floor: the last row or column is never computed). Each case runs
    // the direct kernel and, where C_in is a multiple of 16 and the output even or pooled, Winograd's (a last block of
    // fewer than four tiles: 9×7 pooled is 3×2 = 6 tiles).
    [DataRow(3, 2, 5, 64, 7, 9, false, false)]
    [DataRow(3, 2, 5, 64, 7, 9, true, false)]
    [DataRow(2, 10, 32, 64, 12, 12, true, false)]
    [DataRow(2, 10, 64, 128, 10, 10, false, true)]
    [DataRow(2, 1, 1, 320, 26, 26, true, true)]
    [DataRow(4, 3, 4, 64, 11, 11, false, false)]
    [DataRow(1, 3, 4, 128, 9, 7, true, true)]
    [DataRow(2, 1, 3, 192, 15, 15, true, false)]
    [DataRow(1, 2, 16, 64, 9, 7, true, true)]
    [DataRow(3, 1, 16, 64, 7, 9, false, false)]
    [DataRow(2, 1, 48, 192, 8, 6, false, false)]
    public void ItEqualsLibtorchsConvolutionReluAndPooling(int n, int groups, int inPerGroup, int outPerGroup, int height, int width, bool relu, bool pool)
    {
        using var _ = no_grad();
        var x = ChannelsLast(randn(n, groups * inPerGroup, height, width));
        var weight = randn(groups * outPerGroup, inPerGroup, 3, 3) / Math.Sqrt(9 * inPerGroup);
        var bias = randn(groups * outPerGroup) * 0.1;
        Assert.IsTrue(GroupedConvolution.Supports(weight, groups));
        var packed = GroupedConvolution.Pack(weight, groups);
        Assert.AreEqual(inPerGroup % 16 == 0, packed.Transformed is not null, "Winograd's weights where C_in is a multiple of 16");
        var expected = Reference(x, weight, bias, groups, relu, pool);
        foreach (bool winograd in new[] { false, true })
        {
            GroupedConvolution.Winograd = winograd;
            var actual = GroupedConvolution.Apply(x, packed, bias, relu, pool);
            CollectionAssert.AreEqual(expected.shape, actual.shape);
            Assert.IsTrue(GroupedConvolution.IsChannelsLast(actual), "the output is channels-last");
            double error = (expected - actual).abs().max().item<float>();
            Assert.IsTrue(error < 1e-5 * Math.Max(1, expected.abs().max().item<float>()), $"winograd {winograd}: max |difference| {error}");
            if (relu) Assert.IsTrue(expected.eq(0).any().item<bool>() && actual.ge(0).all().item<bool>(), "ReLU clipped something");
        }
    }

    [TestMethod]
    public void TheThreadCountDoesNotChangeABit()
    {
        using var _ = no_grad();
        foreach (int inPerGroup in new[] { 10, 16 })   // direct, Winograd
        {
            var x = ChannelsLast(randn(5, 4 * inPerGroup, 10, 10));
            var weight = randn(4 * 128, inPerGroup, 3, 3);
            var bias = randn(4 * 128);
            var packed = GroupedConvolution.Pack(weight, 4);
            set_num_threads(1);
            var one = GroupedConvolution.Apply(x, packed, bias, relu: true, pool: true);
            set_num_threads(2);
            var two = GroupedConvolution.Apply(x, packed, bias, relu: true, pool: true);
            AssertSameBits(one, two, $"1 against 2 threads, {inPerGroup} input channels per group");
        }
    }

    [TestMethod]
    public void ANanReachesEveryOutputThatReadsIt()
    {
        using var _ = no_grad();
        foreach (int channels in new[] { 2, 16 })   // direct, Winograd
        {
            var plain = randn(1, channels, 8, 8);
            plain[0, 1, 3, 4].copy_(tensor(float.NaN));
            var x = ChannelsLast(plain);
            var weight = randn(64, channels, 3, 3);
            var bias = zeros(64);
            var expected = Reference(x, weight, bias, 1, relu: true, pool: true);
            var actual = GroupedConvolution.Apply(x, GroupedConvolution.Pack(weight, 1), bias, relu: true, pool: true);
            Assert.IsTrue(expected.isnan().any().item<bool>(), "the reference propagates it");
            Assert.IsTrue(expected.isnan().equal(actual.isnan()).all().item<bool>(), $"NaN where ATen's max-pool and ReLU put it ({channels} channels)");
        }
    }

    [TestMethod]
    public void ItTakesOnlyWhatItComputes()
    {
        Assert.IsTrue(GroupedConvolution.Supports(zeros(128, 32, 3, 3), 2));
        Assert.IsFalse(GroupedConvolution.Supports(zeros(96, 32, 3, 3), 3), "32 output channels per group");
        Assert.IsFalse(GroupedConvolution.Supports(zeros(64, 32, 5, 5), 1), "5×5");
        Assert.IsFalse(GroupedConvolution.Supports(zeros(64, 32, 3, 3, ScalarType.BFloat16), 1), "bfloat16");
        GroupedConvolution.Enabled = false;
        try { Assert.IsFalse(GroupedConvolution.Supports(zeros(64, 32, 3, 3), 1), "switched off"); }
        finally { GroupedConvolution.Enabled = true; }
        // NOPROP_CONV_KERNEL=0 switches it off; unset or anything else leaves it on.
        Assert.IsFalse(GroupedConvolution.EnabledBy("0"));
        Assert.IsTrue(GroupedConvolution.EnabledBy(null) && GroupedConvolution.EnabledBy("1"));
        // NOPROP_KERNEL_THREADS=dotnet puts the kernels on .NET's pool.
        Assert.IsFalse(OpenMpTeam.WantedBy("dotnet"));
        Assert.IsTrue(OpenMpTeam.WantedBy(null) && OpenMpTeam.WantedBy("openmp"));
    }

    [TestMethod]
    public void BadOperandsAreRefusedByName()
    {
        using var _ = no_grad();
        var packed = GroupedConvolution.Pack(randn(64, 4, 3, 3), 1);
        var bias = zeros(64);
        var nchw = randn(2, 4, 6, 6);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedConvolution.Apply(nchw, packed, bias, false)).Message, "channels-last");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedConvolution.Apply(ChannelsLast(randn(2, 3, 6, 6)), packed, bias, false)).Message, "3 channels");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedConvolution.Apply(ChannelsLast(randn(2, 4, 3, 3)), packed, bias, false, pool: true)).Message, "at least 4×4");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedConvolution.Apply(ChannelsLast(randn(2, 4, 6, 6)), packed, zeros(32), false)).Message, "bias");
    }

    [TestMethod]
    public void TheKernelsRunOnLibtorchsOpenMpTeam()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("libgomp is the Linux libtorch's OpenMP");
        Assert.IsTrue(OpenMpTeam.Available, OpenMpTeam.Status);
        // Every thread of the team calls once with its own index; the caller is thread 0.
        var seen = new int[4];
        int callerThread = Environment.CurrentManagedThreadId, callerIndex = -1, size = 0;
        OpenMpTeam.Run(2, (index, team) =>
        {
            Interlocked.Increment(ref seen[index]);
            size = team;
            if (Environment.CurrentManagedThreadId == callerThread) callerIndex = index;
        });
        Assert.IsTrue(size is 1 or 2, $"team of {size}");
        CollectionAssert.AreEqual(Enumerable.Range(0, 4).Select(i => i < size ? 1 : 0).ToArray(), seen);
        Assert.AreEqual(0, callerIndex);
        // An exception on any thread comes back to the caller, after the team has finished.
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => OpenMpTeam.Run(2, (index, team) =>
        {
            if (index == team - 1) throw new InvalidOperationException($"thrown by thread {index}");
        }));
        StringAssert.StartsWith(error.Message, "thrown by thread");
        // CpuKernels.For hands every item to exactly one call, on the team or on .NET's pool, with the same results.
        using var _ = no_grad();
        var x = ChannelsLast(randn(6, 64, 10, 10));
        var packed = GroupedConvolution.Pack(randn(256, 32, 3, 3), 2);
        var bias = randn(256);
        var outputs = new List<Tensor>();
        foreach (bool team in new[] { true, false })
        {
            CpuKernels.UseOpenMpTeam = team;
            try
            {
                var items = new int[1000];
                CpuKernels.For(items.Length, 1 << 20, (start, count) => { for (long i = start; i < start + count; i++) items[i]++; });
                Assert.IsTrue(items.All(c => c == 1), $"every item once (team {team})");
                outputs.Add(GroupedConvolution.Apply(x, packed, bias, relu: true, pool: true));
            }
            finally { CpuKernels.UseOpenMpTeam = true; }
        }
        AssertSameBits(outputs[0], outputs[1], "the team against .NET's pool");
    }
}
