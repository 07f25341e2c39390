using NoProp.Runtime;

namespace NoProp.Solvers;

/// <summary>
/// Settings of the adaptive solver (<see cref="Dopri5Solver"/>); the fixed-grid solvers take their steps
/// from the time grid and ignore these.
/// <para>
/// Defaults: rtol = 1e-3 and atol = 1e-6, SciPy's solve_ivp defaults. At inference NoProp only needs the
/// class whose embedding is nearest z_1, which 0.1 % relative accuracy in z settles with a wide margin;
/// atol is small so that it only guards components near zero, where a relative tolerance means nothing.
/// Tighten both (say 1e-6 / 1e-8) where z itself must be accurate, as for the adjoint method.
/// </para>
/// </summary>
public sealed record OdeSolverOptions
{
    public const double DefaultRelativeTolerance = 1e-3;
    public const double DefaultAbsoluteTolerance = 1e-6;
    public const int DefaultMaxSteps = 10_000;

    /// <summary>rtol: the allowed local error relative to |z| (per element). At least 0.</summary>
    public double RelativeTolerance { get; init; } = DefaultRelativeTolerance;

    /// <summary>atol: the allowed local error where |z| is near zero (per element). Greater than 0.</summary>
    public double AbsoluteTolerance { get; init; } = DefaultAbsoluteTolerance;

    /// <summary>The most steps (accepted and rejected together) one integration may attempt before it fails.</summary>
    public int MaxSteps { get; init; } = DefaultMaxSteps;

    /// <summary>The magnitude of the first trial step; null selects it automatically (Hairer's algorithm, one extra NFE).</summary>
    public double? InitialStep { get; init; }

    /// <summary>Throws a <see cref="NoPropException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        if (!(RelativeTolerance >= 0 && double.IsFinite(RelativeTolerance)))
            throw new NoPropException($"ODE solver relative tolerance must be a finite number ≥ 0, got {RelativeTolerance}");
        if (!(AbsoluteTolerance > 0 && double.IsFinite(AbsoluteTolerance)))
            throw new NoPropException($"ODE solver absolute tolerance must be a finite number > 0, got {AbsoluteTolerance}");
        if (MaxSteps < 1)
            throw new NoPropException($"ODE solver max steps must be at least 1, got {MaxSteps}");
        if (InitialStep is double h && !(h > 0 && double.IsFinite(h)))
            throw new NoPropException($"ODE solver initial step must be a finite number > 0, got {h}");
    }
}
