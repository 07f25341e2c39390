using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Solvers;

/// <summary>
/// The shared loop of the explicit one-step methods on a given grid (torchdiffeq's FixedGridODESolver):
/// one <see cref="Step"/> per grid interval, which may be non-uniform. Subclasses differ only in the step.
/// <para>
/// Memory: each step runs in its own dispose scope, so its stages and every tensor the drift creates are
/// freed when the step ends; only the new state leaves the scope, and the previous state is disposed
/// unless it is the caller's z0.
/// </para>
/// </summary>
public abstract class FixedGridSolver : IOdeSolver
{
    public abstract string Name { get; }
    public abstract int Order { get; }

    /// <summary>Drift evaluations per step: the NFE of an integration is this times the number of grid intervals.</summary>
    public abstract int EvaluationsPerStep { get; }

    /// <summary>
    /// One step from (z, t) to t + dt (dt &lt; 0 steps backwards). Returns a new tensor; it runs inside the
    /// caller's dispose scope, so its intermediate tensors need no care.
    /// </summary>
    protected abstract Tensor Step(Drift f, Tensor z, double t, double dt);

    public OdeSolution Integrate(Drift f, Tensor z0, IReadOnlyList<double> times)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(z0);
        TimeGrid.Check(times);
        int nfe = 0;
        Drift counted = (z, t) => { nfe++; return f(z, t); };
        var state = z0;
        try
        {
            for (int n = 0; n + 1 < times.Count; n++)
            {
                Tensor next;
                using (var scope = NewDisposeScope())
                    next = Step(counted, state, times[n], times[n + 1] - times[n]).MoveToOuterDisposeScope();
                if (!ReferenceEquals(state, z0)) state.Dispose();
                state = next;
            }
        }
        catch
        {
            if (!ReferenceEquals(state, z0)) state.Dispose();
            throw;
        }
        return new OdeSolution(state, nfe, times.Count - 1, 0);
    }
}

/// <summary>Forward Euler, z ← z + dt·f(z, t): order 1, 1 NFE per step. The NoProp paper's CT/FM inference.</summary>
public sealed class EulerSolver : FixedGridSolver
{
    public override string Name => "euler";
    public override int Order => 1;
    public override int EvaluationsPerStep => 1;

    protected override Tensor Step(Drift f, Tensor z, double t, double dt) => z.Plus(f(z, t).Times(dt));
}

/// <summary>
/// Heun's method, the explicit trapezoid rule: an Euler predictor, then the average of the slopes at both
/// ends. Order 2, 2 NFE per step (the Heun sampler of k-diffusion / Karras et al. 2022).
/// </summary>
public sealed class HeunSolver : FixedGridSolver
{
    public override string Name => "heun";
    public override int Order => 2;
    public override int EvaluationsPerStep => 2;

    protected override Tensor Step(Drift f, Tensor z, double t, double dt)
    {
        var k1 = f(z, t);
        var k2 = f(z.Plus(k1.Times(dt)), t + dt);
        return z.Plus(k1.Plus(k2).Times(dt / 2));
    }
}

/// <summary>The explicit midpoint rule: the slope at a half Euler step. Order 2, 2 NFE per step.</summary>
public sealed class MidpointSolver : FixedGridSolver
{
    public override string Name => "midpoint";
    public override int Order => 2;
    public override int EvaluationsPerStep => 2;

    protected override Tensor Step(Drift f, Tensor z, double t, double dt)
    {
        var k1 = f(z, t);
        var k2 = f(z.Plus(k1.Times(dt / 2)), t + dt / 2);
        return z.Plus(k2.Times(dt));
    }
}

/// <summary>
/// The classic fourth-order Runge–Kutta method (Kutta 1901; tableau c = (0, ½, ½, 1), b = (⅙, ⅓, ⅓, ⅙)).
/// Order 4, 4 NFE per step.
/// </summary>
public sealed class Rk4Solver : FixedGridSolver
{
    public override string Name => "rk4";
    public override int Order => 4;
    public override int EvaluationsPerStep => 4;

    protected override Tensor Step(Drift f, Tensor z, double t, double dt)
    {
        var k1 = f(z, t);
        var k2 = f(z.Plus(k1.Times(dt / 2)), t + dt / 2);
        var k3 = f(z.Plus(k2.Times(dt / 2)), t + dt / 2);
        var k4 = f(z.Plus(k3.Times(dt)), t + dt);
        return z.Plus(k1.Plus(k2.Times(2)).Plus(k3.Times(2)).Plus(k4).Times(dt / 6));
    }
}
