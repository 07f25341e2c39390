using System.Diagnostics;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Runtime;
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
          --deterministic      ε = 0 in Eq. 3 (then every run gives the same result)
          --seed S             seed of the first run's inference noise (run r uses S + r)  [1]
          --data-dir DIR       folder holding the data set's files                         [embedded MNIST]
          --threads N / --device cpu|cuda
        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Contains("--help")) { stdout.Write(Help); return 0; }
        var reader = new ArgumentReader(args, new HashSet<string> { "deterministic" });
        var modelDir = reader.String("model") ?? throw new UsageException("--model is required");
        int? testSize = reader.Int("test-size", 1);
        int runs = reader.Int("runs", 1, 10_000) ?? 1;
        bool deterministic = reader.Flag("deterministic");
        long seed = reader.Long("seed") ?? 1;
        var dataDir = reader.String("data-dir");
        int? threads = reader.Int("threads", 1, 1024);
        var deviceName = reader.String("device", "cpu");
        reader.EnsureAllConsumed("eval");

        TorchRuntime.Initialize(threads);
        var device = TorchRuntime.ResolveDevice(deviceName);
        using var method = ModelStore.Load(modelDir, device);
        var data = Datasets.Load(method.Config.Dataset, dataDir);
        var test = data.Test.Take(testSize);
        var (x, y) = test.ToTensors(device);
        var accuracies = new List<double>();
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < runs; r++)
        {
            var options = new InferenceOptions { Deterministic = deterministic, Generator = Evaluator.InferenceGenerator(seed + r, device) };
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
