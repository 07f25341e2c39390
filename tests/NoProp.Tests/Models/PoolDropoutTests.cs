using NoProp.Models;
using NoProp.Runtime;
using TorchSharp;
using static NoProp.Tests.TensorAssertions;
using static TorchSharp.torch;

namespace NoProp.Tests.Models;

/// <summary>
/// The fused max-pool + ReLU + dropout (PoolDropout) against the two operations it replaces (MaxPool, then
/// UniformDropout.AfterRelu or Apply): the same bits forward and backward, and the same random draws.
/// </summary>
[TestClass]
public sealed class PoolDropoutTests
{
    [TestInitialize]
    public void Seed() { TorchRuntime.Initialize(); TorchRuntime.Seed(13); }

    [TestCleanup]
    public void Restore() { ConvImageEncoder.FusedPooling = true; UniformDropout.FusedAfterRelu = true; }

    /// <summary>Output, input gradient and the generator's next draws of PoolThenDropout, fused or not.</summary>
    private static (Tensor Output, Tensor Gradient, Tensor Next) Run(Tensor h, Tensor upstream, bool fused, bool relu, (long, long)? drawSides, double p = 0.2)
    {
        ConvImageEncoder.FusedPooling = fused;
        UniformDropout.FusedAfterRelu = fused;   // the reference is ATen's operations only
        TorchRuntime.Seed(21);
        var leaf = h.detach().requires_grad_();
        var y = ConvImageEncoder.PoolThenDropout(leaf * 1, p, training: true, relu, drawSides);
        var next = rand(5);
        (y * upstream).sum().backward();
        return (y.detach(), leaf.grad!.clone(), next);
    }

    [TestMethod]
    // Sides whose outputs fill the four-wide vectors (24, 8), leave a scalar tail (10, 14, 6), are odd (floor: the last
    // row or column is dropped) or have fewer than four outputs per row; with and without ReLU; masks drawn for larger
    // activations (the receptive-field crop) or not.
    [DataRow(24, 24, true, 13, 13)]
    [DataRow(8, 8, false, 0, 0)]
    [DataRow(8, 8, true, 0, 0)]
    [DataRow(10, 14, true, 0, 0)]
    [DataRow(9, 9, true, 0, 0)]
    [DataRow(7, 10, false, 4, 6)]
    [DataRow(6, 6, true, 0, 0)]
    [DataRow(5, 3, true, 0, 0)]
    public void TheFusedOperationGivesTheSameBitsForwardAndBackward(int height, int width, bool relu, int drawHeight, int drawWidth)
    {
        (long, long)? sides = drawHeight > 0 ? (drawHeight, drawWidth) : null;
        // Values on a coarse grid: ties inside windows (the first maximum wins), exact zeros, all-negative windows.
        var h = (randn(6, 7, height, width) * 2).round() / 2;
        var upstream = randn(6, 7, height / 2, width / 2);
        var (expected, expectedGradient, expectedNext) = Run(h, upstream, fused: false, relu, sides);
        var (actual, gradient, next) = Run(h, upstream, fused: true, relu, sides);
        AssertSameBits(expected, actual, "output");
        AssertSameBits(expectedGradient, gradient, "gradient");
        Assert.IsTrue(expectedNext.equal(next).all().item<bool>(), "the same draws");
        Assert.IsTrue(expected.eq(0).any().item<bool>() && expectedGradient.count_nonzero().item<long>() > 0, "the data must exercise both cases");
    }

    [TestMethod]
    public void NaNsAndSignedZerosAreRoutedAsATensKernelsRouteThem()
    {
        var h = (randn(4, 5, 8, 12) * 2).round() / 2;
        h[0, 0, 0, 1] = tensor(float.NaN);                       // a NaN after the window's start: it wins
        h[0, 0, 2, 2] = tensor(float.NaN);                       // a NaN at the start, then a larger value: the NaN stays
        h[0, 0, 2, 3] = tensor(5f);
        h[1, 1, 4, 4] = tensor(-0f); h[1, 1, 4, 5] = tensor(-0f);
        h[1, 1, 5, 4] = tensor(-0f); h[1, 1, 5, 5] = tensor(-1f);   // a −0 maximum: ReLU keeps −0 and passes no gradient
        // Rows ten wide (the original columns 2–11): their fifth output is computed one at a time, not in the four-wide
        // lanes; the same cases again in that tail.
        h = h.narrow(3, 2, 10).contiguous();
        h[3, 3, 0, 8] = tensor(float.NaN);                       // at the window's start
        h[3, 3, 5, 8] = tensor(float.NaN);                       // bottom left, after finite values: it wins
        h[3, 2, 6, 9] = tensor(float.NaN);                       // top right
        h[3, 1, 3, 9] = tensor(float.NaN);                       // bottom right
        h[3, 3, 2, 9] = tensor(-0f); h[3, 3, 2, 8] = tensor(-0f); h[3, 3, 3, 8] = tensor(-0f); h[3, 3, 3, 9] = tensor(-2f);
        var upstream = randn(4, 5, 4, 5);
        upstream[2, 2, 1, 1] = tensor(-0f);                       // −0 · scale + 0 is +0 in the gradient
        upstream[2, 2, 1, 4] = tensor(-0f);
        foreach (bool relu in new[] { true, false })
        {
            var (expected, expectedGradient, _) = Run(h, upstream, fused: false, relu, null);
            var (actual, gradient, _) = Run(h, upstream, fused: true, relu, null);
            AssertSameBits(expected, actual, $"output, relu {relu}");
            AssertSameBits(expectedGradient, gradient, $"gradient, relu {relu}");
            Assert.IsTrue(expected[3, 3, 0, 4].isnan().item<bool>() && expected[3, 3, 2, 4].isnan().item<bool>()
                && expected[3, 2, 3, 4].isnan().item<bool>() && expected[3, 1, 1, 4].isnan().item<bool>(), "the NaNs reached the tail's outputs");
        }
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    public void OneAndTwoThreadsGiveTheSameBits(int threads)
    {
        int before = get_num_threads();
        try
        {
            var h = randn(29, 40, 24, 24);   // large enough to be split between threads
            var upstream = randn(29, 40, 12, 12);
            var (expected, expectedGradient, _) = Run(h, upstream, fused: false, relu: true, (13, 13));
            set_num_threads(threads);
            var (actual, gradient, _) = Run(h, upstream, fused: true, relu: true, (13, 13));
            AssertSameBits(expected, actual, "output");
            AssertSameBits(expectedGradient, gradient, "gradient");
        }
        finally { set_num_threads(before); }
    }

    /// <summary>
    /// Autograd keeps one byte per output, not the activation: changing the activation in place after the operation
    /// leaves the gradient as it was.
    /// </summary>
    [TestMethod]
    public void TheBackwardPassNeedsNotTheActivation()
    {
        var leaf = randn(3, 6, 10, 10).requires_grad_();
        var upstream = randn(3, 6, 5, 5);
        var (_, expected, _) = Run(leaf, upstream, fused: true, relu: true, null);
        TorchRuntime.Seed(21);
        var h = leaf * 1;
        var y = ConvImageEncoder.PoolThenDropout(h, 0.2, training: true, relu: true, null);
        using (no_grad()) h.mul_(-3).add_(7);
        leaf.grad?.zero_();
        (y * upstream).sum().backward();
        AssertSameBits(expected, leaf.grad!, "gradient");
    }

    /// <summary>
    /// The gradients flowing through the operation are not held by managed handles until the caller's dispose scope ends
    /// (which would keep every chunk's input gradient alive through the whole backward pass, where ATen frees each once
    /// consumed): after four chained calls and their backward pass, inside the scope, as many tensors are alive as
    /// with ATen's own operations, give or take the one gradient handed back last.
    /// </summary>
    [TestMethod]
    public void TheBackwardPassLeavesNoGradientHeldInTheScope()
    {
        long Alive(bool fused)
        {
            ConvImageEncoder.FusedPooling = fused;
            UniformDropout.FusedAfterRelu = fused;   // ATen's operations only, or ours
            var leaf = randn(4, 3, 8, 8).requires_grad_();
            long before = Tensor.TotalCount;
            using var scope = NewDisposeScope();
            var parts = Enumerable.Range(0, 4).Select(i => ConvImageEncoder.PoolThenDropout(leaf.narrow(0, i, 1), 0.2, training: true, relu: true, null)).ToArray();
            cat(parts, 0).sum().backward();
            CpuKernels.ReleaseReturned();
            return Tensor.TotalCount - before;
        }
        long aten = Alive(fused: false), ours = Alive(fused: true);
        Assert.IsTrue(ours <= aten + 1, $"{ours} tensors alive in the scope after the fused backward pass, {aten} after ATen's");
    }

    /// <summary>Outside training, at p = 0 or p = 1 the two operations run (ReLU, or dropout's own edge cases).</summary>
    [TestMethod]
    public void OutsideTrainingItIsMaxPoolAndRelu()
    {
        var h = randn(2, 3, 8, 8);
        using var _ = no_grad();
        var expected = nn.functional.relu(nn.functional.max_pool2d(h, 2));
        Assert.IsTrue(ConvImageEncoder.PoolThenDropout(h, 0.2, training: false, relu: true, null).equal(expected).all().item<bool>());
        Assert.IsTrue(ConvImageEncoder.PoolThenDropout(h, 0, training: true, relu: true, null).equal(expected).all().item<bool>());
        Assert.AreEqual(0, ConvImageEncoder.PoolThenDropout(h, 1, training: true, relu: true, null).count_nonzero().item<long>());
    }

    [TestMethod]
    public void AnActivationItCannotTakeIsRefusedByName()
    {
        var channelsLast = randn(2, 3, 8, 8).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        var e = Assert.ThrowsExactly<ArgumentException>(() => PoolDropout.Apply(channelsLast, ones(2, 3, 4, 4), 1.25f, true));
        StringAssert.Contains(e.Message, "contiguous float32");
        e = Assert.ThrowsExactly<ArgumentException>(() => PoolDropout.Apply(randn(2, 3, 8, 8), ones(2, 3, 4, 5), 1.25f, true));
        StringAssert.Contains(e.Message, "[2, 3, 4, 4]");
    }
}
