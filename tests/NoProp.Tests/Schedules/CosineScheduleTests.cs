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
    public void MatchesTheScaledCosineFormula()
    {
        // ᾱ_t = ᾱ_max·f(1 − t/T)/f(0), f(τ) = cos²(π/2·(τ + 0.008)/1.008): values computed independently (Python, float64).
        var s = new CosineSchedule(4);
        double[] expected = [0.0, 0.14412783028334994, 0.49334974685019706, 0.8461651491655777, 0.999];
        for (int t = 0; t <= 4; t++) Assert.AreEqual(expected[t], s.AlphaBar(t), 1e-14, $"ᾱ_{t}");
        var custom = new CosineSchedule(4, maxAlphaBar: 0.99);
        Assert.AreEqual(0.99, custom.AlphaBar(4), 1e-15, "the curve ends exactly at ᾱ_max");
        Assert.AreEqual(0.49334974685019706 / 0.999 * 0.99, custom.AlphaBar(2), 1e-14, "ᾱ_max scales the whole curve");
    }

    /// <summary>
    /// Issue 10: clamping at ᾱ_max also clamped ᾱ_{T−1} for T ≥ 73, so SNR(T) − SNR(T−1) = 0, a_T = c_T = 0 and
    /// the last block was neither trained nor used. Every block must have a positive SNR increment and finite,
    /// non-degenerate Eq. 6 coefficients, for the paper's T = 10 and for the CLI's range up to 1000.
    /// </summary>
    [TestMethod]
    [DataRow(10)]
    [DataRow(72)]
    [DataRow(73)]
    [DataRow(100)]
    [DataRow(1000)]
    public void EveryBlockHasAPositiveSnrIncrementAndFiniteCoefficients(int T)
    {
        var s = new CosineSchedule(T);
        Assert.AreEqual(0.0, s.AlphaBar(0));
        Assert.AreEqual(CosineSchedule.DefaultMaxAlphaBar, s.AlphaBar(T), 1e-15);
        for (int t = 1; t <= T; t++)
        {
            double increment = s.Snr(t) - s.Snr(t - 1);
            Assert.IsTrue(increment > 0 && double.IsFinite(increment), $"T = {T}, t = {t}: SNR increment {increment}");
            var (a, b, c) = s.PosteriorCoefficients(t);
            Assert.IsTrue(double.IsFinite(a) && double.IsFinite(b) && double.IsFinite(c), $"T = {T}, t = {t}: ({a}, {b}, {c})");
            Assert.IsTrue(a > 0 && c > 0 && (t == 1 ? b == 0 : b > 0), $"T = {T}, t = {t}: block t must contribute (a = {a}, b = {b}, c = {c})");
        }
        // The last block's weight, pinned for T = 100 and 1000 (Python, float64): ΔSNR(T) = 386.748 and 39.609.
        if (T == 100) Assert.AreEqual(386.74773510169837, s.Snr(T) - s.Snr(T - 1), 1e-6);
        if (T == 1000) Assert.AreEqual(39.6093351407435, s.Snr(T) - s.Snr(T - 1), 1e-5);
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

    /// <summary>
    /// Eq. 6 for t ≥ 2 as the Gaussian posterior it is: under q (Eq. 5), z_t | y ~ N(√ᾱ_t u, 1 − ᾱ_t) and
    /// z_{t−1} = √α_{t−1} z_t + √(1 − α_{t−1}) ε, so (z_t, z_{t−1}) | y is jointly Gaussian with
    /// Cov(z_t, z_{t−1}) = √α_{t−1}(1 − ᾱ_t) and Var(z_{t−1}) = 1 − ᾱ_{t−1}. Conditioning gives the mean
    /// √ᾱ_t u + (Cov/Var)(z_{t−1} − √ᾱ_{t−1} u), i.e. b_t = Cov/Var and a_t = √ᾱ_t − b_t √ᾱ_{t−1}, and the variance
    /// c_t = (1 − ᾱ_t) − Cov²/Var. (The marginal identities alone also hold for a = √ᾱ_t, b = 0, c = 1 − ᾱ_t.)
    /// </summary>
    [TestMethod]
    public void PosteriorMeanAndVarianceAreTheGaussianConditionalOfTheForwardProcess()
    {
        foreach (int T in new[] { 4, 10, 100 })
        {
            var s = new CosineSchedule(T);
            for (int t = 2; t <= T; t++)
            {
                double abT = s.AlphaBar(t), abPrev = s.AlphaBar(t - 1), alphaPrev = abPrev / abT;
                double covariance = Math.Sqrt(alphaPrev) * (1 - abT), variancePrev = 1 - abPrev;
                double b = covariance / variancePrev;
                double a = Math.Sqrt(abT) - b * Math.Sqrt(abPrev);
                double c = (1 - abT) - covariance * covariance / variancePrev;
                var actual = s.PosteriorCoefficients(t);
                Assert.AreEqual(b, actual.B, 1e-12, $"b_{t}, T = {T}");
                Assert.AreEqual(a, actual.A, 1e-12, $"a_{t}, T = {T}");
                Assert.AreEqual(c, actual.C, 1e-12 * Math.Max(1, c), $"c_{t}, T = {T}");
            }
        }
        // Pinned (Python, float64, by the conditioning above) for T = 4.
        var four = new CosineSchedule(4);
        double[,] pinned = { { 0.5809183991679229, 0.3199601036545912, 0.41903079515840413 },
                             { 0.7570275854738138, 0.23184426556806925, 0.12660150626165453 },
                             { 0.993996645046934, 0.005982601674764432, 0.0009944940164290962 } };
        for (int t = 2; t <= 4; t++)
        {
            var (a, b, c) = four.PosteriorCoefficients(t);
            Assert.AreEqual(pinned[t - 2, 0], a, 1e-13, $"a_{t}");
            Assert.AreEqual(pinned[t - 2, 1], b, 1e-13, $"b_{t}");
            Assert.AreEqual(pinned[t - 2, 2], c, 1e-13, $"c_{t}");
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
