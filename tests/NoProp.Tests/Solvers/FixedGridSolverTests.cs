using NoProp.Runtime;
using NoProp.Solvers;
using static TorchSharp.torch;

namespace NoProp.Tests.Solvers;

[TestClass]
public sealed class FixedGridSolverTests
{
    [TestInitialize]
    public void Initialize() => TorchRuntime.Initialize();

    /// <summary>
    /// log2(err_N / err_2N) for the problem integrated over grid(N) and grid(2N), in float64 so that rounding
    /// stays far below the truncation error.
    /// </summary>
    private static double ObservedOrder(IOdeSolver solver, OdeProblem problem, Func<int, double[]> grid, int n)
    {
        double Error(double[] times)
        {
            using var z0 = problem.InitialBatch();
            using var solution = solver.Integrate(problem.Drift, z0, times);
            return problem.RelativeError(solution.Z, times[0], times[^1]);
        }
        return Math.Log2(Error(grid(n)) / Error(grid(2 * n)));
    }

    private static void AssertConvergesAtItsOrder(OdeSolverKind kind, int order, Func<int, double[]> grid, string gridName)
    {
        var solver = OdeSolvers.Create(kind);
        Assert.AreEqual(order, solver.Order);
        foreach (var problem in OdeProblem.All)
            foreach (int n in new[] { 32, 64, 128 })
            {
                double observed = ObservedOrder(solver, problem, grid, n);
                Assert.AreEqual(order, observed, 0.25, $"{solver.Name} on {problem} over a {gridName} grid, N = {n}: observed order {observed:F3}");
            }
    }

    [TestMethod]
    [DataRow(OdeSolverKind.Euler, 1)]
    [DataRow(OdeSolverKind.Heun, 2)]
    [DataRow(OdeSolverKind.Midpoint, 2)]
    [DataRow(OdeSolverKind.Rk4, 4)]
    public void ConvergesAtItsOrderOnAUniformGrid(OdeSolverKind kind, int order) =>
        AssertConvergesAtItsOrder(kind, order, Grids.Uniform, "uniform");

    [TestMethod]
    [DataRow(OdeSolverKind.Euler, 1)]
    [DataRow(OdeSolverKind.Heun, 2)]
    [DataRow(OdeSolverKind.Midpoint, 2)]
    [DataRow(OdeSolverKind.Rk4, 4)]
    public void ConvergesAtItsOrderOnANonUniformGrid(OdeSolverKind kind, int order) =>
        AssertConvergesAtItsOrder(kind, order, Grids.ClusteredNearTheEnd, "clustered");

    [TestMethod]
    [DataRow(OdeSolverKind.Euler, 1)]
    [DataRow(OdeSolverKind.Heun, 2)]
    [DataRow(OdeSolverKind.Midpoint, 2)]
    [DataRow(OdeSolverKind.Rk4, 4)]
    public void ConvergesAtItsOrderBackwardsInTime(OdeSolverKind kind, int order)
    {
        // z' = z cos t from t = 2 back to 0 (the logistic problem blows up backwards for z0 > 1).
        var solver = OdeSolvers.Create(kind);
        foreach (int n in new[] { 32, 64, 128 })
        {
            double observed = ObservedOrder(solver, OdeProblem.ExpSine, Grids.Backwards, n);
            Assert.AreEqual(order, observed, 0.25, $"{solver.Name} backwards, N = {n}: observed order {observed:F3}");
        }
    }

    [TestMethod]
    [DataRow(OdeSolverKind.Euler)]
    [DataRow(OdeSolverKind.Heun)]
    [DataRow(OdeSolverKind.Midpoint)]
    [DataRow(OdeSolverKind.Rk4)]
    public void BackwardsIntegrationRecoversTheInitialValue(OdeSolverKind kind)
    {
        var problem = OdeProblem.ExpSine;
        var solver = OdeSolvers.Create(kind);
        using var z0 = problem.InitialBatch();
        using var forward = solver.Integrate(problem.Drift, z0, TimeGrid.Uniform(0, 2, 400));
        using var back = solver.Integrate(problem.Drift, forward.Z, TimeGrid.Uniform(2, 0, 400));
        double error = problem.RelativeError(back.Z, 0, 0);
        Assert.IsTrue(error < (kind == OdeSolverKind.Euler ? 2e-2 : 1e-4), $"{solver.Name}: z(2 → 0) is off z0 by {error:E2}");
        Assert.IsFalse(forward.Z.IsInvalid, "the backward pass must not dispose its input");
    }

    [TestMethod]
    [DataRow(OdeSolverKind.Euler, 1)]
    [DataRow(OdeSolverKind.Heun, 2)]
    [DataRow(OdeSolverKind.Midpoint, 2)]
    [DataRow(OdeSolverKind.Rk4, 4)]
    public void CountsEveryDriftEvaluation(OdeSolverKind kind, int perStep)
    {
        var solver = (FixedGridSolver)OdeSolvers.Create(kind);
        Assert.AreEqual(perStep, solver.EvaluationsPerStep);
        foreach (var times in new[] { Grids.Uniform(7), Grids.ClusteredNearTheEnd(13), Grids.Backwards(5), new[] { 0.0, 1.0 } })
        {
            int calls = 0;
            var seen = new List<double>();
            Drift counting = (z, t) => { calls++; seen.Add(t); return OdeProblem.ExpSine.Drift(z, t); };
            using var z0 = OdeProblem.ExpSine.InitialBatch();
            using var solution = solver.Integrate(counting, z0, times);
            int steps = times.Length - 1;
            Assert.AreEqual(perStep * steps, calls, $"{solver.Name}: drift calls over {steps} steps");
            Assert.AreEqual(calls, solution.FunctionEvaluations, $"{solver.Name}: reported NFE");
            Assert.AreEqual(steps, solution.AcceptedSteps);
            Assert.AreEqual(0, solution.RejectedSteps);
            double lo = Math.Min(times[0], times[^1]), hi = Math.Max(times[0], times[^1]);
            Assert.IsTrue(seen.All(t => t >= lo && t <= hi), $"{solver.Name} evaluated the drift outside [{lo}, {hi}]");
        }
    }

    [TestMethod]
    public void EulerTakesExactlyTheStepsOfTheGrid()
    {
        // z' = 1 on the grid (0, 0.5, 2): Euler gives z0 + 2 exactly; z' = t gives 0·0.5 + 0.5·1.5 = 0.75.
        using var z0 = zeros(2, 3, dtype: ScalarType.Float64);
        using var one = ones(2, 3, dtype: ScalarType.Float64);
        var euler = new EulerSolver();
        using (var s = euler.Integrate((z, t) => one, z0, [0.0, 0.5, 2.0]))
            Assert.IsTrue(OdeProblem.Values(s.Z).All(v => v == 2.0));
        using (var s = euler.Integrate((z, t) => one * t, z0, [0.0, 0.5, 2.0]))
            Assert.IsTrue(OdeProblem.Values(s.Z).All(v => v == 0.75));
        Assert.IsFalse(one.IsInvalid, "a tensor the drift returns but did not create is never disposed");
    }

    [TestMethod]
    public void RejectsAnInvalidGrid()
    {
        var solver = new Rk4Solver();
        using var z0 = OdeProblem.ExpSine.InitialBatch();
        Assert.ThrowsExactly<ArgumentException>(() => solver.Integrate(OdeProblem.ExpSine.Drift, z0, [0.0]));
        Assert.ThrowsExactly<ArgumentException>(() => solver.Integrate(OdeProblem.ExpSine.Drift, z0, [0.0, 1.0, 1.0]));
        Assert.ThrowsExactly<ArgumentException>(() => solver.Integrate(OdeProblem.ExpSine.Drift, z0, [0.0, 2.0, 1.0]));
        Assert.ThrowsExactly<ArgumentException>(() => solver.Integrate(OdeProblem.ExpSine.Drift, z0, [0.0, double.NaN, 1.0]));
        Assert.ThrowsExactly<ArgumentNullException>(() => solver.Integrate(OdeProblem.ExpSine.Drift, z0, null!));
    }
}
