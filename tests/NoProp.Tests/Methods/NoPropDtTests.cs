using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Methods.DiscreteTime;
using NoProp.Runtime;
using NoProp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Tests.Methods;

[TestClass]
public sealed class NoPropDtTests
{
    [TestInitialize]
    public void Seed() { TorchRuntime.Initialize(); TorchRuntime.Seed(11); }

    private static (Tensor X, Tensor Y) Batch(int n = 16)
    {
        var data = TestSupport.Mnist.Train.Take(n);
        return data.ToTensors();
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module m) =>
        m.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    [TestMethod]
    public void ATrainingStepChangesOnlyItsOwnBlockTheHeadAndTheEmbedding()
    {
        using var method = new NoPropDt(TestSupport.Config(LabelEmbeddingKind.Learned, blocks: 4));
        var (x, y) = Batch();
        var before = Snapshot(method.Network);
        method.Network.train();
        method.TrainStep(2, x, y).Dispose();   // block 3

        foreach (var (name, p) in method.Network.named_parameters())
        {
            bool changed = !p.detach().SameAs(before[name]);
            bool ownBlock = name.StartsWith("blocks.2.", StringComparison.Ordinal);
            bool shared = name.StartsWith("outputHead.", StringComparison.Ordinal) || name.StartsWith("embedding.", StringComparison.Ordinal);
            if (ownBlock || shared) continue;
            Assert.IsFalse(changed, $"{name} changed although only block 3 was trained");
            Assert.IsTrue(p.grad is null || p.grad.abs().max().item<float>() == 0f, $"{name} received a gradient from block 3's loss");
        }
        Assert.IsTrue(method.DtNetwork.Blocks[2].parameters().Zip(method.DtNetwork.Blocks[2].named_parameters())
            .Any(p => !p.First.detach().SameAs(before["blocks.2." + p.Second.name])), "block 3 itself must be updated");
        Assert.IsFalse(method.DtNetwork.Embedding.Weight.detach().SameAs(before["embedding.weight"]), "a learned embedding is trained with every block");
    }

    /// <summary>
    /// Eq. 8 / Eq. 61 term by term, against values assembled by hand from the same network's raw outputs and the
    /// same noise: block t's input is z_{t−1} = √ᾱ_{t−1} u + √(1 − ᾱ_{t−1}) ε₁ (ᾱ typed in, not read from the
    /// schedule), its loss is (T/2)·η·(SNR(t) − SNR(t−1))·mean‖softmax(block(x, z_{t−1}))·W − u‖², the CE is that of
    /// the head's affine map on z_T = √ᾱ_T u + √(1 − ᾱ_T) ε₂, and the KL is 0 because ᾱ_0 = 0. In eval mode
    /// (no dropout, BatchNorm on its running statistics) the step draws exactly ε₁, then ε₂ from torch's generator.
    /// </summary>
    [TestMethod]
    [DataRow(0)]
    [DataRow(1)]
    public void TrainingLossMatchesEquation8ComputedByHand(int stage)
    {
        using var method = new NoPropDt(TestSupport.Config(LabelEmbeddingKind.Learned, blocks: 2) with { Eta = 0.1 });
        var (x, y) = Batch(6);
        method.Network.eval();
        double[] alphaBar = [0.0, 0.49334974685019706, 0.999];         // cosine, T = 2 (Python, float64)
        double[] weight = [0.097374815029319, 99.8026251849706];       // (T/2)·η·(SNR(t) − SNR(t−1)), t = 1, 2
        int t = stage + 1;

        double ce, denoise;
        using (no_grad())
        {
            var w = method.DtNetwork.Embedding.Weight.detach().clone();
            var u = w.index_select(0, y);
            TorchRuntime.Seed(123);
            var e1 = randn(6, w.shape[1]);
            var e2 = randn(6, w.shape[1]);
            var zPrevious = u * Math.Sqrt(alphaBar[t - 1]) + e1 * Math.Sqrt(1 - alphaBar[t - 1]);
            var logits = method.DtNetwork.Blocks[stage].forward(x, zPrevious).to_type(ScalarType.Float64);
            var p = logits.exp() / logits.exp().sum(1, keepdim: true);
            var uHat = p.matmul(w.to_type(ScalarType.Float64));
            denoise = weight[stage] * (uHat - u.to_type(ScalarType.Float64)).square().sum(1).mean().item<double>();

            var zT = (u * Math.Sqrt(alphaBar[2]) + e2 * Math.Sqrt(1 - alphaBar[2])).to_type(ScalarType.Float64);
            var head = method.DtNetwork.OutputHead;
            var scores = zT.matmul(head.weight!.detach().to_type(ScalarType.Float64).t()) + head.bias!.detach().to_type(ScalarType.Float64);
            var logSumExp = scores.exp().sum(1).log();
            ce = (logSumExp - scores.gather(1, y.unsqueeze(1)).squeeze(1)).mean().item<double>();
        }

        TorchRuntime.Seed(123);
        using var losses = method.TrainStep(stage, x, y);
        var l = losses.Values.to_type(ScalarType.Float64).data<double>().ToArray();
        Assert.AreEqual(ce, l[0], 1e-5 * Math.Abs(ce), "cross-entropy on z_T");
        Assert.AreEqual(0.0, l[1], "KL(q(z_0|y) ‖ N(0, I)) = 0 for ᾱ_0 = 0");
        Assert.AreEqual(denoise, l[2], 1e-5 * Math.Abs(denoise), $"denoising term of block {t}");
        Assert.AreEqual(ce + denoise, l[3], 1e-5 * (ce + denoise), "total");
        Assert.IsTrue(denoise > 1e-3, "the hand-computed term is not trivially zero");
    }

    [TestMethod]
    public void DenoiseWeightsArePinned()
    {
        // (T/2)·η·(SNR(t) − SNR(t−1)) for the cosine schedule, T = 4, η = 0.1 (Python, float64).
        using var method = new NoPropDt(TestSupport.Config(blocks: 4) with { Eta = 0.1 });
        double[] expected = [0.03367975624936274, 0.16106987380927526, 0.9053458874081216, 198.69990448253307];
        for (int t = 1; t <= 4; t++) Assert.AreEqual(expected[t - 1], method.DenoiseWeight(t), 1e-12 * expected[t - 1], $"block {t}");
        using var doubled = new NoPropDt(TestSupport.Config(blocks: 4) with { Eta = 0.2 });
        Assert.AreEqual(2 * expected[3], doubled.DenoiseWeight(4), 1e-9, "linear in η");
    }

    /// <summary>T = 100 (issue 10): every block must receive a gradient and move. No weight decay, so only the loss can move it.</summary>
    [TestMethod]
    public void AHundredBlocksAllTrain()
    {
        var config = TestSupport.Config(blocks: 100) with { Image = new NoProp.Models.ImageShape(1, 14, 14), WeightDecay = 0 };
        using var method = new NoPropDt(config);
        var x = randn(4, 1, 14, 14);
        var y = tensor(new long[] { 0, 3, 5, 9 });
        method.Network.train();
        for (int stage = 0; stage < 100; stage++)
        {
            var block = method.DtNetwork.Blocks[stage];
            var before = block.parameters().Select(p => p.detach().clone()).ToArray();
            using (method.TrainStep(stage, x, y)) { }
            var after = block.parameters().ToArray();
            double moved = before.Zip(after, (b, a) => (a.detach() - b).abs().max().item<float>()).Max();
            Assert.IsTrue(moved > 0, $"block {stage + 1} of 100 did not change in its training step");
            foreach (var b in before) b.Dispose();
        }
    }

    [TestMethod]
    public void OneHotEmbeddingStaysFixed()
    {
        using var method = new NoPropDt(TestSupport.Config(LabelEmbeddingKind.OneHot, blocks: 2));
        var (x, y) = Batch();
        method.Network.train();
        method.TrainStep(0, x, y).Dispose();
        Assert.IsTrue(method.DtNetwork.Embedding.Weight.detach().SameAs(eye(10)));
    }

    [TestMethod]
    [DataRow(LabelEmbeddingKind.OneHot, 10)]
    [DataRow(LabelEmbeddingKind.Learned, 20)]
    [DataRow(LabelEmbeddingKind.Prototype, 784)]
    public void ShapesForEveryEmbedding(LabelEmbeddingKind kind, int dimension)
    {
        using var method = new NoPropDt(TestSupport.Config(kind, blocks: 2));
        Assert.AreEqual(dimension, method.Config.EmbeddingDimension);
        CollectionAssert.AreEqual(new long[] { 10, dimension }, method.DtNetwork.Embedding.Weight.shape);
        var (x, y) = Batch(8);
        method.Network.train();
        using var losses = method.TrainStep(1, x, y);
        CollectionAssert.AreEqual(new long[] { 4 }, losses.Values.shape);
        Assert.IsTrue(losses.Values.isfinite().all().item<bool>());
        method.Network.eval();
        using var _ = no_grad();
        using var z = method.RunChain(x, new InferenceOptions());
        CollectionAssert.AreEqual(new long[] { 8, dimension }, z.shape);
        using var p = method.PredictProbabilities(x, new InferenceOptions());
        CollectionAssert.AreEqual(new long[] { 8, 10 }, p.shape);
        Assert.AreEqual(8.0, p.sum().item<float>(), 1e-4);
    }

    [TestMethod]
    public void ParameterCountMatchesThePaperForOneHotMnist()
    {
        // Paper v2 Table 5: 0.92M parameters per DT block (MNIST, one-hot); our count of the Fig. 6 block: 919,946.
        using var method = new NoPropDt(TestSupport.Config(LabelEmbeddingKind.OneHot, blocks: 1));
        long count = method.DtNetwork.Blocks[0].parameters().Sum(p => p.numel());
        Assert.AreEqual(919_946L, count);
        using var prototype = new NoPropDt(TestSupport.Config(LabelEmbeddingKind.Prototype, blocks: 1));
        Assert.AreEqual(1_401_738L, prototype.DtNetwork.Blocks[0].parameters().Sum(p => p.numel()), "prototype: 1.40M");
    }

    [TestMethod]
    public void DeterministicInferenceIsRepeatableAndStochasticInferenceIsNot()
    {
        using var method = new NoPropDt(TestSupport.Config(blocks: 3));
        var (x, _) = Batch(32);
        method.Network.eval();
        using var _g = no_grad();
        Tensor Run(bool deterministic, long seed) => method.RunChain(x,
            new InferenceOptions { Deterministic = deterministic, Generator = Evaluator.InferenceGenerator(seed) }, null);
        Assert.IsTrue(Run(true, 1).SameAs(Run(true, 1)));
        Assert.IsTrue(Run(false, 5).SameAs(Run(false, 5)), "a seeded generator makes stochastic inference repeatable");
        Assert.IsFalse(Run(false, 5).SameAs(Run(false, 6)));
        Assert.IsFalse(Run(true, 1).SameAs(Run(false, 1)), "ε = 0 must change the result");
    }

    /// <summary>
    /// A model configured for deterministic inference (--inference deterministic) runs the chain with ε = 0 whatever
    /// the caller asks: the same z as InferenceOptions.Deterministic on the same weights and the same z_0 draw.
    /// </summary>
    [TestMethod]
    public void AModelConfiguredDeterministicTakesEachStepsMean()
    {
        var config = TestSupport.Config(blocks: 3);
        using var stochastic = new NoPropDt(config);
        using var deterministic = new NoPropDt(config with { DtInference = DtInference.Deterministic });
        deterministic.Network.load_state_dict(stochastic.Network.state_dict());
        var (x, _) = Batch(32);
        stochastic.Network.eval();
        deterministic.Network.eval();
        using var _g = no_grad();
        InferenceOptions Options(bool epsilonZero) => new() { Deterministic = epsilonZero, Generator = Evaluator.InferenceGenerator(7) };
        var expected = stochastic.RunChain(x, Options(true), null);
        Assert.IsTrue(deterministic.RunChain(x, Options(false), null).SameAs(expected), "the model's setting drops ε");
        Assert.IsTrue(deterministic.RunChain(x, Options(true), null).SameAs(expected));
        Assert.IsFalse(stochastic.RunChain(x, Options(false), null).SameAs(expected), "a stochastic model keeps Eq. 3's noise");
        // eval --stochastic: the paper's noise for this evaluation, whatever the model's setting.
        var paper = new InferenceOptions { DtInference = DtInference.Stochastic, Generator = Evaluator.InferenceGenerator(7) };
        Assert.IsTrue(deterministic.RunChain(x, paper, null).SameAs(stochastic.RunChain(x, Options(false), null)));
    }

    [TestMethod]
    public void PerBlockProbabilitiesFollowTheChain()
    {
        using var method = new NoPropDt(TestSupport.Config(blocks: 3));
        var (x, _) = Batch(8);
        method.Network.eval();
        using var _g = no_grad();
        var perBlock = new List<Tensor>();
        var steps = new List<(int Step, int Steps, double Time)>();
        var options = new InferenceOptions { Generator = Evaluator.InferenceGenerator(3) };
        using var z = method.RunChain(x, options, step =>
        {
            steps.Add((step.Step, step.Steps, step.Time));
            perBlock.Add(method.HeadProbabilities(step.Z).DetachFromDisposeScope());
        });
        Assert.AreEqual(3, perBlock.Count);
        CollectionAssert.AreEqual(new[] { (1, 3, 1 / 3.0), (2, 3, 2 / 3.0), (3, 3, 1.0) }, steps);
        using var last = nn.functional.softmax(method.DtNetwork.OutputHead.forward(z), 1);
        Assert.IsTrue(perBlock[^1].CloseTo(last));
    }

    [TestMethod]
    public void PrototypeRowsStartAsClassMedoids()
    {
        using var method = new NoPropDt(TestSupport.Config(LabelEmbeddingKind.Prototype, blocks: 1));
        var train = TestSupport.Mnist.Train.Take(300);
        PrototypeInitialisation.Apply(method, train, seed: 1);
        var (x, y) = train.ToTensors();
        var flat = x.reshape(300, -1);
        var w = method.DtNetwork.Embedding.Weight.detach();
        for (int c = 0; c < 10; c++)
        {
            var members = flat.index_select(0, nonzero(y.eq(c)).squeeze(1));
            // The row is one of the class's images...
            var distanceToMembers = (members - w[c]).square().sum(1);
            Assert.AreEqual(0f, distanceToMembers.min().item<float>(), 1e-6f, $"class {c}: the prototype must be a training image of the class");
            // ...and no other member has a smaller median distance to the rest.
            var d = cdist(members.unsqueeze(0), members.unsqueeze(0)).squeeze(0);
            var medians = d.sort(1).Values[.., 1..].select(1, ((int)members.shape[0] - 2) / 2);
            long chosen = distanceToMembers.argmin().item<long>();
            Assert.AreEqual(medians.min().item<float>(), medians[chosen].item<float>(), 1e-4f, $"class {c}");
        }
    }
}
