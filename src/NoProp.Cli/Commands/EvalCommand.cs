using System.CommandLine;
using NoProp.Cli.CommandLine;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;

namespace NoProp.Cli.Commands;

/// <summary><c>noprop eval</c>: test (or validation) accuracy of a trained model, over R stochastic inference runs.</summary>
internal sealed class EvalCommand : Command
{
    private readonly Option<string?> model = CliOptions.Text("--model", "a folder written by noprop train  [required]", "DIR");
    private readonly Option<string?> split = EvaluationSplit.CreateOption();
    private readonly Option<int?> testSize = CliOptions.Int("--test-size", "the first N test images  [all]", 1);
    private readonly Option<int?> runs = CliOptions.Int("--runs", "stochastic inference runs; reports mean ± standard error  [1]", 1, 10_000, "R");
    private readonly Option<bool?> deterministic = CliOptions.Flag("--deterministic", "DT: ε = 0 in Eq. 3; CT/FM/adjoint/backprop: start from z_0 = 0 (CT, FM, adjoint and backprop are then fully deterministic)");
    private readonly Option<bool?> stochastic = CliOptions.Flag("--stochastic", "dt: Eq. 3's noise, also for a model trained with --inference deterministic (the paper's inference rule)");
    private readonly Option<bool?> perBlock = CliOptions.Flag("--per-block", "dt, backprop: also the accuracy of the output head on z_t after every block t");
    private readonly Option<bool?> imageOnly = CliOptions.Flag("--image-only", "also the image path alone, without the chain: the first network evaluation at z = 0 (dt, backprop: block 1; ct: û(0, x, 0); fm: nearest embedding to v(0, x, 0))");
    private readonly Option<long?> seed = CliOptions.Long("--seed", "seed of the first run's inference noise (run r uses S + r)  [test: 1; validation: the seed training validated the kept epoch with]", "S");
    private readonly Option<int?> batchSize = CliOptions.Int("--inference-batch-size", "images per inference batch (dt: each batch's image features are computed once and shared by all runs and diagnostics)  [1000]", 1);
    private readonly Option<string?> precision = InferencePrecisionOption.Create("every run and diagnostic");
    private readonly Option<string?> dataDir = CliOptions.Text("--data-dir", "folder holding the data set's files  [embedded MNIST]", "DIR");
    private readonly Option<int?> threads = CliOptions.Int("--threads", "intra-op threads  [TorchSharp's default]", 1, 1024);
    private readonly Option<string?> device = CliOptions.Text("--device", "cpu | cuda  [cpu]", "cpu|cuda");
    private readonly Option<string?> solver = CliOptions.Choice("--solver", "CT, FM and adjoint models: override the model's ODE solver", OdeSolvers.Names.ToArray());
    private readonly Option<int?> steps = CliOptions.Int("--steps", "CT, FM and adjoint models: override the model's step count", 1, 1_000_000);
    private readonly Option<string?> prediction = CliOptions.Choice("--prediction", "CT, FM and adjoint models: override the model's prediction rule", EnumNames<PredictionRule>.Names);
    private readonly Option<bool?> noCache = CliOptions.Flag("--no-cache", "CT, FM and adjoint models: recompute the image path at every solver evaluation");

    public EvalCommand() : base("eval", "evaluate a trained model on the test split (or the run's validation split)")
    {
        foreach (var option in new Option[] { model, split, testSize, runs, deterministic, stochastic, perBlock, imageOnly, seed, batchSize, precision, dataDir, threads, device, solver, steps, prediction, noCache })
            Options.Add(option);
        SetAction(p => Run(p, p.InvocationConfiguration.Output, p.InvocationConfiguration.Error));
    }

    private int Run(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {
        var modelDir = parse.GetValue(model) ?? throw new UsageException("--model is required");
        string splitName = EvaluationSplit.ReadName(parse, this.split, this.testSize);
        int? testSize = parse.GetValue(this.testSize);
        int runs = parse.GetValue(this.runs) ?? 1;
        bool deterministic = parse.GetValue(this.deterministic) ?? false;
        bool stochastic = parse.GetValue(this.stochastic) ?? false;
        if (deterministic && stochastic) throw new UsageException("--deterministic and --stochastic exclude each other");
        long? seedOption = parse.GetValue(this.seed);
        var dataDir = parse.GetValue(this.dataDir);
        int? threads = parse.GetValue(this.threads);
        var deviceName = parse.GetValue(this.device) ?? "cpu";
        string? solverName = parse.GetValue(this.solver);
        int? steps = parse.GetValue(this.steps);
        string? prediction = parse.GetValue(this.prediction);
        bool noCache = parse.GetValue(this.noCache) ?? false;
        bool perBlock = parse.GetValue(this.perBlock) ?? false;
        bool imageOnly = parse.GetValue(this.imageOnly) ?? false;
        int batchSize = parse.GetValue(this.batchSize) ?? InferenceOptions.DefaultBatchSize;

        var precision = InferencePrecisionOption.Read(parse, this.precision, deviceName, stderr);
        TorchRuntime.Initialize(threads);
        var device = TorchRuntime.ResolveDevice(deviceName);
        using var method = ModelStore.Load(modelDir, device);
        if (method.Config.Method.IsBlockChain() && (solverName is not null || steps is not null || prediction is not null || noCache))
            throw new UsageException("--solver, --steps, --prediction and --no-cache apply to CT, FM and adjoint models");
        if (stochastic && !MethodRegistry.Get(method.Config.Method).Accepts(MethodOption.Inference))
            throw new UsageException($"--stochastic applies to dt models (Eq. 3's noise), not to this {method.Config.Method.ToCliName()} model");
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
                DtInference = stochastic ? DtInference.Stochastic : null,
                Solver = solverName is null ? null : OdeSolvers.Parse(solverName),
                Steps = steps,
                Prediction = prediction is string readout ? EnumNames<PredictionRule>.Parse(readout) : null,
                CacheImageFeatures = !noCache,
                Precision = precision,
            },
        };
        var result = RepeatedEvaluation.Run(method, x, y, request);
        x.Dispose(); y.Dispose();
        var (mean, se) = result.Summary;
        double seconds = result.SecondsPerRun;
        // The DT rule this evaluation used: the model's, unless --stochastic overrode it (a model trained with --inference
        // deterministic takes each step's mean; its runs differ in z_0 only).
        var rule = stochastic ? DtInference.Stochastic : method.Config.DtInference;
        string mode = (deterministic ? DtInference.Deterministic : rule).ToCliName();
        string convolutions = precision == InferencePrecision.Float32 ? "" : $", {precision.ToCliName()} convolutions";
        string name = split.Name;
        if (runs == 1)
            stdout.WriteLine($"{name} accuracy: {mean * 100:F2} % ({test.Count} images, {mode} inference{convolutions}, noise seed {seed}, {seconds:F1} s)");
        else
            stdout.WriteLine($"{name} accuracy: {mean * 100:F2} ± {se * 100:F2} % (mean ± standard error over {runs} {mode} runs{convolutions}, {test.Count} images, noise seeds {seed}–{seed + runs - 1}, {seconds:F1} s per run)");
        // Training's figure, for comparison, when this evaluation reads the model as training did.
        if (split.Recorded is not null && !deterministic && rule == method.Config.DtInference && solverName is null && steps is null && prediction is null && precision == InferencePrecision.Float32) stdout.WriteLine(split.Recorded);
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
