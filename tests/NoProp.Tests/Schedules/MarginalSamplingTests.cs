using NoProp.Losses;
using NoProp.Runtime;
using NoProp.Schedules;
using static TorchSharp.torch;

namespace NoProp.Tests.Schedules;

[TestClass]
public sealed class MarginalSamplingTests
{
    [TestInitialize]
    public void Seed() { TorchRuntime.Initialize(); TorchRuntime.Seed(7); }

    [TestMethod]
    [DataRow(0.0)]
    [DataRow(0.3)]
    [DataRow(0.97)]
    public void SamplesHaveTheMarginalMeanAndVariance(double alphaBar)
    {
        using var scope = NewDisposeScope();
        var u = tensor(new float[] { 1f, -2f, 0.5f, 0f }).unsqueeze(0).expand(200_000, 4).contiguous();
        var z = VariancePreserving.SampleMarginal(u, alphaBar);
        var mean = z.mean([0L]).data<float>().ToArray();
        var variance = z.var(0).data<float>().ToArray();
        float[] expectedMean = [1f, -2f, 0.5f, 0f];
        for (int j = 0; j < 4; j++)
        {
            Assert.AreEqual(Math.Sqrt(alphaBar) * expectedMean[j], mean[j], 0.01, $"mean of component {j}");
            Assert.AreEqual(1 - alphaBar, variance[j], 0.01, $"variance of component {j}");
        }
    }

    [TestMethod]
    public void ForwardProcessStepMapsMarginalToMarginal()
    {
        // Monte Carlo version of the coefficient identities, on tensors: Eq. 3 applied with the true u_y.
        using var scope = NewDisposeScope();
        var s = new CosineSchedule(10);
        int t = 6;
        var u = tensor(new float[] { 0f, 1f, 0f }).unsqueeze(0).expand(200_000, 3).contiguous();
        var zPrev = VariancePreserving.SampleMarginal(u, s.AlphaBar(t - 1));
        var (a, b, c) = s.PosteriorCoefficients(t);
        var zT = u * a + zPrev * b + randn_like(u) * Math.Sqrt(c);
        Assert.AreEqual(Math.Sqrt(s.AlphaBar(t)), zT[.., 1].mean().item<float>(), 0.01);
        Assert.AreEqual(1 - s.AlphaBar(t), zT[.., 1].var().item<float>(), 0.01);
        Assert.AreEqual(0.0, zT[.., 0].mean().item<float>(), 0.01);
    }

    [TestMethod]
    public void KlMatchesTheGaussianFormulaPerDimension()
    {
        using var scope = NewDisposeScope();
        double ab0 = 0.2;
        var u = tensor(new float[,] { { 1f, 0f, 2f }, { 0f, -1f, 0f } });
        double expected = 0;
        foreach (var row in new[] { new[] { 1.0, 0, 2 }, new[] { 0, -1.0, 0 } })
            foreach (var m in row)
            {
                double mean = Math.Sqrt(ab0) * m, variance = 1 - ab0;
                expected += 0.5 * (mean * mean + variance - 1 - Math.Log(variance));
            }
        expected /= 2;
        Assert.AreEqual(expected, NoPropLosses.KlToStandardNormal(u, ab0).item<float>(), 1e-5);
        Assert.AreEqual(0.0, NoPropLosses.KlToStandardNormal(u, 0.0).item<float>(), 1e-7, "pure noise at t = 0 costs nothing");
    }
}
