using NoProp.Runtime;
using NoProp.Solvers;
using static TorchSharp.torch;

namespace NoProp.Tests.Solvers;

[TestClass]
public sealed class Dopri5SolverTests
{
    private static readonly OdeSolverOptions Tight = new() { RelativeTolerance = 1e-6, AbsoluteTolerance = 1e-8 };
    private static readonly OdeSolverOptions Loose = new() { RelativeTolerance = 1e-3, AbsoluteTolerance = 1e-6 };

    [TestInitialize]
    public void Initialize() => TorchRuntime.Initialize();

    private static (double Error, OdeSolution Solution, int Calls) Solve(OdeProblem problem, OdeSolverOptions options, double[] times)
    {
        int calls = 0;
        Drift counting = (z, t) => { calls++; return problem.Drift(z, t); };
        using var z0 = problem.InitialBatch();
        var solution = new Dopri5Solver(options).Integrate(counting, z0, times);
        Assert.IsFalse(z0.IsInvalid, "z0 stays the caller's");
        return (problem.RelativeError(solution.Z, times[0], times[^1]), solution, calls);
    }

    [TestMethod]
    public void MeetsATightTolerance()
    {
        foreach (var problem in OdeProblem.All)
        {
            var (error, solution, _) = Solve(problem, Tight, [0.0, 2.0]);
            using (solution)
            {
                Assert.IsTrue(error < 1e-5, $"{problem}: relative error {error:E2} at rtol 1e-6");
                Assert.IsTrue(solution.AcceptedSteps > 1, "an adaptive step is smaller than the whole interval at this tolerance");
            }
        }
    }

    [TestMethod]
    public void ALooserToleranceCostsFewerEvaluations()
    {
        foreach (var problem in OdeProblem.All)
        {
            var (looseError, loose, _) = Solve(problem, Loose, [0.0, 2.0]);
            var (tightError, tight, _) = Solve(problem, Tight, [0.0, 2.0]);
            using (loose)
            using (tight)
            {
                Assert.IsTrue(loose.FunctionEvaluations < tight.FunctionEvaluations,
                    $"{problem}: {loose.FunctionEvaluations} NFE at rtol 1e-3 against {tight.FunctionEvaluations} at rtol 1e-6");
                Assert.IsTrue(looseError < 1e-2, $"{problem}: relative error {looseError:E2} at rtol 1e-3");
                Assert.IsTrue(tightError < looseError, $"{problem}: the tighter tolerance is more accurate");
            }
        }
    }

    [TestMethod]
    public void CountsEvaluationsExactlyWithFirstSameAsLast()
    {
        foreach (var problem in OdeProblem.All)
        {
            // Automatic initial step: f(z0, t0), one probe, then 6 per attempted step.
            var (_, auto, calls) = Solve(problem, Tight, [0.0, 2.0]);
            using (auto)
            {
                Assert.AreEqual(calls, auto.FunctionEvaluations, $"{problem}: reported NFE against drift calls");
                Assert.AreEqual(2 + 6 * (auto.AcceptedSteps + auto.RejectedSteps), calls, $"{problem}: FSAL accounting");
            }
            // A given initial step: no probe.
            var (_, given, givenCalls) = Solve(problem, Tight with { InitialStep = 0.05 }, [0.0, 2.0]);
            using (given)
            {
                Assert.AreEqual(givenCalls, given.FunctionEvaluations);
                Assert.AreEqual(1 + 6 * (given.AcceptedSteps + given.RejectedSteps), givenCalls, $"{problem}: FSAL accounting, given h0");
            }
        }
    }

    [TestMethod]
    public void RecoversFromRejectedSteps()
    {
        // A first trial step over the whole interval at rtol 1e-8 must be rejected, and the result still accurate.
        var options = new OdeSolverOptions { RelativeTolerance = 1e-8, AbsoluteTolerance = 1e-10, InitialStep = 2.0 };
        foreach (var problem in OdeProblem.All)
        {
            var (error, solution, calls) = Solve(problem, options, [0.0, 2.0]);
            using (solution)
            {
                Assert.IsTrue(solution.RejectedSteps >= 1, $"{problem}: expected a rejected first step");
                Assert.AreEqual(calls, solution.FunctionEvaluations);
                Assert.AreEqual(1 + 6 * (solution.AcceptedSteps + solution.RejectedSteps), calls);
                Assert.IsTrue(error < 1e-7, $"{problem}: relative error {error:E2} at rtol 1e-8");
            }
        }
    }

    [TestMethod]
    public void IntegratesBackwardsToTheInitialValue()
    {
        var problem = OdeProblem.ExpSine;
        var solver = new Dopri5Solver(Tight);
        using var z0 = problem.InitialBatch();
        using var forward = solver.Integrate(problem.Drift, z0, [0.0, 2.0]);
        using var back = solver.Integrate(problem.Drift, forward.Z, [2.0, 0.0]);
        double error = problem.RelativeError(back.Z, 0, 0);
        Assert.IsTrue(error < 1e-5, $"z(0 → 2 → 0) is off z0 by {error:E2}");
        Assert.IsTrue(back.AcceptedSteps > 1);
        // And straight from the exact z(2).
        using var z2 = tensor(problem.ExactAt(0, 2), OdeProblem.Shape, ScalarType.Float64);
        using var fromExact = solver.Integrate(problem.Drift, z2, TimeGrid.Uniform(2, 0, 3));
        Assert.IsTrue(problem.RelativeError(fromExact.Z, 0, 0) < 1e-5);
    }

    [TestMethod]
    public void LandsExactlyOnEveryGridPoint()
    {
        var problem = OdeProblem.Logistic;
        var grid = Grids.ClusteredNearTheEnd(5);
        var seen = new HashSet<double>();
        Drift recording = (z, t) => { seen.Add(t); return problem.Drift(z, t); };
        using var z0 = problem.InitialBatch();
        using var solution = new Dopri5Solver(Loose).Integrate(recording, z0, grid);
        foreach (var t in grid) Assert.Contains(t, seen, $"no step ended on the grid point {t}");
        Assert.IsTrue(seen.All(t => t >= 0 && t <= 2), "the drift was evaluated outside the interval");
        Assert.IsTrue(solution.AcceptedSteps >= grid.Length - 1);
        Assert.IsTrue(problem.RelativeError(solution.Z, 0, 2) < 1e-2);
    }

    [TestMethod]
    public void WorksInSinglePrecision()
    {
        var problem = OdeProblem.ExpSine;
        using var z0 = problem.InitialBatch(ScalarType.Float32);
        using var solution = new Dopri5Solver().Integrate(problem.Drift, z0, [0.0, 2.0]);
        Assert.AreEqual(ScalarType.Float32, solution.Z.dtype);
        Assert.IsTrue(problem.RelativeError(solution.Z, 0, 2) < 1e-2);
    }

    [TestMethod]
    public void DriftsReturningTheirInputOrAKeptTensorAreNotDisposed()
    {
        var solver = new Dopri5Solver(Tight);
        using var z0 = OdeProblem.ExpSine.InitialBatch();
        // z' = z: z(1) = e·z0, with the drift handing back the solver's own state.
        using (var s = solver.Integrate((z, t) => z, z0, [0.0, 1.0]))
        {
            var expected = OdeProblem.ExpSine.InitialValues.Select(v => v * Math.E).ToArray();
            var actual = OdeProblem.Values(s.Z);
            for (int i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], actual[i], 1e-5 * Math.Abs(expected[i]) + 1e-8);
        }
        // z' = c, a tensor the drift keeps: z(1) = z0 + c.
        using var c = full(2, 3, 0.5, dtype: ScalarType.Float64);
        using (var s = solver.Integrate((z, t) => c, z0, [0.0, 1.0]))
        {
            var actual = OdeProblem.Values(s.Z);
            for (int i = 0; i < actual.Length; i++) Assert.AreEqual(OdeProblem.ExpSine.InitialValues[i] + 0.5, actual[i], 1e-12);
        }
        Assert.IsFalse(c.IsInvalid, "the drift's constant was disposed");
        Assert.IsFalse(z0.IsInvalid, "z0 was disposed");
    }

    /// <summary>
    /// Fifth order: with a fixed step (every step accepted under a huge tolerance, each one landing on the next point of a
    /// uniform grid) the global error must fall by about 2⁵ = 32 per halving of the step. A wrong entry of A, b or c
    /// breaks an order condition and lowers the order (A₅₂, b₃, c₄ or A₃₂ off in the last digit: the ratio drops to 1–2).
    /// z' = z cos t is in its asymptotic range from 16 steps (ratios 36.5, 34.5, 33.2); the logistic problem's error
    /// cancels at these steps (ratios above 50), so it is checked through the local estimate below.
    /// </summary>
    [TestMethod]
    public void FixedStepErrorFallsThirtyTwoFoldPerHalving()
    {
        foreach (var problem in new[] { OdeProblem.ExpSine })
        {
            var errors = new List<double>();
            foreach (int n in new[] { 16, 32, 64, 128 })
            {
                var fixedStep = new OdeSolverOptions { RelativeTolerance = 1e10, AbsoluteTolerance = 1e10, InitialStep = 2.0 / n };
                var grid = Grids.Uniform(n);
                using var z0 = problem.InitialBatch();
                using var solution = new Dopri5Solver(fixedStep).Integrate(problem.Drift, z0, grid);
                Assert.AreEqual(n, solution.AcceptedSteps, $"{problem}: one step per grid interval");
                Assert.AreEqual(0, solution.RejectedSteps);
                errors.Add(problem.RelativeError(solution.Z, 0, 2));
            }
            for (int i = 1; i < errors.Count; i++)
            {
                double ratio = errors[i - 1] / errors[i];
                Assert.IsTrue(ratio > 26 && ratio < 40, $"{problem}: error ratio {ratio:F1} per halving (errors {string.Join(", ", errors.Select(e => e.ToString("E2")))}); fifth order gives 32");
            }
        }
    }

    /// <summary>
    /// The embedded estimate e = h·Σ(b − b̂)·k is the local error of the fourth-order solution: it must fall like h⁵
    /// (32 per halving) and exceed the true local error of the fifth-order step it accepts, which falls like h⁶ (64).
    /// A wrong error weight (Σ(b − b̂) ≠ 0, or a b̂ that is not fourth order) makes it fall like h or h².
    /// </summary>
    [TestMethod]
    public void TheEmbeddedErrorEstimateIsFifthOrderLocalAndBoundsTheTrueError()
    {
        var solver = new Dopri5Solver(new OdeSolverOptions { RelativeTolerance = 0, AbsoluteTolerance = 1 });
        foreach (var problem in OdeProblem.All)
        {
            var estimates = new List<double>();
            var trueErrors = new List<double>();
            foreach (double h in new[] { 0.2, 0.1, 0.05, 0.025 })
            {
                using var z0 = problem.InitialBatch();
                using var k1 = problem.Drift(z0, 0.3);
                var (estimate, z1, k7) = solver.Attempt(problem.Drift, z0, k1, 0.3, h, 0.3 + h);
                Assert.IsNotNull(z1, $"{problem}: a step of {h} is accepted at atol 1");
                var exact = problem.InitialValues.Select(v => problem.Exact(v, 0.3, 0.3 + h)).ToArray();
                trueErrors.Add(Math.Sqrt(OdeProblem.Values(z1).Zip(exact, (a, b) => (a - b) * (a - b)).Average()));   // RMS, like the estimate
                estimates.Add(estimate);
                z1.Dispose(); k7!.Dispose();
            }
            for (int i = 1; i < estimates.Count; i++)
            {
                double ratio = estimates[i - 1] / estimates[i];
                Assert.IsTrue(ratio > 24 && ratio < 44, $"{problem}: estimate ratio {ratio:F1} per halving ({string.Join(", ", estimates.Select(e => e.ToString("E2")))}); h⁵ gives 32");
                Assert.IsTrue(estimates[i] > trueErrors[i], $"{problem}, step {i}: the estimate {estimates[i]:E2} must exceed the fifth-order step's true error {trueErrors[i]:E2}");
            }
            double trueRatio = trueErrors[^2] / trueErrors[^1];
            Assert.IsTrue(trueRatio > 40, $"{problem}: the accepted (fifth-order) solution's local error falls {trueRatio:F1}× per halving; h⁶ gives 64");
        }
    }

    [TestMethod]
    public void TooManyStepsFailClearly()
    {
        using var z0 = OdeProblem.ExpSine.InitialBatch();
        var solver = new Dopri5Solver(new OdeSolverOptions { RelativeTolerance = 1e-10, AbsoluteTolerance = 1e-12, MaxSteps = 3 });
        var e = Assert.ThrowsExactly<NoPropException>(() => solver.Integrate(OdeProblem.ExpSine.Drift, z0, [0.0, 2.0]));
        StringAssert.Contains(e.Message, "more than 3 steps");
    }

    [TestMethod]
    public void ANonFiniteDriftFailsClearly()
    {
        using var z0 = OdeProblem.ExpSine.InitialBatch();
        Drift nan = (z, t) => z * double.NaN;
        var auto = Assert.ThrowsExactly<NoPropException>(() => new Dopri5Solver().Integrate(nan, z0, [0.0, 1.0]));
        StringAssert.Contains(auto.Message, "non-finite");
        // With a given initial step every trial is rejected until the step underflows.
        var given = Assert.ThrowsExactly<NoPropException>(
            () => new Dopri5Solver(new OdeSolverOptions { InitialStep = 0.1 }).Integrate(nan, z0, [1.0, 2.0]));
        StringAssert.Contains(given.Message, "non-finite");
    }
}
