using NoProp.Training;

namespace NoProp.Tests.Training;

[TestClass]
public sealed class StatisticsTests
{
    [TestMethod]
    public void MeanAndStandardErrorOfAKnownSample()
    {
        var (mean, se) = Statistics.MeanAndStandardError([0.90, 0.92, 0.94]);
        Assert.AreEqual(0.92, mean, 1e-12);
        Assert.AreEqual(0.02 / Math.Sqrt(3), se, 1e-12);   // sample sd 0.02
        Assert.AreEqual((0.5, 0.0), Statistics.MeanAndStandardError([0.5]));
    }
}
