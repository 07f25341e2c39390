using System.CommandLine;
using System.Diagnostics;
using NoProp.Cli.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json;
using NoProp.Cli.Experiments;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Plots;
using NoProp.Runtime;
using NoProp.Training;
using NoProp.Training.Runs;

namespace NoProp.Cli.Commands;

/// <summary>
/// <c>noprop experiment</c>: runs a grid of models from a JSON configuration and tabulates them like the paper's
/// Table 1. Each cell (data set × method × embedding × seed) is trained and evaluated in a child process of its
/// own — so its peak memory is its own — by <c>noprop experiment --cell NAME</c>, in <c>OUTPUT/cells/NAME/</c>. A
/// cell is done when its evaluation.json exists; a cell with a checkpoint but no result continues from the
/// checkpoint, so running the same command again resumes a half-finished grid.
/// </summary>
internal sealed class ExperimentCommand : Command
{
    private const string Summary = """
        train and evaluate a grid of models, tabulated like the paper's Table 1. Writes OUTPUT/results.md and
        results.csv (mean ± standard error over seeds × inference runs, train and test, peak memory), cells.csv (one
        line per model), runs.csv (every inference run), accuracy-vs-time-<dataset>.png, and each model's run folder
        under OUTPUT/cells/. Running the same command again skips finished cells and resumes interrupted ones from
        their checkpoints.
        """;

    private const string CellSettingsFile = "cell.json";

    private readonly Option<string?> configOption = CliOptions.Text("--config", "the grid: methods × embeddings × data sets × seeds (see configs/)  [required]", "FILE.json");
    private readonly Option<string?> outputOption = CliOptions.Text("--output", "where cells and results go  [the config's \"output\"]", "DIR");
    private readonly Option<string?> cellOption = CliOptions.Text("--cell", "train and evaluate only this cell, in this process (what the grid runs for each cell in a child process; cell names are listed by --list)", "NAME");
    private readonly Option<bool?> listOption = CliOptions.Flag("--list", "print the grid's cells and their state, and stop");
    /// <summary>The grid's hand-over to a cell's child process: the cell's serialised <see cref="TrainRequest"/>.</summary>
    private readonly Option<string?> requestOption = new("--request") { Hidden = true, Description = "with --cell: the cell's training request (written by the grid)" };

    /// <summary>The serialised request a grid hands to the child process of a cell (in the cell's folder).</summary>
    private const string RequestFile = "request.json";

    public ExperimentCommand() : base("experiment", Summary)
    {
        foreach (var option in new Option[] { configOption, outputOption, cellOption, listOption, requestOption }) Options.Add(option);
        SetAction(r => Run(r, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
    }

    private int Run(ParseResult r, TextWriter stdout, TextWriter stderr)
    {
        var configPath = r.GetValue(configOption) ?? throw new UsageException("--config is required (a grid such as configs/quick-cpu.json)");
        var outputOption = r.GetValue(this.outputOption);
        var cellName = r.GetValue(cellOption);
        bool list = r.GetValue(listOption) ?? false;
        var requestPath = r.GetValue(requestOption);
        if (requestPath is not null && cellName is null) throw new UsageException("--request applies with --cell");
        if (list && cellName is not null) throw new UsageException("--list and --cell cannot be combined");

        var config = ExperimentConfig.Load(configPath);
        var output = outputOption ?? config.Output ?? Path.Combine("runs", "experiments", config.Name);
        var cells = config.Cells();

        if (cellName is not null)
        {
            var cell = cells.FirstOrDefault(c => c.Name == cellName)
                ?? throw new UsageException($"--cell {cellName}: no such cell in {configPath} (see --list)");
            var request = requestPath is null ? null : TrainRequest.FromJson(File.ReadAllText(requestPath), requestPath);
            return RunCell(config, cell, output, request, stdout, stderr);
        }
        if (list)
        {
            foreach (var cell in cells) stdout.WriteLine($"{cell.Name}  {State(CellDirectory(output, cell))}");
            return 0;
        }
        return RunGrid(config, configPath, cells, output, stdout, stderr);
    }

    public static string CellDirectory(string output, ExperimentCell cell) => Path.Combine(output, "cells", cell.Name);

    private static string State(string dir) =>
        File.Exists(Path.Combine(dir, CellResult.FileName)) ? "done"
        : File.Exists(Path.Combine(dir, "metrics.json")) ? "trained, not evaluated"
        : Checkpoint.Exists(dir) ? "interrupted (resumes from its checkpoint)"
        : "to do";

    private static int RunGrid(ExperimentConfig config, string configPath, IReadOnlyList<ExperimentCell> cells, string output, TextWriter stdout, TextWriter stderr)
    {
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "config.json"), config.ToJson());
        using var interrupt = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; interrupt.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < cells.Count; i++)
            {
                var cell = cells[i];
                var dir = CellDirectory(output, cell);
                string state = State(dir);
                if (state == "done")
                {
                    CheckCellSettings(dir, cell);
                    stderr.WriteLine($"[{i + 1}/{cells.Count}] {cell.Name}: done, skipped");
                    continue;
                }
                stderr.WriteLine($"[{i + 1}/{cells.Count}] {cell.Name}: {(state == "to do" ? "training" : state)} ({clock.Elapsed:hh\\:mm\\:ss} elapsed)");
                int code = RunChild(configPath, output, cell, state == "to do" ? CellRequest(cell, dir) : null, stderr, interrupt.Token);
                if (code == 130 || interrupt.IsCancellationRequested)
                {
                    stderr.WriteLine($"noprop: interrupted in cell {cell.Name}; run the same command again to resume");
                    return 130;
                }
                if (code != 0)
                    throw new NoPropException($"cell {cell.Name} failed (exit code {code}); its log is {Path.Combine(dir, "log.txt")}");
            }
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        WriteResults(config, cells, output, $"noprop experiment --config {configPath}", stdout, stderr);
        return 0;
    }

    /// <summary>Collects the finished cells' results into results.md/.csv, cells.csv, runs.csv and the accuracy-against-time charts.</summary>
    public static void WriteResults(ExperimentConfig config, IReadOnlyList<ExperimentCell> cells, string output, string command, TextWriter stdout, TextWriter stderr)
    {
        var results = cells.Select(c => CellDirectory(output, c)).Where(d => File.Exists(Path.Combine(d, CellResult.FileName))).Select(CellResult.Load).ToList();
        var entries = ResultsTable.Aggregate(results);
        AtomicFile.WriteAllText(Path.Combine(output, "results.csv"), ResultsTable.ToCsv(entries));
        AtomicFile.WriteAllText(Path.Combine(output, "results.md"), ResultsTable.ToMarkdown(config, entries, results, command, cells.Count));
        AtomicFile.WriteAllText(Path.Combine(output, "cells.csv"), ResultsTable.CellsCsv(results));
        AtomicFile.WriteAllText(Path.Combine(output, "runs.csv"), ResultsTable.RunsCsv(results));
        foreach (var dataset in config.Datasets)
        {
            // Fig. 3: every model of the first seed on one chart.
            var runs = cells.Where(c => c.Dataset == dataset && c.Seed == config.Seeds[0])
                .Select(c => CellDirectory(output, c)).Where(d => File.Exists(Path.Combine(d, RunFolder.MetricsCsv)))
                .Select(d => RunFolder.Load(d, Path.GetFileName(d).Replace($"{dataset}-", "").Replace($"-seed{config.Seeds[0]}", ""))).ToList();
            if (runs.Count == 0) continue;
            try
            {
                Charts.AccuracyAgainstTime(runs, Path.Combine(output, $"accuracy-vs-time-{dataset}.png"), $"{dataset}: test accuracy against training time (seed {config.Seeds[0]})");
            }
            catch (Exception e) when (e is PlotException or IOException or TypeInitializationException or DllNotFoundException)
            {
                stderr.WriteLine($"noprop: chart not written: {e.Message.Split('\n')[0]}");
            }
        }
        stdout.WriteLine($"{results.Count} of {cells.Count} models finished; results: {Path.Combine(output, "results.md")}");
    }

    /// <summary>Runs <c>noprop experiment --cell NAME</c> in a child process, forwarding its stderr and logging both streams.</summary>
    private static int RunChild(string configPath, string output, ExperimentCell cell, TrainRequest? request, TextWriter stderr, CancellationToken interrupt)
    {
        var dir = CellDirectory(output, cell);
        Directory.CreateDirectory(dir);
        string? requestPath = null;
        if (request is not null)
        {
            requestPath = Path.GetFullPath(Path.Combine(dir, RequestFile));
            AtomicFile.WriteAllText(requestPath, request.ToJson());
        }
        var (host, prefix) = SelfCommand();
        var start = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in prefix) start.ArgumentList.Add(a);
        foreach (var a in new[] { "experiment", "--config", Path.GetFullPath(configPath), "--output", Path.GetFullPath(output), "--cell", cell.Name })
            start.ArgumentList.Add(a);
        if (requestPath is not null) { start.ArgumentList.Add("--request"); start.ArgumentList.Add(requestPath); }
        using var log = new StreamWriter(Path.Combine(dir, "log.txt"), append: true) { AutoFlush = true };
        var gate = new object();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (gate) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (gate) { log.WriteLine(e.Data); stderr.WriteLine($"  {e.Data}"); }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        // Ctrl+C reaches the child through the terminal; a cancelled token alone (no terminal) asks it by SIGINT.
        using var registration = interrupt.Register(() =>
        {
            try { if (!process.HasExited) SendInterrupt(process.Id); } catch (InvalidOperationException) { }
        });
        process.WaitForExit();
        return process.ExitCode;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static void SendInterrupt(int pid)
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) Kill(pid, 2);
    }

    /// <summary>How to start this program again: the dotnet host and the CLI's assembly (or the app host itself).</summary>
    internal static (string Host, string[] Prefix) SelfCommand()
    {
        var dll = typeof(Program).Assembly.Location;
        var current = Environment.ProcessPath;
        if (current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet") return (current, [dll]);
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(host) || !File.Exists(host))
        {
            // <dotnet root>/shared/Microsoft.NETCore.App/<version>/ → <dotnet root>/dotnet
            var root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
            host = Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
            if (!File.Exists(host)) host = "dotnet";
        }
        return (host, [dll]);
    }

    /// <summary>A cell folder belongs to the settings it was trained with; a changed config must not mix with it.</summary>
    private static void CheckCellSettings(string dir, ExperimentCell cell)
    {
        var path = Path.Combine(dir, CellSettingsFile);
        if (!File.Exists(path)) return;
        var recorded = JsonSerializer.Deserialize<string[]>(File.ReadAllText(path)) ?? [];
        if (!recorded.SequenceEqual(cell.TrainArguments))
            throw new NoPropException(
                $"{dir} was trained with other settings ({string.Join(' ', recorded)}) than the configuration asks for now ({string.Join(' ', cell.TrainArguments)}); use another --output or delete the folder");
    }

    /// <summary>The training request of a cell: its <c>noprop train</c> options (checked as the command checks them), into its folder.</summary>
    internal static TrainRequest CellRequest(ExperimentCell cell, string dir) => TrainCommand.ParseRequest([.. cell.TrainArguments, "--output", dir]);

    /// <summary>Trains (or resumes) and evaluates one cell in this process, from the request the grid handed over (or the cell's own).</summary>
    private static int RunCell(ExperimentConfig config, ExperimentCell cell, string output, TrainRequest? request, TextWriter stdout, TextWriter stderr)
    {
        var dir = CellDirectory(output, cell);
        Directory.CreateDirectory(dir);
        var settingsPath = Path.Combine(dir, CellSettingsFile);
        if (File.Exists(settingsPath)) CheckCellSettings(dir, cell);
        else File.WriteAllText(settingsPath, JsonSerializer.Serialize(cell.TrainArguments));

        if (!File.Exists(Path.Combine(dir, "metrics.json")))
        {
            bool resume = Checkpoint.Exists(dir);
            var run = resume ? RunFile.Load(dir) : (request ?? CellRequest(cell, dir)) with { Output = dir };
            int code = TrainCommand.Train(run, resume, stdout, stderr);
            if (code != 0) return code;
        }
        Evaluate(config, cell, dir, stderr).Save(dir);
        stdout.WriteLine($"{cell.Name}: evaluated");
        return 0;
    }

    /// <summary>R stochastic runs on the training and test images, plus the configured diagnostics.</summary>
    internal static CellResult Evaluate(ExperimentConfig config, ExperimentCell cell, string dir, TextWriter stderr)
    {
        var run = RunFile.Load(dir);
        TorchRuntime.Initialize(run.Threads);
        var device = TorchRuntime.ResolveDevice(run.Device);
        using var method = ModelStore.Load(dir, device);
        var data = Datasets.Load(run.Data.Dataset, run.Data.DataDir, SkiaImageCodec.Decoder);
        var splits = run.Splits.Create(data, run.Training.Seed);
        var train = splits.Train.Take(config.TrainEvalSize);
        var (trainX, trainY) = train.ToTensors(device);
        var (testX, testY) = splits.Test.ToTensors(device);
        try
        {
            var diagnostics = config.Diagnostics;
            bool perBlock = diagnostics.PerBlock && ChainDiagnostics.HasBlocks(method);
            bool imageOnly = diagnostics.ImageOnly && ChainDiagnostics.HasImageOnly(method);
            // Different noise for every (seed, run): the seed of run r is 1000·seed + r.
            long evaluationSeed = 1000 * cell.Seed;
            // The paper's stochastic inference, also for a DT cell trained with --inference deterministic.
            var stochastic = new EvaluationRequest
            {
                Runs = config.InferenceRuns, Seed = evaluationSeed, Inference = new InferenceOptions { DtInference = DtInference.Stochastic },
            };
            stderr.WriteLine($"evaluating {cell.Name}: {config.InferenceRuns} run(s) on {train.Count} training and {splits.Test.Count} test images");
            var onTrain = RepeatedEvaluation.Run(method, trainX, trainY, stochastic with { ImageOnly = imageOnly });
            var onTest = RepeatedEvaluation.Run(method, testX, testY, stochastic with { ImageOnly = imageOnly, PerBlock = perBlock });

            SplitAccuracies? deterministic = null;
            if (diagnostics.Deterministic)
            {
                // Methods whose deterministic inference draws no noise repeat exactly: one run is enough.
                int runs = MethodRegistry.Get(cell.Method).DeterministicInferenceDrawsNoise ? config.InferenceRuns : 1;
                var request = new EvaluationRequest { Runs = runs, Seed = evaluationSeed, Inference = new InferenceOptions { Deterministic = true } };
                deterministic = new SplitAccuracies
                {
                    Train = RepeatedEvaluation.Run(method, trainX, trainY, request).Accuracies,
                    Test = RepeatedEvaluation.Run(method, testX, testY, request).Accuracies,
                };
            }

            var m = RunMetrics.TryLoad(dir) ?? throw new NoPropException($"{Path.Combine(dir, RunMetrics.FileName)}: file not found");
            return new CellResult
            {
                Cell = cell.Name, Dataset = cell.Dataset, Method = cell.Method.ToCliName(), Embedding = cell.Embedding,
                EmbeddingDim = method.Config.EmbeddingDimension, Seed = cell.Seed,
                MethodVariant = cell.MethodVariant, Weighting = m.Weighting, ScheduleTraining = m.ScheduleTraining, Prediction = m.Prediction, TrainImages = train.Count, TestImages = splits.Test.Count,
                Stochastic = new SplitAccuracies { Train = onTrain.Accuracies, Test = onTest.Accuracies },
                Deterministic = deterministic,
                ImageOnly = imageOnly ? new SplitAccuracies { Train = [onTrain.ImageOnly!.Value], Test = [onTest.ImageOnly!.Value] } : null,
                PerBlockTest = onTest.PerBlock,
                Epochs = m.Epochs,
                TrainSeconds = m.TrainSeconds,
                ValidationAccuracy = m.ValidationAccuracy,
                PeakMemoryMb = m.PeakMemoryMb,
                PeakCudaMemoryMb = m.PeakCudaMemoryMb,
                InferenceSecondsPerRun = onTest.SecondsPerRun,
            };
        }
        finally
        {
            trainX.Dispose(); trainY.Dispose(); testX.Dispose(); testY.Dispose();
        }
    }
}
