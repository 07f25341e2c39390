using NoProp.Training.Runs;
using ScottPlot;

namespace NoProp.Plots;

/// <summary>
/// The charts of the paper's figures, as PNG files (ScottPlot 5, rendered by SkiaSharp without a display).
/// Each method writes one file and returns its path; accuracies are drawn in percent.
/// </summary>
public static class Charts
{
    public const int Width = 900, Height = 560;

    /// <summary>
    /// Accuracy against cumulative training seconds, one line per run (the paper's Fig. 3). A run's test curve
    /// (test-curve.csv) is used where it was tracked, its validation accuracy otherwise; the axis says which.
    /// </summary>
    public static string AccuracyAgainstTime(IReadOnlyList<RunFolder> runs, string path, string? title = null)
    {
        var usable = runs.Where(r => r.TestCurve.Count > 0 || r.Epochs.Any(e => e.ValidationAccuracy is not null)).ToList();
        if (usable.Count == 0) throw new PlotException("no run has a test curve or a validation accuracy to plot against time");
        using var plot = new Plot();
        int tracked = 0;
        foreach (var run in usable)
        {
            double[] x, y;
            string label = run.Name;
            if (run.TestCurve.Count > 0)
            {
                tracked++;
                x = run.TestCurve.Select(p => p.TrainSeconds).ToArray();
                y = run.TestCurve.Select(p => p.TestAccuracy * 100).ToArray();
            }
            else
            {
                var points = run.Epochs.Where(e => e.ValidationAccuracy is not null).ToList();
                x = points.Select(p => p.TrainSeconds).ToArray();
                y = points.Select(p => p.ValidationAccuracy!.Value * 100).ToArray();
                if (usable.Any(r => r.TestCurve.Count > 0)) label += " (validation)";
            }
            var line = plot.Add.Scatter(x, y);
            line.LegendText = label;
            line.MarkerSize = 5;
        }
        string what = tracked == usable.Count ? "test accuracy" : tracked == 0 ? "validation accuracy" : "test accuracy (validation where not tracked)";
        plot.Title(title ?? $"{Capitalise(what)} against training time");
        plot.XLabel("cumulative training seconds");
        plot.YLabel(what + " (%)");
        plot.ShowLegend(Alignment.LowerRight);
        return Save(plot, path);
    }

    /// <summary>Validation (and, where tracked, test) accuracy of one run per epoch.</summary>
    public static string AccuracyPerEpoch(RunFolder run, string path)
    {
        var validation = run.Epochs.Where(e => e.ValidationAccuracy is not null).ToList();
        if (validation.Count == 0 && run.TestCurve.Count == 0) throw new PlotException($"{run.Directory}: no validation or test accuracy to plot");
        using var plot = new Plot();
        if (validation.Count > 0)
        {
            var v = plot.Add.Scatter(validation.Select(e => (double)e.Epoch).ToArray(), validation.Select(e => e.ValidationAccuracy!.Value * 100).ToArray());
            v.LegendText = "validation";
            v.MarkerSize = 6;
        }
        if (run.TestCurve.Count > 0)
        {
            var t = plot.Add.Scatter(run.TestCurve.Select(e => (double)e.Epoch).ToArray(), run.TestCurve.Select(e => e.TestAccuracy * 100).ToArray());
            t.LegendText = "test (tracked)";
            t.MarkerSize = 6;
        }
        IntegerTicks(plot.Axes.Bottom);
        plot.Title($"{run.Name}: accuracy per epoch");
        plot.XLabel("epoch");
        plot.YLabel("accuracy (%)");
        plot.ShowLegend(Alignment.LowerRight);
        return Save(plot, path);
    }

    /// <summary>
    /// The training loss per component (cross-entropy, KL, denoising, ...) per epoch of one run, on a log scale when
    /// every value is positive (the components differ by orders of magnitude), else linear.
    /// </summary>
    public static string LossComponents(RunFolder run, string path)
    {
        if (run.Epochs.Count == 0 || run.LossNames.Count == 0) throw new PlotException($"{run.Directory}: no epoch with losses to plot");
        // The total repeats the sum; with a single component it is the component itself.
        var names = run.LossNames.Where(n => n != "total" || run.LossNames.Count == 1).ToList();
        var series = names.Select(n => (Name: n, Values: run.Epochs.Select(e => e.Losses.GetValueOrDefault(n, double.NaN)).ToArray()))
            .Where(s => s.Values.Any(double.IsFinite)).ToList();
        if (series.Count == 0) throw new PlotException($"{run.Directory}: every loss is missing or not finite");
        // A log scale only where every value is positive and they span more than a decade (else it has no labelled tick).
        var finite = series.SelectMany(s => s.Values.Where(double.IsFinite)).ToList();
        bool logScale = finite.All(v => v > 0) && finite.Max() / finite.Min() > 10;
        var epochs = run.Epochs.Select(e => (double)e.Epoch).ToArray();
        using var plot = new Plot();
        foreach (var (name, values) in series)
        {
            var line = plot.Add.Scatter(epochs, logScale ? values.Select(Math.Log10).ToArray() : values);
            line.LegendText = name.Replace('_', ' ');
            line.MarkerSize = 6;
        }
        if (logScale) LogAxis(plot.Axes.Left);
        IntegerTicks(plot.Axes.Bottom);
        plot.Title($"{run.Name}: training loss per component");
        plot.XLabel("epoch");
        plot.YLabel(logScale ? "mean loss over the epoch (log scale)" : "mean loss over the epoch");
        plot.ShowLegend(Alignment.UpperRight);
        return Save(plot, path);
    }

    /// <summary>Test accuracy against solver steps, one line per run and solver (from sweep-*.json).</summary>
    public static string SweepAccuracy(IReadOnlyList<RunFolder> runs, string path) =>
        SweepChart(runs, path, p => p.Accuracy * 100,
            runs.All(r => r.Sweeps.All(s => s.Split == "test")) ? "test accuracy (%)" : "accuracy (%)", "Accuracy against ODE solver steps");

    /// <summary>Inference seconds over the swept images against solver steps, one line per run and solver.</summary>
    public static string SweepSeconds(IReadOnlyList<RunFolder> runs, string path) =>
        SweepChart(runs, path, p => p.InferenceSeconds,
            runs.All(r => r.Sweeps.All(s => s.Split == "test")) ? "inference seconds (test split)" : "inference seconds", "Inference time against ODE solver steps");

    private static string SweepChart(IReadOnlyList<RunFolder> runs, string path, Func<SweepPoint, double> value, string yLabel, string title)
    {
        var sweeps = runs.SelectMany(r => r.Sweeps.Select(s => (Run: r, Sweep: s))).Where(p => p.Sweep.Results.Count > 0).ToList();
        if (sweeps.Count == 0) throw new PlotException("no run holds a sweep-*.json (run 'noprop sweep --model DIR' first)");
        using var plot = new Plot();
        foreach (var (run, sweep) in sweeps)
        {
            var points = sweep.Results.OrderBy(p => p.Steps).ToList();
            var line = plot.Add.Scatter(points.Select(p => Math.Log10(p.Steps)).ToArray(), points.Select(value).ToArray());
            line.LegendText = $"{run.Name}, {sweep.Solver}{(sweep.CachedImageFeatures ? "" : ", uncached")}{(sweep.InferencePrecision is string p ? $", {p}" : "")}{(sweep.Split == "test" ? "" : $", {sweep.Split}")}";
            line.MarkerSize = 6;
        }
        LogAxis(plot.Axes.Bottom);
        plot.Title(title);
        plot.XLabel("solver steps (log scale)");
        plot.YLabel(yLabel);
        plot.ShowLegend(Alignment.LowerRight);
        return Save(plot, path);
    }

    /// <summary>The learned noise schedule of NoProp-CT runs: ᾱ(t) on the left axis, SNR(t) on a log scale on the right.</summary>
    public static string NoiseSchedule(IReadOnlyList<RunFolder> runs, string path)
    {
        var withSchedule = runs.Where(r => r.Schedule.Count > 1).ToList();
        if (withSchedule.Count == 0) throw new PlotException("no run holds a schedule.csv (NoProp-CT models write one)");
        using var plot = new Plot();
        foreach (var run in withSchedule)
        {
            var t = run.Schedule.Select(p => p.T).ToArray();
            var alphaBar = plot.Add.Scatter(t, run.Schedule.Select(p => p.AlphaBar).ToArray());
            alphaBar.LegendText = $"{run.Name}: ᾱ(t)";
            alphaBar.MarkerSize = 0;
            alphaBar.LineWidth = 2;
            var snr = plot.Add.Scatter(t, run.Schedule.Select(p => Math.Log10(Math.Max(p.Snr, 1e-12))).ToArray());
            snr.LegendText = $"{run.Name}: SNR(t) (right axis)";
            snr.MarkerSize = 0;
            snr.LineWidth = 2;
            snr.LinePattern = LinePattern.Dashed;
            snr.Axes.YAxis = plot.Axes.Right;
        }
        LogAxis(plot.Axes.Right);
        plot.Axes.Right.Label.Text = "SNR(t) = ᾱ/(1 − ᾱ) (log scale)";
        plot.Title("Learned noise schedule (t = 0: noise, t = 1: label)");
        plot.XLabel("t");
        plot.YLabel("ᾱ(t)");
        plot.ShowLegend(Alignment.UpperLeft);
        return Save(plot, path);
    }

    /// <summary>Labels an axis whose coordinates are log10 of the values with the values themselves.</summary>
    private static void LogAxis(IAxis axis)
    {
        axis.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = v => Math.Pow(10, v).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
        };
    }

    private static void IntegerTicks(IAxis axis) =>
        axis.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };

    private static string Capitalise(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    private static string Save(Plot plot, string path)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);
        plot.SavePng(path, Width, Height);
        return path;
    }
}
