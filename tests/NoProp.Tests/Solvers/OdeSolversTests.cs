using NoProp.Runtime;
using NoProp.Solvers;
using static TorchSharp.torch;

namespace NoProp.Tests.Solvers;

[TestClass]
public sealed class OdeSolversTests
{
    [TestInitialize]
    public void Initialize() => TorchRuntime.Initialize();

    [TestMethod]
    public void EveryKindRoundTripsThroughItsName()
    {
        foreach (var kind in Enum.GetValues<OdeSolverKind>())
        {
            var name = OdeSolvers.ToCliName(kind);
            Assert.AreEqual(kind, OdeSolvers.Parse(name));
            Assert.AreEqual(name, OdeSolvers.Create(kind).Name);
            Assert.AreEqual(name, OdeSolvers.Create(name).Name);
        }
        CollectionAssert.AreEqual(new[] { "euler", "heun", "midpoint", "rk4", "dopri5" }, OdeSolvers.Names.ToArray());
        Assert.AreEqual(OdeSolverKind.Rk4, OdeSolvers.Parse(" RK4 "));
    }

    [TestMethod]
    public void KindsHaveTheirOrders()
    {
        Assert.AreEqual(1, OdeSolvers.Create(OdeSolverKind.Euler).Order);
        Assert.AreEqual(2, OdeSolvers.Create(OdeSolverKind.Heun).Order);
        Assert.AreEqual(2, OdeSolvers.Create(OdeSolverKind.Midpoint).Order);
        Assert.AreEqual(4, OdeSolvers.Create(OdeSolverKind.Rk4).Order);
        Assert.AreEqual(5, OdeSolvers.Create(OdeSolverKind.Dopri5).Order);
    }

    [TestMethod]
    public void AnUnknownNameFailsNamingItAndTheAllowedOnes()
    {
        var e = Assert.ThrowsExactly<NoPropException>(() => OdeSolvers.Parse("rk45"));
        StringAssert.Contains(e.Message, "'rk45'");
        foreach (var name in OdeSolvers.Names) StringAssert.Contains(e.Message, name);
        Assert.ThrowsExactly<NoPropException>(() => OdeSolvers.Parse(""));
        Assert.ThrowsExactly<NoPropException>(() => OdeSolvers.Create("adams"));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => OdeSolvers.ToCliName((OdeSolverKind)99));
    }

    [TestMethod]
    public void OptionsHaveDocumentedDefaultsAndRejectValuesOutOfRange()
    {
        var defaults = new OdeSolverOptions();
        Assert.AreEqual(1e-3, defaults.RelativeTolerance);
        Assert.AreEqual(1e-6, defaults.AbsoluteTolerance);
        Assert.AreEqual(10_000, defaults.MaxSteps);
        Assert.IsNull(defaults.InitialStep);
        Assert.AreSame(defaults, new Dopri5Solver(defaults).Options);

        foreach (var (bad, what) in new (OdeSolverOptions, string)[]
        {
            (new() { RelativeTolerance = -1e-3 }, "relative tolerance"),
            (new() { RelativeTolerance = double.NaN }, "relative tolerance"),
            (new() { AbsoluteTolerance = 0 }, "absolute tolerance"),
            (new() { MaxSteps = 0 }, "max steps"),
            (new() { InitialStep = 0 }, "initial step"),
            (new() { InitialStep = double.PositiveInfinity }, "initial step"),
        })
        {
            var e = Assert.ThrowsExactly<NoPropException>(() => OdeSolvers.Create(OdeSolverKind.Dopri5, bad));
            StringAssert.Contains(e.Message, what);
        }
    }

    [TestMethod]
    public void UniformGridsHaveExactEndpoints()
    {
        CollectionAssert.AreEqual(new[] { 0.0, 0.25, 0.5, 0.75, 1.0 }, TimeGrid.Uniform(0, 1, 4));
        CollectionAssert.AreEqual(new[] { 2.0, 1.0, 0.0 }, TimeGrid.Uniform(2, 0, 2));
        var grid = TimeGrid.Uniform(0.1, 0.7, 3);
        Assert.HasCount(4, grid);
        Assert.AreEqual(0.1, grid[0]);
        Assert.AreEqual(0.7, grid[^1]);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => TimeGrid.Uniform(0, 1, 0));
        Assert.ThrowsExactly<ArgumentException>(() => TimeGrid.Uniform(1, 1, 4));
        Assert.ThrowsExactly<ArgumentException>(() => TimeGrid.Uniform(0, double.NaN, 4));
    }
}
