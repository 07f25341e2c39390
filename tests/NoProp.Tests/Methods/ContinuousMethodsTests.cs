using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Methods.ContinuousTime;
using NoProp.Methods.FlowMatching;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;
using static TorchSharp.torch;

namespace NoProp.Tests.Methods;

[TestClass]
public sealed class ContinuousMethodsTests
{
    [TestInitialize]
    public void Init() { TorchRuntime.Initialize(); TorchRuntime.Seed(21); }

    private static ModelConfig Config(MethodKind method, LabelEmbeddingKind embedding = LabelEmbeddingKind.OneHot,
        OdeSolverKind solver = OdeSolverKind.Heun, int steps = 10, BackboneKind backbone = BackboneKind.Paper) =>
        TestSupport.Config(embedding) with
        {
            Method = method, Solver = solver, InferenceSteps = steps, Eta = 1.0, Backbone = backbone,
            Prediction = ModelConfig.DefaultPrediction(method),
        };

    [TestMethod]
    public void FlowMatchingWithOneHotHasNoHeadToPredictWith()
    {
        var e = Assert.ThrowsExactly<NoPropException>(() => MethodFactory.Create(Config(MethodKind.FlowMatching) with { Prediction = PredictionRule.OutputHead }));
        StringAssert.Contains(e.Message, "no trained output head");
    }

    [TestMethod]
    public void Dopri5InferenceChoosesItsOwnSteps()
    {
        using var method = MethodFactory.Create(Config(MethodKind.FlowMatching, solver: OdeSolverKind.Dopri5, steps: 1000));
        var (x, _) = TestSupport.Mnist.Test.Take(8).ToTensors();
        var statistics = new InferenceStatistics();
        using var p = Evaluator.PredictProbabilities(method, x, new InferenceOptions { Statistics = statistics });
        Assert.IsTrue(statistics.FunctionEvaluations < 1000, $"dopri5 must not be forced onto the 1000-point grid ({statistics.FunctionEvaluations} evaluations)");
        Assert.IsTrue(p.isfinite().all().item<bool>());
    }

    /// <summary>
    /// With an oracle network (û = u_y exactly), the probability-flow ODE has the closed-form solution
    /// z(t) = √ᾱ(t)·u + √(1 − ᾱ(t))·ε with ε fixed by z_0: the solvers must reproduce it, even at few steps.
    /// </summary>
    [TestMethod]
    public void CtDriftIntegratesTheDeterministicPathOfAnOracle()
    {
        using var method = new NoPropCt(Config(MethodKind.ContinuousTime) with { InitialGammaMax = 7, InitialGammaMin = -7 });
        using var _ = no_grad();
        var labels = tensor(new long[] { 0, 3, 7, 9 });
        var u = method.Embedding.Lookup(labels);
        ContinuousInference.LogitsAt oracle = (z, t) => nn.functional.one_hot(labels, 10).to_type(ScalarType.Float32) * 200f;
        var z0 = randn(4, 10);
        var ends = method.CtNetwork.Schedule.AlphaBar(tensor(new float[] { 0f, 1f }));
        float ab0 = ends[0].item<float>(), ab1 = ends[1].item<float>();
        var epsilon = (z0 - u * MathF.Sqrt(ab0)) / MathF.Sqrt(1 - ab0);
        var exact = u * MathF.Sqrt(ab1) + epsilon * MathF.Sqrt(1 - ab1);

        double previous = double.PositiveInfinity;
        foreach (int steps in new[] { 2, 5, 20, 80 })
        {
            var solution = OdeSolvers.Create(OdeSolverKind.Heun).Integrate((z, t) => method.Drift(oracle, z, t), z0, TimeGrid.Uniform(0, 1, steps));
            double error = (solution.Z - exact).abs().max().item<float>();
            Assert.IsTrue(double.IsFinite(error) && error < 0.5, $"Heun with {steps} steps must stay stable (error {error})");
            Assert.IsTrue(error < previous, $"the error must shrink with more steps ({steps}: {error} vs {previous})");
            previous = error;
        }
        Assert.IsTrue(previous < 1e-3, $"80 Heun steps reach the exact solution (error {previous})");
        // Euler is stable once h·|γ'|/2 < 2 (here |γ'| ≈ 14): 5 steps already land close.
        var euler = OdeSolvers.Create(OdeSolverKind.Euler).Integrate((z, t) => method.Drift(oracle, z, t), z0, TimeGrid.Uniform(0, 1, 5));
        Assert.IsTrue((euler.Z - exact).abs().max().item<float>() < 0.5);
    }

    [TestMethod]
    [DataRow(MethodKind.ContinuousTime)]
    [DataRow(MethodKind.FlowMatching)]
    public void InferenceIntegratesRatherThanReplaces(MethodKind kind)
    {
        // On an (untrained) network, refining the grid must converge: |z_N − z_2N| shrinks as N grows.
        using var method = MethodFactory.Create(Config(kind, solver: OdeSolverKind.Euler));
        var (x, _) = TestSupport.Mnist.Test.Take(16).ToTensors();
        method.Network.eval();
        using var _g = no_grad();
        Tensor Final(int steps)
        {
            var denoiser = method is NoPropCt ct ? ct.CtNetwork.Denoiser : ((NoPropFm)method).FmNetwork.Velocity;
            var options = new InferenceOptions { Steps = steps, Generator = Evaluator.InferenceGenerator(4) };
            return ContinuousInference.Integrate(denoiser, x, 10, method.Config, options,
                method is NoPropCt c ? c.Drift : ((NoPropFm)method).Drift);
        }
        double coarse = (Final(4) - Final(8)).abs().max().item<float>();
        double fine = (Final(64) - Final(128)).abs().max().item<float>();
        Assert.IsTrue(fine < coarse / 4, $"Euler must converge at first order (|z4 − z8| = {coarse}, |z64 − z128| = {fine})");
        Assert.IsTrue((Final(64) - Final(1)).abs().max().item<float>() > 1e-3, "z must move along t");
    }

    [TestMethod]
    [DataRow(MethodKind.ContinuousTime)]
    [DataRow(MethodKind.FlowMatching)]
    public void CachedImageFeaturesGiveTheSameAnswerWithFarFewerImagePasses(MethodKind kind)
    {
        using var method = MethodFactory.Create(Config(kind, steps: 6));
        var (x, _) = TestSupport.Mnist.Test.Take(32).ToTensors();
        var cachedStats = new InferenceStatistics();
        using var cached = Evaluator.PredictProbabilities(method, x, new InferenceOptions { Generator = Evaluator.InferenceGenerator(2), Statistics = cachedStats });
        using var uncached = Evaluator.PredictProbabilities(method, x, new InferenceOptions { Generator = Evaluator.InferenceGenerator(2), CacheImageFeatures = false });
        Assert.IsTrue(cached.CloseTo(uncached, 1e-5), "caching must not change the result");
        Assert.AreEqual(12, cachedStats.FunctionEvaluations, "Heun: 2 evaluations per step");
    }

    [TestMethod]
    [DataRow(MethodKind.ContinuousTime, LabelEmbeddingKind.OneHot)]
    [DataRow(MethodKind.ContinuousTime, LabelEmbeddingKind.Prototype)]
    [DataRow(MethodKind.FlowMatching, LabelEmbeddingKind.OneHot)]
    [DataRow(MethodKind.FlowMatching, LabelEmbeddingKind.Learned)]
    public void TrainingStepsAreFiniteAndTrainTheRightParameters(MethodKind kind, LabelEmbeddingKind embedding)
    {
        using var method = MethodFactory.Create(Config(kind, embedding));
        var (x, y) = TestSupport.Mnist.Train.Take(16).ToTensors();
        var before = method.Embedding.Weight.detach().clone();
        method.Network.train();
        using var losses = method.TrainStep(0, x, y);
        Assert.AreEqual(method.LossNames.Count, (int)losses.shape[0]);
        Assert.IsTrue(losses.isfinite().all().item<bool>());
        bool embeddingMoved = !method.Embedding.Weight.detach().SameAs(before);
        Assert.AreEqual(embedding != LabelEmbeddingKind.OneHot, embeddingMoved, "only a learned embedding is trained");
        if (kind == MethodKind.FlowMatching)
        {
            float anchor = losses[1].item<float>();
            if (embedding == LabelEmbeddingKind.OneHot) Assert.AreEqual(0f, anchor, "no anchor term for one-hot embeddings");
            else Assert.IsTrue(anchor > 0, "the anchor cross-entropy is active for learned embeddings");
        }
        using var _ = no_grad();
        method.Network.eval();
        using var p = method.PredictProbabilities(x, new InferenceOptions());
        CollectionAssert.AreEqual(new long[] { 16, 10 }, p.shape);
    }

    [TestMethod]
    public void ConstantWeightingIgnoresTheScheduleSlope()
    {
        // The two weightings must give different denoising terms on the same draw.
        var (x, y) = TestSupport.Mnist.Train.Take(16).ToTensors();
        float Denoise(CtWeighting w)
        {
            TorchRuntime.Seed(5);
            using var m = new NoPropCt(Config(MethodKind.ContinuousTime) with { Weighting = w });
            m.Network.train();
            using var l = m.TrainStep(0, x, y);
            return l[2].item<float>();
        }
        Assert.AreNotEqual(Denoise(CtWeighting.Constant), Denoise(CtWeighting.SnrDerivative));
    }

    [TestMethod]
    public void ResNetBackboneHandlesOneChannelImages()
    {
        using var method = MethodFactory.Create(Config(MethodKind.FlowMatching, backbone: BackboneKind.ResNet18, steps: 2));
        var (x, y) = TestSupport.Mnist.Train.Take(4).ToTensors();
        method.Network.train();
        using var losses = method.TrainStep(0, x, y);
        Assert.IsTrue(losses.isfinite().all().item<bool>());
    }

    [TestMethod]
    [DataRow(MethodKind.ContinuousTime)]
    [DataRow(MethodKind.FlowMatching)]
    public void ShortTrainingBeatsChanceByAWideMargin(MethodKind kind)
    {
        var splits = DataSplits.Create(TestSupport.Mnist, 2000, 200, 500, seed: 3);
        using var method = MethodFactory.Create(Config(kind, steps: 10));   // the defaults: constant weight, nearest embedding
        new Trainer(method, splits, new TrainingOptions { Epochs = 2, BatchSize = 32, Seed = 2 }).Run();
        var (x, y) = splits.Test.ToTensors();
        double accuracy = Evaluator.Accuracy(method, x, y, new InferenceOptions { Generator = Evaluator.InferenceGenerator(1) });
        Assert.IsTrue(accuracy > 0.6, $"{kind}: test accuracy {accuracy:P1} after two epochs on 2,000 images (chance is 10 %)");
    }
}
