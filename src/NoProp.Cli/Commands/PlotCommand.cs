using System.CommandLine;
using NoProp.Cli.CommandLine;
using NoProp.Methods;
using NoProp.Plots;
using NoProp.Runtime;
using NoProp.Training;

namespace NoProp.Cli.Commands;

/// <summary><c>noprop plot</c>: charts of several run folders side by side.</summary>
internal sealed class PlotCommand : Command
{
    private const string Summary = """
        PNG charts of one or more runs written by noprop train (and noprop sweep). Writes into --output:
          accuracy-vs-time.png   test accuracy (runs trained with --track-test; validation accuracy otherwise)
                                 against cumulative training seconds, one line per run (the paper's Fig. 3)
          losses-<run>.png       each run's training loss per component per epoch
          sweep-accuracy.png, sweep-seconds.png   accuracy and inference seconds against solver steps
                                 (runs that hold sweep-*.json from noprop sweep)
          schedule.png           the learned noise schedule ᾱ(t) and SNR(t) of NoProp-CT runs
        """;

    private readonly Option<string[]?> runs = CliOptions.List("--runs", "run folders (each holds metrics.csv)  [required]", "at least one run folder", "DIR...");
    private readonly Option<string?> output = CliOptions.Text("--output", "where the charts go (created if missing)  [required]", "DIR");
    private readonly Option<string?> title = CliOptions.Text("--title", "title of the accuracy-against-time chart", "TEXT");

    public PlotCommand() : base("plot", Summary)
    {
        Options.Add(runs);
        Options.Add(output);
        Options.Add(title);
        SetAction(r => Run(r, r.InvocationConfiguration.Output));
    }

    private int Run(ParseResult r, TextWriter stdout)
    {
        var output = r.GetValue(this.output) ?? throw new UsageException("--output is required (the folder for the charts)");
        var title = r.GetValue(this.title);
        var runs = r.GetValue(this.runs) is { Length: > 0 } given ? given : throw new UsageException("--runs is required (one or more run folders)");

        var folders = new List<RunFolder>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var dir in runs)
        {
            WriteMissingSchedule(dir);
            var run = Load(dir);
            // Two folders with the same name (runs/a/dt, runs/b/dt) get their parent's name too.
            if (!names.Add(run.Name))
            {
                var full = new DirectoryInfo(Path.GetFullPath(dir));
                run = Load(dir, $"{full.Parent?.Name}/{full.Name}");
                names.Add(run.Name);
            }
            folders.Add(run);
        }

        var written = new List<string>();
        Directory.CreateDirectory(output);
        try
        {
            if (folders.Any(r => r.TestCurve.Count > 0 || r.Epochs.Any(e => e.ValidationAccuracy is not null)))
                written.Add(Charts.AccuracyAgainstTime(folders, Path.Combine(output, "accuracy-vs-time.png"), title));
            foreach (var run in folders.Where(r => r.Epochs.Count > 0))
                written.Add(Charts.LossComponents(run, Path.Combine(output, $"losses-{Safe(run.Name)}.png")));
            if (folders.Any(r => r.Sweeps.Count > 0))
            {
                written.Add(Charts.SweepAccuracy(folders, Path.Combine(output, "sweep-accuracy.png")));
                written.Add(Charts.SweepSeconds(folders, Path.Combine(output, "sweep-seconds.png")));
            }
            if (folders.Any(r => r.Schedule.Count > 1))
                written.Add(Charts.NoiseSchedule(folders, Path.Combine(output, "schedule.png")));
        }
        catch (PlotException e) { throw new NoPropException(e.Message); }
        if (written.Count == 0) throw new NoPropException("nothing to plot: the runs have no completed epoch");
        foreach (var path in written) stdout.WriteLine($"written: {path}");
        return 0;
    }

    private static RunFolder Load(string dir, string? name = null)
    {
        try { return RunFolder.Load(dir, name); }
        catch (PlotException e) { throw new NoPropException(e.Message); }
    }

    /// <summary>NoProp-CT runs trained before schedule.csv existed get one from their model.</summary>
    private static void WriteMissingSchedule(string dir)
    {
        if (File.Exists(Path.Combine(dir, RunFolder.ScheduleCsv)) || !File.Exists(Path.Combine(dir, ModelStore.ConfigFile))) return;
        var config = ModelConfig.FromJson(File.ReadAllText(Path.Combine(dir, ModelStore.ConfigFile)), Path.Combine(dir, ModelStore.ConfigFile));
        if (!MethodRegistry.Get(config.Method).Accepts(MethodOption.ScheduleTraining)) return;   // no learnable noise schedule
        TorchRuntime.Initialize();
        using var method = ModelStore.Load(dir);
        ScheduleExport.WriteIfContinuous(method, dir, NoProp.Plots.RunFolder.ScheduleCsv);
    }

    private static string Safe(string name) =>
        new(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
}
