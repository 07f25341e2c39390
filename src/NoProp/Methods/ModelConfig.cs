using System.Text.Json;
using System.Text.Json.Serialization;
using NoProp.Embeddings;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Solvers;

namespace NoProp.Methods;

/// <summary>In which order NoProp-DT's blocks take their training steps.</summary>
[NamedAs("block schedule")]
public enum BlockSchedule
{
    /// <summary>Algorithm 1: in each epoch block 1 trains on every minibatch, then block 2, ... (the paper's order).</summary>
    [Name("sequential")] Sequential,
    /// <summary>
    /// Every block takes its own step on the same minibatch, all T computed as one fused computation
    /// (<see cref="Models.FusedDtBlocks"/>). Each block still sees every image once per epoch and learns from its own
    /// loss only; the output head (and a learned embedding) take T steps per minibatch, as in Algorithm 1.
    /// </summary>
    [Name("parallel")] Parallel,
}

/// <summary>How NoProp-DT's inference chain (Eq. 3) treats the noise term √c_t·ε_t.</summary>
[NamedAs("DT inference")]
public enum DtInference
{
    /// <summary>Eq. 3 as the paper writes it: fresh Gaussian noise √c_t·ε_t after every block (z_0 ~ N(0, I)).</summary>
    [Name("stochastic")] Stochastic,
    /// <summary>
    /// ε_t = 0: every step takes the mean a_t·û + b_t·z_{t−1} of Eq. 3's transition (as DDIM's η = 0 does for a
    /// diffusion model); z_0 is still drawn. The blocks are trained exactly as with <see cref="Stochastic"/>.
    /// </summary>
    [Name("deterministic")] Deterministic,
}

/// <summary>How NoProp-CT weights its denoising term.</summary>
[NamedAs("weighting")]
public enum CtWeighting
{
    /// <summary>½·η·SNR'(t)·‖û − u_y‖²: the paper's Eq. 9.</summary>
    [Name("snr-derivative")] SnrDerivative,
    /// <summary>½·η·‖û − u_y‖²: a constant weight over t (see docs/design-notes.md for the measured effect).</summary>
    [Name("constant")] Constant,
}

/// <summary>What trains NoProp-CT's learnable noise schedule ψ (Appendix B).</summary>
[NamedAs("schedule training")]
public enum CtScheduleTraining
{
    /// <summary>The whole loss, as Algorithm 2 (step 4) updates ψ with θ: the paper's choice, an ELBO under SNR'(t) weighting.</summary>
    [Name("joint")] Joint,
    /// <summary>
    /// Only the terms that are a bound under any weighting: the CE on z_1 (through ᾱ(1)) and the KL at t = 0 (through ᾱ(0)).
    /// The denoising term sees the schedule as a constant.
    /// </summary>
    [Name("detached")] Detached,
    /// <summary>ψ keeps its initial values (γ from <see cref="ModelConfig.InitialGammaMax"/> to <see cref="ModelConfig.InitialGammaMin"/>).</summary>
    [Name("frozen")] Frozen,
}

/// <summary>How a continuous-time model turns the final z into a class.</summary>
[NamedAs("prediction rule")]
public enum PredictionRule
{
    /// <summary>argmax of the output head p̂_θout(y | z_1) (the paper's rule for CT).</summary>
    [Name("head")] OutputHead,
    /// <summary>The class whose embedding is nearest to z_1 (the paper's rule for FM; argmax of z for one-hot).</summary>
    [Name("nearest")] NearestEmbedding,
}

/// <summary>The old entry points for a method's names and structure; each forwards to <see cref="MethodRegistry"/>.</summary>
public static class MethodKinds
{
    public static string ToCliName(this MethodKind kind) => MethodRegistry.Get(kind).CliName;

    public static readonly string[] CliNames = [.. MethodRegistry.CliNames];

    /// <summary>Methods built from the DT blocks (a chain of T blocks, `--blocks`): NoProp-DT and the backprop baseline.</summary>
    public static bool IsBlockChain(this MethodKind kind) => MethodRegistry.Get(kind).Structure == MethodStructure.BlockChain;

    /// <summary>Methods integrated by an ODE solver: NoProp-CT, NoProp-FM and the adjoint baseline.</summary>
    public static bool IsContinuous(this MethodKind kind) => MethodRegistry.Get(kind).Structure == MethodStructure.Continuous;

    /// <summary>The name the paper's tables use ("NoProp-DT", "Backprop", ...).</summary>
    public static string DisplayName(this MethodKind kind) => MethodRegistry.Get(kind).DisplayName;

    public static MethodKind Parse(string value) => MethodRegistry.Parse(value).Kind;
}

/// <summary>Everything needed to rebuild a trained model: saved as model.json beside the weights.</summary>
public sealed record ModelConfig
{
    public MethodKind Method { get; init; } = MethodKind.DiscreteTime;
    /// <summary>The data set the model was trained on: mnist, fashion-mnist, cifar10, cifar100 or folder:PATH.</summary>
    public string Dataset { get; init; } = "mnist";

    /// <summary>CIFAR-100 only: which labels (fine, 100 classes, or coarse, 20 classes).</summary>
    public NoProp.Data.Cifar100Labels DatasetLabels { get; init; } = NoProp.Data.Cifar100Labels.Fine;

    /// <summary>The spec that reloads this model's data set (folders at the model's image size and channels, decoded by <paramref name="imageDecoder"/>).</summary>
    public NoProp.Data.DatasetSpec DatasetSpec(string? dataDirectory, NoProp.Data.IImageDecoder? imageDecoder = null) => NoProp.Data.DatasetSpec.Parse(Dataset, dataDirectory, imageDecoder) with
    {
        CifarLabels = DatasetLabels,
        FolderChannels = Image.Channels,
        FolderHeight = Image.Height,
        FolderWidth = Image.Width,
    };
    public ImageShape Image { get; init; } = new(1, 28, 28);
    public string[] ClassNames { get; init; } = [];
    public float[] NormalizationMean { get; init; } = [];
    public float[] NormalizationStd { get; init; } = [];
    public LabelEmbeddingKind Embedding { get; init; } = LabelEmbeddingKind.OneHot;

    /// <summary>d: the class count for one-hot, k for learned, C·H·W for prototype.</summary>
    public int EmbeddingDimension { get; init; }

    /// <summary>T, the number of DT blocks (paper: 10).</summary>
    public int Blocks { get; init; } = 10;

    /// <summary>η, the weight of the denoising term (paper: 0.1 for DT).</summary>
    public double Eta { get; init; } = 0.1;

    /// <summary>ᾱ_T of the cosine schedule, which is scaled to end there (see <see cref="Schedules.CosineSchedule"/>).</summary>
    public double MaxAlphaBar { get; init; } = Schedules.CosineSchedule.DefaultMaxAlphaBar;

    public double LearningRate { get; init; } = 1e-3;
    public double WeightDecay { get; init; } = 1e-3;

    /// <summary>NoProp-DT: the order of the blocks' training steps (Algorithm 1's sequential order by default).</summary>
    public BlockSchedule BlockSchedule { get; init; } = BlockSchedule.Sequential;

    /// <summary>NoProp-DT: whether inference draws Eq. 3's noise (the paper) or takes each step's mean.</summary>
    public DtInference DtInference { get; init; } = DtInference.Stochastic;

    // ---- continuous time (CT and FM) ----

    /// <summary>The image path of the CT/FM network.</summary>
    public BackboneKind Backbone { get; init; } = BackboneKind.Paper;

    /// <summary>The ODE solver used for inference.</summary>
    public OdeSolverKind Solver { get; init; } = OdeSolverKind.Heun;

    /// <summary>Solver steps over t ∈ [0, 1] (the paper simulates 1000 steps; 40 Heun steps are within noise of that).</summary>
    public int InferenceSteps { get; init; } = 40;

    /// <summary>
    /// NoProp-CT's denoising weight. The default is <see cref="CtWeighting.Constant"/>: on MNIST (10,000 images,
    /// 3 epochs) the paper's SNR'(t) weight reached 63.0 % validation accuracy against 94.9 % (BENCHMARKS.md, seed 1), because
    /// SNR'(t) puts almost all weight near t = 1, where z alone reveals the label, and the network barely learns
    /// to read the image at small t.
    /// </summary>
    public CtWeighting Weighting { get; init; } = CtWeighting.Constant;

    /// <summary>
    /// What trains NoProp-CT's schedule ψ; null (a model.json without the field, the ML.NET adapter) takes
    /// <see cref="DefaultScheduleTraining"/> for the model's weighting. Read it through <see cref="ScheduleTrainingOrDefault"/>.
    /// </summary>
    public CtScheduleTraining? ScheduleTraining { get; init; }

    [JsonIgnore] public CtScheduleTraining ScheduleTrainingOrDefault => ScheduleTraining ?? DefaultScheduleTraining(Weighting);

    /// <summary>
    /// Weight decay of the schedule's parameters ψ (the other parameters use <see cref="WeightDecay"/>). Default 0: ψ
    /// parameterises a monotone γ(t), so decaying it regularises nothing; with Adam's L2 form it walks γ's endpoints
    /// towards 0 (ᾱ towards ½) by about the learning rate per step (BENCHMARKS.md, NoProp-CT's schedule).
    /// </summary>
    public double ScheduleWeightDecay { get; init; } = DefaultScheduleWeightDecay;

    public const double DefaultScheduleWeightDecay = 0.0;

    /// <summary>How the final z becomes a class (CT and FM).</summary>
    public PredictionRule Prediction { get; init; } = PredictionRule.OutputHead;

    /// <summary>Initial γ(0) and γ(1) of the learnable schedule (ᾱ = sigmoid(−γ)); both are trained.</summary>
    public double InitialGammaMax { get; init; } = 5.0;
    public double InitialGammaMin { get; init; } = -5.0;

    /// <summary>σ of the flow-matching path N(t·u_y + (1 − t)·z_0, σ²) (Eq. 10); 0 gives the deterministic path.</summary>
    public double FlowSigma { get; init; }

    [JsonIgnore] public int ClassCount => ClassNames.Length;

    public static int DefaultEmbeddingDimension(LabelEmbeddingKind kind, int classes, ImageShape image, int? learned) => kind switch
    {
        LabelEmbeddingKind.OneHot => classes,
        LabelEmbeddingKind.Learned => learned ?? 20,
        LabelEmbeddingKind.Prototype => image.Size,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The method's default prediction rule (<see cref="MethodDefaults.Prediction"/>; why CT's is the nearest embedding: <see cref="ContinuousTime.NoPropCtDefinition"/>).</summary>
    public static PredictionRule DefaultPrediction(MethodKind method) => MethodRegistry.Get(method).Defaults.Prediction;

    /// <summary>
    /// What trains the CT schedule unless --schedule-training says otherwise: jointly under the paper's SNR'(t) weighting (Eq. 9
    /// is then a bound, and ψ is trained as Algorithm 2 says); detached under the constant weighting, whose denoising
    /// term is no bound and, followed by ψ, only asks for a cleaner z_t (a larger ᾱ(t)) — BENCHMARKS.md has the measurements.
    /// </summary>
    public static CtScheduleTraining DefaultScheduleTraining(CtWeighting weighting) =>
        weighting == CtWeighting.SnrDerivative ? CtScheduleTraining.Joint : CtScheduleTraining.Detached;

    public void Validate()
    {
        if (ClassNames.Length < 2) throw new NoPropException("a model needs at least two classes");
        if (Blocks < 1) throw new NoPropException("--blocks must be at least 1");
        if (EmbeddingDimension < 1) throw new NoPropException("--embedding-dim must be at least 1");
        if (Embedding == LabelEmbeddingKind.OneHot && EmbeddingDimension != ClassCount)
            throw new NoPropException($"--embedding-dim {EmbeddingDimension}: a one-hot embedding has dimension {ClassCount} (the class count)");
        if (Embedding == LabelEmbeddingKind.Prototype && EmbeddingDimension != Image.Size)
            throw new NoPropException($"--embedding-dim {EmbeddingDimension}: a prototype embedding has the image size {Image.Size}");
        if (!(Eta > 0)) throw new NoPropException("--eta must be positive");
        if (!(LearningRate > 0)) throw new NoPropException("--lr must be positive");
        if (!(WeightDecay >= 0)) throw new NoPropException("--weight-decay must be 0 or more");
        if (!(ScheduleWeightDecay >= 0)) throw new NoPropException("--schedule-weight-decay must be 0 or more");
        if (InferenceSteps < 1) throw new NoPropException("--steps must be at least 1");
        if (!(InitialGammaMax > InitialGammaMin)) throw new NoPropException("the initial γ(0) must exceed γ(1)");
        if (!(FlowSigma >= 0)) throw new NoPropException("--flow-sigma must be 0 or more");
        // What depends on the method (the options it has, its prediction rules) is checked by its definition.
        MethodRegistry.Get(Method).Validate(this);
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static ModelConfig FromJson(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<ModelConfig>(json, Json) ?? throw new NoPropException($"{source}: empty model configuration");
        }
        catch (JsonException e)
        {
            throw new NoPropException($"{source}: invalid model configuration ({e.Message})", e);
        }
    }
}
