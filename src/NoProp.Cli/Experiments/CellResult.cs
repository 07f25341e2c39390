using System.Text.Json;
using System.Text.Json.Serialization;
using NoProp.Runtime;

namespace NoProp.Cli.Experiments;

/// <summary>Accuracies (fractions) of one evaluation on the training and the test images, one per inference run.</summary>
public sealed record SplitAccuracies
{
    public double[] Train { get; init; } = [];
    public double[] Test { get; init; } = [];
}

/// <summary>
/// What one cell of the grid produced (evaluation.json in its folder): the R inference runs on the training and test
/// images, the diagnostics that were asked for, and the training figures copied from its metrics.json.
/// </summary>
public sealed record CellResult
{
    public string Cell { get; init; } = "";
    public string Dataset { get; init; } = "";
    public string Method { get; init; } = "";
    public string Embedding { get; init; } = "";
    public int EmbeddingDim { get; init; }
    public long Seed { get; init; }
    /// <summary>The grid's method variant the cell belongs to ("" for the method's own settings).</summary>
    public string MethodVariant { get; init; } = "";
    /// <summary>What the model was trained and read with (metrics.json): CT's weighting and schedule training, CT/FM's prediction rule.</summary>
    public string? Weighting { get; init; }
    public string? ScheduleTraining { get; init; }
    public string? Prediction { get; init; }
    public int TrainImages { get; init; }
    public int TestImages { get; init; }
    public SplitAccuracies Stochastic { get; init; } = new();
    public SplitAccuracies? Deterministic { get; init; }
    public SplitAccuracies? ImageOnly { get; init; }
    /// <summary>Test accuracy after each block, per run: [run][block].</summary>
    public double[][]? PerBlockTest { get; init; }
    public int Epochs { get; init; }
    public double TrainSeconds { get; init; }
    public double? ValidationAccuracy { get; init; }
    public double PeakMemoryMb { get; init; }
    public double? PeakCudaMemoryMb { get; init; }
    public double InferenceSecondsPerRun { get; init; }

    public const string FileName = "evaluation.json";

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public void Save(string directory) =>
        NoProp.Training.AtomicFile.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Json));

    public static CellResult Load(string directory)
    {
        var path = Path.Combine(directory, FileName);
        try
        {
            return JsonSerializer.Deserialize<CellResult>(File.ReadAllText(path), Json) ?? throw new NoPropException($"{path}: empty file");
        }
        catch (JsonException e)
        {
            throw new NoPropException($"{path}: invalid cell result ({e.Message.Split('\n')[0]}); delete it to evaluate the cell again");
        }
    }
}
