using NoProp.Models;
using NoProp.Runtime;
using static NoProp.Tests.TensorAssertions;
using static TorchSharp.torch;

namespace NoProp.Tests.Models;

/// <summary>The fused encoders' inference weights kept across calls (InferenceWeightCache).</summary>
[TestClass]
public sealed class InferenceWeightCacheTests
{
    private static readonly ImageShape Mnist = new(1, 28, 28);

    [TestInitialize]
    public void Seed() { TorchRuntime.Initialize(); TorchRuntime.Seed(29); }

    private static FusedDtBlocks Fused(out DtBlock[] blocks)
    {
        blocks = Enumerable.Range(0, 2).Select(_ => new DtBlock(Mnist, 10, 10, false)).ToArray();
        foreach (var b in blocks) b.eval();
        return new FusedDtBlocks(blocks);
    }

    [TestMethod]
    public void HeldWeightsGiveTheSameFeaturesAndAreBuiltOnce()
    {
        var fused = Fused(out var unused);
        var x = randn(7, 1, 28, 28);
        using var noGrad = no_grad();
        var expected = fused.ImageFeatures(x, 3);
        using var cache = new InferenceWeightCache();
        using (cache.Use())
        {
            AssertSameBits(expected, fused.ImageFeatures(x, 3), "held weights, first call");
            AssertSameBits(expected.narrow(1, 0, 4), fused.ImageFeatures(x.narrow(0, 0, 4), 3), "held weights, another batch");
            Assert.AreEqual(1, cache.Count, "one set of weights for the same encoders");
            // Another kernel switch is another set of weights (the bmm FC layers instead of the packed ones).
            GroupedLinear.Enabled = false;
            try { fused.ImageFeatures(x, 3).Dispose(); }
            finally { GroupedLinear.Enabled = true; }
            Assert.AreEqual(GroupedConvolution.Accelerated ? 2 : 1, cache.Count, "the switch is part of the key where the kernels run");
        }
        Assert.IsNull(InferenceWeightCache.Current, "Use restores the previous (none)");
        // Outside Use, nothing is held.
        fused.ImageFeatures(x, 3).Dispose();
        Assert.AreEqual(GroupedConvolution.Accelerated ? 2 : 1, cache.Count);
    }

    [TestMethod]
    public void TrainingAndAutogradAreNeverServedFromIt()
    {
        var fused = Fused(out var blocks);
        var x = randn(4, 1, 28, 28);
        using var cache = new InferenceWeightCache();
        using (cache.Use())
        {
            // Autograd: the weights must carry it to the parameters.
            var features = fused.ImageFeatures(x);
            Assert.AreEqual(0, cache.Count, "not with autograd");
            features.sum().backward();
            Assert.IsNotNull(blocks[1].ImagePath.Fc.weight!.grad, "the gradient reached block 2's own FC weights");
            using (no_grad())
            {
                foreach (var b in blocks) b.train();
                fused.ImageFeatures(x).Dispose();
                Assert.AreEqual(0, cache.Count, "not in training mode");
            }
        }
    }

    [TestMethod]
    public void AnOuterCacheServesInnerRunsAndDisposingReleasesTheWeights()
    {
        var fused = Fused(out var unused);
        var x = randn(3, 1, 28, 28);
        using var noGrad = no_grad();
        var cache = new InferenceWeightCache();
        using (cache.Use())
        {
            using (InferenceWeightCache.UseForThisRun())   // an evaluation inside a scorer's call: the scorer's cache
            {
                Assert.AreSame(cache, InferenceWeightCache.Current);
                fused.ImageFeatures(x).Dispose();
            }
            Assert.AreSame(cache, InferenceWeightCache.Current);
            Assert.AreEqual(1, cache.Count);
        }
        using (InferenceWeightCache.UseForThisRun())   // none current: a cache of its own, disposed with the handle
        {
            Assert.IsNotNull(InferenceWeightCache.Current);
            Assert.AreNotSame(cache, InferenceWeightCache.Current);
        }
        Assert.IsNull(InferenceWeightCache.Current);
        cache.Dispose();
        Assert.AreEqual(0, cache.Count);
        Assert.ThrowsExactly<ObjectDisposedException>(() => cache.Use());
    }

    [TestMethod]
    public void DisposingItFreesEveryTensorItHeld()
    {
        var fused = Fused(out var unused);
        var x = randn(3, 1, 28, 28);
        using var noGrad = no_grad();
        fused.ImageFeatures(x).Dispose();   // warm-up: whatever libtorch or the model creates once
        long baseline = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var cache = new InferenceWeightCache();
        var use = cache.Use();
        fused.ImageFeatures(x).Dispose();
        fused.ImageFeatures(x).Dispose();
        long held = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount - baseline;
        Assert.IsTrue(held > 0, "the stacked and packed weights stay alive between calls");
        // Disposed while still in use on this thread: no longer current, and nothing it built is left alive.
        cache.Dispose();
        Assert.IsNull(InferenceWeightCache.Current);
        use.Dispose();
        Assert.AreEqual(baseline, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount, $"{held} tensors held, all freed");
    }
}
