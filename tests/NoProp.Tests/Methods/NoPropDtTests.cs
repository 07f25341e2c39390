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
        CollectionAssert.AreEqual(new long[] { 4 }, losses.shape);
        Assert.IsTrue(losses.isfinite().all().item<bool>());
        method.Network.eval();
        using var _ = no_grad();
        using var z = method.RunChain(x, new InferenceOptions(), null);
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

    [TestMethod]
    public void PerBlockProbabilitiesFollowTheChain()
    {
        using var method = new NoPropDt(TestSupport.Config(blocks: 3));
        var (x, _) = Batch(8);
        method.Network.eval();
        using var _g = no_grad();
        var perBlock = new List<Tensor>();
        var options = new InferenceOptions { Generator = Evaluator.InferenceGenerator(3) };
        using var z = method.RunChain(x, options, perBlock);
        Assert.AreEqual(3, perBlock.Count);
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
