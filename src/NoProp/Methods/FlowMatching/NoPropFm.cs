using NoProp.Embeddings;
using NoProp.Losses;
using NoProp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods.FlowMatching;

/// <summary>All parameters of a NoProp-FM model: the velocity network v_θ, the output head (anchor) and W_Embed.</summary>
public sealed class NoPropFmNetwork : nn.Module
{
    private readonly CtDenoiser velocity;
    private readonly Linear outputHead;
    private readonly LabelEmbedding embedding;

    public NoPropFmNetwork(ModelConfig config) : base(nameof(NoPropFmNetwork))
    {
        velocity = new CtDenoiser(config.Image, config.EmbeddingDimension, config.ClassCount,
            config.Embedding == LabelEmbeddingKind.Prototype, config.Backbone);
        outputHead = nn.Linear(config.EmbeddingDimension, config.ClassCount);
        embedding = new LabelEmbedding(config.Embedding, config.ClassCount, config.EmbeddingDimension);
        RegisterComponents();
    }

    public CtDenoiser Velocity => velocity;
    public Linear OutputHead => outputHead;
    public LabelEmbedding Embedding => embedding;
}

/// <summary>
/// NoProp-FM (paper §2.5, Eqs. 10–13, Algorithm 3). Training: t ~ U[0, 1], z_0 ~ N(0, I),
/// z_t = t·u_y + (1 − t)·z_0 (+ σ·ε), target velocity u_y − z_0, loss ‖v_θ(z_t, x, t) − (u_y − z_0)‖² with
/// v_θ = logits·W_Embed (no softmax, so the velocity may point anywhere). With a learned embedding the anchor
/// cross-entropy −log p̂_θout(y | z̃_1), z̃_1 = z_t + (1 − t)·v_θ, keeps the embeddings from collapsing (Eqs. 12–13).
/// Inference integrates dz/dt = v_θ(z, x, t) from z_0 ~ N(0, I) to t = 1 and predicts the class whose embedding is
/// nearest to z_1.
/// </summary>
public sealed class NoPropFm : INoPropMethod
{
    private readonly NoPropFmNetwork network;
    private readonly OptimizerHelper optimizer;

    public NoPropFm(ModelConfig config, Device? device = null)
    {
        config.Validate();
        Config = config;
        network = new NoPropFmNetwork(config);
        if (device is not null && device.type != DeviceType.CPU) network.to(device);
        optimizer = optim.Adam(network.parameters().Where(p => p.requires_grad).ToList(), config.LearningRate, weight_decay: config.WeightDecay);
        Optimizers = [optimizer];
    }

    public ModelConfig Config { get; }
    public NoPropFmNetwork FmNetwork => network;
    public nn.Module Network => network;
    public NoProp.Embeddings.LabelEmbedding Embedding => network.Embedding;
    public IReadOnlyList<OptimizerHelper> Optimizers { get; }
    public int StagesPerEpoch => 1;
    public string DescribeStage(int stage) => "all";
    public IReadOnlyList<string> LossNames { get; } = ["flow", "anchor_cross_entropy", "total"];

    private Tensor Velocity(Tensor logits) => logits.matmul(network.Embedding.Weight);

    public Tensor TrainStep(int stage, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var u = network.Embedding.Lookup(y);
        long batch = x.shape[0];
        var t = rand(batch, device: x.device);
        var tColumn = t.unsqueeze(1);
        var z0 = randn_like(u);
        var zt = u * tColumn + z0 * (1 - tColumn);
        if (Config.FlowSigma > 0) zt = zt + randn_like(u) * Config.FlowSigma;
        var v = Velocity(network.Velocity.forward(x, zt, t));
        var flow = NoPropLosses.MeanSquaredDistance(v, u - z0);
        Tensor anchor;
        if (network.Embedding.IsTrainable)
        {
            var zTilde = zt + v * (1 - tColumn);
            anchor = nn.functional.cross_entropy(network.OutputHead.forward(zTilde), y);
        }
        else
        {
            anchor = zeros(1, device: x.device).squeeze();
        }
        var total = flow + anchor;
        optimizer.zero_grad();
        total.backward();
        optimizer.step();
        return stack([flow, anchor, total]).detach().MoveToOuterDisposeScope();
    }

    /// <summary>The learned velocity v_θ(z, x, t) at one time t for the whole batch.</summary>
    public Tensor Drift(ContinuousInference.LogitsAt logits, Tensor z, double t)
    {
        using var time = full(z.shape[0], t, device: z.device);
        using var l = logits(z, time);
        return Velocity(l);
    }

    public Tensor PredictProbabilities(Tensor x, InferenceOptions options)
    {
        if (options.Prediction == PredictionRule.OutputHead && !network.Embedding.IsTrainable)
            throw new NoProp.Runtime.NoPropException("--prediction head: a one-hot NoProp-FM model has no trained output head (the anchor loss applies to learned embeddings); use --prediction nearest");
        using var scope = NewDisposeScope();
        var z1 = ContinuousInference.Integrate(network.Velocity, x, Config.EmbeddingDimension, Config, options, Drift);
        return ContinuousInference.Classify(z1, options.Prediction ?? Config.Prediction, network.OutputHead, network.Embedding.Weight)
            .MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        (optimizer as IDisposable)?.Dispose();
        network.Dispose();
    }
}
