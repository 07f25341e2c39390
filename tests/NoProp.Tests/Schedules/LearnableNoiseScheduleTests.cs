using NoProp.Runtime;
using NoProp.Schedules;
using static TorchSharp.torch;

namespace NoProp.Tests.Schedules;

[TestClass]
public sealed class LearnableNoiseScheduleTests
{
    [TestInitialize]
    public void Init() { TorchRuntime.Initialize(); TorchRuntime.Seed(3); }

    private static float[] Values(Tensor t) => t.detach().cpu().data<float>().ToArray();

    [TestMethod]
    public void EndpointsAndDirection()
    {
        using var schedule = new LearnableNoiseSchedule(initialGammaMax: 6, initialGammaMin: -4);
        using var t = linspace(0, 1, 101);
        var (gamma, derivative) = schedule.Gamma(t);
        var g = Values(gamma);
        Assert.AreEqual(6.0, g[0], 1e-4, "γ(0) = γ_max: t = 0 is noise");
        Assert.AreEqual(-4.0, g[^1], 1e-4, "γ(1) = γ_min");
        var alphaBar = Values(schedule.AlphaBar(t));
        for (int i = 1; i < alphaBar.Length; i++) Assert.IsTrue(alphaBar[i] > alphaBar[i - 1], $"ᾱ must increase (i = {i})");
        Assert.IsTrue(Values(derivative).All(d => d < 0), "γ' < 0");
        var (max, min) = schedule.Endpoints();
        Assert.AreEqual(6.0, max, 1e-4);
        Assert.AreEqual(-4.0, min, 1e-4);
    }

    [TestMethod]
    public void SnrDerivativeIsPositiveForAnyParameters()
    {
        using var schedule = new LearnableNoiseSchedule();
        using var t = linspace(0, 1, 201);
        for (int trial = 0; trial < 5; trial++)
        {
            using (no_grad())
                foreach (var p in schedule.parameters()) p.add_(randn_like(p) * 2.0);
            var snrDerivative = Values(schedule.SnrDerivative(t));
            Assert.IsTrue(snrDerivative.All(v => v > 0 && float.IsFinite(v)), $"trial {trial}: SNR'(t) must be positive");
            var (max, min) = schedule.Endpoints();
            Assert.IsTrue(max > min, "the parameterisation keeps γ(0) > γ(1)");
        }
    }

    [TestMethod]
    public void ClosedFormDerivativeMatchesFiniteDifferences()
    {
        using var schedule = new LearnableNoiseSchedule();
        using (no_grad()) foreach (var p in schedule.parameters()) p.add_(randn_like(p) * 0.5);
        double h = 1e-3;
        foreach (double time in new[] { 0.1, 0.5, 0.9 })
        {
            using var t = tensor(new[] { (float)time });
            using var tPlus = tensor(new[] { (float)(time + h) });
            using var tMinus = tensor(new[] { (float)(time - h) });
            double numeric = (schedule.Gamma(tPlus).Gamma.item<float>() - schedule.Gamma(tMinus).Gamma.item<float>()) / (2 * h);
            double closed = schedule.Gamma(t).GammaDerivative.item<float>();
            Assert.AreEqual(numeric, closed, Math.Max(1e-2, Math.Abs(numeric) * 1e-2), $"γ'({time})");
            double snr(Tensor x) => Math.Exp(-schedule.Gamma(x).Gamma.item<float>());
            double numericSnr = (snr(tPlus) - snr(tMinus)) / (2 * h);
            Assert.AreEqual(numericSnr, schedule.SnrDerivative(t).item<float>(), Math.Abs(numericSnr) * 2e-2, $"SNR'({time})");
        }
    }
}
