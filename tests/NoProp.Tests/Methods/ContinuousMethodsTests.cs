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
    [DataRow("continuous_time")]
    [DataRow("flow_matching")]
    public void InferenceIntegratesRatherThanReplaces(string kindName)
    {
        var kind = new MethodKind(kindName);
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
    [DataRow("continuous_time")]
    [DataRow("flow_matching")]
    public void CachedImageFeaturesGiveTheSameAnswerWithFarFewerImagePasses(string kindName)
    {
        var kind = new MethodKind(kindName);
        using var method = MethodFactory.Create(Config(kind, steps: 6));
        var (x, _) = TestSupport.Mnist.Test.Take(32).ToTensors();
        var cachedStats = new InferenceStatistics();
        int savedChunk = ContinuousInference.ImageChunk;
        ContinuousInference.ImageChunk = 5;   // the cached features computed in chunks of 5, 5, ..., 2 images
        Tensor cached;
        try { cached = Evaluator.PredictProbabilities(method, x, new InferenceOptions { Generator = Evaluator.InferenceGenerator(2), Statistics = cachedStats }); }
        finally { ContinuousInference.ImageChunk = savedChunk; }
        using var uncached = Evaluator.PredictProbabilities(method, x, new InferenceOptions { Generator = Evaluator.InferenceGenerator(2), CacheImageFeatures = false });
        Assert.IsTrue(cached.CloseTo(uncached, 1e-5), "caching (in chunks) must not change the result");
        cached.Dispose();
        Assert.AreEqual(12, cachedStats.FunctionEvaluations, "Heun: 2 evaluations per step");
    }

    [TestMethod]
    [DataRow("continuous_time", LabelEmbeddingKind.OneHot)]
    [DataRow("continuous_time", LabelEmbeddingKind.Prototype)]
    [DataRow("flow_matching", LabelEmbeddingKind.OneHot)]
    [DataRow("flow_matching", LabelEmbeddingKind.Learned)]
    public void TrainingStepsAreFiniteAndTrainTheRightParameters(string kindName, LabelEmbeddingKind embedding)
    {
        var kind = new MethodKind(kindName);
        using var method = MethodFactory.Create(Config(kind, embedding));
        var (x, y) = TestSupport.Mnist.Train.Take(16).ToTensors();
        var before = method.Embedding.Weight.detach().clone();
        method.Network.train();
        using var losses = method.TrainStep(0, x, y);
        Assert.AreEqual(method.LossNames.Count, (int)losses.Values.shape[0]);
        Assert.IsTrue(losses.Values.isfinite().all().item<bool>());
        bool embeddingMoved = !method.Embedding.Weight.detach().SameAs(before);
        Assert.AreEqual(embedding != LabelEmbeddingKind.OneHot, embeddingMoved, "only a learned embedding is trained");
        if (kind == MethodKind.FlowMatching && embedding == LabelEmbeddingKind.OneHot)
            Assert.AreEqual(0f, losses.Values[1].item<float>(), "no anchor term for one-hot embeddings (its value is pinned in FlowMatchingLossMatchesEquation63ComputedByHand)");
        using var _ = no_grad();
        method.Network.eval();
        using var p = method.PredictProbabilities(x, new InferenceOptions());
        CollectionAssert.AreEqual(new long[] { 16, 10 }, p.shape);
    }

    /// <summary>Cross-entropy of an affine head on z, by hand in float64: mean of logsumexp(Wz + b) − (Wz + b)_y.</summary>
    private static double HandCrossEntropy(TorchSharp.Modules.Linear head, Tensor z, Tensor y)
    {
        var scores = z.to_type(ScalarType.Float64).matmul(head.weight!.detach().to_type(ScalarType.Float64).t()) + head.bias!.detach().to_type(ScalarType.Float64);
        return (scores.exp().sum(1).log() - scores.gather(1, y.unsqueeze(1)).squeeze(1)).mean().item<double>();
    }

    /// <summary>û = softmax(logits)·W in float64.</summary>
    private static Tensor HandReadout(Tensor logits, Tensor w)
    {
        var e = logits.to_type(ScalarType.Float64).exp();
        return (e / e.sum(1, keepdim: true)).matmul(w.to_type(ScalarType.Float64));
    }

    /// <summary>
    /// Eq. 9 / Eq. 62 term by term for fixed weights and noise (eval mode: the step draws t ~ U(0, 1), then ε for z_t,
    /// then ε for z_1): CE of the head on z_1 = √ᾱ(1) u + √(1 − ᾱ(1)) ε₂, KL to N(0, I) at ᾱ(0), and
    /// ½·η·mean(w(t)·‖û(z_t, x, t) − u‖²) with w = SNR'(t) (the paper) or 1 (constant). The initial endpoints are pinned:
    /// ᾱ(0) = sigmoid(−5), ᾱ(1) = sigmoid(5).
    /// </summary>
    [TestMethod]
    [DataRow(CtWeighting.SnrDerivative)]
    [DataRow(CtWeighting.Constant)]
    public void ContinuousTimeLossMatchesEquation9ComputedByHand(CtWeighting weighting)
    {
        using var method = new NoPropCt(Config(MethodKind.ContinuousTime, LabelEmbeddingKind.Learned) with { Weighting = weighting, Eta = 0.7 });
        var (x, y) = TestSupport.Mnist.Train.Take(6).ToTensors();
        method.Network.eval();
        var net = method.CtNetwork;
        double ce, kl, denoise, alphaBar0, alphaBar1;
        using (no_grad())
        {
            var w = method.Embedding.Weight.detach().clone();
            var u = w.index_select(0, y);
            var ends = net.Schedule.AlphaBar(tensor(new float[] { 0f, 1f }));
            alphaBar0 = ends[0].item<float>(); alphaBar1 = ends[1].item<float>();
            TorchRuntime.Seed(77);
            var t = rand(6);
            var e1 = randn_like(u);
            var e2 = randn_like(u);
            var (gamma, gammaDerivative) = net.Schedule.Gamma(t);
            var alphaBar = (1 / (1 + gamma.exp())).unsqueeze(1);                      // sigmoid(−γ)
            var zt = u * alphaBar.sqrt() + e1 * (1 - alphaBar).sqrt();
            var uHat = HandReadout(net.Denoiser.forward(x, zt, t), w);
            var weight = weighting == CtWeighting.SnrDerivative ? (-gammaDerivative * (-gamma).exp()).to_type(ScalarType.Float64) : ones(6, ScalarType.Float64);
            denoise = 0.5 * 0.7 * (weight * (uHat - u.to_type(ScalarType.Float64)).square().sum(1)).mean().item<double>();
            var z1 = u * Math.Sqrt(alphaBar1) + e2 * Math.Sqrt(1 - alphaBar1);
            ce = HandCrossEntropy(net.OutputHead, z1, y);
            double d = w.shape[1], normSquared = u.to_type(ScalarType.Float64).square().sum(1).mean().item<double>();
            kl = 0.5 * (alphaBar0 * normSquared - d * alphaBar0 - d * Math.Log(1 - alphaBar0));
        }
        Assert.AreEqual(0.0066928509242848554, alphaBar0, 1e-7, "ᾱ(0) = sigmoid(−γ_max), γ_max = 5");
        Assert.AreEqual(0.9933071490757153, alphaBar1, 1e-6, "ᾱ(1) = sigmoid(−γ_min), γ_min = −5");

        TorchRuntime.Seed(77);
        using var losses = method.TrainStep(0, x, y);
        var l = losses.Values.to_type(ScalarType.Float64).data<double>().ToArray();
        Assert.AreEqual(ce, l[0], 1e-5 * ce, "cross-entropy on z_1");
        // float32: −d·ᾱ_0 − d·log(1 − ᾱ_0) ≈ d·ᾱ_0²/2 loses about four digits to cancellation at ᾱ_0 = 0.0067.
        Assert.AreEqual(kl, l[1], 1e-3 * kl, "KL(q(z_0|y) ‖ N(0, I)) at the learned ᾱ(0)");
        Assert.AreEqual(denoise, l[2], 1e-4 * denoise, $"denoising term, {weighting} weighting");
        Assert.AreEqual(ce + kl + denoise, l[3], 1e-4 * (ce + kl + denoise), "total");
    }

    /// <summary>
    /// Eq. 63 and the anchor of Eq. 64 for fixed weights and noise (eval mode: the step draws t, then z_0): z_t = t·u + (1 − t)·z_0,
    /// the flow term mean‖v − (u − z_0)‖² with v = logits·W, and the anchor CE of the head on z̃_1 = z_t + (1 − t)·v.
    /// </summary>
    [TestMethod]
    public void FlowMatchingLossMatchesEquation63ComputedByHand()
    {
        using var method = new NoPropFm(Config(MethodKind.FlowMatching, LabelEmbeddingKind.Learned));
        var (x, y) = TestSupport.Mnist.Train.Take(6).ToTensors();
        method.Network.eval();
        double flow, anchor;
        using (no_grad())
        {
            var w = method.Embedding.Weight.detach().clone();
            var u = w.index_select(0, y);
            TorchRuntime.Seed(78);
            var t = rand(6);
            var z0 = randn_like(u);
            var tc = t.unsqueeze(1);
            var zt = u * tc + z0 * (1 - tc);
            var v = method.FmNetwork.Velocity.forward(x, zt, t).to_type(ScalarType.Float64).matmul(w.to_type(ScalarType.Float64));
            var target = (u - z0).to_type(ScalarType.Float64);
            flow = (v - target).square().sum(1).mean().item<double>();
            var zTilde = zt.to_type(ScalarType.Float64) + v * (1 - tc.to_type(ScalarType.Float64));
            anchor = HandCrossEntropy(method.FmNetwork.OutputHead, zTilde, y);
        }
        TorchRuntime.Seed(78);
        using var losses = method.TrainStep(0, x, y);
        var l = losses.Values.to_type(ScalarType.Float64).data<double>().ToArray();
        Assert.AreEqual(flow, l[0], 1e-5 * flow, "flow term against the target velocity u − z_0");
        Assert.AreEqual(anchor, l[1], 1e-5 * anchor, "anchor cross-entropy on z̃_1 = z_t + (1 − t)·v");
        Assert.AreEqual(flow + anchor, l[2], 1e-5 * (flow + anchor), "total");
    }

    [TestMethod]
    public void KlToStandardNormalIsPinned()
    {
        // u = (1, 2), ᾱ_0 = 0.3: ½[0.3·5 − 2·0.3 − 2·ln 0.7] = 0.8066749439387324 (the Gaussian KL, by hand).
        using var u = tensor(new float[] { 1f, 2f, 1f, 2f }, [2, 2]);
        Assert.AreEqual(0.8066749439387324, NoProp.Losses.NoPropLosses.KlToStandardNormal(u, 0.3).item<float>(), 1e-6);
        using var learned = tensor(0.3f);
        Assert.AreEqual(0.8066749439387324, NoProp.Losses.NoPropLosses.KlToStandardNormal(u, learned).item<float>(), 1e-6);
        Assert.AreEqual(0.0, NoProp.Losses.NoPropLosses.KlToStandardNormal(u, 0.0).item<float>(), 1e-7, "q(z_0|y) = N(0, I) at ᾱ_0 = 0");
    }

    [TestMethod]
    public void ResNetBackboneHandlesOneChannelImages()
    {
        using var method = MethodFactory.Create(Config(MethodKind.FlowMatching, backbone: BackboneKind.ResNet18, steps: 2));
        var (x, y) = TestSupport.Mnist.Train.Take(4).ToTensors();
        method.Network.train();
        using var losses = method.TrainStep(0, x, y);
        Assert.IsTrue(losses.Values.isfinite().all().item<bool>());
    }

    [TestMethod]
    [DataRow("continuous_time")]
    [DataRow("flow_matching")]
    public void ShortTrainingBeatsChanceByAWideMargin(string kindName)
    {
        var kind = new MethodKind(kindName);
        var splits = DataSplits.Create(TestSupport.Mnist, 2000, 200, 500, seed: 3);
        using var method = MethodFactory.Create(Config(kind, steps: 10));   // the defaults: constant weight, nearest embedding
        new Trainer(method, splits, new TrainingOptions { Epochs = 2, BatchSize = 32, Seed = 2 }).Run();
        var (x, y) = splits.Test.ToTensors();
        double accuracy = Evaluator.Accuracy(method, x, y, new InferenceOptions { Generator = Evaluator.InferenceGenerator(1) });
        Assert.IsTrue(accuracy > 0.6, $"{kind}: test accuracy {accuracy:P1} after two epochs on 2,000 images (chance is 10 %)");
    }
}
