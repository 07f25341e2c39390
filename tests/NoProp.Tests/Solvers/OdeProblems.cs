using NoProp.Solvers;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Tests.Solvers;

/// <summary>An ODE with a known solution, a batch of initial values [2, 3] and the exact z(t) from z(t0) = z0.</summary>
internal sealed record OdeProblem(string Name, Drift Drift, Func<double, double, double, double> Exact, double[] InitialValues)
{
    public static readonly long[] Shape = [2, 3];

    /// <summary>dz/dt = z·cos t, z(t) = z(t0)·exp(sin t − sin t0): linear in z but time-dependent.</summary>
    public static readonly OdeProblem ExpSine = new(
        "z' = z cos t",
        (z, t) => z * Math.Cos(t),
        (z0, t0, t) => z0 * Math.Exp(Math.Sin(t) - Math.Sin(t0)),
        [1.0, -0.5, 2.0, 0.25, 3.0, -1.5]);

    /// <summary>The logistic equation dz/dt = z(1 − z), z(t) = z0·e^Δ / (1 + z0(e^Δ − 1)), Δ = t − t0: nonlinear.</summary>
    public static readonly OdeProblem Logistic = new(
        "z' = z(1 - z)",
        (z, t) => z - z * z,
        (z0, t0, t) => z0 * Math.Exp(t - t0) / (1 + z0 * (Math.Exp(t - t0) - 1)),
        [0.1, 0.5, 0.9, 1.5, 2.0, 0.3]);

    public static IEnumerable<OdeProblem> All => [ExpSine, Logistic];

    /// <summary>z0 as a new [2, 3] tensor.</summary>
    public Tensor InitialBatch(ScalarType dtype = ScalarType.Float64) => torch.tensor(InitialValues, Shape, dtype);

    /// <summary>The exact solution at t of the problem started from <see cref="InitialValues"/> at t0.</summary>
    public double[] ExactAt(double t0, double t) => InitialValues.Select(z0 => Exact(z0, t0, t)).ToArray();

    /// <summary>max |z − exact| over the batch, relative to max |exact|.</summary>
    public double RelativeError(Tensor z, double t0, double t)
    {
        var exact = ExactAt(t0, t);
        var values = Values(z);
        Assert.AreEqual(exact.Length, values.Length);
        return exact.Zip(values, (e, v) => Math.Abs(e - v)).Max() / exact.Max(Math.Abs);
    }

    public static double[] Values(Tensor z) =>
        z.dtype == ScalarType.Float64 ? z.data<double>().ToArray() : z.data<float>().Select(v => (double)v).ToArray();

    public override string ToString() => Name;
}

/// <summary>Grids for the convergence tests.</summary>
internal static class Grids
{
    /// <summary>n steps from 0 to 2, equally spaced.</summary>
    public static double[] Uniform(int n) => TimeGrid.Uniform(0, 2, n);

    /// <summary>n steps from 0 to 2, t_i = 2 sin(π/2 · i/n): smooth, with the points clustered near t = 2.</summary>
    public static double[] ClusteredNearTheEnd(int n)
    {
        var times = Enumerable.Range(0, n + 1).Select(i => 2 * Math.Sin(Math.PI / 2 * i / n)).ToArray();
        times[^1] = 2;
        return times;
    }

    /// <summary>n steps from 2 back to 0, equally spaced.</summary>
    public static double[] Backwards(int n) => TimeGrid.Uniform(2, 0, n);
}
