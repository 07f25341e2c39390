using NoProp.Solvers;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Methods.Adjoint;

/// <summary>
/// The adjoint sensitivity method of Chen et al. 2018 ("Neural Ordinary Differential Equations", Algorithm 1):
/// gradients of a loss L(z(t1)) with respect to z(t0) and to the inputs θ of the dynamics dz/dt = f(z, t; θ),
/// computed by one more ODE solve backwards in time instead of back-propagating through the solver's steps.
/// <para>
/// The augmented state s = [z, a, g] with a(t) = ∂L/∂z(t) and g accumulating ∂L/∂θ follows
/// dz/dt = f(z, t), da/dt = −aᵀ·∂f/∂z, dg/dt = −aᵀ·∂f/∂θ from s(t1) = [z(t1), ∂L/∂z(t1), 0] back to t0, where
/// a(t0) = ∂L/∂z(t0) and g(t0) = ∂L/∂θ. The vector–Jacobian products come from one autograd call per function
/// evaluation; nothing of the forward solve is kept, so memory does not grow with the number of steps.
/// The state is packed into one flat tensor so that every solver of the suite (fixed-grid and adaptive)
/// integrates it unchanged. z is reconstructed by integrating backwards, so the gradient matches the one
/// back-propagated through the forward solver only up to the solvers' discretisation error.
/// </para>
/// </summary>
public static class AdjointSensitivity
{
    /// <summary>The dynamics f(z, t): must build its autograd graph from z and the inputs (called with grad enabled).</summary>
    public delegate Tensor Dynamics(Tensor z, double t);

    /// <summary>
    /// Integrates the adjoint system from <paramref name="times"/>[^1] (= t1) back to <paramref name="times"/>[0] (= t0).
    /// <paramref name="z1"/> is z(t1) from the forward solve, <paramref name="a1"/> = ∂L/∂z(t1), and
    /// <paramref name="inputs"/> the tensors (requiring grad) whose gradients are wanted.
    /// </summary>
    public static AdjointResult Backward(IOdeSolver solver, Dynamics f, IReadOnlyList<Tensor> inputs, Tensor z1, Tensor a1, IReadOnlyList<double> times)
    {
        ArgumentNullException.ThrowIfNull(solver);
        ArgumentNullException.ThrowIfNull(f);
        if (!z1.shape.SequenceEqual(a1.shape)) throw new ArgumentException("z1 and a1 must have the same shape", nameof(a1));
        foreach (var input in inputs)
            if (!input.requires_grad) throw new ArgumentException("every input of the adjoint must require grad", nameof(inputs));
        var shape = z1.shape;
        long n = z1.numel();
        var sizes = inputs.Select(i => i.numel()).ToArray();
        var backwardTimes = times.Reverse().ToArray();

        using var scope = NewDisposeScope();
        Tensor augmentedDrift(Tensor s, double t)
        {
            using var grad = enable_grad();
            var z = s.narrow(0, 0, n).view(shape).detach().requires_grad_(true);
            var a = s.narrow(0, n, n).view(shape);
            var dz = f(z, t);
            var vjp = autograd.grad([dz], [z, .. inputs], [a]);
            var parts = new List<Tensor>(vjp.Count + 1) { dz.detach().flatten() };
            parts.AddRange(vjp.Select(g => g.neg().flatten()));
            return cat(parts, 0);
        }

        using (no_grad())
        {
            var initial = new List<Tensor> { z1.detach().flatten(), a1.detach().flatten() };
            initial.AddRange(inputs.Select(i => zeros(i.numel(), dtype: z1.dtype, device: z1.device)));
            var s1 = cat(initial, 0);
            var solution = solver.Integrate(augmentedDrift, s1, backwardTimes);
            var s0 = solution.Z;
            var z0 = s0.narrow(0, 0, n).view(shape).clone();
            var a0 = s0.narrow(0, n, n).view(shape).clone();
            var gradients = new Tensor[inputs.Count];
            long offset = 2 * n;
            for (int i = 0; i < inputs.Count; i++)
            {
                gradients[i] = s0.narrow(0, offset, sizes[i]).view(inputs[i].shape).clone().MoveToOuterDisposeScope();
                offset += sizes[i];
            }
            return new AdjointResult(z0.MoveToOuterDisposeScope(), a0.MoveToOuterDisposeScope(), gradients, solution.FunctionEvaluations);
        }
    }
}

/// <summary>z(t0) reconstructed backwards, a(t0) = ∂L/∂z(t0), ∂L/∂input for every input, and the backward solve's NFE.</summary>
public sealed record AdjointResult(Tensor Z0, Tensor A0, Tensor[] Gradients, int FunctionEvaluations) : IDisposable
{
    public void Dispose()
    {
        Z0.Dispose();
        A0.Dispose();
        foreach (var g in Gradients) g.Dispose();
    }
}
