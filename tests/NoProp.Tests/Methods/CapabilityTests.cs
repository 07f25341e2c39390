using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Methods.Adjoint;
using NoProp.Methods.Backprop;
using NoProp.Methods.ContinuousTime;
using NoProp.Methods.DiscreteTime;
using NoProp.Methods.FlowMatching;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Tests.Methods;

/// <summary>The optional capabilities of the methods (chain callback, image-only readout, learned extras, schedule table).</summary>
[TestClass]
public sealed class CapabilityTests
{
    [TestInitialize]
    public void Init() { TorchRuntime.Initialize(); TorchRuntime.Seed(11); }

    private static INoPropMethod Create(MethodKind kind) => MethodRegistry.Create(TestSupport.Config(blocks: 3) with
    {
        Method = kind, Eta = MethodRegistry.Get(kind).Defaults.Eta, Prediction = ModelConfig.DefaultPrediction(kind), InferenceSteps = 3,
    });

    [TestMethod]
    [DataRow("discrete_time", true, true, false, false)]
    [DataRow("backprop", true, true, true, false)]
    [DataRow("continuous_time", false, true, true, true)]
    [DataRow("flow_matching", false, true, false, false)]
    [DataRow("adjoint", false, false, false, false)]
    public void EachMethodHasItsCapabilities(string kindName, bool chain, bool imageOnly, bool extras, bool schedule)
    {
        var kind = new MethodKind(kindName);
        using var method = Create(kind);
        Assert.AreEqual(chain, method is IChainInference, "chain");
        Assert.AreEqual(chain, ChainDiagnostics.HasBlocks(method));
        Assert.AreEqual(imageOnly, method is IImageOnlyReadout, "image-only");
        Assert.AreEqual(imageOnly, ChainDiagnostics.HasImageOnly(method));
        Assert.AreEqual(extras, method is ILearnedExtras, "extras");
        Assert.AreEqual(schedule, method is INoiseScheduleMethod, "schedule");
        Assert.AreEqual(CPU.type, method.Device.type);
    }

    [TestMethod]
    public void ImageOnlyIsTheFirstEvaluationAtTheOrigin()
    {
        var (x, _) = TestSupport.Mnist.Test.Take(6).ToTensors();
        using var _g = no_grad();
        var z = zeros(6, 10);
        var t = zeros(6);
        using (var dt = (NoPropDt)Create(MethodKind.DiscreteTime))
        {
            dt.Network.eval();
            Assert.IsTrue(ChainDiagnostics.ImageOnlyProbabilities(dt, x).CloseTo(nn.functional.softmax(dt.DtNetwork.Blocks[0].forward(x, z), 1)));
        }
        using (var bp = (BackpropBaseline)Create(MethodKind.Backprop))
        {
            bp.Network.eval();
            Assert.IsTrue(ChainDiagnostics.ImageOnlyProbabilities(bp, x).CloseTo(nn.functional.softmax(bp.BackpropNetwork.Blocks[0].forward(x, z), 1)));
        }
        using (var ct = (NoPropCt)Create(MethodKind.ContinuousTime))
        {
            ct.Network.eval();
            Assert.IsTrue(ChainDiagnostics.ImageOnlyProbabilities(ct, x).CloseTo(nn.functional.softmax(ct.CtNetwork.Denoiser.forward(x, z, t), 1)));
        }
        using (var fm = (NoPropFm)Create(MethodKind.FlowMatching))
        {
            fm.Network.eval();
            var v = fm.FmNetwork.Velocity.forward(x, z, t).matmul(fm.Embedding.Weight);
            var nearest = cdist(v.unsqueeze(0), fm.Embedding.Weight.unsqueeze(0)).squeeze(0).argmin(1);
            Assert.IsTrue(ChainDiagnostics.ImageOnlyProbabilities(fm, x).argmax(1).SameAs(nearest), "FM: the nearest embedding to v(0, x, 0)");
        }
        using var adjoint = Create(MethodKind.Adjoint);
        var e = Assert.ThrowsExactly<NoPropException>(() => ChainDiagnostics.ImageOnlyProbabilities(adjoint, x));
        StringAssert.Contains(e.Message, "--image-only is not defined for an adjoint model");
    }

    [TestMethod]
    public void TheChainCallbackSeesEveryBlockOfTheBackpropChain()
    {
        using var method = (BackpropBaseline)Create(MethodKind.Backprop);
        method.Network.eval();
        var (x, _) = TestSupport.Mnist.Test.Take(5).ToTensors();
        using var _g = no_grad();
        var seen = new List<(int Step, int Steps, double Time)>();
        Tensor? lastZ = null;
        var options = new InferenceOptions { Deterministic = true };
        using var zT = method.RunChain(x, options, step =>
        {
            seen.Add((step.Step, step.Steps, step.Time));
            lastZ?.Dispose();
            lastZ = step.Z.clone().DetachFromDisposeScope();
            Assert.AreEqual(step.Z.shape[1], step.Denoised.shape[1]);
        });
        CollectionAssert.AreEqual(new[] { (1, 3, 1 / 3.0), (2, 3, 2 / 3.0), (3, 3, 1.0) }, seen);
        Assert.IsTrue(lastZ!.SameAs(zT), "the last step's z is the chain's result");
        var perBlock = ChainDiagnostics.PerBlockProbabilities(method, x, options);
        Assert.AreEqual(3, perBlock.Count);
        Assert.IsTrue(perBlock[^1].CloseTo(method.PredictProbabilities(x, options)), "the last block's probabilities are the model's");
        foreach (var p in perBlock) p.Dispose();
        using var fm = Create(MethodKind.FlowMatching);
        var e = Assert.ThrowsExactly<NoPropException>(() => ChainDiagnostics.PerBlockProbabilities(fm, x, options));
        StringAssert.Contains(e.Message, "--per-block applies to models made of blocks (dt, backprop)");
    }

    [TestMethod]
    public void ExtrasAndScheduleTableReadTheLearnedValues()
    {
        using var bp = (BackpropBaseline)Create(MethodKind.Backprop);
        var alphas = (double[])bp.LearnedExtras()["alphas"];
        CollectionAssert.AreEqual(Enumerable.Repeat(Math.Round(Math.Tanh(BackpropNetwork.InitialMixingWeight), 5), 3).ToArray(), alphas);

        using var ct = (NoPropCt)Create(MethodKind.ContinuousTime);
        var extras = ct.LearnedExtras();
        Assert.AreEqual(5.0, (double)extras["gamma_max"], 1e-4, "γ(0) as initialised");
        Assert.AreEqual(-5.0, (double)extras["gamma_min"], 1e-4, "γ(1) as initialised");
        var table = ct.TabulateSchedule(11);
        Assert.AreEqual(11, table.T.Length);
        Assert.AreEqual(0.5, table.T[5], 1e-12);
        Assert.AreEqual(5.0, table.Gamma[0], 1e-4);
        Assert.AreEqual(-5.0, table.Gamma[^1], 1e-4);
        for (int i = 0; i < 11; i++)
        {
            Assert.AreEqual(1 / (1 + Math.Exp(table.Gamma[i])), table.AlphaBar[i], 1e-6, "ᾱ = sigmoid(−γ)");
            Assert.AreEqual(table.AlphaBar[i] / (1 - table.AlphaBar[i]), table.Snr[i], 1e-3 * table.Snr[i], "SNR = ᾱ/(1 − ᾱ)");
        }
        for (int i = 1; i < 11; i++) Assert.IsTrue(table.AlphaBar[i] > table.AlphaBar[i - 1], "ᾱ rises with t");
    }

    [TestMethod]
    public void LossesAreNamedAndTheBaselinesHaveOneComponent()
    {
        var (x, y) = TestSupport.Mnist.Train.Take(8).ToTensors();
        using var bp = Create(MethodKind.Backprop);
        bp.Network.train();
        using var losses = bp.TrainStep(0, x, y);
        CollectionAssert.AreEqual(new[] { "cross_entropy" }, losses.Layout.Components.ToArray());
        CollectionAssert.AreEqual(new[] { "cross_entropy", "total" }, bp.LossNames.ToArray(), "the metrics.csv columns are unchanged");
        Assert.AreEqual(losses["cross_entropy"].item<float>(), losses.Total.item<float>());
        Assert.ThrowsExactly<KeyNotFoundException>(() => losses["kl"]);
        using var dt = Create(MethodKind.DiscreteTime);
        dt.Network.train();
        using var dtLosses = dt.TrainStep(1, x, y);
        Assert.AreEqual(dtLosses["cross_entropy"].item<float>() + dtLosses["kl"].item<float>() + dtLosses["denoise"].item<float>(), dtLosses.Total.item<float>(), 1e-4);
        Assert.ThrowsExactly<ArgumentException>(() => new LossLayout("a", "total"));
    }
}
