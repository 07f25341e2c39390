using NoProp.Training;

namespace NoProp.ML;

/// <summary>
/// What one training epoch produced, handed to <see cref="NoPropOptions.MetricsCallback"/> after every epoch (as
/// Vision's <c>ImageClassificationTrainer.Options.MetricsCallback</c>) and kept in <see cref="NoPropModelParameters.History"/>.
/// </summary>
public sealed record NoPropEpochMetrics
{
    /// <summary>1-based epoch number.</summary>
    public int Epoch { get; init; }

    /// <summary>The mean total training loss over the epoch's minibatches.</summary>
    public double Loss { get; init; }

    /// <summary>Every loss component by name (DT: per-block terms and "total"), means over the epoch.</summary>
    public IReadOnlyDictionary<string, double> Losses { get; init; } = new Dictionary<string, double>();

    /// <summary>Accuracy on the validation rows after this epoch; null when there are none.</summary>
    public double? ValidationAccuracy { get; init; }

    /// <summary>Training seconds of this epoch (validation excluded).</summary>
    public double EpochSeconds { get; init; }

    /// <summary>Training seconds of all epochs so far.</summary>
    public double TrainSeconds { get; init; }

    public double ImagesPerSecond { get; init; }

    internal static NoPropEpochMetrics From(EpochRecord record) => new()
    {
        Epoch = record.Epoch,
        Loss = record.Losses.GetValueOrDefault("total", double.NaN),
        Losses = new Dictionary<string, double>(record.Losses),
        ValidationAccuracy = record.ValidationAccuracy,
        EpochSeconds = record.EpochTrainSeconds,
        TrainSeconds = record.TrainSeconds,
        ImagesPerSecond = record.ImagesPerSecond,
    };
}
