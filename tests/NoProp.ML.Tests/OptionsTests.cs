using Microsoft.ML;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Solvers;

namespace NoProp.ML.Tests;

[TestClass]
public sealed class OptionsTests
{
    [TestMethod]
    public void EveryOptionTypeIsReachableFromNoPropMlAlone()
    {
        // Issue 11, defect 2: `using NoProp.ML;` (and ML.NET, System) must be enough to write every option.
        // Progress takes the core's ITrainingProgress, which NoPropProgress.Console() builds without naming it.
        foreach (var property in typeof(NoPropOptions).GetProperties().Where(p => p.CanWrite))
        {
            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (type.IsArray) type = type.GetElementType()!;
            if (type.IsGenericType) type = type.GetGenericArguments().Single();
            string ns = type.Namespace ?? "";
            bool reachable = ns == "NoProp.ML" || ns == "System" || ns.StartsWith("System.", StringComparison.Ordinal) || ns.StartsWith("Microsoft.ML", StringComparison.Ordinal)
                || typeof(NoPropProgress).GetMethods().Any(m => m.ReturnType == type);
            Assert.IsTrue(reachable, $"NoPropOptions.{property.Name} is a {type.FullName}");
        }
    }

    [TestMethod]
    public void TheOptionEnumsAreTheCoresValues()
    {
        // The core's enums are the one definition; a member added there without one here fails this test.
        Same<NoPropLabelEmbedding, LabelEmbeddingKind>(Enum.GetValues<LabelEmbeddingKind>());
        Same<NoPropOdeSolver, OdeSolverKind>(Enum.GetValues<OdeSolverKind>());
        Same<NoPropInferencePrecision, NoProp.Runtime.InferencePrecision>(Enum.GetValues<NoProp.Runtime.InferencePrecision>());
    }

    [TestMethod]
    public void EachNoPropMethodIsTheRegisteredMethodOfItsName()
    {
        // MethodKind is an open identity (no enum): NoPropMethod maps by name, its numbers are those it always had.
        var expected = new (NoPropMethod Ml, MethodKind Core, int Value)[]
        {
            (NoPropMethod.DiscreteTime, MethodKind.DiscreteTime, 0),
            (NoPropMethod.ContinuousTime, MethodKind.ContinuousTime, 1),
            (NoPropMethod.FlowMatching, MethodKind.FlowMatching, 2),
        };
        CollectionAssert.AreEqual(expected.Select(e => e.Ml).ToArray(), Enum.GetValues<NoPropMethod>());
        foreach (var (ml, core, value) in expected)
        {
            Assert.AreEqual(value, (int)ml, $"NoPropMethod.{ml}");
            Assert.AreEqual(core, ml.ToMethodKind(), $"NoPropMethod.{ml}");
            Assert.AreEqual(ml, NoPropMethods.FromMethodKind(core));
        }
        Assert.IsNull(NoPropMethods.FromMethodKind(MethodKind.Backprop), "the baselines are not offered through ML.NET");
        Assert.IsNull(NoPropMethods.FromMethodKind(MethodKind.Adjoint));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ((NoPropMethod)42).ToMethodKind());
    }

    private static void Same<TMl, TCore>(TCore[] core) where TMl : struct, Enum where TCore : struct, Enum
    {
        var ml = Enum.GetValues<TMl>();
        Assert.AreEqual(core.Length, ml.Length, typeof(TMl).Name);
        foreach (var value in core)
            Assert.AreEqual(value.ToString(), Enum.GetName(typeof(TMl), Convert.ToInt32(value)), $"{typeof(TMl).Name} for {typeof(TCore).Name}.{value}");
    }

    [TestMethod]
    public void AnOptionOutsideItsEnumIsRejected()
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new NoPropEstimator(new MLContext(), new NoPropOptions { Solver = (NoPropOdeSolver)42 }));
        StringAssert.Contains(e.Message, "NoPropOptions.Solver is not a NoPropOdeSolver: 42");
        var p = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new NoPropEstimator(new MLContext(), new NoPropOptions { InferencePrecision = (NoPropInferencePrecision)3 }));
        StringAssert.Contains(p.Message, "NoPropOptions.InferencePrecision is not a NoPropInferencePrecision: 3");
    }
}
