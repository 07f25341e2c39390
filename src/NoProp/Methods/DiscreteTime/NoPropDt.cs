using NoProp.Losses;
using NoProp.Models;
using NoProp.Schedules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods.DiscreteTime;

/// <summary>
/// NoProp-DT (paper §2.3, Eqs. 3 and 6–8, Algorithm 1).
/// <para>
/// Training: stage t (block t) draws z_{t−1} ~ q(z_{t−1}|y) and z_T ~ q(z_T|y) from the closed-form marginals
/// (Eq. 6) and minimises, per Eq. 8 / Eq. 61,
/// CE(p̂_θout(y|z_T)) + D_KL(q(z_0|y) ‖ N(0,I)) + (T/2)·η·(SNR(t) − SNR(t−1))·‖û_θt(z_{t−1}, x) − u_y‖².
/// Each block has its own AdamW optimiser, and nothing but its own loss reaches it: no block's output feeds
/// another block during training. The output head and W_Embed share one optimiser stepped with every block step.
/// </para>
/// <para>
/// Inference (Eq. 3): z_0 ~ N(0, I), then z_t = a_t·û_θt(z_{t−1}, x) + b_t·z_{t−1} + √c_t·ε_t for t = 1..T, and the
/// prediction is the argmax of softmax(θ_out(z_T)).
/// </para>
/// </summary>
public sealed class NoPropDt : INoPropMethod
{
    private readonly NoPropDtNetwork network;
    private readonly OptimizerHelper[] blockOptimizers;
    private readonly OptimizerHelper headOptimizer;
    private readonly OptimizerHelper[] allOptimizers;
    private readonly double[] denoiseWeights;
    private readonly (double A, double B, double C)[] coefficients;

    public NoPropDt(ModelConfig config, Device? device = null)
    {
        config.Validate();
        Config = config;
        Schedule = new CosineSchedule(config.Blocks, config.MaxAlphaBar);
        network = new NoPropDtNetwork(config);
        if (device is not null && device.type != DeviceType.CPU) network.to(device);
        Device = device ?? CPU;

        blockOptimizers = network.Blocks
            .Select(b => (OptimizerHelper)optim.AdamW(b.parameters(), config.LearningRate, weight_decay: config.WeightDecay))
            .ToArray();
        var headParameters = network.OutputHead.parameters().ToList();
        if (network.Embedding.IsTrainable) headParameters.AddRange(network.Embedding.parameters());
        headOptimizer = optim.AdamW(headParameters, config.LearningRate, weight_decay: config.WeightDecay);
        allOptimizers = [.. blockOptimizers, headOptimizer];

        int T = config.Blocks;
        // Eq. 8: (T/2)·η·(SNR(t) − SNR(t−1)), one weight per block.
        denoiseWeights = Enumerable.Range(1, T).Select(t => T / 2.0 * config.Eta * (Schedule.Snr(t) - Schedule.Snr(t - 1))).ToArray();
        coefficients = Enumerable.Range(1, T).Select(t => Schedule.PosteriorCoefficients(t)).ToArray();
    }

    public ModelConfig Config { get; }
    public CosineSchedule Schedule { get; }
    public Device Device { get; }
    public NoPropDtNetwork DtNetwork => network;
    public nn.Module Network => network;
    public NoProp.Embeddings.LabelEmbedding Embedding => network.Embedding;
    public IReadOnlyList<OptimizerHelper> Optimizers => allOptimizers;
    public int StagesPerEpoch => Config.Blocks;
    public string DescribeStage(int stage) => $"block {stage + 1}/{Config.Blocks}";
    public IReadOnlyList<string> LossNames { get; } = ["cross_entropy", "kl", "denoise", "total"];

    /// <summary>The weight (T/2)·η·(SNR(t) − SNR(t−1)) of block t's denoising term (t = 1..T).</summary>
    public double DenoiseWeight(int t) => denoiseWeights[t - 1];

    public Tensor TrainStep(int stage, Tensor x, Tensor y)
    {
        int t = stage + 1;
        var block = network.Blocks[stage];
        var optimizer = blockOptimizers[stage];
        using var scope = NewDisposeScope();

        var u = network.Embedding.Lookup(y);
        var zPrevious = VariancePreserving.SampleMarginal(u, Schedule.AlphaBar(t - 1));
        var uHat = EmbeddingReadout.ConvexCombination(block.forward(x, zPrevious), network.Embedding.Weight);
        var denoise = NoPropLosses.MeanSquaredDistance(uHat, u) * denoiseWeights[stage];

        var zT = VariancePreserving.SampleMarginal(u, Schedule.AlphaBar(Config.Blocks));
        var crossEntropy = nn.functional.cross_entropy(network.OutputHead.forward(zT), y);
        var kl = NoPropLosses.KlToStandardNormal(u, Schedule.AlphaBar(0));
        var total = crossEntropy + kl + denoise;

        optimizer.zero_grad();
        headOptimizer.zero_grad();
        total.backward();
        optimizer.step();
        headOptimizer.step();

        return stack([crossEntropy, kl, denoise, total]).detach().MoveToOuterDisposeScope();
    }

    public Tensor PredictProbabilities(Tensor x, InferenceOptions options) =>
        nn.functional.softmax(network.OutputHead.forward(RunChain(x, options, null)), 1);

    /// <summary>
    /// Runs Eq. 3 through all T blocks and returns z_T. When <paramref name="perBlockProbabilities"/> is given,
    /// the output head's class probabilities on each z_t (t = 1..T) are added to it (per-block diagnostics).
    /// </summary>
    public Tensor RunChain(Tensor x, InferenceOptions options, List<Tensor>? perBlockProbabilities)
    {
        long batch = x.shape[0];
        var z = options.ZeroInitialState
            ? zeros(batch, Config.EmbeddingDimension, device: x.device)
            : options.Noise([batch, Config.EmbeddingDimension], x.device);
        var embedding = network.Embedding.Weight;
        for (int t = 1; t <= Config.Blocks; t++)
        {
            using var scope = NewDisposeScope();
            var (a, b, c) = coefficients[t - 1];
            var uHat = EmbeddingReadout.ConvexCombination(network.Blocks[t - 1].forward(x, z), embedding);
            var next = uHat * a + z * b;
            if (!options.Deterministic && c > 0)
                next.add_(options.Noise(next.shape, x.device), alpha: Math.Sqrt(c));
            z.Dispose();
            z = next.MoveToOuterDisposeScope();
            if (perBlockProbabilities is not null)
                perBlockProbabilities.Add(nn.functional.softmax(network.OutputHead.forward(z), 1).MoveToOuterDisposeScope());
        }
        return z;
    }

    public void Dispose()
    {
        foreach (var o in allOptimizers) (o as IDisposable)?.Dispose();
        network.Dispose();
    }
}
