using System.Diagnostics;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;

namespace NoProp.Cli.Commands;

/// <summary><c>noprop eval</c>: test accuracy of a trained model, over R stochastic inference runs.</summary>
public static class EvalCommand
{
    public const string Help = """
        noprop eval: evaluate a trained model on the test split

          --model DIR          a folder written by noprop train                           [required]
          --test-size N        the first N test images                                    [all]
          --runs R             stochastic inference runs; reports mean ± standard error    [1]
          --deterministic      DT: ε = 0 in Eq. 3; CT/FM: start from z_0 = 0 (every run then gives the same result)
          --seed S             seed of the first run's inference noise (run r uses S + r)  [1]
          --data-dir DIR       folder holding the data set's files                         [embedded MNIST]
          --threads N / --device cpu|cuda
        CT and FM models:
          --solver NAME / --steps N    override the model's ODE solver and step count
          --prediction head|nearest    override the model's prediction rule
          --no-cache                   recompute the image path at every solver evaluation
        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Contains("--help")) { stdout.Write(Help); return 0; }
        var reader = new ArgumentReader(args, new HashSet<string> { "deterministic", "no-cache" });
        var modelDir = reader.String("model") ?? throw new UsageException("--model is required");
        int? testSize = reader.Int("test-size", 1);
        int runs = reader.Int("runs", 1, 10_000) ?? 1;
        bool deterministic = reader.Flag("deterministic");
        long seed = reader.Long("seed") ?? 1;
        var dataDir = reader.String("data-dir");
        int? threads = reader.Int("threads", 1, 1024);
        var deviceName = reader.String("device", "cpu");
        string? solverName = reader.Has("solver") ? reader.Choice("solver", "heun", OdeSolvers.Names.ToArray()) : null;
        int? steps = reader.Int("steps", 1, 1_000_000);
        string? prediction = reader.Has("prediction") ? reader.Choice("prediction", "head", "head", "nearest") : null;
        bool noCache = reader.Flag("no-cache");
        reader.EnsureAllConsumed("eval");

        TorchRuntime.Initialize(threads);
        var device = TorchRuntime.ResolveDevice(deviceName);
        using var method = ModelStore.Load(modelDir, device);
        if (method.Config.Method == MethodKind.DiscreteTime && (solverName is not null || steps is not null || prediction is not null || noCache))
            throw new UsageException("--solver, --steps, --prediction and --no-cache apply to CT and FM models");
        var data = Datasets.Load(method.Config.DatasetSpec(dataDir));
        var test = data.Test.Take(testSize);
        var (x, y) = test.ToTensors(device);
        var accuracies = new List<double>();
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < runs; r++)
        {
            var options = new InferenceOptions
            {
                Deterministic = deterministic,
                Generator = Evaluator.InferenceGenerator(seed + r, device),
                Solver = solverName is null ? null : OdeSolvers.Parse(solverName),
                Steps = steps,
                Prediction = prediction switch { "head" => PredictionRule.OutputHead, "nearest" => PredictionRule.NearestEmbedding, _ => null },
                CacheImageFeatures = !noCache,
            };
            accuracies.Add(Evaluator.Accuracy(method, x, y, options));
        }
        double seconds = clock.Elapsed.TotalSeconds / runs;
        x.Dispose(); y.Dispose();
        var (mean, se) = Statistics.MeanAndStandardError(accuracies);
        string mode = deterministic ? "deterministic" : "stochastic";
        if (runs == 1)
            stdout.WriteLine($"test accuracy: {mean * 100:F2} % ({test.Count} images, {mode} inference, {seconds:F1} s)");
        else
            stdout.WriteLine($"test accuracy: {mean * 100:F2} ± {se * 100:F2} % (mean ± standard error over {runs} {mode} runs, {test.Count} images, {seconds:F1} s per run)");
        return 0;
    }
}
