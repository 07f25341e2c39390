using NoProp.Data;
using NoProp.Methods;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;

namespace NoProp.Cli.Commands;

/// <summary><c>noprop eval</c>: test (or validation) accuracy of a trained model, over R stochastic inference runs.</summary>
public static class EvalCommand
{
    public const string Help = """
        noprop eval: evaluate a trained model on the test split (or the run's validation split)

          --model DIR          a folder written by noprop train                           [required]
          --split test|validation  the test set, for final figures, or the validation split the
                               training run held out (rebuilt from its run.json), for choosing
                               settings without looking at the test set                    [test]
          --test-size N        the first N test images                                    [all]
          --runs R             stochastic inference runs; reports mean ± standard error    [1]
          --deterministic      DT: ε = 0 in Eq. 3; CT/FM/adjoint/backprop: start from z_0 = 0
                               (CT, FM, adjoint and backprop are then fully deterministic)
          --per-block          dt, backprop: also the accuracy of the output head on z_t after every block t
          --image-only         also the image path alone, without the chain: the first network evaluation at
                               z = 0 (dt, backprop: block 1; ct: û(0, x, 0); fm: nearest embedding to v(0, x, 0))
          --seed S             seed of the first run's inference noise (run r uses S + r)
                               [test: 1; validation: the seed training validated the kept epoch with]
          --inference-batch-size N   images per inference batch (dt: each batch's image features are
                               computed once and shared by all runs and diagnostics)   [1000]
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
        var reader = new ArgumentReader(args, new HashSet<string> { "deterministic", "no-cache", "per-block", "image-only" });
        var modelDir = reader.String("model") ?? throw new UsageException("--model is required");
        string splitName = EvaluationSplit.ReadName(reader);
        int? testSize = reader.Int("test-size", 1);
        int runs = reader.Int("runs", 1, 10_000) ?? 1;
        bool deterministic = reader.Flag("deterministic");
        long? seedOption = reader.Long("seed");
        var dataDir = reader.String("data-dir");
        int? threads = reader.Int("threads", 1, 1024);
        var deviceName = reader.String("device", "cpu");
        string? solverName = reader.Has("solver") ? reader.Choice("solver", "heun", OdeSolvers.Names.ToArray()) : null;
        int? steps = reader.Int("steps", 1, 1_000_000);
        string? prediction = reader.Has("prediction") ? reader.Choice("prediction", "head", "head", "nearest") : null;
        bool noCache = reader.Flag("no-cache");
        bool perBlock = reader.Flag("per-block");
        bool imageOnly = reader.Flag("image-only");
        int batchSize = reader.Int("inference-batch-size", 1) ?? InferenceOptions.DefaultBatchSize;
        reader.EnsureAllConsumed("eval");

        TorchRuntime.Initialize(threads);
        var device = TorchRuntime.ResolveDevice(deviceName);
        using var method = ModelStore.Load(modelDir, device);
        if (method.Config.Method.IsBlockChain() && (solverName is not null || steps is not null || prediction is not null || noCache))
            throw new UsageException("--solver, --steps, --prediction and --no-cache apply to CT, FM and adjoint models");
        if (perBlock && !ChainDiagnostics.HasBlocks(method))
            throw new UsageException($"--per-block applies to models made of blocks (dt, backprop), not to this {method.Config.Method.ToCliName()} model");
        if (imageOnly && !ChainDiagnostics.HasImageOnly(method))
            throw new UsageException($"--image-only is not defined for an {method.Config.Method.ToCliName()} model (its network is a velocity field read only through the ODE)");
        var split = EvaluationSplit.Load(splitName, modelDir, method.Config, dataDir, testSize);
        long seed = seedOption ?? split.DefaultSeed;
        var test = split.Images;
        var (x, y) = test.ToTensors(device);
        var request = new EvaluationRequest
        {
            Runs = runs,
            Seed = seed,
            PerBlock = perBlock,
            ImageOnly = imageOnly,
            BatchSize = batchSize,
            Inference = new InferenceOptions
            {
                BatchSize = batchSize,
                Deterministic = deterministic,
                Solver = solverName is null ? null : OdeSolvers.Parse(solverName),
                Steps = steps,
                Prediction = prediction switch { "head" => PredictionRule.OutputHead, "nearest" => PredictionRule.NearestEmbedding, _ => null },
                CacheImageFeatures = !noCache,
            },
        };
        var result = RepeatedEvaluation.Run(method, x, y, request);
        x.Dispose(); y.Dispose();
        var (mean, se) = result.Summary;
        double seconds = result.SecondsPerRun;
        string mode = deterministic ? "deterministic" : "stochastic";
        string name = split.Name;
        if (runs == 1)
            stdout.WriteLine($"{name} accuracy: {mean * 100:F2} % ({test.Count} images, {mode} inference, noise seed {seed}, {seconds:F1} s)");
        else
            stdout.WriteLine($"{name} accuracy: {mean * 100:F2} ± {se * 100:F2} % (mean ± standard error over {runs} {mode} runs, {test.Count} images, noise seeds {seed}–{seed + runs - 1}, {seconds:F1} s per run)");
        // Training's figure, for comparison, when this evaluation reads the model as training did.
        if (split.Recorded is not null && !deterministic && solverName is null && steps is null && prediction is null) stdout.WriteLine(split.Recorded);
        if (result.PerBlock is not null)
        {
            stdout.WriteLine($"per-block {name} accuracy (output head on z_t; {(runs == 1 ? "1 run" : $"mean ± standard error over {runs} runs")}):");
            var summary = result.PerBlockSummary();
            for (int b = 0; b < summary.Length; b++)
                stdout.WriteLine(runs == 1
                    ? $"  block {b + 1,2}: {summary[b].Mean * 100:F2} %"
                    : $"  block {b + 1,2}: {summary[b].Mean * 100:F2} ± {summary[b].StandardError * 100:F2} %");
        }
        if (result.ImageOnly is double imageOnlyAccuracy)
            stdout.WriteLine($"image-only {name} accuracy: {imageOnlyAccuracy * 100:F2} % (the first network evaluation at z = 0, no chain; deterministic)");
        return 0;
    }
}
