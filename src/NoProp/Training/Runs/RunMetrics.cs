using System.Text.Json;
using System.Text.Json.Serialization;
using NoProp.Runtime;

namespace NoProp.Training.Runs;

/// <summary>
/// metrics.json: the final figures of a training run (docs: accuracies are fractions in [0, 1], times seconds). The
/// property names and their order are the file's format; what only some methods have (the baseline's α, the CT
/// schedule's endpoints, CUDA memory) follows the fixed fields, and fields a later version adds are kept in
/// <see cref="Extra"/> when an older reader loads the file.
/// </summary>
public sealed record RunMetrics
{
    public string? Method { get; init; }
    public string? Dataset { get; init; }
    public string? Augmentation { get; init; }
    public string? Embedding { get; init; }
    public int? EmbeddingDim { get; init; }
    public int? Blocks { get; init; }
    public string? LrSchedule { get; init; }
    public double? WarmupEpochs { get; init; }
    public string? Schedule { get; init; }
    public string? Backbone { get; init; }
    public string? Solver { get; init; }
    public int? Steps { get; init; }
    public string? Prediction { get; init; }
    public string? Weighting { get; init; }
    public string? ScheduleTraining { get; init; }
    public double? ScheduleWeightDecay { get; init; }
    public double? Eta { get; init; }
    public int Epochs { get; init; }
    public int BestEpoch { get; init; }
    public int EpochsTrained { get; init; }
    public bool StoppedEarly { get; init; }
    public int BatchSize { get; init; }
    public long Seed { get; init; }
    public int Threads { get; init; }
    public string? Device { get; init; }
    public int TrainSize { get; init; }
    public int ValidationSize { get; init; }
    public int TestSize { get; init; }
    public double TrainSeconds { get; init; }
    public double SecondsPerEpoch { get; init; }
    public double? ValidationAccuracy { get; init; }
    public double TestAccuracy { get; init; }
    public double TestInferenceSeconds { get; init; }
    public double PeakMemoryMb { get; init; }
    public IReadOnlyList<EpochMetrics> History { get; set; } = [];
    /// <summary>Peak CUDA memory; null on the CPU (written as null: a reader can tell "not measured" from a missing field).</summary>
    public double? PeakCudaMemoryMb { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? CudaMemorySource { get; init; }
    /// <summary>Backprop baseline: the learned α of each block.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double[]? Alphas { get; init; }
    /// <summary>NoProp-CT: the trained schedule's γ(0) and γ(1).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? GammaMax { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? GammaMin { get; init; }
    /// <summary>NoProp-DT trained with --inference deterministic (ε = 0 in Eq. 3); absent for the paper's stochastic inference.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Inference { get; init; }
    /// <summary>Validation and test inference with bf16 convolutions (--inference-precision); absent for fp32.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? InferencePrecision { get; init; }
    /// <summary>Fields this version does not know (written by another version or added by a host), kept as they are.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }

    public const string FileName = "metrics.json";

    public string ToJson() => JsonSerializer.Serialize(this, RunJson.Default.RunMetrics);

    public void Save(string directory) => AtomicFile.WriteAllText(Path.Combine(directory, FileName), ToJson());

    public static RunMetrics FromJson(string json, string source)
    {
        try { return JsonSerializer.Deserialize(json, RunJson.Default.RunMetrics) ?? throw new JsonException("empty file"); }
        catch (JsonException e) { throw new NoPropException($"{source}: invalid metrics ({e.Message.Split('\n')[0]})", e); }
    }

    /// <summary>DIR/metrics.json, or null when the folder has none.</summary>
    public static RunMetrics? TryLoad(string directory)
    {
        var path = Path.Combine(directory, FileName);
        return File.Exists(path) ? FromJson(File.ReadAllText(path), path) : null;
    }

    /// <summary>
    /// These metrics with more fields by their metrics.json names: the method-specific ones this record types, any
    /// other into <see cref="Extra"/>, after the fixed fields.
    /// </summary>
    public RunMetrics With(IReadOnlyDictionary<string, object?> fields)
    {
        var result = this;
        Dictionary<string, JsonElement>? extra = Extra is null ? null : new(Extra);
        foreach (var (name, value) in fields)
            result = name switch
            {
                "peak_cuda_memory_mb" => result with { PeakCudaMemoryMb = (double?)value },
                "cuda_memory_source" => result with { CudaMemorySource = (string?)value },
                "alphas" => result with { Alphas = (double[]?)value },
                "gamma_max" => result with { GammaMax = (double?)value },
                "gamma_min" => result with { GammaMin = (double?)value },
                _ => AddExtra(result, name, value),
            };
        return extra is null ? result : result with { Extra = extra };

        RunMetrics AddExtra(RunMetrics metrics, string name, object? value)
        {
            extra ??= new Dictionary<string, JsonElement>();
            extra[name] = ExtraValue(value);
            return metrics;
        }
    }

    /// <summary>A value for <see cref="Extra"/>: numbers, strings, arrays of numbers.</summary>
    public static JsonElement ExtraValue(object? value) => value switch
    {
        null => JsonSerializer.SerializeToElement<string?>(null, RunJson.Default.String),
        double d => JsonSerializer.SerializeToElement(d, RunJson.Default.Double),
        int i => JsonSerializer.SerializeToElement(i, RunJson.Default.Int32),
        long l => JsonSerializer.SerializeToElement(l, RunJson.Default.Int64),
        bool b => JsonSerializer.SerializeToElement(b, RunJson.Default.Boolean),
        string s => JsonSerializer.SerializeToElement(s, RunJson.Default.String),
        double[] a => JsonSerializer.SerializeToElement(a, RunJson.Default.DoubleArray),
        _ => throw new ArgumentException($"metrics.json cannot hold a {value.GetType().Name}"),
    };
}

/// <summary>One epoch in metrics.json's history.</summary>
public sealed record EpochMetrics
{
    public int Epoch { get; init; }
    public double TrainSeconds { get; init; }
    public Dictionary<string, double> Losses { get; set; } = new();
    public double? ValidationAccuracy { get; init; }
}

/// <summary>sweep-&lt;solver&gt;.json, written by <c>noprop sweep</c>: accuracy and inference time per solver step count.</summary>
public sealed record SweepResult
{
    public string Model { get; init; } = "";
    public string Method { get; init; } = "";
    public string Solver { get; init; } = "";
    /// <summary>test or validation (files written before the validation split existed have none: test).</summary>
    public string Split { get; set; } = "test";
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? TestSize { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? ValidationSize { get; init; }
    /// <summary>Whether the image path was computed once per batch (files without it: true).</summary>
    public bool CachedImageFeatures { get; set; } = true;
    /// <summary>bf16 when the image path convolved in bfloat16 (--inference-precision); absent for fp32.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? InferencePrecision { get; init; }
    public long Seed { get; init; }
    public IReadOnlyList<SweepPoint> Results { get; set; } = [];

    public string ToJson() => JsonSerializer.Serialize(this, RunJson.Default.SweepResult);

    public static SweepResult FromJson(string json, string source)
    {
        try
        {
            var sweep = JsonSerializer.Deserialize(json, RunJson.Default.SweepResult) ?? throw new JsonException("empty file");
            return sweep.Solver.Length == 0 ? throw new JsonException("no solver") : sweep;
        }
        catch (JsonException e) { throw new NoPropException($"{source}: not a sweep result written by 'noprop sweep' ({e.Message.Split('\n')[0]})", e); }
    }
}

/// <summary>One step count of a sweep.</summary>
public sealed record SweepPoint
{
    public int Steps { get; init; }
    public double Accuracy { get; init; }
    public double InferenceSeconds { get; init; }
    public double FunctionEvaluationsPerBatch { get; init; }
}

// Properties with a default other than the type's are settable: source-generated deserialisation assigns every
// init-only property, so a field missing from an older file would otherwise lose its default.

/// <summary>The run folder's JSON files (metrics.json, sweep-*.json) and the serialised <see cref="TrainRequest"/>, source-generated.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(RunMetrics))]
[JsonSerializable(typeof(SweepResult))]
[JsonSerializable(typeof(TrainRequest))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(double[]))]
public sealed partial class RunJson : JsonSerializerContext;
