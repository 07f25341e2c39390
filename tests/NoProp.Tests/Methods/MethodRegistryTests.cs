using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Methods.Adjoint;
using NoProp.Methods.Backprop;
using NoProp.Methods.ContinuousTime;
using NoProp.Methods.DiscreteTime;
using NoProp.Methods.FlowMatching;
using NoProp.Models;
using NoProp.Runtime;
using TorchSharp.Modules;

namespace NoProp.Tests.Methods;

[TestClass]
public sealed class MethodRegistryTests
{
    private static readonly MethodKind[] BuiltIn =
        [MethodKind.DiscreteTime, MethodKind.ContinuousTime, MethodKind.FlowMatching, MethodKind.Backprop, MethodKind.Adjoint];

    [TestInitialize]
    public void Init() { TorchRuntime.Initialize(); TorchRuntime.Seed(5); }

    [TestMethod]
    public void EveryMethodKindIsRegisteredOnce()
    {
        CollectionAssert.AreEquivalent(BuiltIn, MethodRegistry.All.Select(d => d.Kind).ToArray());
        Assert.AreEqual(MethodRegistry.All.Count, MethodRegistry.All.Select(d => d.Kind).Distinct().Count());
        var names = MethodRegistry.All.SelectMany(d => d.Aliases.Prepend(d.CliName)).ToList();
        Assert.AreEqual(names.Count, names.Distinct(StringComparer.OrdinalIgnoreCase).Count(), "a name or alias names two methods");
        foreach (var kind in BuiltIn) Assert.AreEqual(kind, MethodRegistry.Get(kind).Kind);
    }

    [TestMethod]
    [DataRow("dt", "discrete_time", "NoProp-DT")]
    [DataRow("ct", "continuous_time", "NoProp-CT")]
    [DataRow("fm", "flow_matching", "NoProp-FM")]
    [DataRow("backprop", "backprop", "Backprop")]
    [DataRow("adjoint", "adjoint", "Adjoint")]
    public void NamesRoundTrip(string cliName, string kindName, string displayName)
    {
        var kind = new MethodKind(kindName);
        var definition = MethodRegistry.Parse(cliName);
        Assert.AreEqual(kind, definition.Kind);
        Assert.AreEqual(cliName, kind.ToCliName());
        Assert.AreEqual(displayName, kind.DisplayName());
        Assert.AreEqual(kind, MethodKinds.Parse(cliName.ToUpperInvariant()));
        Assert.AreEqual(kind, MethodRegistry.Parse(definition.DisplayName).Kind, "the display name parses too (noprop-dt, backprop, ...)");
    }

    [TestMethod]
    public void AnUnknownNameListsTheValidOnes()
    {
        var e = Assert.ThrowsExactly<NoPropException>(() => MethodRegistry.Parse("sgd"));
        Assert.AreEqual("unknown method 'sgd' (expected dt, ct, fm, backprop or adjoint)", e.Message);
        Assert.IsFalse(MethodRegistry.TryParse(null, out _));
    }

    /// <summary>The options each method took before the registry (the CLI's hand-written lists).</summary>
    [TestMethod]
    [DataRow("blocks", "dt,backprop")]
    [DataRow("schedule", "dt")]
    [DataRow("inference", "dt")]
    [DataRow("eta", "dt,ct")]
    [DataRow("backbone", "ct,fm,adjoint")]
    [DataRow("solver", "ct,fm,adjoint")]
    [DataRow("steps", "ct,fm,adjoint")]
    [DataRow("prediction", "ct,fm,adjoint")]
    [DataRow("weighting", "ct")]
    [DataRow("gamma-max", "ct")]
    [DataRow("gamma-min", "ct")]
    [DataRow("schedule-training", "ct")]
    [DataRow("schedule-weight-decay", "ct")]
    [DataRow("flow-sigma", "fm")]
    public void OptionApplicabilityIsWhatTheCliAccepted(string option, string methods)
    {
        var found = MethodRegistry.FindOption("--" + option);
        Assert.IsNotNull(found, option);
        CollectionAssert.AreEqual(methods.Split(','), MethodRegistry.Accepting(found).Select(d => d.CliName).ToArray());
    }

    [TestMethod]
    public void EveryOptionIsListedAndNoOtherIsAccepted()
    {
        Assert.AreEqual(14, MethodRegistry.Options.Count);
        Assert.IsNull(MethodRegistry.FindOption("lr"), "--lr applies to every method: not a method option");
        foreach (var d in MethodRegistry.All)
            Assert.AreEqual(d.Options.Count, d.Options.Select(o => o.Option).Distinct().Count(), $"{d.CliName} lists an option twice");
    }

    [TestMethod]
    [DataRow("blocks", "ct", "--blocks applies to --method dt and backprop, not --method ct")]
    [DataRow("solver", "backprop", "--solver applies to --method ct, fm and adjoint, not --method backprop")]
    [DataRow("eta", "fm", "--eta applies to --method dt and ct, not --method fm")]
    [DataRow("weighting", "fm", "--weighting applies to --method ct, not --method fm")]
    [DataRow("schedule", "backprop", "--schedule applies to --method dt, not --method backprop")]
    public void MessagesNameTheMethodsThatTakeAnOption(string option, string method, string expected)
    {
        Assert.AreEqual(expected, MethodRegistry.NotApplicable(MethodRegistry.FindOption(option)!, MethodRegistry.Parse(method)));
        Assert.IsNull(MethodRegistry.NotApplicable(MethodRegistry.FindOption(option)!, MethodRegistry.Accepting(MethodRegistry.FindOption(option)!)[0]));
    }

    [TestMethod]
    [DataRow("discrete_time", 0.1, PredictionRule.OutputHead, typeof(NoPropDt), typeof(AdamW))]
    [DataRow("continuous_time", 1.0, PredictionRule.NearestEmbedding, typeof(NoPropCt), typeof(Adam))]
    [DataRow("flow_matching", 1.0, PredictionRule.NearestEmbedding, typeof(NoPropFm), typeof(Adam))]
    [DataRow("backprop", 1.0, PredictionRule.OutputHead, typeof(BackpropBaseline), typeof(AdamW))]
    [DataRow("adjoint", 1.0, PredictionRule.OutputHead, typeof(AdjointOde), typeof(AdamW))]
    public void DefaultsAndFactory(string kindName, double eta, PredictionRule prediction, Type type, Type optimizer)
    {
        var kind = new MethodKind(kindName);
        var definition = MethodRegistry.Get(kind);
        Assert.AreEqual(eta, definition.Defaults.Eta);
        Assert.AreEqual(prediction, definition.Defaults.Prediction);
        Assert.AreEqual(prediction, ModelConfig.DefaultPrediction(kind));
        Assert.AreEqual(optimizer.Name, definition.Defaults.Optimizer.ToString(), "the declared optimiser");
        using var method = definition.Create(TestSupport.Config(blocks: 2) with { Method = kind, Eta = eta, Prediction = prediction, InferenceSteps = 2 });
        Assert.IsInstanceOfType(method, type);
        // HeldScalarOptimizers' subclasses keep TorchSharp's type name: a saved optimizer state names its type.
        Assert.IsTrue(method.Optimizers.All(o => optimizer.IsInstanceOfType(o) && o.GetType().Name == optimizer.Name), $"{kind} trains with {optimizer.Name}");
        Assert.AreEqual(kind.IsBlockChain(), definition.Accepts(MethodOption.Blocks));
        Assert.AreEqual(kind.IsContinuous(), definition.Accepts(MethodOption.Solver));
    }

    [TestMethod]
    public void ValidationNamesTheOptionAtFault()
    {
        var config = TestSupport.Config();
        var e = Assert.ThrowsExactly<NoPropException>(() => (config with { Method = MethodKind.Backprop, BlockSchedule = BlockSchedule.Parallel }).Validate());
        StringAssert.StartsWith(e.Message, "--schedule parallel applies to --method dt");
        e = Assert.ThrowsExactly<NoPropException>(() => (config with { Backbone = BackboneKind.ResNet18 }).Validate());
        StringAssert.StartsWith(e.Message, "--backbone applies to --method ct, fm and adjoint");
        e = Assert.ThrowsExactly<NoPropException>(() => (config with { Method = MethodKind.FlowMatching, Prediction = PredictionRule.OutputHead }).Validate());
        StringAssert.StartsWith(e.Message, "--prediction head: a one-hot NoProp-FM model has no trained output head");
        (config with { Method = MethodKind.FlowMatching, Embedding = LabelEmbeddingKind.Learned, EmbeddingDimension = 8, Prediction = PredictionRule.OutputHead }).Validate();
        e = Assert.ThrowsExactly<NoPropException>(() => (config with { Method = MethodKind.Adjoint, Prediction = PredictionRule.NearestEmbedding }).Validate());
        StringAssert.StartsWith(e.Message, "--prediction nearest: the adjoint model classifies z_1 with its linear layer");
        (config with { Method = MethodKind.ContinuousTime, Backbone = BackboneKind.ResNet18, Prediction = PredictionRule.OutputHead }).Validate();
    }

    [TestMethod]
    public void HelpDefaultsAreTheMethodsDefaults()
    {
        foreach (var d in MethodRegistry.All)
        {
            var uses = d.Options.ToDictionary(o => o.Option);
            if (uses.TryGetValue(MethodOption.Eta, out var eta)) Assert.AreEqual(d.Defaults.Eta, double.Parse(eta.Default, System.Globalization.CultureInfo.InvariantCulture), d.CliName);
            if (uses.TryGetValue(MethodOption.Prediction, out var p)) Assert.AreEqual(d.Defaults.Prediction.ToCliName(), p.Default, d.CliName);
            if (uses.TryGetValue(MethodOption.Steps, out var s)) Assert.AreEqual(d.Defaults.InferenceSteps.ToString(System.Globalization.CultureInfo.InvariantCulture), s.Default, d.CliName);
            if (uses.TryGetValue(MethodOption.Blocks, out var b)) Assert.AreEqual(d.Defaults.Blocks.ToString(System.Globalization.CultureInfo.InvariantCulture), b.Default, d.CliName);
        }
    }

    [TestMethod]
    public void HelpTextComesFromTheDeclarations()
    {
        Assert.AreEqual("weight η of the denoising loss (dt, ct)  [dt 0.1, ct 1]", MethodRegistry.HelpForAll(MethodOption.Eta));
        Assert.AreEqual("solver steps over t in [0, 1] (ct, fm, adjoint)  [40]", MethodRegistry.HelpForAll(MethodOption.Steps));
        var adjointSteps = MethodRegistry.Parse("adjoint").Options.Single(o => o.Option == MethodOption.Steps);
        Assert.AreEqual("solver steps over t in [0, 1] (training too)  [40]", adjointSteps.HelpText);
        CollectionAssert.AreEqual(new[] { "--blocks", "--schedule", "--eta", "--inference" }, MethodRegistry.Parse("dt").Options.Select(o => o.Option.Flag).ToArray(),
            "--help for --method dt lists these method options only");
    }

    [TestMethod]
    [DataRow("discrete_time")]
    [DataRow("continuous_time")]
    [DataRow("flow_matching")]
    [DataRow("backprop")]
    [DataRow("adjoint")]
    public void DeterministicInferenceDrawsNoiseAsDeclared(string kindName)
    {
        var kind = new MethodKind(kindName);
        // Two deterministic passes with different generators differ exactly when the definition says noise is drawn.
        var definition = MethodRegistry.Get(kind);
        var prediction = definition.Defaults.Prediction;
        using var method = definition.Create(TestSupport.Config(blocks: 2) with { Method = kind, Eta = definition.Defaults.Eta, Prediction = prediction, InferenceSteps = 2 });
        method.Network.eval();
        using var _ = TorchSharp.torch.no_grad();
        using var x = TorchSharp.torch.randn(8, 1, 28, 28);
        float[] Pass(long seed)
        {
            using var generator = new TorchSharp.torch.Generator((ulong)seed);
            using var p = method.PredictProbabilities(x, new InferenceOptions { Deterministic = true, Generator = generator });
            return p.data<float>().ToArray();
        }
        var first = Pass(1);
        var second = Pass(2);
        bool differ = first.Zip(second).Any(pair => pair.First != pair.Second);   // z_0 = 0 repeats bit for bit
        Assert.AreEqual(definition.DeterministicInferenceDrawsNoise, differ, $"{kind}: deterministic passes with other generators {(differ ? "differ" : "agree")}");
    }
}
