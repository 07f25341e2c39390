using NoProp.Runtime;
using static NoProp.Runtime.HeldScalars;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Solvers;

/// <summary>
/// The adaptive Dormand–Prince 5(4) method (Dormand &amp; Prince 1980, "A family of embedded Runge–Kutta
/// formulae", J. Comput. Appl. Math. 6:19–26; the tableau as in Hairer, Nørsett &amp; Wanner, Solving Ordinary
/// Differential Equations I, Table II.5.2). It advances with the fifth-order solution and uses the difference
/// to the embedded fourth-order one as its local error estimate; torchdiffeq's and SciPy's default solver.
/// <para>
/// FSAL ("first same as last"): the seventh stage f(z₁, t + h) is the first stage of the next step, so an
/// accepted step costs 6 NFE, a rejected one 6 NFE as well (its first stage is kept), and an integration
/// costs 1 + 6·(accepted + rejected) NFE, plus 1 when the initial step is selected automatically.
/// </para>
/// <para>
/// Step control (Hairer et al. §II.4): err = RMS over all elements of e / (atol + rtol·max(|z₀|, |z₁|)); a step
/// is accepted when err ≤ 1 and the next step is h·clamp(0.9·err^(−1/5), 0.2, 10), with no growth right after
/// a rejection. The batch shares one step size, so the least accurate sample sets it. Intermediate grid
/// points are landed on exactly (steps are shortened to reach them) and only z at times[^1] is returned.
/// Integration backwards in time (times decreasing) works the same with negative steps.
/// </para>
/// </summary>
public sealed class Dopri5Solver : IOdeSolver
{
    /// <summary>Safety factor on the optimal step, so that the next step is likely accepted.</summary>
    public const double Safety = 0.9;
    /// <summary>The most a step may shrink (after a rejection) or grow at once.</summary>
    public const double MinFactor = 0.2, MaxFactor = 10.0;

    // Butcher tableau of Dormand & Prince (1980). c₆ = c₇ = 1; row 7 of A equals B5 (hence FSAL).
    private const double C2 = 1.0 / 5, C3 = 3.0 / 10, C4 = 4.0 / 5, C5 = 8.0 / 9;
    private const double A21 = 1.0 / 5;
    private const double A31 = 3.0 / 40, A32 = 9.0 / 40;
    private const double A41 = 44.0 / 45, A42 = -56.0 / 15, A43 = 32.0 / 9;
    private const double A51 = 19372.0 / 6561, A52 = -25360.0 / 2187, A53 = 64448.0 / 6561, A54 = -212.0 / 729;
    private const double A61 = 9017.0 / 3168, A62 = -355.0 / 33, A63 = 46732.0 / 5247, A64 = 49.0 / 176, A65 = -5103.0 / 18656;
    // Fifth-order weights (b₂ = b₇ = 0).
    private const double B1 = 35.0 / 384, B3 = 500.0 / 1113, B4 = 125.0 / 192, B5 = -2187.0 / 6784, B6 = 11.0 / 84;
    // Error weights e = b − b̂, with b̂ the embedded fourth-order weights
    // (5179/57600, 0, 7571/16695, 393/640, −92097/339200, 187/2100, 1/40).
    private const double E1 = 71.0 / 57600, E3 = -71.0 / 16695, E4 = 71.0 / 1920, E5 = -17253.0 / 339200, E6 = 22.0 / 525, E7 = -1.0 / 40;

    public Dopri5Solver(OdeSolverOptions? options = null)
    {
        Options = options ?? new OdeSolverOptions();
        Options.Validate();
    }

    public OdeSolverOptions Options { get; }
    public string Name => "dopri5";
    public int Order => 5;

    public OdeSolution Integrate(Drift f, Tensor z0, IReadOnlyList<double> times)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(z0);
        TimeGrid.Check(times);
        if (!z0.is_floating_point()) throw new ArgumentException($"z0 must be a floating-point tensor, got {z0.dtype}", nameof(z0));
        int nfe = 0;
        Drift counted = (z, t) => { nfe++; return f(z, t); };
        double t0 = times[0], direction = Math.Sign(times[^1] - t0);
        var state = z0;
        Tensor? k1 = null;
        int accepted = 0, rejected = 0;
        try
        {
            using (var scope = NewDisposeScope()) k1 = Keep(counted(z0, t0));
            double h = direction * (Options.InitialStep ?? SelectInitialStep(counted, z0, t0, k1, direction, Math.Abs(times[^1] - t0)));
            bool lastRejected = false;
            double t = t0;
            for (int i = 1; i < times.Count; i++)
            {
                double target = times[i];
                while (t != target)
                {
                    if (accepted + rejected >= Options.MaxSteps)
                        throw new NoPropException(
                            $"dopri5 needed more than {Options.MaxSteps} steps to integrate from t = {t0} to t = {times[^1]} (it reached t = {t}); " +
                            $"the drift may be stiff or non-finite: raise the max steps, loosen the tolerances (rtol {Options.RelativeTolerance}, " +
                            $"atol {Options.AbsoluteTolerance}) or use a fixed-step solver");
                    // Shorten the step to land exactly on the next grid point.
                    bool clipped = direction * (t + h - target) >= 0;
                    double step = clipped ? target - t : h;
                    if (!clipped && Math.Abs(step) < MinimumStep(t))
                        throw new NoPropException(
                            $"dopri5 step size underflow at t = {t} (step {step}): the drift returned non-finite values or the problem is too stiff " +
                            $"for rtol {Options.RelativeTolerance}, atol {Options.AbsoluteTolerance}");
                    double tNext = clipped ? target : t + step;
                    var (error, zNext, kNext) = Attempt(counted, state, k1, t, step, tNext);
                    if (zNext is not null && kNext is not null)
                    {
                        if (!ReferenceEquals(state, z0)) state.Dispose();
                        state = zNext;
                        k1.Dispose();
                        k1 = kNext;
                        t = tNext;
                        accepted++;
                        double factor = error == 0 ? MaxFactor : Math.Clamp(Safety * Math.Pow(error, -0.2), MinFactor, MaxFactor);
                        if (lastRejected) factor = Math.Min(factor, 1.0);
                        lastRejected = false;
                        // A step shortened only to land on a grid point says nothing against the step the controller
                        // had proposed, so that proposal is kept (as DifferentialEquations.jl does after a tstop).
                        h = clipped ? direction * Math.Max(Math.Abs(step * factor), Math.Abs(h)) : step * factor;
                    }
                    else
                    {
                        rejected++;
                        lastRejected = true;
                        // err^(−1/5) is 0 for err = ∞ and NaN for err = NaN: both shrink by the largest factor.
                        double factor = Safety * Math.Pow(error, -0.2);
                        h = step * (double.IsNaN(factor) ? MinFactor : Math.Max(MinFactor, factor));
                    }
                }
            }
            k1.Dispose();
            return new OdeSolution(state, nfe, accepted, rejected);
        }
        catch
        {
            k1?.Dispose();
            if (!ReferenceEquals(state, z0)) state.Dispose();
            throw;
        }
    }

    /// <summary>
    /// One trial step of size h from (z, t) to tNext = t + h. Returns the error norm and, when the step is
    /// accepted (err ≤ 1), z₁ and the FSAL stage f(z₁, tNext), both moved out of the step's scope; when it is
    /// rejected everything it made is freed. Internal so that tests can check the embedded error estimate.
    /// </summary>
    internal (double Error, Tensor? Z, Tensor? K) Attempt(Drift f, Tensor z, Tensor k1, double t, double h, double tNext)
    {
        using var scope = NewDisposeScope();
        var k2 = f(z.Plus(k1.Times(h * A21)), t + C2 * h);
        var k3 = f(z.Plus(WeightedSum((k1, A31), (k2, A32)).Times(h)), t + C3 * h);
        var k4 = f(z.Plus(WeightedSum((k1, A41), (k2, A42), (k3, A43)).Times(h)), t + C4 * h);
        var k5 = f(z.Plus(WeightedSum((k1, A51), (k2, A52), (k3, A53), (k4, A54)).Times(h)), t + C5 * h);
        var k6 = f(z.Plus(WeightedSum((k1, A61), (k2, A62), (k3, A63), (k4, A64), (k5, A65)).Times(h)), tNext);
        var z1 = z.Plus(WeightedSum((k1, B1), (k3, B3), (k4, B4), (k5, B5), (k6, B6)).Times(h));
        var k7 = f(z1, tNext);
        var localError = WeightedSum((k1, E1), (k3, E3), (k4, E4), (k5, E5), (k6, E6), (k7, E7)).Times(h);
        var scale = maximum(z.abs(), z1.abs()).Times(Options.RelativeTolerance).Plus(Options.AbsoluteTolerance);
        double error = Rms(localError / scale);
        if (!(error <= 1)) return (error, null, null);
        return (error, z1.MoveToOuterDisposeScope(), Keep(k7));
    }

    /// <summary>
    /// The starting step of Hairer, Nørsett &amp; Wanner (§II.4, "starting step size"): a step for which an
    /// Euler step changes z by about 1 % of its scale, refined with one extra drift evaluation so that
    /// h⁵·|f′| ≈ 0.01. Returns a magnitude no larger than the whole interval.
    /// </summary>
    private double SelectInitialStep(Drift f, Tensor z0, double t0, Tensor f0, double direction, double span)
    {
        using var scope = NewDisposeScope();
        var scale = z0.abs().Times(Options.RelativeTolerance).Plus(Options.AbsoluteTolerance);
        double d0 = Rms(z0 / scale), d1 = Rms(f0 / scale);
        if (!double.IsFinite(d1)) throw new NoPropException($"the drift returned non-finite values at t = {t0}");
        double h0 = Math.Min(d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : 0.01 * d0 / d1, span);
        var f1 = f(z0.Plus(f0.Times(direction * h0)), t0 + direction * h0);
        double d2 = Rms((f1 - f0) / scale) / h0;
        double dMax = Math.Max(d1, d2);
        double h1 = dMax <= 1e-15 ? Math.Max(1e-6, h0 * 1e-3) : Math.Pow(0.01 / dMax, 1.0 / 5);
        double h = Math.Min(Math.Min(100 * h0, h1), span);
        return double.IsFinite(h) && h > 0 ? h : h0;
    }

    /// <summary>Ten units in the last place of t: a smaller step would not move t reliably (SciPy's RK45 bound).</summary>
    private static double MinimumStep(double t)
    {
        double a = Math.Abs(t);
        return 10 * (Math.BitIncrement(a) - a);
    }

    /// <summary>Root mean square over all elements, as one number.</summary>
    private static double Rms(Tensor x) => x.Squared().mean().sqrt().ToDouble();

    /// <summary>
    /// A new handle on a drift output, moved out of the current scope, that the solver owns and may dispose:
    /// the drift may have returned its input or a tensor it keeps, which must not be disposed.
    /// </summary>
    private static Tensor Keep(Tensor driftOutput) => driftOutput.alias().MoveToOuterDisposeScope();
}
