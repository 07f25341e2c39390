using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Runtime;

namespace NoProp.Training.Runs;

/// <summary>
/// Everything a training run needs, in one typed record: the data set and its splits, the method and its model
/// options, the training options, where it runs and where its folder goes. <see cref="TrainingRun"/> runs it;
/// <c>noprop train</c> builds one from its options, the experiment grid hands one to each of its child processes,
/// and a run folder keeps it as run.json (<see cref="RunFile"/>) so <c>--resume</c> and <c>eval --split validation</c>
/// can read it back. Null model options take the method's default.
/// </summary>
public sealed record TrainRequest
{
    /// <summary>The method's CLI name: dt, ct, fm, backprop or adjoint.</summary>
    public string Method { get; init; } = "dt";
    public DataRequest Data { get; init; } = new();
    public SplitRequest Splits { get; init; } = new();
    public ModelRequest Model { get; init; } = new();
    public TrainingSettings Training { get; init; } = new();
    /// <summary>Intra-op threads; null: TorchSharp's default.</summary>
    public int? Threads { get; init; }
    public string Device { get; init; } = "cpu";
    /// <summary>The run folder (model, checkpoint, run.json, metrics); null keeps nothing on disk but the model in memory.</summary>
    public string? Output { get; init; }

    /// <summary>The request as JSON (every field written; how the experiment grid hands a cell to its child process).</summary>
    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this, RunJson.Default.TrainRequest);

    public static TrainRequest FromJson(string json, string source)
    {
        try { return System.Text.Json.JsonSerializer.Deserialize(json, RunJson.Default.TrainRequest) ?? throw new System.Text.Json.JsonException("empty file"); }
        catch (System.Text.Json.JsonException e) { throw new NoProp.Runtime.NoPropException($"{source}: invalid training request ({e.Message.Split('\n')[0]})", e); }
    }
}

/// <summary>Which data set, from where, and how its images are read and augmented.</summary>
public sealed record DataRequest
{
    /// <summary>mnist | fashion-mnist | cifar10 | cifar100 | folder:PATH.</summary>
    public string Dataset { get; init; } = "mnist";
    public string? DataDir { get; init; }
    /// <summary>cifar100: fine or coarse labels.</summary>
    public string Label { get; init; } = "fine";
    /// <summary>folder: the size images are resized to, and 1 (grayscale) or 3 (RGB) channels.</summary>
    public int ImageHeight { get; init; } = 28;
    public int ImageWidth { get; init; } = 28;
    public int Channels { get; init; } = 1;
    /// <summary>Fetch the data set first when its files are missing (the host supplies the downloader).</summary>
    public bool Download { get; init; }
    /// <summary>Random crop (padding <see cref="CropPadding"/>) and horizontal flip of training images.</summary>
    public bool Augment { get; init; }
    public int CropPadding { get; init; } = 4;

    public DatasetSpec ToSpec() => DatasetSpec.Parse(Dataset, DataDir) with
    {
        CifarLabels = Label == "coarse" ? Cifar100Labels.Coarse : Cifar100Labels.Fine,
        FolderChannels = Channels,
        FolderHeight = ImageHeight,
        FolderWidth = ImageWidth,
    };
}

/// <summary>The splits (<see cref="DataSplits.Create"/>): training images trained on, the validation split carved from the rest, test images.</summary>
public sealed record SplitRequest
{
    /// <summary>Training images actually trained on; null: all but the validation split.</summary>
    public int? TrainSize { get; init; }
    /// <summary>Validation images carved from the training set; null: the default rule for the data set's size (<see cref="DataSplits.DefaultValidationSize"/>).</summary>
    public int? ValidationSize { get; init; }
    /// <summary>The first N test images; null: all.</summary>
    public int? TestSize { get; init; }

    public DataSplits Create(DatasetPair data, long seed) => DataSplits.Create(data, TrainSize, ValidationSize, TestSize, seed);
}

/// <summary>
/// The model: label embedding, method options and optimiser. A null method option takes the method's default
/// (<see cref="NoProp.Methods.MethodDefaults"/>, declared by the method's definition in the registry).
/// </summary>
public sealed record ModelRequest
{
    /// <summary>onehot | learned | prototype.</summary>
    public string Embedding { get; init; } = LabelEmbeddingKind.OneHot.ToCliName();
    public int? EmbeddingDim { get; init; }
    public int? Blocks { get; init; }
    public double? Eta { get; init; }
    public double LearningRate { get; init; } = 1e-3;
    public double WeightDecay { get; init; } = 1e-3;
    public string? Backbone { get; init; }
    public string? Solver { get; init; }
    public int? Steps { get; init; }
    public string? Weighting { get; init; }
    public string? Prediction { get; init; }
    public string? ScheduleTraining { get; init; }
    public double? ScheduleWeightDecay { get; init; }
    public double? GammaMax { get; init; }
    public double? GammaMin { get; init; }
    public double FlowSigma { get; init; }
    /// <summary>dt: sequential (Algorithm 1) or parallel (all blocks step on each minibatch, fused).</summary>
    public string? Schedule { get; init; }
    /// <summary>dt: stochastic (Eq. 3) or deterministic (ε = 0) inference; null: stochastic.</summary>
    public string? Inference { get; init; }
}

/// <summary>The training loop's options.</summary>
public sealed record TrainingSettings
{
    public int Epochs { get; init; } = 100;
    public int BatchSize { get; init; } = 128;
    public long Seed { get; init; } = 1;
    public int EvalEvery { get; init; } = 1;
    /// <summary>Stop after this many validations without improvement; null: train every epoch.</summary>
    public int? EarlyStoppingPatience { get; init; }
    public double EarlyStoppingMinDelta { get; init; }
    /// <summary>constant (the paper's) | cosine | one-cycle, and the warm-up in epochs (null: the schedule's default).</summary>
    public string LrSchedule { get; init; } = "constant";
    public double? WarmupEpochs { get; init; }
    public int InferenceBatchSize { get; init; } = NoProp.Methods.InferenceOptions.DefaultBatchSize;
    /// <summary>The convolutions' precision in validation and test inference (fp32 | bf16; null: fp32).</summary>
    public string? InferencePrecision { get; init; }
    /// <summary>Evaluate the test split after every epoch into test-curve.csv (never used for model selection).</summary>
    public bool TrackTest { get; init; }
}
