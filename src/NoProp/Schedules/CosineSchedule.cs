namespace NoProp.Schedules;

/// <summary>
/// The fixed noise schedule of NoProp-DT (paper §2.3, "fixed cosine schedule").
/// <para>
/// Time runs from noise (t = 0) to label (t = T), so ᾱ_t increases with t: block 1 receives z_0 ~ N(0, I)
/// and is trained at ᾱ_0 = 0. With τ_t = 1 − t/T the schedule is the cosine schedule of Nichol &amp; Dhariwal
/// (2021), read in that direction:
/// </para>
/// <code>ᾱ_t = ᾱ_max · f(τ_t) / f(0),   f(τ) = cos²(π/2 · (τ + s) / (1 + s)),   s = 0.008</code>
/// <para>
/// Endpoints: ᾱ_0 = 0 exactly (f(1) = 0), so z_0 is pure noise and the KL term of Eq. 8 vanishes for a fixed
/// embedding. f(0)/f(0) = 1 would make SNR(T) infinite, so the whole curve is scaled by ᾱ_max (default 0.999,
/// SNR 999) rather than clamped at it: ᾱ_T = ᾱ_max, z_T ~ q(z_T|y) keeps a standard deviation of
/// √(1 − ᾱ_max) ≈ 0.032, and because f strictly decreases on [0, 1], ᾱ_t strictly increases for every T. A clamp
/// min(ᾱ_max, f/f(0)) would also flatten ᾱ_{T−1} once f(1/T)/f(0) > ᾱ_max (T ≥ 73 at 0.999): SNR(T) − SNR(T−1)
/// would be 0, the last block would get no loss and a_T = c_T = 0 would skip it at inference.
/// </para>
/// </summary>
public sealed class CosineSchedule : IDiscreteSchedule
{
    public const double DefaultOffset = 0.008;
    public const double DefaultMaxAlphaBar = 0.999;

    private readonly double[] alphaBar;

    public CosineSchedule(int steps, double maxAlphaBar = DefaultMaxAlphaBar, double offset = DefaultOffset)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), "a schedule needs at least one step");
        if (!(maxAlphaBar > 0 && maxAlphaBar < 1)) throw new ArgumentOutOfRangeException(nameof(maxAlphaBar), "ᾱ_max must lie in (0, 1)");
        Steps = steps;
        MaxAlphaBar = maxAlphaBar;
        Offset = offset;
        alphaBar = new double[steps + 1];
        double F(double tau) { double c = Math.Cos(Math.PI / 2 * (tau + offset) / (1 + offset)); return c * c; }
        double f0 = F(0);
        for (int t = 0; t <= steps; t++)
        {
            double tau = 1.0 - (double)t / steps;
            alphaBar[t] = t == 0 ? 0.0 : maxAlphaBar * F(tau) / f0;
        }
    }

    public int Steps { get; }
    public double MaxAlphaBar { get; }
    public double Offset { get; }

    public double AlphaBar(int t) => alphaBar[t];
}

/// <summary>A noise schedule on the integer grid t = 0..T (noise at 0, label at T).</summary>
public interface IDiscreteSchedule
{
    int Steps { get; }

    /// <summary>ᾱ_t: the signal fraction of q(z_t|y) = N(√ᾱ_t·u_y, (1 − ᾱ_t)·I).</summary>
    double AlphaBar(int t);
}

/// <summary>The quantities of paper Eq. 6 derived from any discrete schedule.</summary>
public static class DiscreteScheduleExtensions
{
    /// <summary>SNR(t) = ᾱ_t / (1 − ᾱ_t).</summary>
    public static double Snr(this IDiscreteSchedule s, int t)
    {
        double ab = s.AlphaBar(t);
        return ab / (1 - ab);
    }

    /// <summary>
    /// The coefficients of q(z_t | z_{t−1}, y) = N(a_t·u_y + b_t·z_{t−1}, c_t·I) (Eq. 6), with
    /// α_{t−1} = ᾱ_{t−1}/ᾱ_t because ᾱ_{t−1} = α_{t−1}·ᾱ_t:
    /// a_t = √ᾱ_t (1 − α_{t−1}) / (1 − ᾱ_{t−1}),
    /// b_t = √α_{t−1} (1 − ᾱ_t) / (1 − ᾱ_{t−1}),
    /// c_t = (1 − ᾱ_t)(1 − α_{t−1}) / (1 − ᾱ_{t−1}).
    /// </summary>
    public static (double A, double B, double C) PosteriorCoefficients(this IDiscreteSchedule s, int t)
    {
        if (t < 1 || t > s.Steps) throw new ArgumentOutOfRangeException(nameof(t), $"t must lie in 1..{s.Steps}");
        double abT = s.AlphaBar(t), abPrev = s.AlphaBar(t - 1);
        double alphaPrev = abPrev / abT;
        double a = Math.Sqrt(abT) * (1 - alphaPrev) / (1 - abPrev);
        double b = Math.Sqrt(alphaPrev) * (1 - abT) / (1 - abPrev);
        double c = (1 - abT) * (1 - alphaPrev) / (1 - abPrev);
        return (a, b, c);
    }
}
