using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Tests.Runtime;

[TestClass]
public sealed class ChunkingTests
{
    [TestMethod]
    public void MapCoversEveryRowOnceInOrder()
    {
        var x = arange(7 * 3, dtype: ScalarType.Float32).view(7, 3);
        var calls = new List<long>();
        using var y = Chunking.Map(x, 3, rows => { calls.Add(rows.shape[0]); return rows * 2; });
        CollectionAssert.AreEqual(new long[] { 3, 3, 1 }, calls);
        Assert.IsTrue(y.equal(x * 2).all().item<bool>());
        // Results concatenated along another dimension (DT's image features are [T, B, F]).
        using var z = Chunking.Map(x, 2, rows => rows.T.unsqueeze(0), resultDimension: 2);
        Assert.IsTrue(z.equal(x.T.unsqueeze(0)).all().item<bool>());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Chunking.Map(x, 0, rows => rows));
    }
}
