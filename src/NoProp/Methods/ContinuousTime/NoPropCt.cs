using NoProp.Runtime;
using NoProp.Embeddings;
using NoProp.Losses;
using NoProp.Models;
using NoProp.Schedules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods.ContinuousTime;

/// <summary>
/// NoProp-CT (paper §2.4, Eq. 9, Algorithm 2). Training, per minibatch: t_i ~ U[0, 1],
/// z_{t_i} ~ N(√ᾱ(t_i)·u_y, (1 − ᾱ(t_i))·I) and the loss
/// CE(p̂_θout(y | z_1)) + D_KL(q(z_0|y) ‖ N(0, I)) + ½·η·w(t)·‖û_θ(z_t, x, t) − u_y‖², with w(t) = SNR'(t) (the paper)
/// or 1 (<see cref="CtWeighting.Constant"/>); Adam updates θ, θ_out, W_Embed and the schedule ψ together. What ψ learns
/// from is <see cref="ModelConfig.ScheduleTrainingOrDefault"/>: the whole loss (the paper), the CE and KL terms only, or nothing.
/// <para>
/// Inference integrates the probability-flow ODE of the variance-preserving process (the deterministic DDIM
/// path) from z_0 ~ N(0, I):
/// dz/dt = ᾱ'(t)/(2(1 − ᾱ(t)))·(û/√ᾱ − z) = −½·γ'(t)·(√ᾱ(t)·û − ᾱ(t)·z),
/// using ᾱ' = −γ'·ᾱ·(1 − ᾱ) for ᾱ = sigmoid(−γ). Written this way the drift has no 1/(1 − ᾱ) factor: its
/// Lipschitz constant in z is about |γ'|/2, bounded for all t, so Euler and Heun stay stable at few steps
/// (the (û − z)/(1 − ᾱ) form of the reference code is stiff as ᾱ → 1 and makes Heun diverge at few steps).
/// </para>
/// </summary>
public sealed class NoPropCt : NoPropMethod<ContinuousNetwork>, IImageOnlyReadout, ILearnedExtras, INoiseScheduleMethod
{
    private static readonly LossLayout Layout = new("cross_entropy", "kl", "denoise");
    private readonly OptimizerHelper optimizer;

    public NoPropCt(ModelConfig config, Device? device = null)
        : base(MethodKind.ContinuousTime, config, device, c => new ContinuousNetwork(c, "denoiser", withSchedule: true, "NoPropCtNetwork"), Layout)
    {
        // ψ is a parameter group of its own: its weight decay is set apart, and a frozen schedule is in no group.
        var schedule = Net.Schedule.parameters().ToHashSet(ReferenceEqualityComparer.Instance);
        var groups = new List<Adam.ParamGroup>
        {
            new(Net.parameters().Where(p => p.requires_grad && !schedule.Contains(p)).ToList(), lr: config.LearningRate, weight_decay: config.WeightDecay),
        };
        if (config.ScheduleTrainingOrDefault != CtScheduleTraining.Frozen)
            groups.Add(new(Net.Schedule.parameters().ToList(), lr: config.LearningRate, weight_decay: config.ScheduleWeightDecay));
        optimizer = HeldScalarOptimizers.Adam(groups, config.LearningRate, config.WeightDecay);
        SetOptimizers(optimizer);
    }

    public ContinuousNetwork CtNetwork => Net;
    public override LabelEmbedding Embedding => Net.Embedding;

    public override StepLosses TrainStep(int stage, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var schedule = Net.Schedule;
        var u = Net.Embedding.Lookup(y);
        long batch = x.shape[0];

        // Which terms ψ learns from: all (joint), the CE and KL only (detached), none (frozen).
        bool denoiseTrainsSchedule = Config.ScheduleTrainingOrDefault == CtScheduleTraining.Joint;
        bool endsTrainSchedule = Config.ScheduleTrainingOrDefault != CtScheduleTraining.Frozen;

        var t = rand(batch, device: x.device);
        var alphaBar = schedule.AlphaBar(t).unsqueeze(1);
        if (!denoiseTrainsSchedule) alphaBar = alphaBar.detach();
        var zt = VariancePreserving.SampleMarginal(u, alphaBar);
        var uHat = EmbeddingReadout.ConvexCombination(Net.Denoiser.forward(x, zt, t), Net.Embedding.Weight);
        var squaredError = (uHat - u).Squared().sum(1);
        var weight = Config.Weighting == CtWeighting.SnrDerivative ? schedule.SnrDerivative(t) : ones_like(t);
        if (!denoiseTrainsSchedule) weight = weight.detach();
        var denoise = (weight * squaredError).mean().Times(0.5 * Config.Eta);

        var ends = schedule.AlphaBar(tensor(new float[] { 0f, 1f }, device: x.device));
        if (!endsTrainSchedule) ends = ends.detach();
        var z1 = VariancePreserving.SampleMarginal(u, ends[1]);
        var crossEntropy = nn.functional.cross_entropy(Net.OutputHead.forward(z1), y);
        var kl = NoPropLosses.KlToStandardNormal(u, ends[0]);
        var total = crossEntropy.Plus(kl).Plus(denoise);

        optimizer.zero_grad();
        total.backward();
        optimizer.step();
        return Layout.Record(total, crossEntropy, kl, denoise);
    }

    /// <summary>The probability-flow drift −½·γ'(t)·(√ᾱ(t)·û(z, x, t) − ᾱ(t)·z) at one time t for the whole batch.</summary>
    public Tensor Drift(ContinuousInference.LogitsAt logits, Tensor z, double t)
    {
        using var scope = NewDisposeScope();
        var time = HeldScalars.Full(z.shape[0], t, z.device);
        var (gamma, gammaDerivative) = Net.Schedule.Gamma(time[..1]);
        var alphaBar = nn.functional.sigmoid(-gamma);
        var uHat = EmbeddingReadout.ConvexCombination(logits(z, time), Net.Embedding.Weight);
        var drift = (uHat * alphaBar.sqrt() - z * alphaBar) * gammaDerivative.Times(-0.5);
        return drift.MoveToOuterDisposeScope();
    }

    public override Tensor PredictProbabilities(Tensor x, InferenceOptions options)
    {
        using var scope = NewDisposeScope();
        var z1 = ContinuousInference.Integrate(Net.Denoiser, x, Config.EmbeddingDimension, Config, options, Drift);
        return ContinuousInference.Classify(z1, options.Prediction ?? Config.Prediction, Net.OutputHead, Net.Embedding.Weight)
            .MoveToOuterDisposeScope();
    }

    /// <summary>softmax of the logits of û_θ(0, x, 0): the image path alone, at the prior mean and t = 0.</summary>
    public Tensor ImageOnlyProbabilities(Tensor x)
    {
        using var logits = Net.LogitsAtOrigin(x, Config.EmbeddingDimension);
        return nn.functional.softmax(logits, 1);
    }

    /// <summary>The learned γ(0) and γ(1) ("gamma_max", "gamma_min").</summary>
    public IReadOnlyDictionary<string, object> LearnedExtras()
    {
        var (gammaMax, gammaMin) = Net.Schedule.Endpoints();
        return new Dictionary<string, object> { ["gamma_max"] = Math.Round(gammaMax, 5), ["gamma_min"] = Math.Round(gammaMin, 5) };
    }

    /// <summary>ᾱ(t), SNR(t) = e^−γ(t) and γ(t) of the learned schedule.</summary>
    public NoiseScheduleTable TabulateSchedule(int points = 201)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var t = linspace(0, 1, points, device: Device);
        var (gamma, _) = Net.Schedule.Gamma(t);
        var alphaBar = nn.functional.sigmoid(-gamma).cpu().data<float>().ToArray();
        var gammaValues = gamma.cpu().data<float>().ToArray();
        return new NoiseScheduleTable(
            Enumerable.Range(0, points).Select(i => i / (double)(points - 1)).ToArray(), alphaBar,
            gammaValues.Select(g => Math.Exp(-g)).ToArray(), gammaValues);
    }
}
