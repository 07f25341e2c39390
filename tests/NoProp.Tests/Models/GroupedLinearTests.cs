using NoProp.Models;
using NoProp.Runtime;
using static NoProp.Tests.TensorAssertions;
using static TorchSharp.torch;

namespace NoProp.Tests.Models;

/// <summary>The fused FC kernel (GroupedLinear) against T linear layers on the flattened NCHW features.</summary>
[TestClass]
public sealed class GroupedLinearTests
{
    [TestInitialize]
    public void Seed()
    {
        TorchRuntime.Initialize();
        TorchRuntime.Seed(23);
        if (!GroupedConvolution.Accelerated) Assert.Inconclusive("no AVX-512 on this CPU: the kernel does not run here");
        if (!GroupedConvolution.EnabledBy(Environment.GetEnvironmentVariable("NOPROP_CONV_KERNEL")))
            Assert.Inconclusive("NOPROP_CONV_KERNEL=0: the kernels are switched off");
    }

    [TestCleanup]
    public void Restore() => set_num_threads(threads);

    private readonly int threads = get_num_threads();

    private static Tensor ChannelsLast(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    /// <summary>Block t's layer on its group's features flattened as PyTorch does ([C, h, w]), in float64: [T, B, N].</summary>
    private static Tensor Reference(Tensor features, Tensor[] weights, Tensor[] biases)
    {
        long n = features.shape[0], groups = weights.Length;
        var flat = features.to_type(ScalarType.Float64).contiguous().view(n, groups, -1);
        return stack(Enumerable.Range(0, (int)groups).Select(t =>
            flat.select(1, t).matmul(weights[t].to_type(ScalarType.Float64).t()) + biases[t].to_type(ScalarType.Float64)).ToArray(), 0).to_type(ScalarType.Float32);
    }

    [TestMethod]
    // Images in blocks of four and with one to three left over (9, 70: two panels of images, 5); one group or ten;
    // 8 to 128 channels at 1 to 25 positions; one to four blocks of 64 outputs (64, 128, 256: MNIST's FC(256) of 10
    // blocks' 128 × 4 × 4 features).
    [DataRow(9, 3, 8, 2, 3, 64)]
    [DataRow(70, 2, 128, 4, 4, 256)]
    [DataRow(1, 1, 16, 1, 1, 128)]
    [DataRow(5, 10, 128, 4, 4, 256)]
    [DataRow(6, 2, 32, 5, 5, 192)]
    public void ItEqualsEachBlocksLinearLayer(int n, int groups, int channels, int height, int width, int outputs)
    {
        using var _ = no_grad();
        var features = ChannelsLast(randn(n, groups * channels, height, width).relu_());
        var weights = Enumerable.Range(0, groups).Select(_ => randn(outputs, channels * height * width) / Math.Sqrt(channels * height * width)).ToArray();
        var biases = Enumerable.Range(0, groups).Select(_ => randn(outputs)).ToArray();
        var packed = GroupedLinear.Pack(weights, channels);
        var actual = GroupedLinear.Apply(features, packed, cat(biases, 0));
        var expected = Reference(features, weights, biases);
        CollectionAssert.AreEqual(expected.shape, actual.shape);
        double error = (expected - actual).abs().max().item<float>();
        Assert.IsTrue(error < 1e-5 * Math.Max(1, expected.abs().max().item<float>()), $"max |difference| {error}");
        // Each block reads its own group's features with its own weights and bias: block 0's weights alone change
        // nothing else.
        if (groups > 1)
        {
            weights[0] = weights[0] * 2;
            var changed = GroupedLinear.Apply(features, GroupedLinear.Pack(weights, channels), cat(biases, 0));
            Assert.IsTrue((changed[0] - actual[0]).abs().max().item<float>() > 0, "block 0 reads its weights");
            AssertSameBits(actual[1..], changed[1..], "the other blocks do not");
        }
    }

    [TestMethod]
    public void TheThreadCountDoesNotChangeABit()
    {
        using var _ = no_grad();
        var features = ChannelsLast(randn(67, 3 * 32, 3, 3));
        var weights = Enumerable.Range(0, 3).Select(_ => randn(128, 32 * 9)).ToArray();
        var packed = GroupedLinear.Pack(weights, 32);
        var bias = randn(3 * 128);
        set_num_threads(1);
        var one = GroupedLinear.Apply(features, packed, bias);
        set_num_threads(2);
        var two = GroupedLinear.Apply(features, packed, bias);
        AssertSameBits(one, two, "1 against 2 threads");
    }

    [TestMethod]
    public void BadOperandsAreRefusedByName()
    {
        using var _ = no_grad();
        var weights = new[] { randn(64, 8 * 4), randn(64, 8 * 4) };
        var packed = GroupedLinear.Pack(weights, 8);
        var bias = zeros(128);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedLinear.Apply(randn(3, 16, 2, 2), packed, bias)).Message, "channels-last");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedLinear.Apply(ChannelsLast(randn(3, 24, 2, 2)), packed, bias)).Message, "2 groups of 8 channels");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedLinear.Apply(ChannelsLast(randn(3, 16, 2, 3)), packed, bias)).Message, "4 positions");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedLinear.Apply(ChannelsLast(randn(3, 16, 2, 2)), packed, zeros(64))).Message, "bias");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedLinear.Pack([randn(96, 32)], 8)).Message, "multiple of 64");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedLinear.Pack([randn(64, 30)], 8)).Message, "30 inputs");
        Assert.IsFalse(GroupedLinear.Supports(randn(96, 8), 96), "96 outputs");
    }
}
