using System.Globalization;
using NoProp.Runtime;
using NoProp.Training.Runs;

namespace NoProp.Plots;

/// <summary>One row of a run's metrics.csv.</summary>
public sealed record EpochPoint(int Epoch, double TrainSeconds, IReadOnlyDictionary<string, double> Losses, double? ValidationAccuracy);

/// <summary>One row of test-curve.csv: the test accuracy after an epoch (written by <c>noprop train --track-test</c>).</summary>
public sealed record TestPoint(int Epoch, double TrainSeconds, double TestAccuracy);

/// <summary>One row of schedule.csv: the noise schedule ᾱ(t) and SNR(t) of a NoProp-CT model.</summary>
public sealed record SchedulePoint(double T, double AlphaBar, double Snr);

/// <summary>
/// What the charts need from a run folder written by <c>noprop train</c> (and <c>noprop sweep</c>): metrics.csv,
/// test-curve.csv, sweep-*.json, schedule.csv and the method named in metrics.json or run.json. Only the files
/// that exist are read; <see cref="Load"/> fails with one line when the folder holds no metrics.csv.
/// </summary>
public sealed class RunFolder
{
    public required string Directory { get; init; }
    public required string Name { get; init; }
    public string? Method { get; init; }
    public IReadOnlyList<string> LossNames { get; init; } = [];
    public IReadOnlyList<EpochPoint> Epochs { get; init; } = [];
    public IReadOnlyList<TestPoint> TestCurve { get; init; } = [];
    /// <summary>The folder's <c>noprop sweep</c> results (sweep-*.json).</summary>
    public IReadOnlyList<SweepResult> Sweeps { get; init; } = [];
    public IReadOnlyList<SchedulePoint> Schedule { get; init; } = [];

    public const string MetricsCsv = NoProp.Training.RunFolderStore.MetricsCsv;
    public const string TestCurveCsv = NoProp.Training.Runs.TestCurve.FileName;
    public const string ScheduleCsv = "schedule.csv";

    /// <summary>Reads a run folder; <paramref name="name"/> labels it in legends (the folder's name by default).</summary>
    public static RunFolder Load(string directory, string? name = null)
    {
        if (!System.IO.Directory.Exists(directory)) throw new PlotException($"--runs {directory}: folder not found");
        var metrics = Path.Combine(directory, MetricsCsv);
        if (!File.Exists(metrics)) throw new PlotException($"{metrics}: file not found (is {directory} a folder written by 'noprop train'?)");
        var (lossNames, epochs) = ReadMetrics(metrics);
        return new RunFolder
        {
            Directory = directory,
            Name = name ?? new DirectoryInfo(Path.GetFullPath(directory)).Name,
            Method = ReadMethod(directory),
            LossNames = lossNames,
            Epochs = epochs,
            TestCurve = ReadTestCurve(Path.Combine(directory, TestCurveCsv)),
            Sweeps = System.IO.Directory.GetFiles(directory, "sweep-*.json").OrderBy(p => p, StringComparer.Ordinal).Select(ReadSweep).ToList(),
            Schedule = ReadSchedule(Path.Combine(directory, ScheduleCsv)),
        };
    }

    private static string? ReadMethod(string directory)
    {
        try
        {
            if (RunMetrics.TryLoad(directory)?.Method is string method) return method;
            return File.Exists(Path.Combine(directory, RunFile.FileName)) ? RunFile.Load(directory).Method : null;
        }
        catch (NoPropException e) { throw new PlotException(e.Message); }
    }

    private static double? Number(string text) =>
        text.Length == 0 ? null : double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static (string[] Header, List<string[]> Rows) ReadCsv(string path)
    {
        try { return CsvTable.Read(path); }
        catch (CsvFormatException e) { throw new PlotException(e.Message); }
    }

    private static int Column(string path, string[] header, string name)
    {
        int i = Array.IndexOf(header, name);
        return i >= 0 ? i : throw new PlotException($"{path}: no '{name}' column");
    }

    private static (string[] LossNames, List<EpochPoint> Epochs) ReadMetrics(string path)
    {
        var (header, rows) = ReadCsv(path);
        int epoch = Column(path, header, "epoch"), seconds = Column(path, header, "train_seconds"), validation = Column(path, header, "validation_accuracy");
        var losses = header.Select((h, i) => (h, i)).Where(p => p.h.StartsWith("loss_", StringComparison.Ordinal)).ToArray();
        try
        {
            var points = rows.Select(r => new EpochPoint(
                int.Parse(r[epoch], CultureInfo.InvariantCulture),
                Number(r[seconds]) ?? 0,
                losses.ToDictionary(l => l.h["loss_".Length..], l => Number(r[l.i]) ?? double.NaN),
                Number(r[validation]))).ToList();
            return (losses.Select(l => l.h["loss_".Length..]).ToArray(), points);
        }
        catch (FormatException e) { throw new PlotException($"{path}: {e.Message}"); }
    }

    private static List<TestPoint> ReadTestCurve(string path)
    {
        if (!File.Exists(path)) return [];
        var (header, rows) = ReadCsv(path);
        int epoch = Column(path, header, "epoch"), seconds = Column(path, header, "train_seconds"), accuracy = Column(path, header, "test_accuracy");
        try
        {
            return rows.Select(r => new TestPoint(int.Parse(r[epoch], CultureInfo.InvariantCulture), Number(r[seconds]) ?? 0, Number(r[accuracy]) ?? double.NaN)).ToList();
        }
        catch (FormatException e) { throw new PlotException($"{path}: {e.Message}"); }
    }

    private static List<SchedulePoint> ReadSchedule(string path)
    {
        if (!File.Exists(path)) return [];
        var (header, rows) = ReadCsv(path);
        int t = Column(path, header, "t"), alphaBar = Column(path, header, "alpha_bar"), snr = Column(path, header, "snr");
        try
        {
            return rows.Select(r => new SchedulePoint(Number(r[t]) ?? 0, Number(r[alphaBar]) ?? double.NaN, Number(r[snr]) ?? double.NaN)).ToList();
        }
        catch (FormatException e) { throw new PlotException($"{path}: {e.Message}"); }
    }

    private static SweepResult ReadSweep(string path)
    {
        try { return SweepResult.FromJson(File.ReadAllText(path), path); }
        catch (NoPropException e) { throw new PlotException(e.Message); }
    }
}

/// <summary>A chart could not be made from the given files; the message names the file at fault.</summary>
public sealed class PlotException(string message) : Exception(message);
