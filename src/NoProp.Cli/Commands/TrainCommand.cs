using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using NoProp.Cli.CommandLine;
using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;
using NoProp.Training.Runs;

namespace NoProp.Cli.Commands;

/// <summary><c>noprop train</c>: trains a model, evaluates it on the test split and writes metrics.</summary>
internal sealed class TrainCommand : Command, ITailoredHelp
{
    private static string Summary =>
        "train a model, evaluate it on the test split and write its run folder. Methods:\n" +
        string.Join("\n", MethodRegistry.All.Select(d => $"  {d.CliName,-9} {d.Summary}")) +
        "\n`noprop train --method M --help` lists the options of method M only.";

    private readonly Option<string?> method = CliOptions.Choice("--method",
        string.Join(" | ", MethodRegistry.All.Select(d => $"{d.CliName} ({d.DisplayName})")) + "  [required]", [.. MethodRegistry.CliNames]);
    private readonly Option<string?> dataset = CliOptions.Text("--dataset", "mnist | fashion-mnist | cifar10 | cifar100 | folder:PATH  [mnist, embedded]", "NAME");
    private readonly Option<string?> dataDir = CliOptions.Text("--data-dir", "folder holding the data set's files  [per-user cache; MNIST: embedded]", "DIR");
    private readonly Option<bool?> download = CliOptions.Flag("--download", "download the data set first if it is missing (fashion-mnist, cifar10, cifar100)");
    private readonly Option<string?> label = CliOptions.Choice("--label", "cifar100: fine (100) or coarse (20) labels  [fine]", ["fine", "coarse"]);
    private readonly Option<string?> imageSize = CliOptions.Text("--image-size", "folder: size images are resized to, N or HxW  [28]", "N|HxW");
    private readonly Option<int?> channels = CliOptions.Int("--channels", "folder: 1 (grayscale) or 3 (RGB)  [1]", 1, 3);
    private readonly Option<bool?> augment = CliOptions.Flag("--augment", "random crop (padding --crop-padding) and horizontal flip of training images");
    private readonly Option<int?> cropPadding = CliOptions.Int("--crop-padding", "padding of the random crop, with --augment  [4]", 0, 64);
    private readonly Option<int?> epochs = CliOptions.Int("--epochs", "training epochs  [100, the paper's]", 1);
    private readonly Option<int?> batchSize = CliOptions.Int("--batch-size", "minibatch size  [128]", 2, valueName: "B");
    private readonly Option<string?> embedding = CliOptions.Choice("--embedding", "label embedding  [onehot]", EnumNames<LabelEmbeddingKind>.Names);
    private readonly Option<int?> embeddingDim = CliOptions.Int("--embedding-dim", "dimension of a learned embedding  [20]", 1, valueName: "K");
    private readonly Option<double?> lr = CliOptions.Double("--lr", "learning rate (dt, backprop, adjoint: AdamW; ct, fm: Adam)  [0.001]", 0);
    private readonly Option<double?> weightDecay = CliOptions.Double("--weight-decay", "weight decay  [0.001]", -1e-300);
    private readonly Option<int?> trainSize = CliOptions.Int("--train-size", "training images actually trained on  [all but the validation split]", 2);
    private readonly Option<int?> validationSize = CliOptions.Int("--validation-size", "validation split carved from the training set  [10 % of the training images, at most 5000]", 0);
    private readonly Option<int?> testSize = CliOptions.Int("--test-size", "evaluate on the first N test images  [all]", 1);
    private readonly Option<int?> evalEvery = CliOptions.Int("--eval-every", "validate every K epochs (and after the last)  [1]", 1, valueName: "K");
    private readonly Option<int?> patience = CliOptions.Int("--early-stopping-patience", "stop after P validations without a gain in validation accuracy (the model keeps the best epoch)  [off]", 1, valueName: "P");
    private readonly Option<double?> minDelta = CliOptions.Double("--early-stopping-min-delta", "the accuracy gain that counts (0.001 = 0.1 point)  [0]", -1e-300);
    private readonly Option<long?> seed = CliOptions.Long("--seed", "seed for data order, initialisation and noise  [1]", "S");
    private readonly Option<int?> threads = CliOptions.Int("--threads", "intra-op threads  [TorchSharp's default]", 1, 1024);
    private readonly Option<string?> device = CliOptions.Text("--device", "cpu | cuda: where to train  [cpu]", "cpu|cuda");
    private readonly Option<string?> output = CliOptions.Text("--output", "where the model, checkpoint and metrics go  [runs/<method>-<dataset>-<time>]", "DIR");
    private readonly Option<string?> resume = CliOptions.Text("--resume", "continue the run in DIR from its checkpoint (options given again override its run.json)", "DIR");
    private readonly Option<bool?> trackTest = CliOptions.Flag("--track-test", "also evaluate the test split after every epoch into test-curve.csv (for accuracy-against-time charts; never used to select the model)");
    private readonly Option<int?> inferenceBatchSize = CliOptions.Int("--inference-batch-size", "images per inference batch (validation, test)  [1000]", 1);
    private readonly Option<string?> inferencePrecision = InferencePrecisionOption.Create("validation, test");
    private readonly Option<string?> lrSchedule = CliOptions.Choice("--lr-schedule", "constant (the paper's) | cosine (to 0) | one-cycle (peak --lr, from lr/25, down to lr/(25·10⁴))  [constant]", EnumNames<LearningRateScheduleKind>.Names);
    private readonly Option<double?> warmupEpochs = CliOptions.Double("--warmup-epochs", "linear (one-cycle: cosine) warm-up, in epochs  [0; one-cycle 30 %]", -1e-300);
    // The options only some methods take: help text, defaults and applicability come from the method registry.
    private readonly Option<int?> blocks = CliOptions.Int(MethodOption.Blocks.Flag, MethodOptions.Describe(MethodOption.Blocks), 1, 1000, MethodOption.Blocks.ValueName!);
    private readonly Option<string?> schedule = CliOptions.Choice(MethodOption.Schedule.Flag, MethodOptions.Describe(MethodOption.Schedule), EnumNames<BlockSchedule>.Names);
    private readonly Option<string?> backbone = CliOptions.Choice(MethodOption.Backbone.Flag, MethodOptions.Describe(MethodOption.Backbone), EnumNames<BackboneKind>.Names);
    private readonly Option<string?> solver = CliOptions.Choice(MethodOption.Solver.Flag, MethodOptions.Describe(MethodOption.Solver), OdeSolvers.Names.ToArray());
    private readonly Option<int?> steps = CliOptions.Int(MethodOption.Steps.Flag, MethodOptions.Describe(MethodOption.Steps), 1, 1_000_000, MethodOption.Steps.ValueName!);
    private readonly Option<string?> prediction = CliOptions.Choice(MethodOption.Prediction.Flag, MethodOptions.Describe(MethodOption.Prediction), EnumNames<PredictionRule>.Names);
    private readonly Option<string?> weighting = CliOptions.Choice(MethodOption.Weighting.Flag, MethodOptions.Describe(MethodOption.Weighting), EnumNames<CtWeighting>.Names);
    private readonly Option<double?> gammaMax = CliOptions.Double(MethodOption.GammaMax.Flag, MethodOptions.Describe(MethodOption.GammaMax));
    private readonly Option<double?> gammaMin = CliOptions.Double(MethodOption.GammaMin.Flag, MethodOptions.Describe(MethodOption.GammaMin));
    private readonly Option<string?> scheduleTraining = CliOptions.Choice(MethodOption.ScheduleTraining.Flag, MethodOptions.Describe(MethodOption.ScheduleTraining), EnumNames<CtScheduleTraining>.Names);
    private readonly Option<double?> scheduleWeightDecay = CliOptions.Double(MethodOption.ScheduleWeightDecay.Flag, MethodOptions.Describe(MethodOption.ScheduleWeightDecay), -1e-300);
    private readonly Option<double?> flowSigma = CliOptions.Double(MethodOption.FlowSigma.Flag, MethodOptions.Describe(MethodOption.FlowSigma), -1e-300, MethodOption.FlowSigma.ValueName!);
    private readonly Option<double?> eta = CliOptions.Double(MethodOption.Eta.Flag, MethodOptions.Describe(MethodOption.Eta), 0);
    private readonly Option<string?> inference = CliOptions.Choice(MethodOption.Inference.Flag, MethodOptions.Describe(MethodOption.Inference), EnumNames<DtInference>.Names);

    public TrainCommand() : base("train", Summary)
    {
        foreach (var option in new Option[]
                 {
                     method, dataset, dataDir, download, label, imageSize, channels, augment, cropPadding, epochs, batchSize, embedding, embeddingDim,
                     eta, lr, weightDecay, trainSize, validationSize, testSize, evalEvery, patience, minDelta, seed, threads, device, output, resume,
                     trackTest, inferenceBatchSize, inferencePrecision, lrSchedule, warmupEpochs, blocks, schedule, backbone, solver, steps, prediction, weighting,
                     gammaMax, gammaMin, scheduleTraining, scheduleWeightDecay, flowSigma, inference,
                 })
            Options.Add(option);
        SetAction(result => Run(result, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error));
    }

    /// <summary><c>--method M --help</c>: only the options that apply to M.</summary>
    public void BeforeHelp(ParseResult result)
    {
        if (result.GetValue(method) is not string chosen) return;
        var definition = MethodRegistry.Parse(chosen);
        foreach (var option in Options)
            if (MethodOptions.Of(option) is { } methodOption)
            {
                option.Hidden = !definition.Accepts(methodOption);
                if (!option.Hidden) option.Description = MethodOptions.Describe(methodOption, definition);
            }
        Description = $"{definition.Summary}. The options of --method {chosen}; `noprop train --help` lists every method's.";
    }

    /// <summary>"32" or "32x48" (height × width).</summary>
    internal static (int Height, int Width) ParseImageSize(string value)
    {
        var parts = value.ToLowerInvariant().Split('x');
        if (parts.Length is 1 or 2 && parts.All(p => int.TryParse(p, out int v) && v >= 14 && v <= 1024))
            return parts.Length == 1 ? (int.Parse(parts[0]), int.Parse(parts[0])) : (int.Parse(parts[0]), int.Parse(parts[1]));
        throw new UsageException($"--image-size: '{value}' is not N or HxW with sides from 14 to 1024");
    }

    /// <summary>
    /// The run's request: run.json's with --resume (options given again override it), the defaults otherwise, then
    /// every option given on the command line; every usage error is found here, before any work starts.
    /// </summary>
    internal TrainRequest ReadRequest(ParseResult r)
    {
        var resumeDir = r.GetValue(resume);
        var request = resumeDir is not null ? RunFile.Load(resumeDir) : new TrainRequest();
        if (resumeDir is null && !r.Given(method))
            throw new UsageException($"--method is required ({string.Join(", ", MethodRegistry.CliNames.SkipLast(1))} or {MethodRegistry.CliNames[^1]})");
        string methodName = r.GetValue(method) ?? request.Method;

        var data = request.Data;
        if (r.GetValue(dataset) is string datasetName)
        {
            try { DatasetSpec.Parse(datasetName); }
            catch (NoPropException e) { throw new UsageException("--dataset: " + e.Message); }
            data = data with { Dataset = datasetName };
        }
        if (r.Given(dataDir)) data = data with { DataDir = r.GetValue(dataDir) };
        if (r.GetValue(imageSize) is string size)
        {
            var (height, width) = ParseImageSize(size);
            data = data with { ImageHeight = height, ImageWidth = width };
        }
        data = data with
        {
            Label = r.GetValue(label) ?? data.Label,
            Channels = r.GetValue(channels) ?? data.Channels,
            Download = (r.GetValue(download) ?? false) || data.Download,
            Augment = (r.GetValue(augment) ?? false) || data.Augment,
            CropPadding = r.GetValue(cropPadding) ?? data.CropPadding,
        };
        if (data.Channels == 2) throw new UsageException("--channels: must be 1 (grayscale) or 3 (RGB)");
        var datasetKind = DatasetSpec.Parse(data.Dataset).Kind;
        if (r.Given(label) && datasetKind != "cifar100") throw new UsageException("--label applies to --dataset cifar100");
        if ((r.Given(imageSize) || r.Given(channels)) && datasetKind != "folder")
            throw new UsageException("--image-size and --channels apply to --dataset folder:PATH (other data sets have a fixed size)");
        if (r.Given(cropPadding) && !data.Augment) throw new UsageException("--crop-padding applies with --augment");
        if (data.Download && datasetKind is "mnist" or "folder")
            throw new UsageException($"--download applies to fashion-mnist, cifar10 and cifar100, not {datasetKind}");

        var model = request.Model with
        {
            Embedding = r.GetValue(embedding) ?? request.Model.Embedding,
            EmbeddingDim = r.GetValue(embeddingDim) ?? request.Model.EmbeddingDim,
            Blocks = r.GetValue(blocks) ?? request.Model.Blocks,
            LearningRate = r.GetValue(lr) ?? request.Model.LearningRate,
            WeightDecay = r.GetValue(weightDecay) ?? request.Model.WeightDecay,
            Eta = r.GetValue(eta) ?? request.Model.Eta,
            Backbone = r.GetValue(backbone) ?? request.Model.Backbone,
            Solver = r.GetValue(solver) ?? request.Model.Solver,
            Steps = r.GetValue(steps) ?? request.Model.Steps,
            Weighting = r.GetValue(weighting) ?? request.Model.Weighting,
            Prediction = r.GetValue(prediction) ?? request.Model.Prediction,
            ScheduleTraining = r.GetValue(scheduleTraining) ?? request.Model.ScheduleTraining,
            ScheduleWeightDecay = r.GetValue(scheduleWeightDecay) ?? request.Model.ScheduleWeightDecay,
            GammaMax = r.GetValue(gammaMax) ?? request.Model.GammaMax,
            GammaMin = r.GetValue(gammaMin) ?? request.Model.GammaMin,
            FlowSigma = r.GetValue(flowSigma) ?? request.Model.FlowSigma,
            Schedule = r.GetValue(schedule) ?? request.Model.Schedule,
            Inference = r.GetValue(inference) ?? request.Model.Inference,
        };
        var splits = request.Splits with
        {
            TrainSize = r.GetValue(trainSize) ?? request.Splits.TrainSize,
            ValidationSize = r.GetValue(validationSize) ?? request.Splits.ValidationSize,
            TestSize = r.GetValue(testSize) ?? request.Splits.TestSize,
        };
        var training = request.Training with
        {
            Epochs = r.GetValue(epochs) ?? request.Training.Epochs,
            BatchSize = r.GetValue(batchSize) ?? request.Training.BatchSize,
            EvalEvery = r.GetValue(evalEvery) ?? request.Training.EvalEvery,
            EarlyStoppingPatience = r.GetValue(patience) ?? request.Training.EarlyStoppingPatience,
            EarlyStoppingMinDelta = r.GetValue(minDelta) ?? request.Training.EarlyStoppingMinDelta,
            Seed = r.GetValue(seed) ?? request.Training.Seed,
            TrackTest = r.GetValue(trackTest) ?? request.Training.TrackTest,
            InferenceBatchSize = r.GetValue(inferenceBatchSize) ?? request.Training.InferenceBatchSize,
            InferencePrecision = r.GetValue(inferencePrecision) ?? request.Training.InferencePrecision,
            LrSchedule = r.GetValue(lrSchedule) ?? request.Training.LrSchedule,
            WarmupEpochs = r.GetValue(warmupEpochs) ?? request.Training.WarmupEpochs,
        };
        if (training.EarlyStoppingMinDelta >= 1)
            throw new UsageException($"--early-stopping-min-delta: an accuracy gain below 1, got {training.EarlyStoppingMinDelta.ToString(CultureInfo.InvariantCulture)}");
        if (r.Given(minDelta) && training.EarlyStoppingPatience is null)
            throw new UsageException("--early-stopping-min-delta applies with --early-stopping-patience");
        if (training.EarlyStoppingPatience is not null && splits.ValidationSize == 0)
            throw new UsageException("--early-stopping-patience needs a validation split (--validation-size > 0)");
        if (training.WarmupEpochs is double warmup && warmup >= training.Epochs)
            throw new UsageException($"--warmup-epochs {warmup}: must be shorter than the run (--epochs {training.Epochs})");
        if (model.EmbeddingDim is not null && model.Embedding != LabelEmbeddingKind.Learned.ToCliName())
            throw new UsageException($"--embedding-dim applies to --embedding learned only (a {model.Embedding} embedding's dimension is fixed)");
        // The epochs a resumed run has validated used its inference rule; a different one would mix two rules in the
        // choice of the best epoch (and the checkpoint's model keeps its own).
        if (resumeDir is not null && r.GetValue(inference) is string newRule && newRule != (request.Model.Inference ?? DtInference.Stochastic.ToCliName()))
            throw new UsageException($"--inference {newRule}: a resumed run keeps the inference rule it was trained with ({request.Model.Inference ?? DtInference.Stochastic.ToCliName()})");
        if (resumeDir is not null && r.GetValue(inferencePrecision) is string newPrecision && newPrecision != (request.Training.InferencePrecision ?? InferencePrecision.Float32.ToCliName()))
            throw new UsageException($"--inference-precision {newPrecision}: a resumed run keeps the precision it validated with ({request.Training.InferencePrecision ?? InferencePrecision.Float32.ToCliName()})");
        // Options that only make sense for other methods are usage errors, not silently ignored flags.
        foreach (var option in Options)
            if (r.Given(option) && MethodOptions.Misapplied(option.Name, methodName) is string misapplied)
                throw new UsageException(misapplied);

        var output = resumeDir ?? r.GetValue(this.output)
            ?? Path.Combine("runs", $"{methodName}-{data.Dataset}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
        if (resumeDir is not null && r.GetValue(this.output) is string given && Path.GetFullPath(given) != Path.GetFullPath(resumeDir))
            throw new UsageException("--output cannot differ from --resume (a resumed run continues in its own folder)");
        return request with
        {
            Method = methodName, Data = data, Splits = splits, Model = model, Training = training,
            Threads = r.GetValue(threads) ?? request.Threads, Device = r.GetValue(device) ?? request.Device, Output = output,
        };
    }

    /// <summary>Parses <c>noprop train</c> arguments into a request (the experiment grid's cells are written as such arguments).</summary>
    internal static TrainRequest ParseRequest(IReadOnlyList<string> args)
    {
        var command = new TrainCommand();
        var result = command.Parse(args);
        if (result.Errors.Count > 0) throw new UsageException(UsageErrors.Describe(result, args));
        return command.ReadRequest(result);
    }

    private int Run(ParseResult r, TextWriter stdout, TextWriter stderr)
    {
        var request = ReadRequest(r);
        if (request.Training.InferencePrecision is string precision)
            InferencePrecisionOption.Warn(EnumNames<InferencePrecision>.Parse(precision), request.Device, stderr);
        bool resuming = r.Given(resume);
        return Train(request, resuming, stdout, stderr);
    }

    /// <summary>Runs a request as <c>noprop train</c> does: progress and charts on stderr, the figures on stdout; 130 when interrupted.</summary>
    internal static int Train(TrainRequest request, bool resuming, TextWriter stdout, TextWriter stderr)
    {
        var output = request.Output!;
        using var extras = new ExtrasObserver(stderr);
        var run = new TrainingRun(request)
        {
            Resume = resuming,
            Progress = new ConsoleProgress(),
            LoadData = spec => DownloadCommand.LoadOrDownload(spec, request.Data.Download, request.Training.Seed, stderr),
            Observers = [extras],
        };
        using var cancellation = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            if (cancellation.IsCancellationRequested) return;   // a second Ctrl+C ends the process at once
            e.Cancel = true;
            cancellation.Cancel();
            run.Progress.Message("stopping after the current step and saving a checkpoint (Ctrl+C again to abort)...");
        };
        Console.CancelKeyPress += onCancel;
        // SIGTERM (kill, docker stop, a batch scheduler's time limit) stops the same way: the work so far is kept.
        using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            if (cancellation.IsCancellationRequested) return;
            cancellation.Cancel();
            run.Progress.Message("terminated: stopping after the current step and saving a checkpoint...");
        });
        RunOutcome outcome;
        try
        {
            outcome = run.Run(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine($"noprop: interrupted; continue with: noprop train --resume {output}");
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }

        var (metrics, result) = outcome;
        string validation = result.BestValidationAccuracy is double v ? $"{v * 100:F2} % (epoch {result.BestEpoch})" : "n/a";
        stdout.WriteLine($"test accuracy: {metrics.TestAccuracy * 100:F2} % ({metrics.TestSize} images, {metrics.TestInferenceSeconds:F1} s inference)");
        stdout.WriteLine($"validation accuracy: {validation}");
        stdout.WriteLine($"training: {result.TrainSeconds:F1} s for {result.History.Count} epoch(s); peak memory {TorchRuntime.PeakMemoryMb():F0} MB");
        stdout.WriteLine($"model and metrics: {output}");
        return 0;
    }

    /// <summary>The CLI's additions around the core run (<see cref="TrainExtras"/>): CUDA memory, method details, charts.</summary>
    private sealed class ExtrasObserver(TextWriter stderr) : IRunObserver, IDisposable
    {
        public TrainExtras? Extras { get; private set; }

        public void Started(RunContext context) =>
            Extras = TrainExtras.Attach(context.Method, context.Output!, context.Device, context.Progress);

        public RunMetrics Finished(RunContext context, RunMetrics metrics)
        {
            var fields = new Dictionary<string, object?>();
            Extras!.AddMetrics(fields);
            return metrics.With(fields);
        }

        /// <summary>schedule.csv and the charts, from the run folder as written (a chart that fails is reported, not fatal).</summary>
        public void Completed(RunContext context, RunMetrics metrics) => Extras!.WriteCharts(stderr);

        public void Dispose() => Extras?.Dispose();
    }
}
