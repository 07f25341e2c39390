using NoProp.Models;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Tests.Models;

/// <summary>Dropout with its CPU keep mask drawn as rand &lt; 1 − p: a Bernoulli(1 − p) mask, scaled by 1/(1 − p).</summary>
[TestClass]
public sealed class UniformDropoutTests
{
    [TestInitialize]
    public void Seed() { TorchRuntime.Initialize(); TorchRuntime.Seed(5); }

    [TestMethod]
    [DataRow(0.2)]
    [DataRow(0.5)]
    [DataRow(0.9)]
    public void ZeroesAFractionPAndScalesTheRestByOneOverOneMinusP(double p)
    {
        var x = rand(1_000_000) + 0.5;   // no zeros of its own
        var y = UniformDropout.Apply(x, p, training: true);

        var dropped = y.eq(0);
        double fraction = dropped.to_type(ScalarType.Float64).mean().item<double>();
        // Standard error of the fraction: sqrt(p(1 − p)/10⁶) ≤ 5e-4; eight of them.
        Assert.AreEqual(p, fraction, 4e-3, "fraction of zeroed elements");
        var kept = y.masked_select(dropped.logical_not()) / x.masked_select(dropped.logical_not());
        Assert.AreEqual(1 / (1 - p), kept.min().item<float>(), 1e-5);
        Assert.AreEqual(1 / (1 - p), kept.max().item<float>(), 1e-5);
        // Inverted dropout keeps the expectation: E[y] = E[x].
        Assert.AreEqual(x.mean().item<float>(), y.mean().item<float>(), 0.01);
    }

    [TestMethod]
    public void GradientFlowsThroughTheKeptElementsOnly()
    {
        var x = (rand(4, 8, 5, 5) + 0.5).requires_grad_();
        var y = UniformDropout.Apply(x, 0.3, training: true);
        var upstream = randn(4, 8, 5, 5);
        (y * upstream).sum().backward();
        var expected = upstream * (y.detach() / x.detach());   // 1/(1 − p) where kept, 0 where dropped
        Assert.AreEqual(0, (x.grad! - expected).abs().max().item<float>(), 1e-5);
        Assert.IsTrue(y.eq(0).any().item<bool>() && y.ne(0).any().item<bool>());
    }

    [TestMethod]
    public void TheSameSeedDrawsTheSameMask()
    {
        var x = rand(64, 32) + 0.5;
        TorchRuntime.Seed(9);
        var a = UniformDropout.Apply(x, 0.2, training: true);
        TorchRuntime.Seed(9);
        var b = UniformDropout.Apply(x, 0.2, training: true);
        var c = UniformDropout.Apply(x, 0.2, training: true);
        Assert.AreEqual(0, (a - b).abs().max().item<float>());
        Assert.IsTrue((a - c).abs().max().item<float>() > 0, "the next draw is a different mask");
    }

    [TestMethod]
    public void OutsideTrainingOrAtPZeroItIsTheIdentity()
    {
        var x = randn(3, 4);
        Assert.AreSame(x, UniformDropout.Apply(x, 0.2, training: false));
        Assert.AreSame(x, UniformDropout.Apply(x, 0, training: true));
        Assert.AreEqual(0, UniformDropout.Apply(x, 1, training: true).abs().max().item<float>());
    }

    [TestMethod]
    [DataRow(-0.1)]
    [DataRow(1.5)]
    [DataRow(double.NaN)]
    public void RejectsAProbabilityOutsideZeroToOne(double p)
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => UniformDropout.Apply(randn(2), p, training: true));
        StringAssert.Contains(e.Message, "dropout probability");
    }

    /// <summary>
    /// AfterRelu is dropout of ReLU(x) (as ReLU of the dropped-out x): with the same draws, the values and the gradient
    /// of Apply(relu(x)), equal element by element (== does not tell −0 from +0), also where x ≤ 0 (exact zeros included) and for a mask drawn for a larger activation.
    /// </summary>
    [TestMethod]
    [DataRow(0.2, false)]
    [DataRow(0.5, false)]
    [DataRow(0.2, true)]
    public void AfterReluEqualsDropoutOfRelu(double p, bool cropped)
    {
        var x = (randn(4, 6, 12, 12) * 2).round() / 2;   // many exact zeros
        (long, long)? sides = cropped ? (13, 13) : null;
        var upstream = randn(4, 6, 12, 12);

        var a = x.detach().requires_grad_();
        TorchRuntime.Seed(8);
        var expected = UniformDropout.Apply(nn.functional.relu(a), p, training: true, drawSides: sides);
        (expected * upstream).sum().backward();

        var b = x.detach().requires_grad_();
        TorchRuntime.Seed(8);
        var actual = UniformDropout.AfterRelu(b, p, training: true, drawSides: sides);
        (actual * upstream).sum().backward();

        Assert.IsTrue(actual.equal(expected).all().item<bool>(), "values differ from Apply(relu(x))");
        Assert.IsTrue(b.grad!.equal(a.grad!).all().item<bool>(),
            $"gradients differ from Apply(relu(x))'s by up to {(b.grad! - a.grad!).abs().max().item<float>()}");
        // Both cases occur: kept positive elements carry 1/(1 − p), dropped or non-positive ones nothing.
        var carried = b.grad!.ne(0);
        Assert.IsTrue(carried.any().item<bool>() && x.gt(0).logical_and(carried.logical_not()).any().item<bool>());
        Assert.IsFalse(x.le(0).logical_and(carried).any().item<bool>(), "no gradient through x ≤ 0");
    }

    [TestMethod]
    public void AfterReluOutsideTrainingOrAtPZeroIsRelu()
    {
        var x = randn(3, 4);
        var relu = nn.functional.relu(x);
        Assert.IsTrue(UniformDropout.AfterRelu(x, 0.2, training: false).equal(relu).all().item<bool>());
        Assert.IsTrue(UniformDropout.AfterRelu(x, 0, training: true).equal(relu).all().item<bool>());
        Assert.AreEqual(0, UniformDropout.AfterRelu(x, 1, training: true).abs().max().item<float>());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => UniformDropout.AfterRelu(x, 1.5, training: true));
    }

    /// <summary>A cropped activation's mask is the top-left part of the mask the whole activation draws (the same stream).</summary>
    [TestMethod]
    public void ACroppedActivationGetsItsPartOfTheWholeActivationsMask()
    {
        var whole = rand(3, 4, 13, 13) + 0.5;
        var cropped = whole.narrow(2, 0, 12).narrow(3, 0, 12).contiguous();
        TorchRuntime.Seed(4);
        var expected = UniformDropout.Apply(whole, 0.2, training: true).narrow(2, 0, 12).narrow(3, 0, 12);
        TorchRuntime.Seed(4);
        var actual = UniformDropout.Apply(cropped, 0.2, training: true, drawSides: (13, 13));
        Assert.IsTrue(actual.equal(expected).all().item<bool>());
        TorchRuntime.Seed(4);
        Assert.IsFalse(UniformDropout.Apply(cropped, 0.2, training: true).equal(expected).all().item<bool>(), "drawn for 12×12, the mask differs");
        var e = Assert.ThrowsExactly<ArgumentException>(() => UniformDropout.Apply(cropped, 0.2, training: true, drawSides: (11, 13)));
        StringAssert.Contains(e.Message, "11×13");
    }

    /// <summary>
    /// The mask is rand's, bit for bit: x · (rand_like(x) &lt; 1 − p) / (1 − p), whole or cropped, and the generator ends
    /// where rand leaves it (the masks are computed from its state, CpuGeneratorDraws), so runs keep their streams.
    /// </summary>
    [TestMethod]
    [DataRow(false, false)]
    [DataRow(true, false)]
    [DataRow(false, true)]
    public void TheMaskIsRandsBelowOneMinusP(bool cropped, bool channelsLast)
    {
        var whole = rand(5, 6, 13, 13) + 0.5;
        var x = cropped ? whole.narrow(2, 0, 12).narrow(3, 0, 12).contiguous() : whole;
        if (channelsLast) x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);   // drawn in its memory order
        using var keep = HeldScalars.Hold(0.7);
        TorchRuntime.Seed(12);
        var draws = channelsLast ? rand_like(x) : rand(5, 6, 13, 13).narrow(2, 0, x.shape[2]).narrow(3, 0, x.shape[3]);
        var expected = x * draws.lt(keep).to_type(ScalarType.Float32).div_(keep);
        var next = rand(4);
        TorchRuntime.Seed(12);
        var actual = UniformDropout.Apply(x, 0.3, training: true, drawSides: cropped ? (13, 13) : null);
        Assert.IsTrue(actual.equal(expected).all().item<bool>());
        Assert.IsTrue(rand(4).equal(next).all().item<bool>(), "the generator's next draws");
    }

    /// <summary>
    /// AfterRelu in training runs as one fused operation (ReluDropout): output, input gradient and the generator's next
    /// draws are those of relu_(x · mask) bit for bit, for ties, zeros of both signs and NaNs, cropped masks, lengths
    /// that leave a scalar tail, and one or two threads.
    /// </summary>
    [TestMethod]
    [DataRow(false, 1)]
    [DataRow(true, 1)]
    [DataRow(true, 2)]
    public void TheFusedAfterReluGivesTheSameBits(bool cropped, int threads)
    {
        int before = get_num_threads();
        try
        {
            var x = (randn(7, 33, 10, cropped ? 10 : 11) * 2).round() / 2;   // 7·33·10·11 = 25,410: not a multiple of 4
            x[0, 0, 0, 0] = tensor(float.NaN);
            x[0, 0, 0, 1] = tensor(-0f);
            var upstream = randn(x.shape);
            upstream[0, 0, 0, 2] = tensor(-0f);
            (long, long)? sides = cropped ? (11, 11) : null;
            (Tensor, Tensor, Tensor) Run(bool fused)
            {
                UniformDropout.FusedAfterRelu = fused;
                TorchRuntime.Seed(17);
                var leaf = x.detach().requires_grad_();
                var y = UniformDropout.AfterRelu(leaf * 1, 0.2, training: true, drawSides: sides);
                var next = rand(3);
                (y * upstream).sum().backward();
                return (y.detach(), leaf.grad!.clone(), next);
            }
            var (expected, expectedGradient, expectedNext) = Run(fused: false);
            set_num_threads(threads);
            var (actual, gradient, next) = Run(fused: true);
            TensorAssertions.AssertSameBits(expected, actual, "output");
            TensorAssertions.AssertSameBits(expectedGradient, gradient, "gradient");
            Assert.IsTrue(next.equal(expectedNext).all().item<bool>(), "the same draws");
            Assert.IsTrue(expected.eq(0).any().item<bool>() && expectedGradient.count_nonzero().item<long>() > 0);
        }
        finally
        {
            UniformDropout.FusedAfterRelu = true;
            set_num_threads(before);
        }
    }
}
