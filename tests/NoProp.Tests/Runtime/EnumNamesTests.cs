using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Training;

namespace NoProp.Tests.Runtime;

/// <summary>The names of option values, declared once on each enum value ([Name]) and read by EnumNames.</summary>
[TestClass]
public sealed class EnumNamesTests
{
    private enum Unnamed { A, B }

    private enum HalfNamed { [Name("a")] A, B }

    /// <summary>
    /// The exact spellings: run.json, model.json and experiment configurations store them, so a changed string would
    /// stop older run folders from loading.
    /// </summary>
    [TestMethod]
    public void EveryOptionEnumHasTheNamesItsRunFilesUse()
    {
        CollectionAssert.AreEqual(new[] { "sequential", "parallel" }, EnumNames<BlockSchedule>.Names.ToArray());
        CollectionAssert.AreEqual(new[] { "stochastic", "deterministic" }, EnumNames<DtInference>.Names.ToArray());
        CollectionAssert.AreEqual(new[] { "snr-derivative", "constant" }, EnumNames<CtWeighting>.Names.ToArray());
        CollectionAssert.AreEqual(new[] { "joint", "detached", "frozen" }, EnumNames<CtScheduleTraining>.Names.ToArray());
        CollectionAssert.AreEqual(new[] { "head", "nearest" }, EnumNames<PredictionRule>.Names.ToArray());
        CollectionAssert.AreEqual(new[] { "paper", "resnet18", "resnet50", "resnet152" }, EnumNames<BackboneKind>.Names.ToArray());
        CollectionAssert.AreEqual(new[] { "onehot", "learned", "prototype" }, EnumNames<LabelEmbeddingKind>.Names.ToArray());
        CollectionAssert.AreEqual(new[] { "constant", "cosine", "one-cycle" }, EnumNames<LearningRateScheduleKind>.Names.ToArray());
    }

    [TestMethod]
    public void EveryValueRoundTripsThroughItsName()
    {
        RoundTrips<BlockSchedule>();
        RoundTrips<DtInference>();
        RoundTrips<CtWeighting>();
        RoundTrips<CtScheduleTraining>();
        RoundTrips<PredictionRule>();
        RoundTrips<BackboneKind>();
        RoundTrips<LabelEmbeddingKind>();
        RoundTrips<LearningRateScheduleKind>();
    }

    private static void RoundTrips<T>() where T : struct, Enum
    {
        var values = Enum.GetValues<T>();
        Assert.AreEqual(values.Length, EnumNames<T>.Names.Distinct().Count(), $"{typeof(T).Name}: one distinct name per value");
        foreach (var value in values)
        {
            string name = value.ToCliName();
            Assert.AreEqual(value, EnumNames<T>.Parse(name), $"{typeof(T).Name}.{value}");
            Assert.AreEqual(value, EnumNames<T>.Parse($" {name.ToUpperInvariant()} "), "case and surrounding spaces do not matter");
        }
    }

    [TestMethod]
    public void AliasesAreReadButNeverWritten()
    {
        Assert.AreEqual(LabelEmbeddingKind.OneHot, EnumNames<LabelEmbeddingKind>.Parse("one-hot"));
        Assert.AreEqual("onehot", LabelEmbeddingKind.OneHot.ToCliName());
        Assert.AreEqual(LearningRateScheduleKind.OneCycle, EnumNames<LearningRateScheduleKind>.Parse("onecycle"));
        Assert.AreEqual("one-cycle", LearningRateScheduleKind.OneCycle.ToCliName());
        Assert.IsFalse(EnumNames<LearningRateScheduleKind>.Names.Contains("onecycle"));
    }

    [TestMethod]
    public void AnUnknownNameIsAnErrorThatListsTheAllowedOnes()
    {
        var e = Assert.ThrowsExactly<NoPropException>(() => EnumNames<BlockSchedule>.Parse("zigzag"));
        Assert.AreEqual("unknown block schedule 'zigzag' (expected sequential or parallel)", e.Message);
        e = Assert.ThrowsExactly<NoPropException>(() => EnumNames<CtScheduleTraining>.Parse("sometimes"));
        Assert.AreEqual("unknown schedule training 'sometimes' (expected joint, detached or frozen)", e.Message);
        Assert.ThrowsExactly<NoPropException>(() => EnumNames<DtInference>.Parse(null));
        Assert.ThrowsExactly<NoPropException>(() => EnumNames<DtInference>.Parse(""));
        Assert.IsFalse(EnumNames<PredictionRule>.TryParse("nearest-embedding", out _));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ((BackboneKind)99).ToCliName());
    }

    [TestMethod]
    public void AnEnumValueWithoutANameIsAProgrammingError()
    {
        var e = Assert.ThrowsExactly<TypeInitializationException>(() => EnumNames<HalfNamed>.Names);
        Assert.IsInstanceOfType<InvalidOperationException>(e.InnerException);
        StringAssert.Contains(e.InnerException!.Message, "HalfNamed.B");
        Assert.ThrowsExactly<TypeInitializationException>(() => EnumNames<Unnamed>.Names);
    }

    [TestMethod]
    public void JoinReadsAsAList()
    {
        Assert.AreEqual("a", EnumNames.Join(["a"], "or"));
        Assert.AreEqual("a or b", EnumNames.Join(["a", "b"], "or"));
        Assert.AreEqual("a, b and c", EnumNames.Join(["a", "b", "c"], "and"));
    }
}
