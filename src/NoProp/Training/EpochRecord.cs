using System.Globalization;
using System.Text;

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

    public static string CsvHeader(IReadOnlyList<string> lossNames) =>
        "epoch,train_seconds,epoch_train_seconds," + string.Join(",", lossNames.Select(n => "loss_" + n)) +
        ",validation_accuracy,validation_seconds,images_per_second";

    public string ToCsv(IReadOnlyList<string> lossNames)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(Epoch.ToString(c)).Append(',')
          .Append(TrainSeconds.ToString("F3", c)).Append(',')
          .Append(EpochTrainSeconds.ToString("F3", c));
        foreach (var n in lossNames) sb.Append(',').Append(Losses.GetValueOrDefault(n, double.NaN).ToString("G6", c));
        sb.Append(',').Append(ValidationAccuracy?.ToString("F6", c) ?? "")
          .Append(',').Append(ValidationSeconds?.ToString("F3", c) ?? "")
          .Append(',').Append(ImagesPerSecond.ToString("F1", c));
        return sb.ToString();
    }
}
