using Microsoft.ML;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Solvers;
using NoProp.Training;

namespace NoProp.ML;

// The option enums below let a user of `using NoProp.ML;` alone write every option. Each member IS the core's value
// (NoProp.Embeddings.LabelEmbeddingKind, NoProp.Solvers.OdeSolverKind, NoProp.Runtime.InferencePrecision), which stay the one definition: a cast maps them,
// and NoProp.ML.Tests fails if the core gains a member that is missing here. NoPropMethod names the NoProp methods the
// adapter offers; each member maps by name to the core's MethodKind (FlowMatching: "flow_matching", NoPropMethods).

/// <summary>The NoProp variant to train (paper §2.3–2.5); each member is the registered method of the same name (<see cref="MethodKind"/>).</summary>
public enum NoPropMethod
{
    /// <summary>NoProp-DT: T blocks, each trained alone to denoise a noisy label embedding (§2.3, Algorithm 1).</summary>
    DiscreteTime = 0,
    /// <summary>NoProp-CT: one network û(z_t, x, t), learnable noise schedule, ODE inference (Eq. 9, Algorithm 2).</summary>
    ContinuousTime = 1,
    /// <summary>NoProp-FM: flow matching of the label embedding (Eqs. 10–13, Algorithm 3).</summary>
    FlowMatching = 2,
}

/// <summary>The core's <see cref="MethodKind"/> of each <see cref="NoPropMethod"/>: the method whose name is the member's in snake_case.</summary>
internal static class NoPropMethods
{
    private static readonly Dictionary<NoPropMethod, MethodKind> Kinds = Enum.GetValues<NoPropMethod>().ToDictionary(m => m, m =>
        MethodRegistry.TryGetByName(System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(m.ToString()), out var definition)
            ? definition.Kind
            : throw new InvalidOperationException($"NoPropMethod.{m} names no registered method (known: {MethodRegistry.KnownNames})"));

    /// <summary>The core's identity of <paramref name="method"/> (<see cref="NoPropMethod.FlowMatching"/>: <see cref="MethodKind.FlowMatching"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="method"/> is no member of <see cref="NoPropMethod"/>.</exception>
    public static MethodKind ToMethodKind(this NoPropMethod method) => Kinds.TryGetValue(method, out var kind)
        ? kind
        : throw new ArgumentOutOfRangeException(nameof(method), $"not a NoPropMethod: {method}");

    /// <summary>The member of <paramref name="kind"/>, or null for a method the adapter does not offer (a baseline).</summary>
    public static NoPropMethod? FromMethodKind(MethodKind kind) => Kinds.FirstOrDefault(p => p.Value == kind) is { Value: not null } p ? p.Key : null;
}

/// <summary>How class labels are embedded as the denoising targets (paper §2.2.1); <see cref="LabelEmbeddingKind"/>.</summary>
public enum NoPropLabelEmbedding
{
    /// <inheritdoc cref="LabelEmbeddingKind.OneHot"/>
    OneHot = LabelEmbeddingKind.OneHot,
    /// <inheritdoc cref="LabelEmbeddingKind.Learned"/>
    Learned = LabelEmbeddingKind.Learned,
    /// <inheritdoc cref="LabelEmbeddingKind.Prototype"/>
    Prototype = LabelEmbeddingKind.Prototype,
}

/// <summary>The ODE solver NoProp-CT and NoProp-FM integrate with at inference; <see cref="OdeSolverKind"/>.</summary>
public enum NoPropOdeSolver
{
    /// <inheritdoc cref="OdeSolverKind.Euler"/>
    Euler = OdeSolverKind.Euler,
    /// <inheritdoc cref="OdeSolverKind.Heun"/>
    Heun = OdeSolverKind.Heun,
    /// <inheritdoc cref="OdeSolverKind.Midpoint"/>
    Midpoint = OdeSolverKind.Midpoint,
    /// <inheritdoc cref="OdeSolverKind.Rk4"/>
    Rk4 = OdeSolverKind.Rk4,
    /// <inheritdoc cref="OdeSolverKind.Dopri5"/>
    Dopri5 = OdeSolverKind.Dopri5,
}

/// <summary>The number format of the image path's convolutions at inference; <see cref="NoProp.Runtime.InferencePrecision"/>.</summary>
public enum NoPropInferencePrecision
{
    /// <inheritdoc cref="NoProp.Runtime.InferencePrecision.Float32"/>
    Float32 = NoProp.Runtime.InferencePrecision.Float32,
    /// <inheritdoc cref="NoProp.Runtime.InferencePrecision.BFloat16"/>
    BFloat16 = NoProp.Runtime.InferencePrecision.BFloat16,
}

/// <summary>How the features are standardised before they reach the network.</summary>
public enum FeatureNormalization
{
    /// <summary>Per-channel mean and standard deviation measured on the training rows (stored in the model).</summary>
    TrainingStatistics,
    /// <summary>The given <see cref="NoPropOptions.NormalizationMean"/> and <see cref="NoPropOptions.NormalizationStd"/>.</summary>
    Explicit,
    /// <summary>The features reach the network as they are.</summary>
    None,
}

/// <summary>
/// Options of <see cref="NoPropEstimator"/>. The defaults train NoProp-DT with the paper's MNIST configuration except
/// the epoch count; every option is stored in the trained model where it matters for scoring.
/// </summary>
public sealed class NoPropOptions
{
    /// <summary>The label: a key column (put <c>MapValueToKey</c> before the estimator). Its key values become the class names.</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>The input: a known-size vector of Single holding one image per row, channel-major (C × H × W).</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>The output column of class probabilities (Vector&lt;Single, K&gt;).</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>The output column of the predicted class (Key&lt;UInt32, K&gt;, the label's key type).</summary>
    public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

    public NoPropMethod Method { get; set; } = NoPropMethod.DiscreteTime;

    /// <summary>The label embedding W_Embed: one-hot (fixed), learned, or learned from class prototypes.</summary>
    public NoPropLabelEmbedding Embedding { get; set; } = NoPropLabelEmbedding.OneHot;

    /// <summary>The dimension of a <see cref="NoPropLabelEmbedding.Learned"/> embedding (the others fix it); null: 20.</summary>
    public int? EmbeddingDimension { get; set; }

    public int Epochs { get; set; } = 10;
    public int BatchSize { get; set; } = 128;

    /// <summary>
    /// Seeds initialisation, data order, the validation split and the scoring noise of the trained model. Null (the
    /// default) draws it from the MLContext's random source, as LightGbm does: <c>new MLContext(seed: 7)</c> then gives
    /// the same model on every run, and an MLContext without a seed a different one each time.
    /// </summary>
    public int? Seed { get; set; }

    /// <summary>NoProp-DT only: T, the number of blocks (paper: 10).</summary>
    public int Blocks { get; set; } = MethodRegistry.Get(MethodKind.DiscreteTime).Defaults.Blocks;

    /// <summary>The learning rate of every optimiser (paper: 10⁻³).</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Weight decay of the optimisers (AdamW for DT as in the paper, 10⁻³; Adam's L2 term for CT and FM).</summary>
    public double WeightDecay { get; set; } = 1e-3;

    /// <summary>η, the weight of the denoising loss; null: the method's default (<see cref="MethodDefaults.Eta"/>: 0.1 for DT, 1 for CT; FM has no η).</summary>
    public double? Eta { get; set; }

    /// <summary>
    /// NoProp-DT only: inference takes each step's mean (ε = 0 in Eq. 3; z_0 is still drawn) instead of the paper's fresh
    /// noise after every block, for validation and for scoring with the trained model. Training is the same either way.
    /// </summary>
    public bool DeterministicInference { get; set; }

    /// <summary>NoProp-CT and NoProp-FM only: the ODE solver used at inference.</summary>
    public NoPropOdeSolver Solver { get; set; } = (NoPropOdeSolver)MethodRegistry.Get(MethodKind.ContinuousTime).Defaults.Solver;

    /// <summary>NoProp-CT and NoProp-FM only: solver steps over t ∈ [0, 1].</summary>
    public int InferenceSteps { get; set; } = MethodRegistry.Get(MethodKind.ContinuousTime).Defaults.InferenceSteps;

    /// <summary>
    /// The share of the training rows held out to pick the best epoch (validation accuracy after every epoch);
    /// 0 trains on every row and keeps the last epoch. Not used when validation data is given
    /// (<see cref="ValidationSet"/> or <c>Fit(trainData, validationData)</c>).
    /// </summary>
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>
    /// Validation rows (as Vision's <c>ImageClassificationTrainer.Options.ValidationSet</c>): the same columns as the
    /// training data, the label keyed with the same key values. Takes precedence over <see cref="ValidationFraction"/>;
    /// the validation data given to <c>Fit(trainData, validationData)</c> takes precedence over it.
    /// </summary>
    public IDataView? ValidationSet { get; set; }

    /// <summary>
    /// Early stopping: end training after this many epochs in a row without a validation accuracy gain above
    /// <see cref="EarlyStoppingMinDelta"/> (the model keeps the best epoch). Null trains every epoch. Needs validation rows.
    /// </summary>
    public int? EarlyStoppingPatience { get; set; }

    /// <summary>The validation accuracy gain (a fraction: 0.001 = 0.1 point) that counts as an improvement for early stopping.</summary>
    public double EarlyStoppingMinDelta { get; set; }

    /// <summary>Called after every epoch with its losses, validation accuracy and timings (as Vision's <c>MetricsCallback</c>).</summary>
    public Action<NoPropEpochMetrics>? MetricsCallback { get; set; }

    /// <summary>Image shape. When all three are null it comes from the feature column's dimensions (ExtractPixels gives
    /// [C, H, W]); a flat vector of n² values is read as a 1 × n × n image. Set all three for any other flat vector.</summary>
    public int? Channels { get; set; }
    public int? Height { get; set; }
    public int? Width { get; set; }

    public FeatureNormalization Normalization { get; set; } = FeatureNormalization.TrainingStatistics;

    /// <summary>Per-channel means for <see cref="FeatureNormalization.Explicit"/> (MNIST in [0, 1]: 0.1307).</summary>
    public float[]? NormalizationMean { get; set; }

    /// <summary>Per-channel standard deviations for <see cref="FeatureNormalization.Explicit"/> (MNIST in [0, 1]: 0.3081).</summary>
    public float[]? NormalizationStd { get; set; }

    /// <summary>Rows per forward pass when scoring.</summary>
    public int InferenceBatchSize { get; set; } = 256;

    /// <summary>
    /// The number format of the image path's convolutions in validation and scoring (saved with the model):
    /// <see cref="NoPropInferencePrecision.BFloat16"/> takes about 0.6× the NoProp-DT scoring time on CPUs with AVX-512
    /// BF16 or AMX (emulated, and slower, elsewhere); training is unchanged.
    /// </summary>
    public NoPropInferencePrecision InferencePrecision { get; set; } = NoPropInferencePrecision.Float32;

    /// <summary>Receives progress (every minibatch) and epoch summaries besides the MLContext log; e.g. <see cref="ConsoleProgress"/>.</summary>
    public ITrainingProgress? Progress { get; set; }

    /// <summary>
    /// Stops training when it fires: checked before every minibatch (as is the MLContext's own cancellation), so
    /// <c>Fit</c> throws <see cref="OperationCanceledException"/> within one minibatch and leaves no model behind.
    /// </summary>
    public CancellationToken CancellationToken { get; set; }

    internal NoPropOptions Clone() => (NoPropOptions)MemberwiseClone();
}
