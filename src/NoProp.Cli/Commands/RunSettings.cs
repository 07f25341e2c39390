using System.Text.Json;
using NoProp.Runtime;

namespace NoProp.Cli.Commands;

/// <summary>The resolved options of a <c>noprop train</c> run, saved as run.json so <c>--resume</c> can continue it.</summary>
public sealed record RunSettings
{
    public string Method { get; set; } = "dt";
    public string Dataset { get; set; } = "mnist";
    public string? DataDir { get; set; }
    public string Label { get; set; } = "fine";
    public int ImageHeight { get; set; } = 28;
    public int ImageWidth { get; set; } = 28;
    public int Channels { get; set; } = 1;
    public bool Download { get; set; }
    public bool Augment { get; set; }
    public int CropPadding { get; set; } = 4;
    public string Embedding { get; set; } = "onehot";
    public int? EmbeddingDim { get; set; }
    public int Blocks { get; set; } = 10;
    public int Epochs { get; set; } = 100;
    public int BatchSize { get; set; } = 128;
    public int? TrainSize { get; set; }
    public int ValidationSize { get; set; } = 5000;
    public int? TestSize { get; set; }
    public long Seed { get; set; } = 1;
    public int? Threads { get; set; }
    public string Device { get; set; } = "cpu";
    public double LearningRate { get; set; } = 1e-3;
    public double WeightDecay { get; set; } = 1e-3;
    /// <summary>η; null takes the method's default (DT 0.1, CT 1).</summary>
    public double? Eta { get; set; }
    public int EvalEvery { get; set; } = 1;
    /// <summary>Stop after this many validations without improvement; null: train every epoch.</summary>
    public int? EarlyStoppingPatience { get; set; }
    public double EarlyStoppingMinDelta { get; set; }
    public string Backbone { get; set; } = "paper";
    public string Solver { get; set; } = "heun";
    public int Steps { get; set; } = 40;
    public string? Weighting { get; set; }
    public string? Prediction { get; set; }
    /// <summary>CT: what trains the schedule ψ (joint, detached, frozen); null takes the weighting's default.</summary>
    public string? ScheduleTraining { get; set; }
    /// <summary>CT: weight decay of ψ; null: <see cref="NoProp.Methods.ModelConfig.DefaultScheduleWeightDecay"/>.</summary>
    public double? ScheduleWeightDecay { get; set; }
    public double? GammaMax { get; set; }
    public double? GammaMin { get; set; }
    public double FlowSigma { get; set; }
    /// <summary>dt: sequential (Algorithm 1) or parallel (all blocks step on each minibatch, fused).</summary>
    public string Schedule { get; set; } = "sequential";
    /// <summary>constant (the paper's) | cosine | one-cycle, and the warm-up in epochs (null: the schedule's default).</summary>
    public string LrSchedule { get; set; } = "constant";
    public double? WarmupEpochs { get; set; }
    /// <summary>Images per inference batch (validation and test passes).</summary>
    public int InferenceBatchSize { get; set; } = NoProp.Methods.InferenceOptions.DefaultBatchSize;
    /// <summary>Evaluate the test split after every epoch into test-curve.csv (never used for model selection).</summary>
    public bool TrackTest { get; set; }

    public const string FileName = "run.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void Save(string directory) => File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Json));

    public static RunSettings Load(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new NoPropException($"--resume {directory}: {path} not found (not a folder written by 'noprop train')");
        try { return JsonSerializer.Deserialize<RunSettings>(File.ReadAllText(path), Json)!; }
        catch (JsonException e) { throw new NoPropException($"{path}: invalid run settings ({e.Message})", e); }
    }
}
