using System.Diagnostics;
using System.Globalization;

namespace NoProp.Training;

/// <summary>A snapshot of training progress inside an epoch.</summary>
public readonly record struct ProgressInfo(
    int Epoch, int Epochs, string Stage, long Step, long StepsInEpoch, double Loss, double ImagesPerSecond, TimeSpan? EpochEta);

/// <summary>Receives progress reports and per-epoch summaries from the trainer.</summary>
public interface ITrainingProgress
{
    void Report(ProgressInfo info);
    void EpochCompleted(EpochRecord record);
    void Message(string line);
}

/// <summary>Discards everything.</summary>
public sealed class SilentProgress : ITrainingProgress
{
    public static SilentProgress Instance { get; } = new();
    public void Report(ProgressInfo info) { }
    public void EpochCompleted(EpochRecord record) { }
    public void Message(string line) { }
}

/// <summary>
/// Progress on a text writer (stderr by default): a live bar redrawn in place on a terminal, and plain lines
/// every <see cref="PlainInterval"/> when the output is redirected, so logs stay readable.
/// </summary>
public sealed class ConsoleProgress : ITrainingProgress
{
    private readonly TextWriter writer;
    private readonly bool interactive;
    private readonly Stopwatch sinceLastLine = Stopwatch.StartNew();
    private bool barVisible;

    public ConsoleProgress(TextWriter? writer = null, bool? interactive = null)
    {
        this.writer = writer ?? Console.Error;
        this.interactive = interactive ?? (writer is null && !Console.IsErrorRedirected);
    }

    public TimeSpan PlainInterval { get; init; } = TimeSpan.FromSeconds(15);

    public void Report(ProgressInfo p)
    {
        if (interactive)
        {
            if (sinceLastLine.ElapsedMilliseconds < 200 && p.Step != p.StepsInEpoch) return;
            sinceLastLine.Restart();
            int width = 24;
            int filled = (int)(width * p.Step / Math.Max(1, p.StepsInEpoch));
            string bar = new string('█', filled) + new string('░', width - filled);
            writer.Write($"\r\x1b[2Kepoch {p.Epoch}/{p.Epochs} {bar} {p.Step}/{p.StepsInEpoch} {p.Stage}  loss {Format(p.Loss)}  {p.ImagesPerSecond:F0} img/s  ETA {FormatEta(p.EpochEta)}");
            writer.Flush();
            barVisible = true;
        }
        else if (sinceLastLine.Elapsed >= PlainInterval)
        {
            sinceLastLine.Restart();
            writer.WriteLine($"epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.StepsInEpoch} ({p.Stage}) loss {Format(p.Loss)} {p.ImagesPerSecond:F0} img/s ETA {FormatEta(p.EpochEta)}");
        }
    }

    public void EpochCompleted(EpochRecord r)
    {
        ClearBar();
        string validation = r.ValidationAccuracy is double v ? $"validation accuracy {v * 100:F2} %" : "validation skipped";
        writer.WriteLine($"epoch {r.Epoch}: loss {Format(r.Losses.GetValueOrDefault("total", double.NaN))}, {validation}, {r.EpochTrainSeconds:F1} s training");
    }

    public void Message(string line)
    {
        ClearBar();
        writer.WriteLine(line);
    }

    private void ClearBar()
    {
        if (!barVisible) return;
        writer.Write("\r\x1b[2K");
        barVisible = false;
    }

    private static string Format(double v) => v.ToString(Math.Abs(v) >= 100 ? "F1" : "F4", CultureInfo.InvariantCulture);

    private static string FormatEta(TimeSpan? eta) => eta is TimeSpan t
        ? (t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : t.ToString(@"m\:ss", CultureInfo.InvariantCulture))
        : "--:--";
}
