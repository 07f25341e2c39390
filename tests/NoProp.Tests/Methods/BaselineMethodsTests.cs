using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Methods.Adjoint;
using NoProp.Methods.Backprop;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Tests.Methods;

[TestClass]
public sealed class BaselineMethodsTests
{
    [TestInitialize]
    public void Init() { TorchRuntime.Initialize(); TorchRuntime.Seed(31); }

    private static (Tensor X, Tensor Y) Batch(int n = 8) => TestSupport.Mnist.Train.Take(n).ToTensors();

    private static ModelConfig BackpropConfig(LabelEmbeddingKind embedding = LabelEmbeddingKind.OneHot, int blocks = 3) =>
        TestSupport.Config(embedding, blocks) with { Method = MethodKind.Backprop };

    private static ModelConfig AdjointConfig(OdeSolverKind solver = OdeSolverKind.Rk4, int steps = 16, LabelEmbeddingKind embedding = LabelEmbeddingKind.OneHot) =>
        TestSupport.Config(embedding) with { Method = MethodKind.Adjoint, Solver = solver, InferenceSteps = steps, Prediction = PredictionRule.OutputHead };

    [TestMethod]
    public void BackpropGradientReachesEveryBlockTheMixingWeightsTheHeadAndTheEmbedding()
    {
        using var method = (BackpropBaseline)MethodFactory.Create(BackpropConfig(LabelEmbeddingKind.Learned, blocks: 3));
        var (x, y) = Batch(16);
        var before = method.Network.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        method.Network.train();
        method.TrainStep(0, x, y).Dispose();
        foreach (var (name, p) in method.Network.named_parameters())
        {
            Assert.IsNotNull(p.grad, $"{name} received no gradient");
            Assert.IsTrue(p.grad.abs().max().item<float>() > 0, $"{name} received a zero gradient");
            Assert.IsFalse(p.detach().SameAs(before[name]), $"{name} was not updated");
        }
        // The cross-entropy at z_T reaches block 1 only through blocks 2..T: the end-to-end path exists.
        Assert.IsTrue(method.Network.named_parameters().Any(p => p.name.StartsWith("blocks.0.", StringComparison.Ordinal)));
        Assert.AreEqual(3, method.Alphas().Length);
    }

    [TestMethod]
    public void BackpropChainIsEquation18()
    {
        using var method = (BackpropBaseline)MethodFactory.Create(BackpropConfig(blocks: 2));
        var (x, _) = Batch(4);
        method.Network.eval();
        using var _ = no_grad();
        var options = new InferenceOptions { Deterministic = true };
        using var zT = method.RunChain(x, options, null);
        // By hand: z_0 = 0, z_t = (1 − tanh w_t)·z_{t−1} + tanh w_t · softmax(block_t(x, z_{t−1}))·W_Embed.
        var network = method.BackpropNetwork;
        var z = zeros(4, 10);
        for (int t = 0; t < 2; t++)
        {
            double alpha = Math.Tanh(network.MixingWeights[t].item<float>());
            var uHat = nn.functional.softmax(network.Blocks[t].forward(x, z), 1).matmul(network.Embedding.Weight);
            z = z * (1 - alpha) + uHat * alpha;
        }
        Assert.IsTrue(zT.CloseTo(z, 1e-5), "RunChain must follow Eq. 18");
        Assert.AreEqual(Math.Tanh(BackpropNetwork.InitialMixingWeight), method.Alphas()[0], 1e-6);
    }

    [TestMethod]
    public void BackpropAndAdjointStepsLeakNoTensors()
    {
        foreach (var config in new[] { BackpropConfig(blocks: 2), AdjointConfig(OdeSolverKind.Heun, steps: 3) })
        {
            using var method = MethodFactory.Create(config);
            var (x, y) = Batch(8);
            method.Network.train();
            method.TrainStep(0, x, y).Dispose();   // optimizer state is created lazily
            Assert.AreEqual(0, TestSupport.TensorsLeftAlive(() => { for (int i = 0; i < 3; i++) method.TrainStep(0, x, y).Dispose(); }),
                $"{config.Method}: tensors left alive by training steps");
            Assert.AreEqual(0, TestSupport.TensorsLeftAlive(() => Evaluator.PredictProbabilities(method, x, new InferenceOptions()).Dispose()),
                $"{config.Method}: tensors left alive by inference");
        }
    }

    /// <summary>dz/dt = tanh(z·W + b)·(1 + t) on z ∈ R³ with a loss Σ c·z(1): the adjoint gradients against autograd through the same solver.</summary>
    [TestMethod]
    [DataRow("rk4", 64, 1e-5)]
    [DataRow("dopri5", 1, 1e-4)]
    [DataRow("euler", 400, 2e-2)]
    public void AdjointGradientMatchesBackpropagationThroughTheSolver(string solverName, int steps, double tolerance)
    {
        var solver = solverName == "dopri5"
            ? new Dopri5Solver(new OdeSolverOptions { RelativeTolerance = 1e-8, AbsoluteTolerance = 1e-10 })
            : OdeSolvers.Create(solverName);
        var grid = solverName == "dopri5" ? new[] { 0.0, 1.0 } : TimeGrid.Uniform(0, 1, steps);
        var w = (randn(3, 3, dtype: ScalarType.Float64) * 0.8).requires_grad_(true);
        var b = (randn(3, dtype: ScalarType.Float64) * 0.3).requires_grad_(true);
        var z0 = randn(2, 3, dtype: ScalarType.Float64).requires_grad_(true);
        var c = randn(2, 3, dtype: ScalarType.Float64);
        Tensor F(Tensor z, double t) => (z.matmul(w) + b).tanh() * (1 + t);

        // Reference: back-propagation through every step of the solver.
        using var solution = solver.Integrate(F, z0, grid);
        var loss = (solution.Z * c).sum();
        loss.backward();
        var reference = new[] { z0.grad!.clone(), w.grad!.clone(), b.grad!.clone() };

        // Adjoint: a forward solve without a graph, then the backward solve of the augmented system.
        Tensor z1;
        using (no_grad()) z1 = solver.Integrate(F, z0.detach(), grid).Z;
        using var adjoint = AdjointSensitivity.Backward(solver, F, [w, b], z1, c, grid);
        Assert.IsTrue((adjoint.Z0 - z0.detach()).abs().max().item<double>() < tolerance, "the backward solve must reconstruct z(0)");
        var actual = new[] { adjoint.A0, adjoint.Gradients[0], adjoint.Gradients[1] };
        string[] names = ["dL/dz0", "dL/dW", "dL/db"];
        for (int i = 0; i < 3; i++)
        {
            double error = (actual[i] - reference[i]).abs().max().item<double>();
            double scale = reference[i].abs().max().item<double>();
            Assert.IsTrue(error <= tolerance * Math.Max(1, scale), $"{solverName}: {names[i]} differs by {error:E2} (scale {scale:F3})");
        }
    }

    [TestMethod]
    public void AdjointModelGradientMatchesBackpropagationThroughTheSolver()
    {
        using var method = (AdjointOde)MethodFactory.Create(AdjointConfig(OdeSolverKind.Rk4, steps: 24, LabelEmbeddingKind.Learned) with { EmbeddingDimension = 6 });
        var (x, y) = Batch(6);
        var z0 = randn(6, 6);
        method.Network.eval();   // no dropout, so both passes see the same function

        // Reference: autograd through the RK4 steps, image path included.
        var features = method.AdjointNetwork.Velocity.EncodeImage(x);
        var z1 = OdeSolvers.Create(OdeSolverKind.Rk4).Integrate((z, t) => method.Velocity(features, z, t), z0, method.TrainingGrid()).Z;
        var referenceLoss = nn.functional.cross_entropy(method.AdjointNetwork.OutputHead.forward(z1), y);
        foreach (var p in method.Network.parameters()) p.grad?.zero_();
        referenceLoss.backward();
        var reference = method.Network.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());

        using var loss = method.AccumulateGradients(x, y, z0);
        Assert.AreEqual(referenceLoss.item<float>(), loss.item<float>(), 1e-5);
        double differenceSquared = 0, referenceSquared = 0;
        foreach (var (name, p) in method.Network.named_parameters())
        {
            Assert.IsNotNull(p.grad, $"{name}: no adjoint gradient");
            double error = (p.grad - reference[name]).abs().max().item<float>();
            double scale = reference[name].abs().max().item<float>();
            differenceSquared += (p.grad - reference[name]).square().sum().item<float>();
            referenceSquared += reference[name].square().sum().item<float>();
            // float32 and z(t) reconstructed backwards: both sides differ a little; a missing or wrong term is off by its own size.
            Assert.IsTrue(error <= 2e-2 * scale + 1e-7, $"{name}: adjoint and back-propagation differ by {error:E2} (scale {scale:E2})");
        }
        double relative = Math.Sqrt(differenceSquared / referenceSquared);
        Assert.IsTrue(relative < 2e-3, $"relative difference of the whole gradient {relative:E2}");
        Assert.IsTrue(method.FieldParameters.Count > 0);
    }

    [TestMethod]
    public void AdjointRefusesTheNearestEmbeddingRule()
    {
        var e = Assert.ThrowsExactly<NoPropException>(() => MethodFactory.Create(AdjointConfig() with { Prediction = PredictionRule.NearestEmbedding }));
        StringAssert.Contains(e.Message, "linear layer");
    }

    [TestMethod]
    public void BaselinesLearnOnATinyProblem()
    {
        var splits = NoProp.Data.DataSplits.Create(TestSupport.Mnist, 512, 0, 256, seed: 2);
        var (x, y) = splits.Test.ToTensors();
        foreach (var config in new[] { BackpropConfig(blocks: 2), AdjointConfig(OdeSolverKind.Euler, steps: 4) })
        {
            TorchRuntime.Seed(3);
            using var method = MethodFactory.Create(config);
            var result = new Trainer(method, splits, new TrainingOptions { Epochs = 4, BatchSize = 16, Seed = 3 }).Run();
            double first = result.History[0].Losses["total"], last = result.History[^1].Losses["total"];
            Assert.IsTrue(last < first, $"{config.Method}: the cross-entropy must fall ({first:F3} → {last:F3})");
            double accuracy = Evaluator.Accuracy(method, x, y, new InferenceOptions { Generator = Evaluator.InferenceGenerator(1) });
            // End-to-end training through the softmax readouts starts slowly (BENCHMARKS.md); 128 steps show the trend.
            // Measured here: backprop 25.8 %, adjoint 73.8 %; the bound is twice chance.
            Assert.IsTrue(accuracy > 0.2, $"{config.Method}: test accuracy {accuracy:P1} after 4 epochs on 512 images (chance is 10 %)");
        }
    }
}
