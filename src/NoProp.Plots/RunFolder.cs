using System.Globalization;
using System.Text.Json;

namespace NoProp.Plots;

/// <summary>One row of a run's metrics.csv.</summary>
public sealed record EpochPoint(int Epoch, double TrainSeconds, IReadOnlyDictionary<string, double> Losses, double? ValidationAccuracy);

/// <summary>One row of test-curve.csv: the test accuracy after an epoch (written by <c>noprop train --track-test</c>).</summary>
public sealed record TestPoint(int Epoch, double TrainSeconds, double TestAccuracy);

/// <summary>One step count of a <c>noprop sweep</c> (sweep-&lt;solver&gt;.json).</summary>
public sealed record SweepPoint(int Steps, double Accuracy, double InferenceSeconds);

/// <summary>The results of one <c>noprop sweep</c> run: a solver and its points, on the test or the validation split.</summary>
public sealed record Sweep(string Solver, bool CachedImageFeatures, IReadOnlyList<SweepPoint> Points, string Split = "test");

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
    public IReadOnlyList<Sweep> Sweeps { get; init; } = [];
    public IReadOnlyList<SchedulePoint> Schedule { get; init; } = [];

    public const string MetricsCsv = "metrics.csv";
    public const string TestCurveCsv = "test-curve.csv";
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
        foreach (var file in new[] { "metrics.json", "run.json" })
        {
            var path = Path.Combine(directory, file);
            if (!File.Exists(path)) continue;
            try
            {
                using var json = JsonDocument.Parse(File.ReadAllText(path));
                if (json.RootElement.TryGetProperty("method", out var m) && m.ValueKind == JsonValueKind.String) return m.GetString();
            }
            catch (JsonException e) { throw new PlotException($"{path}: invalid JSON ({e.Message})"); }
        }
        return null;
    }

    private static double? Number(string text) =>
        text.Length == 0 ? null : double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static (string[] Header, List<string[]> Rows) ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToArray();
        if (lines.Length == 0) throw new PlotException($"{path}: empty file");
        var header = lines[0].Split(',');
        var rows = new List<string[]>();
        for (int i = 1; i < lines.Length; i++)
        {
            var cells = lines[i].Split(',');
            if (cells.Length != header.Length) throw new PlotException($"{path}: line {i + 1} has {cells.Length} columns, the header {header.Length}");
            rows.Add(cells);
        }
        return (header, rows);
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

    private static Sweep ReadSweep(string path)
    {
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            var root = json.RootElement;
            var points = root.GetProperty("results").EnumerateArray().Select(r => new SweepPoint(
                r.GetProperty("steps").GetInt32(), r.GetProperty("accuracy").GetDouble(), r.GetProperty("inference_seconds").GetDouble())).ToList();
            bool cached = !root.TryGetProperty("cached_image_features", out var c) || c.GetBoolean();
            string split = root.TryGetProperty("split", out var s) ? s.GetString() ?? "test" : "test";
            return new Sweep(root.GetProperty("solver").GetString() ?? "?", cached, points, split);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new PlotException($"{path}: not a sweep result written by 'noprop sweep' ({e.Message})");
        }
    }
}

/// <summary>A chart could not be made from the given files; the message names the file at fault.</summary>
public sealed class PlotException(string message) : Exception(message);
