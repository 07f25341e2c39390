using NoProp.Runtime;
using NoProp.Embeddings;
using NoProp.Losses;
using NoProp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods.FlowMatching;

/// <summary>
/// NoProp-FM (paper §2.5, Eqs. 10–13, Algorithm 3). Training: t ~ U[0, 1], z_0 ~ N(0, I),
/// z_t = t·u_y + (1 − t)·z_0 (+ σ·ε), target velocity u_y − z_0, loss ‖v_θ(z_t, x, t) − (u_y − z_0)‖² with
/// v_θ = logits·W_Embed (no softmax, so the velocity may point anywhere). With a learned embedding the anchor
/// cross-entropy −log p̂_θout(y | z̃_1), z̃_1 = z_t + (1 − t)·v_θ, keeps the embeddings from collapsing (Eqs. 12–13).
/// Inference integrates dz/dt = v_θ(z, x, t) from z_0 ~ N(0, I) to t = 1 and predicts the class whose embedding is
/// nearest to z_1.
/// </summary>
public sealed class NoPropFm : NoPropMethod<ContinuousNetwork>, IImageOnlyReadout
{
    private static readonly LossLayout Layout = new("flow", "anchor_cross_entropy");
    private readonly OptimizerHelper optimizer;

    public NoPropFm(ModelConfig config, Device? device = null)
        : base(MethodKind.FlowMatching, config, device, c => new ContinuousNetwork(c, "velocity", withSchedule: false, "NoPropFmNetwork"), Layout)
    {
        optimizer = NewOptimizer(TrainableParameters());
        SetOptimizers(optimizer);
    }

    public ContinuousNetwork FmNetwork => Net;
    public override LabelEmbedding Embedding => Net.Embedding;

    private Tensor Velocity(Tensor logits) => logits.matmul(Net.Embedding.Weight);

    public override StepLosses TrainStep(int stage, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var u = Net.Embedding.Lookup(y);
        long batch = x.shape[0];
        var t = rand(batch, device: x.device);
        var tColumn = t.unsqueeze(1);
        var z0 = randn_like(u);
        var zt = (u * tColumn).Plus(z0 * tColumn.SubtractedFrom(1));
        if (Config.FlowSigma > 0) zt = zt.Plus(randn_like(u).Times(Config.FlowSigma));
        var v = Velocity(Net.Velocity.forward(x, zt, t));
        var flow = NoPropLosses.MeanSquaredDistance(v, u - z0);
        Tensor anchor;
        if (Net.Embedding.IsTrainable)
        {
            var zTilde = zt.Plus(v * tColumn.SubtractedFrom(1));
            anchor = nn.functional.cross_entropy(Net.OutputHead.forward(zTilde), y);
        }
        else
        {
            anchor = zeros(1, device: x.device).squeeze();
        }
        var total = flow.Plus(anchor);
        optimizer.zero_grad();
        total.backward();
        optimizer.step();
        return Layout.Record(total, flow, anchor);
    }

    /// <summary>The learned velocity v_θ(z, x, t) at one time t for the whole batch.</summary>
    public Tensor Drift(ContinuousInference.LogitsAt logits, Tensor z, double t)
    {
        using var time = HeldScalars.Full(z.shape[0], t, z.device);
        using var l = logits(z, time);
        return Velocity(l);
    }

    public override Tensor PredictProbabilities(Tensor x, InferenceOptions options)
    {
        if (options.Prediction is PredictionRule rule) Definition.ValidatePrediction(Config, rule);
        using var scope = NewDisposeScope();
        var z1 = ContinuousInference.Integrate(Net.Velocity, x, Config.EmbeddingDimension, Config, options, Drift);
        return ContinuousInference.Classify(z1, options.Prediction ?? Config.Prediction, Net.OutputHead, Net.Embedding.Weight)
            .MoveToOuterDisposeScope();
    }

    /// <summary>The nearest class embedding to v_θ(0, x, 0): one Euler step of size 1 from z = 0 (the anchor z̃_1 of Eq. 12).</summary>
    public Tensor ImageOnlyProbabilities(Tensor x)
    {
        using var scope = NewDisposeScope();
        var v = Velocity(Net.LogitsAtOrigin(x, Config.EmbeddingDimension));
        return ContinuousInference.Classify(v, PredictionRule.NearestEmbedding, Net.OutputHead, Net.Embedding.Weight).MoveToOuterDisposeScope();
    }
}
