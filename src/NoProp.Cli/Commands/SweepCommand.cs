using System.Diagnostics;
using System.Globalization;
using System.CommandLine;
using NoProp.Cli.CommandLine;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;
using NoProp.Training.Runs;

namespace NoProp.Cli.Commands;

/// <summary><c>noprop sweep</c>: test (or validation) accuracy and inference time of a CT/FM model for several solver step counts.</summary>
internal sealed class SweepCommand : Command
{
    private readonly Option<string?> model = CliOptions.Text("--model", "a folder written by noprop train --method ct|fm|adjoint  [required]", "DIR");
    private readonly Option<string?> solver = CliOptions.Choice("--solver", "the ODE solver  [the model's]", OdeSolvers.Names.ToArray());
    private readonly Option<string?> steps = CliOptions.Text("--steps", "comma-separated step counts; for dopri5 only the reporting grid (it chooses its own steps)  [2,5,10,20,40,100]", "LIST");
    private readonly Option<string?> split = EvaluationSplit.CreateOption();
    private readonly Option<int?> testSize = CliOptions.Int("--test-size", "the first N test images  [all]", 1);
    private readonly Option<long?> seed = CliOptions.Long("--seed", "seed of the initial noise z_0  [test: 1; validation: as noprop eval]", "S");
    private readonly Option<bool?> noCache = CliOptions.Flag("--no-cache", "recompute the image path at every solver evaluation");
    private readonly Option<string?> precision = InferencePrecisionOption.Create("every step count");
    private readonly Option<string?> output = CliOptions.Text("--output", "where sweep-<solver>.csv and .json go (sweep-<solver>-validation.* for the validation split, -bf16 with bf16 convolutions)  [the model folder]", "DIR");
    private readonly Option<string?> dataDir = CliOptions.Text("--data-dir", "folder holding the data set's files  [embedded MNIST]", "DIR");
    private readonly Option<int?> threads = CliOptions.Int("--threads", "intra-op threads  [TorchSharp's default]", 1, 1024);
    private readonly Option<string?> device = CliOptions.Text("--device", "cpu | cuda  [cpu]", "cpu|cuda");

    public SweepCommand() : base("sweep", "accuracy and inference time against the number of ODE solver steps (CT, FM and adjoint models)")
    {
        foreach (var option in new Option[] { model, solver, steps, split, testSize, seed, noCache, precision, output, dataDir, threads, device })
            Options.Add(option);
        SetAction(p => Run(p, p.InvocationConfiguration.Output, p.InvocationConfiguration.Error));
    }

    private int Run(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {
        var modelDir = parse.GetValue(model) ?? throw new UsageException("--model is required");
        string? solverName = parse.GetValue(this.solver);
        var stepsText = parse.GetValue(this.steps) ?? "2,5,10,20,40,100";
        var steps = new List<int>();
        foreach (var part in stepsText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < 1)
                throw new UsageException($"--steps: '{part}' is not a positive whole number");
            steps.Add(n);
        }
        if (steps.Count == 0) throw new UsageException("--steps: no step counts given");
        string splitName = EvaluationSplit.ReadName(parse, this.split, this.testSize);
        int? testSize = parse.GetValue(this.testSize);
        long? seedOption = parse.GetValue(this.seed);
        bool noCache = parse.GetValue(this.noCache) ?? false;
        var output = parse.GetValue(this.output) ?? modelDir;
        var dataDir = parse.GetValue(this.dataDir);
        int? threads = parse.GetValue(this.threads);
        var deviceName = parse.GetValue(this.device) ?? "cpu";
        var precision = InferencePrecisionOption.Read(parse, this.precision, deviceName, stderr);

        TorchRuntime.Initialize(threads);
        var device = TorchRuntime.ResolveDevice(deviceName);
        using var method = ModelStore.Load(modelDir, device);
        if (method.Config.Method.IsBlockChain())
            throw new UsageException($"--model {modelDir}: sweep needs a CT, FM or adjoint model ({method.Config.Method.DisplayName()} has no ODE solver)");
        InferenceOptions.CheckPrecision(precision, method.Config);
        var solver = solverName is null ? method.Config.Solver : OdeSolvers.Parse(solverName);
        bool bf16 = precision != InferencePrecision.Float32;
        var split = EvaluationSplit.Load(splitName, modelDir, method.Config, dataDir, testSize);
        long seed = seedOption ?? split.DefaultSeed;
        var test = split.Images;
        var (x, y) = test.ToTensors(device);

        var rows = new List<SweepPoint>();
        stdout.WriteLine($"{OdeSolvers.ToCliName(solver)}, {test.Count} {split.Name} images, noise seed {seed}, image features {(noCache ? "recomputed at every evaluation" : "cached")}{(bf16 ? $", {precision.ToCliName()} convolutions" : "")}");
        stdout.WriteLine("steps  accuracy  seconds  evaluations/batch");
        foreach (int n in steps)
        {
            var statistics = new InferenceStatistics();
            var options = new InferenceOptions
            {
                Solver = solver, Steps = n, CacheImageFeatures = !noCache, Statistics = statistics,
                Generator = Evaluator.InferenceGenerator(seed, device), Precision = precision,
            };
            var clock = Stopwatch.StartNew();
            double accuracy = Evaluator.Accuracy(method, x, y, options);
            double seconds = clock.Elapsed.TotalSeconds;
            double nfe = statistics.FunctionEvaluations / (double)Math.Max(1, statistics.Batches);
            stdout.WriteLine($"{n,5}  {accuracy * 100,7:F2}%  {seconds,7:F2}  {nfe,8:F0}");
            rows.Add(new SweepPoint { Steps = n, Accuracy = accuracy, InferenceSeconds = Math.Round(seconds, 3), FunctionEvaluationsPerBatch = nfe });
        }
        x.Dispose(); y.Dispose();

        Directory.CreateDirectory(output);
        string stem = Path.Combine(output, $"sweep-{OdeSolvers.ToCliName(solver)}{(noCache ? "-uncached" : "")}{(bf16 ? "-" + precision.ToCliName() : "")}{split.FileSuffix}");
        CsvTable.Write(stem + ".csv", ["steps", "accuracy", "inference_seconds", "function_evaluations_per_batch"],
            rows.Select(r => new[] { r.Steps.ToString(CultureInfo.InvariantCulture), CsvTable.Number(r.Accuracy), CsvTable.Number(r.InferenceSeconds), CsvTable.Number(r.FunctionEvaluationsPerBatch) }));
        var result = new SweepResult
        {
            Model = Path.GetFullPath(modelDir), Method = method.Config.Method.ToCliName(), Solver = OdeSolvers.ToCliName(solver), Split = split.Name,
            TestSize = split.Name == EvaluationSplit.Test ? test.Count : null, ValidationSize = split.Name == EvaluationSplit.Test ? null : test.Count,
            CachedImageFeatures = !noCache, InferencePrecision = bf16 ? precision.ToCliName() : null, Seed = seed, Results = rows,
        };
        AtomicFile.WriteAllText(stem + ".json", result.ToJson());
        stdout.WriteLine($"written: {stem}.csv, {stem}.json");
        return 0;
    }
}
