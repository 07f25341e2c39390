using NoProp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>
/// What the shared training loop needs from a method: a training step on one minibatch and class
/// probabilities for a batch of images. Methods that train their parts one after another (NoProp-DT
/// trains block 1 on every minibatch, then block 2, ... as in Algorithm 1) expose each part as a stage;
/// the loop runs every stage over the whole (shuffled) training split in each epoch.
/// </summary>
public interface INoPropMethod : IDisposable
{
    ModelConfig Config { get; }

    /// <summary>Where the network's parameters live (the device of training and inference tensors).</summary>
    Device Device => Network.parameters().FirstOrDefault()?.device ?? CPU;

    /// <summary>The module holding every parameter and buffer of the model (saved and loaded as one).</summary>
    nn.Module Network { get; }

    /// <summary>The class embedding W_Embed (u_y = W_Embed[y]).</summary>
    NoProp.Embeddings.LabelEmbedding Embedding { get; }

    /// <summary>The optimizers whose state a checkpoint must keep, in a fixed order.</summary>
    IReadOnlyList<OptimizerHelper> Optimizers { get; }

    int StagesPerEpoch { get; }

    string DescribeStage(int stage);

    /// <summary>The loss columns of <see cref="TrainStep"/> (<see cref="LossLayout.Columns"/>: the components, then "total").</summary>
    IReadOnlyList<string> LossNames { get; }

    /// <summary>
    /// One optimisation step of stage <paramref name="stage"/> on images x [B, C, H, W] and labels y [B].
    /// Returns the named, detached losses (kept on the device: reading them is the caller's choice).
    /// </summary>
    StepLosses TrainStep(int stage, Tensor x, Tensor y);

    /// <summary>Class probabilities [B, m] for images x. Called under no_grad with the network in eval mode.</summary>
    Tensor PredictProbabilities(Tensor x, InferenceOptions options);
}

/// <summary>How inference draws its noise, and how it computes.</summary>
public sealed record InferenceOptions
{
    /// <summary>DT: ε = 0 in Eq. 3 (z_0 is still drawn from N(0, I) unless <see cref="ZeroInitialState"/>).
    /// CT/FM: start the ODE from z_0 = 0, the prior's mean (the ODE itself has no noise).</summary>
    public bool Deterministic { get; init; }

    /// <summary>
    /// NoProp-DT: the inference rule for this evaluation, overriding the model's <see cref="ModelConfig.DtInference"/>
    /// (null: the model's). <see cref="Deterministic"/> still sets ε = 0 whatever this says.
    /// </summary>
    public DtInference? DtInference { get; init; }

    /// <summary>
    /// Images per inference batch when a whole split is scored (<c>--inference-batch-size</c>). NoProp-DT computes the
    /// fused image paths of a batch in chunks of <see cref="DiscreteTime.NoPropDt.ImageChunk"/> images, so its batches can
    /// be large; CT/FM reuse one batch's image features at every solver step.
    /// </summary>
    public int BatchSize { get; init; } = DefaultBatchSize;

    /// <summary>The default of <see cref="BatchSize"/> (BENCHMARKS.md, "Inference batch size").</summary>
    public const int DefaultBatchSize = 1000;

    /// <summary>
    /// The number format of the image paths' convolutions (<c>--inference-precision</c>): bfloat16 about halves
    /// DT inference time on CPUs with native bfloat16 and moves the features by ~1 % of their size (BENCHMARKS.md,
    /// "bfloat16 inference"). Applies to the paper's conv module; <see cref="PrecisionRegion"/> rejects other backbones.
    /// </summary>
    public InferencePrecision Precision { get; init; }

    /// <summary>
    /// Sets <see cref="Precision"/> for the conv image paths on this thread until disposed (ConvolutionPrecision);
    /// a <see cref="NoPropException"/> when bfloat16 is asked of a model whose image path is not the paper's conv module.
    /// </summary>
    public IDisposable PrecisionRegion(ModelConfig config)
    {
        CheckPrecision(Precision, config);
        return ConvolutionPrecision.Use(Precision);
    }

    /// <summary>A <see cref="NoPropException"/> unless a model of <paramref name="config"/> can infer in <paramref name="precision"/>.</summary>
    public static void CheckPrecision(InferencePrecision precision, ModelConfig config)
    {
        if (precision != InferencePrecision.Float32 && config.Backbone != NoProp.Models.BackboneKind.Paper)
            throw new NoPropException($"--inference-precision {EnumNames<InferencePrecision>.NameOf(precision)}: only the paper's conv module computes in " +
                                      $"bfloat16; this model's backbone is {EnumNames<NoProp.Models.BackboneKind>.NameOf(config.Backbone)} (use fp32)");
    }

    /// <summary>Start from z_0 = 0 instead of a draw from N(0, I).</summary>
    public bool ZeroInitialState { get; init; }

    /// <summary>The generator for every draw; a fixed seed makes a run repeatable. Null uses the global generator.</summary>
    public Generator? Generator { get; init; }

    /// <summary>CT/FM: the ODE solver (null: the model's configured one).</summary>
    public NoProp.Solvers.OdeSolverKind? Solver { get; init; }

    /// <summary>CT/FM: solver steps over [0, 1] (null: the model's configured number).</summary>
    public int? Steps { get; init; }

    /// <summary>CT/FM: compute the image features once per batch and reuse them at every solver step.
    /// Off recomputes the whole image path at every function evaluation (what the reference code does).</summary>
    public bool CacheImageFeatures { get; init; } = true;

    /// <summary>CT/FM: override the model's prediction rule.</summary>
    public PredictionRule? Prediction { get; init; }

    /// <summary>Receives solver statistics (function evaluations), when set.</summary>
    public InferenceStatistics? Statistics { get; init; }

    /// <summary>
    /// Draws every inference noise tensor instead of <see cref="Generator"/>, when set: a caller can then decide
    /// where each image's noise comes from (the ML.NET adapter gives each image a generator of its own, so an
    /// image's score does not depend on the batch it is scored in). Called with the shape [B, ...] and device.
    /// </summary>
    public Func<long[], Device, Tensor>? NoiseSource { get; init; }

    /// <summary>Draws standard normal noise of the given shape from <see cref="NoiseSource"/> or <see cref="Generator"/>.</summary>
    public Tensor Noise(long[] shape, Device device) => NoiseSource is not null
        ? NoiseSource(shape, device)
        : randn(shape, ScalarType.Float32, device: device, generator: Generator);
}

/// <summary>Counters filled in by inference.</summary>
public sealed class InferenceStatistics
{
    /// <summary>Network evaluations made by the ODE solver, summed over batches.</summary>
    public long FunctionEvaluations { get; set; }
    public int Batches { get; set; }
}
