using NoProp.Runtime;

namespace NoProp.Solvers;

/// <summary>The ODE solvers NoProp-CT and NoProp-FM can integrate with at inference.</summary>
public enum OdeSolverKind
{
    /// <summary>Forward Euler: order 1, 1 NFE per step.</summary>
    Euler,
    /// <summary>Heun (explicit trapezoid): order 2, 2 NFE per step.</summary>
    Heun,
    /// <summary>Explicit midpoint: order 2, 2 NFE per step.</summary>
    Midpoint,
    /// <summary>Classic Runge–Kutta: order 4, 4 NFE per step.</summary>
    Rk4,
    /// <summary>Adaptive Dormand–Prince 5(4): order 5, steps chosen by the tolerances.</summary>
    Dopri5,
}

/// <summary>Chooses a solver by name from one table (as torchdiffeq's SOLVERS does) and builds it.</summary>
public static class OdeSolvers
{
    private static readonly (OdeSolverKind Kind, string Name)[] Table =
    [
        (OdeSolverKind.Euler, "euler"),
        (OdeSolverKind.Heun, "heun"),
        (OdeSolverKind.Midpoint, "midpoint"),
        (OdeSolverKind.Rk4, "rk4"),
        (OdeSolverKind.Dopri5, "dopri5"),
    ];

    /// <summary>The command-line names, in the order of <see cref="OdeSolverKind"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = Table.Select(e => e.Name).ToArray();

    /// <summary>Reads a command-line name (case-insensitive); an unknown name fails with the allowed list.</summary>
    public static OdeSolverKind Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var key = name.Trim();
        foreach (var (kind, n) in Table)
            if (string.Equals(n, key, StringComparison.OrdinalIgnoreCase)) return kind;
        throw new NoPropException($"unknown ODE solver '{name}' (expected one of {string.Join(", ", Names)})");
    }

    /// <summary>The command-line name of a solver kind.</summary>
    public static string ToCliName(OdeSolverKind kind)
    {
        foreach (var (k, n) in Table)
            if (k == kind) return n;
        throw new ArgumentOutOfRangeException(nameof(kind), kind, "not an ODE solver kind");
    }

    /// <summary>Builds a solver; <paramref name="options"/> (defaults when null) matter only to the adaptive one.</summary>
    public static IOdeSolver Create(OdeSolverKind kind, OdeSolverOptions? options = null) => kind switch
    {
        OdeSolverKind.Euler => new EulerSolver(),
        OdeSolverKind.Heun => new HeunSolver(),
        OdeSolverKind.Midpoint => new MidpointSolver(),
        OdeSolverKind.Rk4 => new Rk4Solver(),
        OdeSolverKind.Dopri5 => new Dopri5Solver(options ?? new OdeSolverOptions()),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not an ODE solver kind"),
    };

    /// <summary>Parses a name and builds the solver in one call.</summary>
    public static IOdeSolver Create(string name, OdeSolverOptions? options = null) => Create(Parse(name), options);
}
