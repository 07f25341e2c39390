using System.Globalization;

namespace NoProp.Training;

/// <summary>What one epoch produced: mean losses over its steps, time and validation accuracy.</summary>
public sealed record EpochRecord
{
    public int Epoch { get; init; }
    /// <summary>Cumulative training seconds at the end of this epoch (evaluation excluded).</summary>
    public double TrainSeconds { get; init; }
    public double EpochTrainSeconds { get; init; }
    public Dictionary<string, double> Losses { get; init; } = new();
    public double? ValidationAccuracy { get; init; }
    public double? ValidationSeconds { get; init; }
    public double ImagesPerSecond { get; init; }

    /// <summary>metrics.csv's header (a CSV line: loss names are quoted if they need it).</summary>
    public static string CsvHeader(IReadOnlyList<string> lossNames) =>
        Runs.CsvTable.Row(["epoch", "train_seconds", "epoch_train_seconds", .. lossNames.Select(n => "loss_" + n),
            "validation_accuracy", "validation_seconds", "images_per_second"]);

    /// <summary>This epoch as a line of metrics.csv.</summary>
    public string ToCsv(IReadOnlyList<string> lossNames)
    {
        var c = CultureInfo.InvariantCulture;
        return Runs.CsvTable.Row([
            Epoch.ToString(c), TrainSeconds.ToString("F3", c), EpochTrainSeconds.ToString("F3", c),
            .. lossNames.Select(n => Losses.GetValueOrDefault(n, double.NaN).ToString("G6", c)),
            ValidationAccuracy?.ToString("F6", c) ?? "", ValidationSeconds?.ToString("F3", c) ?? "", ImagesPerSecond.ToString("F1", c),
        ]);
    }
}
