using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Tests.Runtime;

/// <summary>libtorch's CPU generator (mt19937) reproduced in C#: the same draws as torch.rand, the same state after.</summary>
[TestClass]
public sealed class CpuGeneratorDrawsTests
{
    [TestInitialize]
    public void Initialize() => TorchRuntime.Initialize();

    /// <summary>The mask from rand as UniformDropout used to compute it: rand &lt; keep, then divided by keep.</summary>
    private static Tensor FromRand(long[] shape, double keep)
    {
        using var held = HeldScalars.Hold(keep);
        return rand(shape).lt_(held).div_(held);
    }

    private static byte[] State() { using var s = random.get_rng_state(); return s.bytes.ToArray(); }

    [TestMethod]
    // Sizes around the 624-word block and the 8-lane vectors; draws before that start mid-block.
    [DataRow(1L, 0)]
    [DataRow(7L, 0)]
    [DataRow(623L, 0)]
    [DataRow(624L, 0)]
    [DataRow(625L, 0)]
    [DataRow(5000L, 3)]
    [DataRow(100_003L, 621)]
    [DataRow(100_003L, 623)]
    [DataRow(100_003L, 624)]
    [DataRow(1_000_000L, 1000)]
    public void TheMaskIsRandsAndTheGeneratorEndsWhereRandLeavesIt(long count, int drawnBefore)
    {
        foreach (double p in new[] { 0.2, 0.5 })
        {
            float keep = (float)(1 - p);
            TorchRuntime.Seed(11);
            if (drawnBefore > 0) rand(drawnBefore).Dispose();
            using var expected = FromRand([count], 1 - p);
            using var after = rand(3);
            var expectedState = State();

            TorchRuntime.Seed(11);
            if (drawnBefore > 0) rand(drawnBefore).Dispose();
            using var mask = CpuGeneratorDraws.KeepMask([count], keep, 1f / keep);
            using var next = rand(3);

            Assert.IsTrue(mask.eq(expected).all().item<bool>(), $"mask of {count} after {drawnBefore} draws, p = {p}");
            Assert.IsTrue(next.eq(after).all().item<bool>(), "the draws that follow");
            CollectionAssert.AreEqual(expectedState, State(), "the generator's state");
        }
    }

    [TestMethod]
    public void TheShapeIsRandsInMemoryOrder()
    {
        TorchRuntime.Seed(3);
        using var expected = FromRand([4, 3, 13, 13], 0.8);
        TorchRuntime.Seed(3);
        using var mask = CpuGeneratorDraws.KeepMask([4, 3, 13, 13], 0.8f, 1f / 0.8f);
        CollectionAssert.AreEqual(new long[] { 4, 3, 13, 13 }, mask.shape);
        Assert.IsTrue(mask.eq(expected).all().item<bool>());
        // A Bernoulli(0.8) mask: 2,028 draws, the fraction kept within 4 standard errors (0.009) of 0.8.
        double kept = mask.ne(0).to_type(ScalarType.Float64).mean().item<double>();
        Assert.AreEqual(0.8, kept, 0.036);
    }

    [TestMethod]
    // The crops of the paper block's dropouts (13 → 12, 11 → 10), crops through a 624-word block, and none.
    [DataRow(29, 13, 13, 12, 12)]
    [DataRow(29, 11, 11, 10, 10)]
    [DataRow(3, 40, 700, 17, 650)]
    [DataRow(5, 9, 8, 9, 3)]
    [DataRow(5, 9, 8, 2, 8)]
    [DataRow(5, 9, 8, 9, 8)]
    [DataRow(5, 9, 8, 0, 8)]
    public void ACropIsTheTopLeftOfEveryPlaneOfRandsMask(int planes, int height, int width, int keptHeight, int keptWidth)
    {
        long[] shape = [planes, 1, height, width];
        TorchRuntime.Seed(8);
        rand(100).Dispose();
        using var expected = FromRand(shape, 0.8).narrow(2, 0, keptHeight).narrow(3, 0, keptWidth).contiguous();
        var expectedState = State();
        TorchRuntime.Seed(8);
        rand(100).Dispose();
        using var mask = CpuGeneratorDraws.KeepMask(shape, 0.8f, 1f / 0.8f, (keptHeight, keptWidth));
        CollectionAssert.AreEqual(expected.shape, mask.shape);
        Assert.IsTrue(mask.eq(expected).all().item<bool>());
        CollectionAssert.AreEqual(expectedState, State(), "the generator advanced over the whole shape");
    }

    [TestMethod]
    public void ACropLargerThanThePlaneIsRefused()
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CpuGeneratorDraws.KeepMask([2, 5, 5], 0.5f, 2f, (6, 5)));
        StringAssert.Contains(error.Message, "6×5");
    }

    /// <summary>The scalar loops (no 256-bit vectors: other CPUs, or the vector loops' tails) give the same draws.</summary>
    [TestMethod]
    public void WithoutVectorsTheDrawsAreTheSame()
    {
        bool vectorized = CpuGeneratorDraws.Vectorized;
        CpuGeneratorDraws.Vectorized = false;
        try
        {
            TheMaskIsRandsAndTheGeneratorEndsWhereRandLeavesIt(100_003, 621);
            TheMaskIsRandsAndTheGeneratorEndsWhereRandLeavesIt(625, 0);
            ACropIsTheTopLeftOfEveryPlaneOfRandsMask(29, 13, 13, 12, 12);
        }
        finally { CpuGeneratorDraws.Vectorized = vectorized; }
    }

    [TestMethod]
    public void AnEmptyShapeDrawsNothing()
    {
        TorchRuntime.Seed(4);
        var before = State();
        using var mask = CpuGeneratorDraws.KeepMask([0, 5], 0.5f, 2f);
        Assert.AreEqual(0, mask.numel());
        CollectionAssert.AreEqual(before, State());
    }
}
