using System.Text.Json;
using NoProp.Methods;
using NoProp.Runtime;

namespace NoProp.Tests.Methods;

/// <summary>
/// <see cref="MethodKind"/> is an open identity (a method declares its own), stored in model.json and ML.NET zips as the
/// snake_case names the enum it replaced wrote: those names must not change, and every saved model must keep loading.
/// </summary>
[TestClass]
public sealed class MethodKindTests
{
    /// <summary>The names model.json has always stored, written out here (not derived from the code under test).</summary>
    private static readonly (MethodKind Kind, string Stored)[] BuiltIn =
    [
        (MethodKind.DiscreteTime, "discrete_time"),
        (MethodKind.ContinuousTime, "continuous_time"),
        (MethodKind.FlowMatching, "flow_matching"),
        (MethodKind.Backprop, "backprop"),
        (MethodKind.Adjoint, "adjoint"),
    ];

    private const string Known = "discrete_time, continuous_time, flow_matching, backprop, adjoint";

    [TestMethod]
    public void EveryBuiltInMethodIsStoredUnderItsOldNameAndReadBack()
    {
        foreach (var (kind, stored) in BuiltIn)
        {
            var json = (TestSupport.Config() with { Method = kind }).ToJson();
            StringAssert.Contains(json, $"\n  \"method\": \"{stored}\",", kind.Name);
            var read = ModelConfig.FromJson(json, "model.json").Method;
            Assert.AreEqual(kind, read);
            Assert.AreSame(kind, read, "a stored name reads back as the registered instance");
            Assert.AreEqual($"\"{stored}\"", JsonSerializer.Serialize(kind), "the type's own converter, whatever the options");
            Assert.AreSame(kind, JsonSerializer.Deserialize<MethodKind>($"\"{stored}\""));
            Assert.AreEqual(stored, kind.ToString());
        }
        CollectionAssert.AreEqual(BuiltIn.Select(b => b.Kind).ToArray(), MethodRegistry.All.Select(d => d.Kind).ToArray());
        Assert.AreEqual(Known, MethodRegistry.KnownNames);
    }

    [TestMethod]
    public void ANameReadsInAnyCaseAsTheEnumConverterDid()
    {
        var config = ModelConfig.FromJson("""{ "method": "Flow_Matching" }""", "model.json");
        Assert.AreSame(MethodKind.FlowMatching, config.Method);
        Assert.AreSame(MethodKind.DiscreteTime, ModelConfig.FromJson("{}", "model.json").Method, "no \"method\": NoProp-DT, as before");
    }

    /// <summary>Fixtures/dt-head-949b309/model.json was written by the enum (commit 949b309).</summary>
    [TestMethod]
    public void AModelJsonWrittenByTheEnumLoadsAndIsWrittenTheSame()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "dt-head-949b309", "model.json");
        var text = File.ReadAllText(path);
        StringAssert.Contains(text, "\"method\": \"discrete_time\",");
        var config = ModelConfig.FromJson(text, path);
        Assert.AreSame(MethodKind.DiscreteTime, config.Method);
        StringAssert.Contains(config.ToJson(), "\"method\": \"discrete_time\",");
    }

    [TestMethod]
    [DataRow("""{ "method": "euler_chain" }""", "unknown method 'euler_chain' (known: " + Known + ")")]
    [DataRow("""{ "method": "DiscreteTime" }""", "unknown method 'DiscreteTime' (known: " + Known + ")")]
    [DataRow("""{ "method": 0 }""", "the method is a name (" + Known + "), got Number")]
    [DataRow("""{ "method": null }""", "the method is a name (" + Known + "), got Null")]
    public void AnUnknownMethodInModelJsonNamesItAndTheKnownOnes(string json, string expected)
    {
        var e = Assert.ThrowsExactly<NoPropException>(() => ModelConfig.FromJson(json, "run/model.json"));
        StringAssert.StartsWith(e.Message, $"run/model.json: invalid model configuration ({expected}");
    }

    [TestMethod]
    public void AKindIsItsNameAndOnlyASnakeCaseNameIsOne()
    {
        var declared = new MethodKind("flow_matching");
        Assert.AreEqual(MethodKind.FlowMatching, declared);
        Assert.IsTrue(declared == MethodKind.FlowMatching);
        Assert.AreEqual(MethodKind.FlowMatching.GetHashCode(), declared.GetHashCode());
        Assert.AreNotEqual(MethodKind.FlowMatching, new MethodKind("flow_matching_2"));
        foreach (var bad in new[] { "", "FlowMatching", "flow-matching", "_flow", "flow_", "flow__matching", "2flow" })
            Assert.ThrowsExactly<ArgumentException>(() => new MethodKind(bad), bad);
        Assert.ThrowsExactly<ArgumentNullException>(() => new MethodKind(null!));
    }

    [TestMethod]
    public void AnUnregisteredKindIsAClearError()
    {
        var e = Assert.ThrowsExactly<NoPropException>(() => MethodRegistry.Get(new MethodKind("euler_chain")));
        Assert.AreEqual($"method 'euler_chain' is not registered (known: {Known})", e.Message);
        Assert.IsFalse(MethodRegistry.TryGetByName("euler_chain", out _));
        Assert.IsFalse(MethodRegistry.TryGetByName(null, out _));
    }
}
