using NoProp.Runtime;
using NoProp.Solvers;
using static TorchSharp.torch;

namespace NoProp.Tests.Solvers;

[TestClass]
public sealed class SolverMemoryTests
{
    [TestInitialize]
    public void Initialize() => TorchRuntime.Initialize();

    private static IOdeSolver Solver(OdeSolverKind kind) => kind == OdeSolverKind.Dopri5
        // A tolerance so tight that steps of one grid interval (0.04) fail, so that rejected steps are exercised too.
        ? OdeSolvers.Create(kind, new OdeSolverOptions { RelativeTolerance = 1e-12, AbsoluteTolerance = 1e-14, InitialStep = 2.0 })
        : OdeSolvers.Create(kind);

    [TestMethod]
    [DataRow(OdeSolverKind.Euler)]
    [DataRow(OdeSolverKind.Heun)]
    [DataRow(OdeSolverKind.Midpoint)]
    [DataRow(OdeSolverKind.Rk4)]
    [DataRow(OdeSolverKind.Dopri5)]
    public void FiftyStepsLeaveOnlyTheResultAlive(OdeSolverKind kind)
    {
        var problem = OdeProblem.ExpSine;
        var solver = Solver(kind);
        var grid = TimeGrid.Uniform(0, 2, 50);
        using var z0 = problem.InitialBatch();
        OdeSolution? solution = null;
        Assert.AreEqual(1, TestSupport.TensorsLeftAlive(() => solution = solver.Integrate(problem.Drift, z0, grid)),
            $"{solver.Name}: tensors alive beyond the returned z");
        Assert.IsTrue(solution!.AcceptedSteps >= 50);
        if (kind == OdeSolverKind.Dopri5) Assert.IsTrue(solution.RejectedSteps > 0, "the test should exercise rejected steps");
        Assert.IsFalse(z0.IsInvalid, "z0 stays the caller's");
        Assert.IsTrue(problem.RelativeError(solution.Z, 0, 2) < 0.1);
        Assert.AreEqual(-1, TestSupport.TensorsLeftAlive(solution.Dispose), $"{solver.Name}: disposing the result frees z");
    }

    [TestMethod]
    [DataRow(OdeSolverKind.Euler)]
    [DataRow(OdeSolverKind.Rk4)]
    [DataRow(OdeSolverKind.Dopri5)]
    public void ADriftThatThrowsLeaksNothing(OdeSolverKind kind)
    {
        var problem = OdeProblem.ExpSine;
        var solver = Solver(kind);
        using var z0 = problem.InitialBatch();
        int calls = 0;
        Drift failing = (z, t) => ++calls == 20 ? throw new InvalidOperationException("drift failed") : problem.Drift(z, t);
        Assert.AreEqual(0, TestSupport.TensorsLeftAlive(() =>
                Assert.ThrowsExactly<InvalidOperationException>(() => solver.Integrate(failing, z0, TimeGrid.Uniform(0, 2, 50)))),
            $"{solver.Name}: tensors left alive by a failed integration");
        Assert.IsFalse(z0.IsInvalid);
    }

    [TestMethod]
    public void TheResultLandsInTheCallersDisposeScope()
    {
        var problem = OdeProblem.ExpSine;
        using var z0 = problem.InitialBatch();
        Tensor? z = null;
        Assert.AreEqual(0, TestSupport.TensorsLeftAlive(() =>
        {
            using var scope = NewDisposeScope();
            z = OdeSolvers.Create(OdeSolverKind.Dopri5).Integrate(problem.Drift, z0, [0.0, 2.0]).Z;
            Assert.IsFalse(z.IsInvalid);
        }));
        Assert.IsTrue(z!.IsInvalid, "the caller's scope owns the result");
    }
}
