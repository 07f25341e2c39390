using NoProp.Runtime;
using NoProp.Embeddings;
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
/// With <see cref="BlockSchedule.Parallel"/> one step trains all T blocks on the same minibatch: each block draws its
/// own z_{t−1}, the T blocks run as one fused computation (<see cref="FusedDtBlocks"/>), and the loss is
/// CE + KL + Σ_t weight_t·‖û_θt − u_y‖². Block t's parameters appear only in its own term, so each block's gradient is
/// exactly the one its sequential step would get on that minibatch, and each block keeps its own AdamW (same lr and
/// weight decay for all, no gradient clipping anywhere): per-block AdamW on per-block tensors is what it was. The
/// output head (and a learned W_Embed) take T steps per minibatch as in Algorithm 1: the first on CE + KL + the summed
/// denoising terms, the others on CE + KL with fresh draws of z_T.
/// </para>
/// <para>
/// Inference (Eq. 3): z_0 ~ N(0, I), then z_t = a_t·û_θt(z_{t−1}, x) + b_t·z_{t−1} + √c_t·ε_t for t = 1..T, and the
/// prediction is the argmax of softmax(θ_out(z_T)).
/// </para>
/// </summary>
public sealed class NoPropDt : NoPropMethod<NoPropDtNetwork>, IChainInference, IImageOnlyReadout
{
    private static readonly LossLayout Layout = new("cross_entropy", "kl", "denoise");
    private readonly OptimizerHelper[] blockOptimizers;
    private readonly OptimizerHelper headOptimizer;
    private readonly OptimizerHelper[] allOptimizers;
    private readonly double[] denoiseWeights;
    private readonly (double A, double B, double C)[] coefficients;
    private readonly FusedDtBlocks fused;
    private readonly Tensor parallelWeights, parallelSignal, parallelNoise;   // [T, 1, 1]: weight_t, √ᾱ_{t−1}, √(1 − ᾱ_{t−1})

    public NoPropDt(ModelConfig config, Device? device = null)
        : base(MethodKind.DiscreteTime, config, device, c => new NoPropDtNetwork(c), Layout)
    {
        Schedule = new CosineSchedule(config.Blocks, config.MaxAlphaBar);

        blockOptimizers = Net.Blocks.Select(b => NewOptimizer(b.parameters())).ToArray();
        var headParameters = Net.OutputHead.parameters().ToList();
        if (Net.Embedding.IsTrainable) headParameters.AddRange(Net.Embedding.parameters());
        headOptimizer = NewOptimizer(headParameters);
        allOptimizers = [.. blockOptimizers, headOptimizer];
        SetOptimizers(allOptimizers);

        int T = config.Blocks;
        // Eq. 8: (T/2)·η·(SNR(t) − SNR(t−1)), one weight per block.
        denoiseWeights = Enumerable.Range(1, T).Select(t => T / 2.0 * config.Eta * (Schedule.Snr(t) - Schedule.Snr(t - 1))).ToArray();
        coefficients = Enumerable.Range(1, T).Select(t => Schedule.PosteriorCoefficients(t)).ToArray();
        fused = new FusedDtBlocks(Net.Blocks.ToArray());
        parallelWeights = tensor(denoiseWeights.Select(w => (float)w).ToArray(), [T, 1], device: Device);
        parallelSignal = tensor(Enumerable.Range(1, T).Select(t => (float)Math.Sqrt(Schedule.AlphaBar(t - 1))).ToArray(), [T, 1, 1], device: Device);
        parallelNoise = tensor(Enumerable.Range(1, T).Select(t => (float)Math.Sqrt(1 - Schedule.AlphaBar(t - 1))).ToArray(), [T, 1, 1], device: Device);
    }

    public CosineSchedule Schedule { get; }
    public NoPropDtNetwork DtNetwork => Net;
    public override LabelEmbedding Embedding => Net.Embedding;
    /// <summary>The T blocks as one computation (parameters shared with <see cref="DtNetwork"/>'s blocks).</summary>
    public FusedDtBlocks FusedBlocks => fused;
    public override int StagesPerEpoch => Config.BlockSchedule == BlockSchedule.Parallel ? 1 : Config.Blocks;
    public override string DescribeStage(int stage) => Config.BlockSchedule == BlockSchedule.Parallel
        ? $"all {Config.Blocks} blocks in parallel"
        : $"block {stage + 1}/{Config.Blocks}";

    /// <summary>The weight (T/2)·η·(SNR(t) − SNR(t−1)) of block t's denoising term (t = 1..T).</summary>
    public double DenoiseWeight(int t) => denoiseWeights[t - 1];

    public override StepLosses TrainStep(int stage, Tensor x, Tensor y)
    {
        if (Config.BlockSchedule == BlockSchedule.Parallel)
        {
            if (stage != 0) throw new ArgumentOutOfRangeException(nameof(stage), "the parallel schedule has one stage");
            return TrainAllBlocks(x, y);
        }
        int t = stage + 1;
        var block = Net.Blocks[stage];
        var optimizer = blockOptimizers[stage];
        using var scope = NewDisposeScope();

        var u = Net.Embedding.Lookup(y);
        var zPrevious = VariancePreserving.SampleMarginal(u, Schedule.AlphaBar(t - 1));
        var uHat = EmbeddingReadout.ConvexCombination(block.forward(x, zPrevious), Net.Embedding.Weight);
        var denoise = NoPropLosses.MeanSquaredDistance(uHat, u).Times(denoiseWeights[stage]);

        var zT = VariancePreserving.SampleMarginal(u, Schedule.AlphaBar(Config.Blocks));
        var crossEntropy = nn.functional.cross_entropy(Net.OutputHead.forward(zT), y);
        var kl = NoPropLosses.KlToStandardNormal(u, Schedule.AlphaBar(0));
        var total = crossEntropy.Plus(kl).Plus(denoise);

        optimizer.zero_grad();
        headOptimizer.zero_grad();
        total.backward();
        optimizer.step();
        headOptimizer.step();

        return Layout.Record(total, crossEntropy, kl, denoise);
    }

    /// <summary>
    /// One step of every block on the same minibatch (<see cref="BlockSchedule.Parallel"/>). Returns the loss components
    /// with the denoising term averaged over the blocks, so that epoch means compare with the sequential schedule's.
    /// </summary>
    private StepLosses TrainAllBlocks(Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        int T = Config.Blocks;
        var u = Net.Embedding.Lookup(y);                                      // [B, d]
        var noise = randn(T, u.shape[0], u.shape[1], device: u.device);
        var zPrevious = (u.unsqueeze(0) * parallelSignal).Plus(noise * parallelNoise);    // [T, B, d]: z_{t−1} ~ q(z_{t−1}|y), own draw per block
        var logits = fused.Logits(x, zPrevious);                                  // [T, B, m]
        var uHat = nn.functional.softmax(logits, 2).matmul(Net.Embedding.Weight);
        var perBlock = (uHat - u.unsqueeze(0)).Squared().sum(2).mean([1], keepdim: true) * parallelWeights;   // [T, 1]
        var denoise = perBlock.sum();

        var zT = VariancePreserving.SampleMarginal(u, Schedule.AlphaBar(T));
        var crossEntropy = nn.functional.cross_entropy(Net.OutputHead.forward(zT), y);
        var kl = NoPropLosses.KlToStandardNormal(u, Schedule.AlphaBar(0));
        var total = crossEntropy.Plus(kl).Plus(denoise);

        foreach (var o in allOptimizers) o.zero_grad();
        total.backward();
        foreach (var o in allOptimizers) o.step();

        // Algorithm 1 steps the output head with every block step, T times per minibatch; so does this schedule,
        // each further step on CE + KL with a fresh z_T (the head is a d×m linear layer: these steps cost little).
        for (int k = 1; k < T; k++)
        {
            using var stepScope = NewDisposeScope();
            var uk = Net.Embedding.Lookup(y);
            var ce = nn.functional.cross_entropy(Net.OutputHead.forward(VariancePreserving.SampleMarginal(uk, Schedule.AlphaBar(T))), y);
            var headLoss = ce.Plus(NoPropLosses.KlToStandardNormal(uk, Schedule.AlphaBar(0)));
            headOptimizer.zero_grad();
            headLoss.backward();
            headOptimizer.step();
        }

        var meanDenoise = denoise.detach().DividedBy(T);
        return Layout.Record(crossEntropy.detach().Plus(kl.detach()).Plus(meanDenoise), crossEntropy.detach(), kl.detach(), meanDenoise);
    }

    public override Tensor PredictProbabilities(Tensor x, InferenceOptions options)
    {
        using var precision = options.PrecisionRegion(Config);
        using var scope = NewDisposeScope();
        using var features = ImageFeatures(x);
        return PredictFromImageFeatures(features, options).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Every block's image features [T, B, 256] for images x [B, C, H, W]: the fused image paths, in chunks of
    /// <see cref="ImageChunk"/> images so that the convolutions' activations stay small. In eval mode they do not
    /// depend on the inference noise, so one computation serves every run, diagnostic and block of a batch.
    /// Under no_grad in eval mode the convolutions use the thread's <see cref="ConvolutionPrecision"/>.
    /// </summary>
    public Tensor ImageFeatures(Tensor x) => fused.ImageFeatures(x, ImageChunk);

    /// <summary>Images per fused image-path computation (measured: see BENCHMARKS.md, "Inference batch size").</summary>
    public int ImageChunk { get; set; } = DefaultImageChunk;

    /// <summary>Measured on 2 cores (bench/NoProp.Bench dt-fused): 64 images keep the fused convolutions' activations in cache.</summary>
    public const int DefaultImageChunk = 64;

    /// <summary>Class probabilities [B, m] from precomputed <see cref="ImageFeatures"/>; <paramref name="callback"/> as in <see cref="RunChain"/>.</summary>
    public Tensor PredictFromImageFeatures(Tensor imageFeatures, InferenceOptions options, ChainCallback? callback = null)
    {
        using var zT = RunChainFromImageFeatures(imageFeatures, options, callback);
        return HeadProbabilities(zT);
    }

    /// <summary>Runs Eq. 3 through all T blocks and returns z_T; <paramref name="callback"/> sees z_t after every block t = 1..T.</summary>
    public Tensor RunChain(Tensor x, InferenceOptions options, ChainCallback? callback = null)
    {
        using var precision = options.PrecisionRegion(Config);
        using var features = ImageFeatures(x);
        return RunChainFromImageFeatures(features, options, callback);
    }

    public Tensor HeadProbabilities(Tensor z) => nn.functional.softmax(Net.OutputHead.forward(z), 1);

    /// <summary>
    /// softmax(logits of block 1 at z_0 = 0): block 1 is trained on pure noise (ᾱ_0 = 0), so it is exactly the
    /// classifier that predicts u_y from x alone.
    /// </summary>
    public Tensor ImageOnlyProbabilities(Tensor x) => Net.Blocks[0].ImageOnlyProbabilities(x, Config.EmbeddingDimension);

    /// <summary><see cref="RunChain"/> from precomputed image features [T, B, 256].</summary>
    public Tensor RunChainFromImageFeatures(Tensor imageFeatures, InferenceOptions options, ChainCallback? callback = null)
    {
        long batch = imageFeatures.shape[1];
        var device = imageFeatures.device;
        var z = options.ZeroInitialState
            ? zeros(batch, Config.EmbeddingDimension, device: device)
            : options.Noise([batch, Config.EmbeddingDimension], device);
        var embedding = Net.Embedding.Weight;
        bool deterministic = options.Deterministic || (options.DtInference ?? Config.DtInference) == DtInference.Deterministic;
        for (int t = 1; t <= Config.Blocks; t++)
        {
            using var scope = NewDisposeScope();
            var (a, b, c) = coefficients[t - 1];
            var uHat = EmbeddingReadout.ConvexCombination(Net.Blocks[t - 1].Logits(imageFeatures[t - 1], z), embedding);
            var next = uHat.Times(a).Plus(z.Times(b));
            if (!deterministic && c > 0)
                next.PlusScaledInPlace(options.Noise(next.shape, device), Math.Sqrt(c));
            z.Dispose();
            z = next.MoveToOuterDisposeScope();
            callback?.Invoke(new ChainStep(t, Config.Blocks, t / (double)Config.Blocks, z, uHat));
        }
        return z;
    }

    protected override void DisposeResources()
    {
        parallelWeights.Dispose(); parallelSignal.Dispose(); parallelNoise.Dispose();
    }
}
