using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;

namespace NoProp.Cli.Commands;

/// <summary><c>noprop sweep</c>: test (or validation) accuracy and inference time of a CT/FM model for several solver step counts.</summary>
public static class SweepCommand
{
    public const string Help = """
        noprop sweep: accuracy and inference time against the number of ODE solver steps (CT and FM models)

          --model DIR          a folder written by noprop train --method ct|fm             [required]
          --solver NAME        euler | heun | midpoint | rk4 | dopri5                      [the model's]
          --steps LIST         comma-separated step counts                                 [2,5,10,20,40,100]
          --split test|validation  the test set or the run's validation split (see noprop eval) [test]
          --test-size N        the first N test images                                    [all]
          --seed S             seed of the initial noise z_0    [test: 1; validation: as noprop eval]
          --no-cache           recompute the image path at every solver evaluation
          --output DIR         where sweep-<solver>.csv and .json go (sweep-<solver>-validation.*
                               for the validation split)                                  [the model folder]
          --data-dir DIR / --threads N / --device cpu|cuda
        For dopri5 the step count sets only the reporting grid; the solver chooses its own steps.
        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Contains("--help")) { stdout.Write(Help); return 0; }
        var reader = new ArgumentReader(args, new HashSet<string> { "no-cache" });
        var modelDir = reader.String("model") ?? throw new UsageException("--model is required");
        string? solverName = reader.Has("solver") ? reader.Choice("solver", "heun", OdeSolvers.Names.ToArray()) : null;
        var stepsText = reader.String("steps", "2,5,10,20,40,100");
        var steps = new List<int>();
        foreach (var part in stepsText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < 1)
                throw new UsageException($"--steps: '{part}' is not a positive whole number");
            steps.Add(n);
        }
        if (steps.Count == 0) throw new UsageException("--steps: no step counts given");
        string splitName = EvaluationSplit.ReadName(reader);
        int? testSize = reader.Int("test-size", 1);
        long? seedOption = reader.Long("seed");
        bool noCache = reader.Flag("no-cache");
        var output = reader.String("output") ?? modelDir;
        var dataDir = reader.String("data-dir");
        int? threads = reader.Int("threads", 1, 1024);
        var deviceName = reader.String("device", "cpu");
        reader.EnsureAllConsumed("sweep");

        TorchRuntime.Initialize(threads);
        var device = TorchRuntime.ResolveDevice(deviceName);
        using var method = ModelStore.Load(modelDir, device);
        if (method.Config.Method.IsBlockChain())
            throw new UsageException($"--model {modelDir}: sweep needs a CT, FM or adjoint model ({method.Config.Method.DisplayName()} has no ODE solver)");
        var solver = solverName is null ? method.Config.Solver : OdeSolvers.Parse(solverName);
        var split = EvaluationSplit.Load(splitName, modelDir, method.Config, dataDir, testSize);
        long seed = seedOption ?? split.DefaultSeed;
        var test = split.Images;
        var (x, y) = test.ToTensors(device);

        var rows = new List<Dictionary<string, object>>();
        stdout.WriteLine($"{OdeSolvers.ToCliName(solver)}, {test.Count} {split.Name} images, noise seed {seed}, image features {(noCache ? "recomputed at every evaluation" : "cached")}");
        stdout.WriteLine("steps  accuracy  seconds  evaluations/batch");
        foreach (int n in steps)
        {
            var statistics = new InferenceStatistics();
            var options = new InferenceOptions
            {
                Solver = solver, Steps = n, CacheImageFeatures = !noCache, Statistics = statistics,
                Generator = Evaluator.InferenceGenerator(seed, device),
            };
            var clock = Stopwatch.StartNew();
            double accuracy = Evaluator.Accuracy(method, x, y, options);
            double seconds = clock.Elapsed.TotalSeconds;
            double nfe = statistics.FunctionEvaluations / (double)Math.Max(1, statistics.Batches);
            stdout.WriteLine($"{n,5}  {accuracy * 100,7:F2}%  {seconds,7:F2}  {nfe,8:F0}");
            rows.Add(new Dictionary<string, object>
            {
                ["steps"] = n, ["accuracy"] = accuracy, ["inference_seconds"] = Math.Round(seconds, 3), ["function_evaluations_per_batch"] = nfe,
            });
        }
        x.Dispose(); y.Dispose();

        Directory.CreateDirectory(output);
        string stem = Path.Combine(output, $"sweep-{OdeSolvers.ToCliName(solver)}{(noCache ? "-uncached" : "")}{split.FileSuffix}");
        var csv = new StringBuilder("steps,accuracy,inference_seconds,function_evaluations_per_batch\n");
        foreach (var r in rows)
            csv.Append(string.Join(",", new[] { r["steps"], r["accuracy"], r["inference_seconds"], r["function_evaluations_per_batch"] }
                .Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)))).Append('\n');
        File.WriteAllText(stem + ".csv", csv.ToString());
        File.WriteAllText(stem + ".json", JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = Path.GetFullPath(modelDir), ["method"] = method.Config.Method.ToCliName(), ["solver"] = OdeSolvers.ToCliName(solver),
            ["split"] = split.Name, [split.Name == EvaluationSplit.Test ? "test_size" : "validation_size"] = test.Count, ["cached_image_features"] = !noCache, ["seed"] = seed, ["results"] = rows,
        }, new JsonSerializerOptions { WriteIndented = true }));
        stdout.WriteLine($"written: {stem}.csv, {stem}.json");
        return 0;
    }
}
