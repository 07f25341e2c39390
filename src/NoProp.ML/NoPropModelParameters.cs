using System.Text.Json;
using System.Text.Json.Serialization;
using NoProp.Methods;
using NoProp.Models;

namespace NoProp.ML;

/// <summary>
/// What a trained NoProp model is, read as ML.NET users read a trainer's model parameters:
/// <c>model.LastTransformer.Model</c>. Saved with the model and restored by <c>mlContext.Model.Load</c>.
/// </summary>
public sealed class NoPropModelParameters
{
    internal NoPropModelParameters(ModelConfig configuration, long seed, IReadOnlyList<NoPropEpochMetrics> history,
        int? bestEpoch, double? bestValidationAccuracy, bool stoppedEarly)
    {
        Configuration = configuration;
        Seed = seed;
        History = history;
        BestEpoch = bestEpoch;
        BestValidationAccuracy = bestValidationAccuracy;
        StoppedEarly = stoppedEarly;
    }

    /// <summary>Everything that defines the network: method, image shape, class names, normalisation, hyper-parameters.</summary>
    public ModelConfig Configuration { get; }

    /// <summary>The NoProp variant (<see cref="NoPropMethod"/>); null for a baseline model loaded from a CLI folder.</summary>
    public NoPropMethod? Method => NoPropMethods.FromMethodKind(Configuration.Method);

    /// <summary>The classes as text, in the order of the Score slots and PredictedLabel keys (key i + 1 = class i).</summary>
    public IReadOnlyList<string> ClassNames => Configuration.ClassNames;

    /// <summary>The image shape the network sees (C × H × W, channel-major).</summary>
    public ImageShape ImageShape => Configuration.Image;

    /// <summary>The seed the model was trained with; it also seeds every row's scoring noise.</summary>
    public long Seed { get; }

    /// <summary>One entry per trained epoch (empty for models loaded from a CLI folder or saved before version 1.2).</summary>
    public IReadOnlyList<NoPropEpochMetrics> History { get; }

    /// <summary>The epoch whose weights the model holds: the best on validation, or the last one without validation rows.</summary>
    public int? BestEpoch { get; }

    /// <summary>The validation accuracy of <see cref="BestEpoch"/>; null without validation rows.</summary>
    public double? BestValidationAccuracy { get; }

    /// <summary>True when early stopping ended training before the planned epochs.</summary>
    public bool StoppedEarly { get; }

    // ---- persistence: TrainingHistory.json in the transformer's zip folder ----

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private sealed record HistoryFile(int? BestEpoch, double? BestValidationAccuracy, bool StoppedEarly, List<NoPropEpochMetrics> Epochs);

    internal string HistoryJson() =>
        JsonSerializer.Serialize(new HistoryFile(BestEpoch, BestValidationAccuracy, StoppedEarly, History.ToList()), Json);

    internal static NoPropModelParameters FromHistoryJson(ModelConfig configuration, long seed, string? json)
    {
        if (json is null) return new NoPropModelParameters(configuration, seed, [], null, null, false);
        var file = JsonSerializer.Deserialize<HistoryFile>(json, Json) ?? throw new InvalidDataException("the NoProp model's training history is empty");
        return new NoPropModelParameters(configuration, seed, file.Epochs ?? [], file.BestEpoch, file.BestValidationAccuracy, file.StoppedEarly);
    }
}
