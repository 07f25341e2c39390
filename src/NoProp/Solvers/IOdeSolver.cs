using static TorchSharp.torch;

namespace NoProp.Solvers;

/// <summary>
/// The right-hand side of the ODE dz/dt = f(z, t), with z a batch tensor [B, d]. NoProp-CT and NoProp-FM
/// integrate the network's drift with it at inference; the solvers know nothing of networks (k-diffusion's
/// samplers take the model as a plain callable in the same way).
/// <para>
/// The drift must not modify z in place and must return a tensor of z's shape, dtype and device. Solvers
/// call it inside their own dispose scopes, so every tensor it creates during a call is freed by the solver;
/// tensors it did not create during the call (its input, a captured constant) are never disposed. A drift
/// that keeps tensors between calls (a cache) must detach them from dispose scopes, as any TorchSharp
/// code run inside a scope must.
/// </para>
/// </summary>
public delegate Tensor Drift(Tensor z, double t);

/// <summary>An ODE solver: integrates dz/dt = f(z, t) from times[0] to times[^1] over a time grid.</summary>
public interface IOdeSolver
{
    /// <summary>The solver's name as the command line spells it ("euler", "rk4", …).</summary>
    string Name { get; }

    /// <summary>The order p of the method: the global error shrinks like hᵖ as the step h shrinks.</summary>
    int Order { get; }

    /// <summary>
    /// Integrates from z(times[0]) = <paramref name="z0"/> to times[^1]. The grid needs at least two points and
    /// must be strictly monotone, either increasing (forwards in time) or decreasing (backwards, as the adjoint
    /// method needs). Fixed-grid solvers take one step per grid interval; the adaptive solver chooses its own
    /// steps but lands exactly on every grid point. <paramref name="z0"/> stays the caller's: it is never
    /// disposed, and the returned <see cref="OdeSolution.Z"/> is always a new tensor.
    /// </summary>
    OdeSolution Integrate(Drift f, Tensor z0, IReadOnlyList<double> times);
}

/// <summary>
/// The outcome of one integration. <see cref="Z"/> is z at times[^1], owned by the caller (dispose the
/// solution or Z). <see cref="FunctionEvaluations"/> is the exact number of drift calls (NFE), the cost
/// measure the paper and the ODE literature report. A fixed-grid solver accepts every step and rejects none.
/// </summary>
public sealed record OdeSolution(Tensor Z, int FunctionEvaluations, int AcceptedSteps, int RejectedSteps) : IDisposable
{
    public void Dispose() => Z.Dispose();
}
