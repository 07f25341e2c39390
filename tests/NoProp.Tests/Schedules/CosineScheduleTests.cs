using NoProp.Schedules;

namespace NoProp.Tests.Schedules;

[TestClass]
public sealed class CosineScheduleTests
{
    [TestMethod]
    public void AlphaBarIncreasesFromPureNoiseAtBlockOneToTheLabelAtT()
    {
        var s = new CosineSchedule(10);
        // Block 1 receives z_0 at inference, drawn from N(0, I): it must be trained at ᾱ_0 = 0.
        Assert.AreEqual(0.0, s.AlphaBar(0), 1e-12);
        for (int t = 1; t <= 10; t++) Assert.IsTrue(s.AlphaBar(t) > s.AlphaBar(t - 1), $"ᾱ must increase at t = {t}");
        Assert.AreEqual(CosineSchedule.DefaultMaxAlphaBar, s.AlphaBar(10), 1e-12);
        Assert.IsTrue(s.AlphaBar(1) < 0.05, "the first block still sees mostly noise");
        Assert.IsTrue(s.AlphaBar(9) > 0.9, "the last blocks see mostly label");
        for (int t = 1; t <= 10; t++) Assert.IsTrue(s.Snr(t) > s.Snr(t - 1), "SNR increases with t, so every denoising weight is positive");
    }

    [TestMethod]
    public void MatchesTheCosineFormula()
    {
        var s = new CosineSchedule(4, maxAlphaBar: 0.9999);
        static double F(double tau) => Math.Pow(Math.Cos(Math.PI / 2 * (tau + 0.008) / 1.008), 2);
        Assert.AreEqual(F(0.5) / F(0), s.AlphaBar(2), 1e-12);
        Assert.AreEqual(F(0.25) / F(0), s.AlphaBar(3), 1e-12);
    }

    [TestMethod]
    public void PosteriorCoefficientsReproduceTheMarginal()
    {
        // If z_{t−1} ~ N(√ᾱ_{t−1} u, 1 − ᾱ_{t−1}) and z_t = a_t u + b_t z_{t−1} + √c_t ε (Eq. 3 with û = u),
        // then z_t ~ N(√ᾱ_t u, 1 − ᾱ_t): a_t + b_t √ᾱ_{t−1} = √ᾱ_t and b_t² (1 − ᾱ_{t−1}) + c_t = 1 − ᾱ_t.
        foreach (int T in new[] { 1, 3, 10, 50 })
        {
            var s = new CosineSchedule(T);
            for (int t = 1; t <= T; t++)
            {
                var (a, b, c) = s.PosteriorCoefficients(t);
                Assert.AreEqual(Math.Sqrt(s.AlphaBar(t)), a + b * Math.Sqrt(s.AlphaBar(t - 1)), 1e-12, $"mean identity, T = {T}, t = {t}");
                Assert.AreEqual(1 - s.AlphaBar(t), b * b * (1 - s.AlphaBar(t - 1)) + c, 1e-12, $"variance identity, T = {T}, t = {t}");
                Assert.IsTrue(a > 0 && b >= 0 && c > 0);
            }
        }
    }

    [TestMethod]
    public void FirstStepIgnoresThePureNoiseInput()
    {
        // ᾱ_0 = 0 gives α_0 = 0, so b_1 = 0: z_1 = √ᾱ_1 û_1 + √(1 − ᾱ_1) ε.
        var s = new CosineSchedule(10);
        var (a, b, c) = s.PosteriorCoefficients(1);
        Assert.AreEqual(0.0, b, 1e-12);
        Assert.AreEqual(Math.Sqrt(s.AlphaBar(1)), a, 1e-12);
        Assert.AreEqual(1 - s.AlphaBar(1), c, 1e-12);
    }

    [TestMethod]
    public void RejectsInvalidSettings()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new CosineSchedule(0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new CosineSchedule(10, maxAlphaBar: 1.0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new CosineSchedule(10).PosteriorCoefficients(0));
    }
}
