using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NoProp.Cli.CommandLine;
using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;

namespace NoProp.Cli.Commands;

/// <summary><c>noprop train</c>: trains a model, evaluates it on the test split and writes metrics.</summary>
internal sealed class TrainCommand : Command, ITailoredHelp
{
    private const string Summary = "train a NoProp model: NoProp-DT (§2.3), NoProp-CT (§2.4), NoProp-FM (§2.5), or a baseline " +
        "(backprop: the DT blocks trained end to end, Eqs. 17–19; adjoint: the CT network as a neural ODE trained by the adjoint method). " +
        "`noprop train --method M --help` lists the options of method M only.";

    private readonly Option<string?> method = CliOptions.Choice("--method", "dt | ct | fm | backprop | adjoint  [required]", MethodKinds.CliNames);
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
    private readonly Option<string?> embedding = CliOptions.Choice("--embedding", "label embedding  [onehot]", ["onehot", "learned", "prototype"]);
    private readonly Option<int?> embeddingDim = CliOptions.Int("--embedding-dim", "dimension of a learned embedding  [20]", 1, valueName: "K");
    private readonly Option<double?> eta = CliOptions.Double("--eta", "weight η of the denoising loss  [dt 0.1, ct 1]", 0);
    private readonly Option<double?> lr = CliOptions.Double("--lr", "learning rate (dt, backprop, adjoint: AdamW; ct, fm: Adam)  [0.001]", 0);
    private readonly Option<double?> weightDecay = CliOptions.Double("--weight-decay", "weight decay  [0.001]", -1e-300);
    private readonly Option<int?> trainSize = CliOptions.Int("--train-size", "training images actually trained on  [all but the validation split]", 2);
    private readonly Option<int?> validationSize = CliOptions.Int("--validation-size", "validation split carved from the training set  [5000]", 0);
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
    private readonly Option<string?> lrSchedule = CliOptions.Choice("--lr-schedule", "constant (the paper's) | cosine (to 0) | one-cycle (peak --lr, from lr/25, down to lr/(25·10⁴))  [constant]", LearningRateSchedule.CliNames);
    private readonly Option<double?> warmupEpochs = CliOptions.Double("--warmup-epochs", "linear (one-cycle: cosine) warm-up, in epochs  [0; one-cycle 30 %]", -1e-300);
    private readonly Option<int?> blocks = CliOptions.Int("--blocks", "DT blocks T  [10]", 1, 1000, "T");
    private readonly Option<string?> schedule = CliOptions.Choice("--schedule", "sequential (Algorithm 1: block 1 on every minibatch, then block 2, ...) | parallel (every block steps on each minibatch, all T fused)  [sequential]", ["sequential", "parallel"]);
    private readonly Option<string?> backbone = CliOptions.Choice("--backbone", "image backbone  [paper]", Backbones.CliNames);
    private readonly Option<string?> solver = CliOptions.Choice("--solver", "ODE solver  [heun]", OdeSolvers.Names.ToArray());
    private readonly Option<int?> steps = CliOptions.Int("--steps", "solver steps over t in [0, 1] (adjoint: training too)  [40]", 1, 1_000_000);
    private readonly Option<string?> prediction = CliOptions.Choice("--prediction", "class from the final z: head | nearest  [nearest; adjoint: head]", ["head", "nearest"]);
    private readonly Option<string?> weighting = CliOptions.Choice("--weighting", "constant | snr-derivative (Eq. 9)  [constant]", ["constant", "snr-derivative"]);
    private readonly Option<double?> gammaMax = CliOptions.Double("--gamma-max", "initial γ(0) of the noise schedule  [5]");
    private readonly Option<double?> gammaMin = CliOptions.Double("--gamma-min", "initial γ(1) of the noise schedule  [-5]");
    private readonly Option<string?> scheduleTraining = CliOptions.Choice("--schedule-training", "what trains the schedule: joint (the whole loss, the paper) | detached (the CE and KL terms only) | frozen  [constant weighting: detached; snr-derivative: joint]", CtScheduleTrainings.CliNames);
    private readonly Option<double?> scheduleWeightDecay = CliOptions.Double("--schedule-weight-decay", "weight decay of the schedule's parameters  [0]", -1e-300);
    private readonly Option<double?> flowSigma = CliOptions.Double("--flow-sigma", "σ of the probability path (Eq. 10)  [0]", -1e-300, "σ");

    public TrainCommand() : base("train", Summary)
    {
        foreach (var option in new Option[]
                 {
                     method, dataset, dataDir, download, label, imageSize, channels, augment, cropPadding, epochs, batchSize, embedding, embeddingDim,
                     eta, lr, weightDecay, trainSize, validationSize, testSize, evalEvery, patience, minDelta, seed, threads, device, output, resume,
                     trackTest, inferenceBatchSize, lrSchedule, warmupEpochs, blocks, schedule, backbone, solver, steps, prediction, weighting,
                     gammaMax, gammaMin, scheduleTraining, scheduleWeightDecay, flowSigma,
                 })
        {
            if (MethodOptions.MethodsOf(option.Name) is { } methods) option.Description += $" ({Describe(methods)})";
            Options.Add(option);
        }
        SetAction(result => Run(result, result.InvocationConfiguration.Output, result.InvocationConfiguration.Error));
    }

    private static string Describe(IReadOnlyList<string> methods) => methods.Count == 1 ? methods[0] : string.Join(", ", methods);

    /// <summary><c>--method M --help</c>: only the options that apply to M.</summary>
    public void BeforeHelp(ParseResult result)
    {
        if (result.GetValue(method) is not string chosen) return;
        foreach (var option in Options) option.Hidden = !MethodOptions.AppliesTo(option.Name, chosen);
        Description = $"train a {MethodKinds.Parse(chosen).DisplayName()} model (the options of --method {chosen}; `noprop train --help` lists every method's)";
    }

    /// <summary>"32" or "32x48" (height × width).</summary>
    internal static (int Height, int Width) ParseImageSize(string value)
    {
        var parts = value.ToLowerInvariant().Split('x');
        if (parts.Length is 1 or 2 && parts.All(p => int.TryParse(p, out int v) && v >= 14 && v <= 1024))
            return parts.Length == 1 ? (int.Parse(parts[0]), int.Parse(parts[0])) : (int.Parse(parts[0]), int.Parse(parts[1]));
        throw new UsageException($"--image-size: '{value}' is not N or HxW with sides from 14 to 1024");
    }

    /// <summary>The run's settings: run.json's with --resume, the defaults otherwise, then every option given on the command line.</summary>
    private RunSettings ReadSettings(ParseResult r, string? resumeDir)
    {
        var settings = resumeDir is not null ? RunSettings.Load(resumeDir) : new RunSettings();
        if (resumeDir is null && !r.Given(method)) throw new UsageException("--method is required (dt, ct, fm, backprop or adjoint)");
        settings.Method = r.GetValue(method) ?? settings.Method;
        if (r.GetValue(dataset) is string datasetName)
        {
            try { DatasetSpec.Parse(datasetName); }
            catch (NoPropException e) { throw new UsageException("--dataset: " + e.Message); }
            settings.Dataset = datasetName;
        }
        if (r.Given(dataDir)) settings.DataDir = r.GetValue(dataDir);
        settings.Label = r.GetValue(label) ?? settings.Label;
        if (r.GetValue(imageSize) is string size) (settings.ImageHeight, settings.ImageWidth) = ParseImageSize(size);
        settings.Channels = r.GetValue(channels) ?? settings.Channels;
        if (settings.Channels == 2) throw new UsageException("--channels: must be 1 (grayscale) or 3 (RGB)");
        settings.Download = (r.GetValue(download) ?? false) || settings.Download;
        settings.Augment = (r.GetValue(augment) ?? false) || settings.Augment;
        settings.CropPadding = r.GetValue(cropPadding) ?? settings.CropPadding;
        var datasetKind = DatasetSpec.Parse(settings.Dataset).Kind;
        if (r.Given(label) && datasetKind != "cifar100") throw new UsageException("--label applies to --dataset cifar100");
        if ((r.Given(imageSize) || r.Given(channels)) && datasetKind != "folder")
            throw new UsageException("--image-size and --channels apply to --dataset folder:PATH (other data sets have a fixed size)");
        if (r.Given(cropPadding) && !settings.Augment) throw new UsageException("--crop-padding applies with --augment");
        if (settings.Download && datasetKind is "mnist" or "folder")
            throw new UsageException($"--download applies to fashion-mnist, cifar10 and cifar100, not {datasetKind}");
        settings.Embedding = r.GetValue(embedding) ?? settings.Embedding;
        settings.EmbeddingDim = r.GetValue(embeddingDim) ?? settings.EmbeddingDim;
        settings.Blocks = r.GetValue(blocks) ?? settings.Blocks;
        settings.Epochs = r.GetValue(epochs) ?? settings.Epochs;
        settings.BatchSize = r.GetValue(batchSize) ?? settings.BatchSize;
        settings.TrainSize = r.GetValue(trainSize) ?? settings.TrainSize;
        settings.ValidationSize = r.GetValue(validationSize) ?? settings.ValidationSize;
        settings.TestSize = r.GetValue(testSize) ?? settings.TestSize;
        settings.EvalEvery = r.GetValue(evalEvery) ?? settings.EvalEvery;
        settings.EarlyStoppingPatience = r.GetValue(patience) ?? settings.EarlyStoppingPatience;
        settings.EarlyStoppingMinDelta = r.GetValue(minDelta) ?? settings.EarlyStoppingMinDelta;
        if (settings.EarlyStoppingMinDelta >= 1)
            throw new UsageException($"--early-stopping-min-delta: an accuracy gain below 1, got {settings.EarlyStoppingMinDelta.ToString(CultureInfo.InvariantCulture)}");
        if (r.Given(minDelta) && settings.EarlyStoppingPatience is null)
            throw new UsageException("--early-stopping-min-delta applies with --early-stopping-patience");
        if (settings.EarlyStoppingPatience is not null && settings.ValidationSize == 0)
            throw new UsageException("--early-stopping-patience needs a validation split (--validation-size > 0)");
        settings.Seed = r.GetValue(seed) ?? settings.Seed;
        settings.Threads = r.GetValue(threads) ?? settings.Threads;
        settings.Device = r.GetValue(device) ?? settings.Device;
        settings.LearningRate = r.GetValue(lr) ?? settings.LearningRate;
        settings.WeightDecay = r.GetValue(weightDecay) ?? settings.WeightDecay;
        settings.Eta = r.GetValue(eta) ?? settings.Eta;
        settings.Backbone = r.GetValue(backbone) ?? settings.Backbone;
        settings.Solver = r.GetValue(solver) ?? settings.Solver;
        settings.Steps = r.GetValue(steps) ?? settings.Steps;
        settings.Weighting = r.GetValue(weighting) ?? settings.Weighting;
        settings.Prediction = r.GetValue(prediction) ?? settings.Prediction;
        settings.ScheduleTraining = r.GetValue(scheduleTraining) ?? settings.ScheduleTraining;
        settings.ScheduleWeightDecay = r.GetValue(scheduleWeightDecay) ?? settings.ScheduleWeightDecay;
        settings.GammaMax = r.GetValue(gammaMax) ?? settings.GammaMax;
        settings.GammaMin = r.GetValue(gammaMin) ?? settings.GammaMin;
        settings.FlowSigma = r.GetValue(flowSigma) ?? settings.FlowSigma;
        settings.TrackTest = r.GetValue(trackTest) ?? settings.TrackTest;
        settings.Schedule = r.GetValue(schedule) ?? settings.Schedule;
        settings.InferenceBatchSize = r.GetValue(inferenceBatchSize) ?? settings.InferenceBatchSize;
        settings.LrSchedule = r.GetValue(lrSchedule) ?? settings.LrSchedule;
        settings.WarmupEpochs = r.GetValue(warmupEpochs) ?? settings.WarmupEpochs;
        if (settings.WarmupEpochs is double warmup && warmup >= settings.Epochs)
            throw new UsageException($"--warmup-epochs {warmup}: must be shorter than the run (--epochs {settings.Epochs})");
        if (settings.EmbeddingDim is not null && settings.Embedding != "learned")
            throw new UsageException($"--embedding-dim applies to --embedding learned only (a {settings.Embedding} embedding's dimension is fixed)");
        // Options that only make sense for other methods are usage errors, not silently ignored flags.
        foreach (var option in Options)
            if (r.Given(option) && MethodOptions.Misapplied(option.Name, settings.Method) is string misapplied)
                throw new UsageException(misapplied);
        return settings;
    }

    private int Run(ParseResult r, TextWriter stdout, TextWriter stderr)
    {
        var resumeDir = r.GetValue(resume);
        var settings = ReadSettings(r, resumeDir);
        var output = resumeDir ?? r.GetValue(this.output)
            ?? Path.Combine("runs", $"{settings.Method}-{settings.Dataset}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
        if (resumeDir is not null && r.GetValue(this.output) is string given && Path.GetFullPath(given) != Path.GetFullPath(resumeDir))
            throw new UsageException("--output cannot differ from --resume (a resumed run continues in its own folder)");

        TorchRuntime.Initialize(settings.Threads);
        var device = TorchRuntime.ResolveDevice(settings.Device);
        if (resumeDir is null && Checkpoint.Exists(output))
            throw new NoPropException($"--output {output} already holds a run; continue it with --resume {output} or choose another folder");
        Directory.CreateDirectory(output);
        settings.Save(output);

        var progress = new ConsoleProgress();
        var spec = DatasetSpec.Parse(settings.Dataset, settings.DataDir) with
        {
            CifarLabels = settings.Label == "coarse" ? Cifar100Labels.Coarse : Cifar100Labels.Fine,
            FolderChannels = settings.Channels,
            FolderHeight = settings.ImageHeight,
            FolderWidth = settings.ImageWidth,
        };
        var data = DownloadCommand.LoadOrDownload(spec, settings.Download, settings.Seed, stderr);
        var splits = DataSplits.Create(data, settings.TrainSize, settings.ValidationSize, settings.TestSize, settings.Seed);
        if (splits.Notice is not null) progress.Message(splits.Notice);

        var embedding = LabelEmbeddingKinds.Parse(settings.Embedding);
        var methodKind = MethodKinds.Parse(settings.Method);
        var image = new ImageShape(data.Train.Channels, data.Train.Height, data.Train.Width);
        ModelConfig config;
        if (resumeDir is not null)
        {
            config = Checkpoint.ReadConfig(resumeDir);
        }
        else
        {
            config = new ModelConfig
            {
                Method = methodKind,
                Dataset = spec.Name,
                DatasetLabels = spec.CifarLabels,
                Image = image,
                ClassNames = data.Train.ClassNames.ToArray(),
                NormalizationMean = data.Train.Normalization.Mean,
                NormalizationStd = data.Train.Normalization.Std,
                Embedding = embedding,
                EmbeddingDimension = ModelConfig.DefaultEmbeddingDimension(embedding, data.Train.ClassCount, image, settings.EmbeddingDim),
                Blocks = settings.Blocks,
                Eta = settings.Eta ?? (methodKind == MethodKind.DiscreteTime ? 0.1 : 1.0),
                LearningRate = settings.LearningRate,
                WeightDecay = settings.WeightDecay,
                Backbone = Backbones.Parse(settings.Backbone),
                Solver = OdeSolvers.Parse(settings.Solver),
                InferenceSteps = settings.Steps,
                Weighting = settings.Weighting == "snr-derivative" ? CtWeighting.SnrDerivative : CtWeighting.Constant,
                Prediction = settings.Prediction switch
                {
                    "head" => PredictionRule.OutputHead,
                    "nearest" => PredictionRule.NearestEmbedding,
                    _ => ModelConfig.DefaultPrediction(methodKind),
                },
                ScheduleTraining = settings.ScheduleTraining is string schedule ? CtScheduleTrainings.Parse(schedule)
                    : ModelConfig.DefaultScheduleTraining(settings.Weighting == "snr-derivative" ? CtWeighting.SnrDerivative : CtWeighting.Constant),
                ScheduleWeightDecay = settings.ScheduleWeightDecay ?? ModelConfig.DefaultScheduleWeightDecay,
                InitialGammaMax = settings.GammaMax ?? 5.0,
                InitialGammaMin = settings.GammaMin ?? -5.0,
                FlowSigma = settings.FlowSigma,
                BlockSchedule = settings.Schedule == "parallel" ? BlockSchedule.Parallel : BlockSchedule.Sequential,
            };
        }
        TorchRuntime.Seed(settings.Seed);   // initialisation is part of the seeded run
        using var method = MethodFactory.Create(config, device);
        if (resumeDir is null && config.Embedding == LabelEmbeddingKind.Prototype)
            PrototypeInitialisation.Apply(method, splits.Train, settings.Seed);

        string shape = config.Method.IsBlockChain()
            ? $"T = {config.Blocks}"
            : $"{config.Backbone.ToCliName()} backbone, {OdeSolvers.ToCliName(config.Solver)} × {config.InferenceSteps} steps";
        progress.Message($"training {config.Method.DisplayName()} on {settings.Dataset}: {splits.Train.Count} training, {splits.Validation.Count} validation, {splits.Test.Count} test images; " +
                         $"{config.Embedding.ToCliName()} embedding (d = {config.EmbeddingDimension}), {shape}, {settings.Epochs} epochs, batch {settings.BatchSize}, {TorchSharp.torch.get_num_threads()} threads; output in {output}");

        var options = new TrainingOptions
        {
            Epochs = settings.Epochs,
            BatchSize = settings.BatchSize,
            Seed = settings.Seed,
            EvaluateEvery = settings.EvalEvery,
            EarlyStopping = settings.EarlyStoppingPatience is int patience ? new EarlyStopping(patience, settings.EarlyStoppingMinDelta) : null,
            OutputDirectory = output,
            Augmentation = settings.Augment ? new AugmentationOptions { CropPadding = settings.CropPadding } : null,
            InferenceBatchSize = settings.InferenceBatchSize,
            LearningRateSchedule = settings.LrSchedule == "constant" && settings.WarmupEpochs is null ? null
                : new LearningRateSchedule { Kind = LearningRateSchedule.Parse(settings.LrSchedule), WarmupEpochs = settings.WarmupEpochs },
        };
        var trainer = new Trainer(method, splits, options, progress);
        using var extras = TrainExtras.Attach(trainer, method, output, settings.TrackTest, splits, device, settings.Seed, progress);
        using var cancellation = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            if (cancellation.IsCancellationRequested) return;   // a second Ctrl+C ends the process at once
            e.Cancel = true;
            cancellation.Cancel();
            progress.Message("stopping after the current step and saving a checkpoint (Ctrl+C again to abort)...");
        };
        Console.CancelKeyPress += onCancel;
        TrainingResult result;
        try
        {
            result = trainer.Run(resumeDir is not null, cancellation.Token);
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

        // Final test pass with the selected model (stochastic inference, seeded).
        var (testX, testY) = splits.Test.ToTensors(device);
        var clock = Stopwatch.StartNew();
        var inference = new InferenceOptions { Generator = Evaluator.InferenceGenerator(settings.Seed, device), BatchSize = settings.InferenceBatchSize };
        double testAccuracy = Evaluator.Accuracy(method, testX, testY, inference);
        double testSeconds = clock.Elapsed.TotalSeconds;
        testX.Dispose(); testY.Dispose();

        var metrics = new Dictionary<string, object?>
        {
            ["method"] = settings.Method,
            ["dataset"] = spec.Name,
            ["augmentation"] = settings.Augment ? $"crop (padding {settings.CropPadding}) + horizontal flip" : null,
            ["embedding"] = config.Embedding.ToCliName(),
            ["embedding_dim"] = config.EmbeddingDimension,
            ["blocks"] = config.Method.IsBlockChain() ? config.Blocks : null,
            ["lr_schedule"] = settings.LrSchedule,
            ["warmup_epochs"] = settings.WarmupEpochs,
            ["schedule"] = config.Method == MethodKind.DiscreteTime ? (config.BlockSchedule == BlockSchedule.Parallel ? "parallel" : "sequential") : null,
            ["backbone"] = config.Method.IsBlockChain() ? null : config.Backbone.ToCliName(),
            ["solver"] = config.Method.IsBlockChain() ? null : OdeSolvers.ToCliName(config.Solver),
            ["steps"] = config.Method.IsBlockChain() ? null : config.InferenceSteps,
            ["prediction"] = config.Method.IsBlockChain() ? null : (config.Prediction == PredictionRule.OutputHead ? "head" : "nearest"),
            ["weighting"] = config.Method == MethodKind.ContinuousTime ? (config.Weighting == CtWeighting.Constant ? "constant" : "snr-derivative") : null,
            ["schedule_training"] = config.Method == MethodKind.ContinuousTime ? config.ScheduleTrainingOrDefault.ToCliName() : null,
            ["schedule_weight_decay"] = config.Method == MethodKind.ContinuousTime ? config.ScheduleWeightDecay : null,
            ["eta"] = config.Method is MethodKind.DiscreteTime or MethodKind.ContinuousTime ? config.Eta : null,
            ["epochs"] = settings.Epochs,
            ["best_epoch"] = result.BestEpoch,
            ["epochs_trained"] = result.History.Count,
            ["stopped_early"] = result.StoppedEarly,
            ["batch_size"] = settings.BatchSize,
            ["seed"] = settings.Seed,
            ["threads"] = TorchSharp.torch.get_num_threads(),
            ["device"] = settings.Device,
            ["train_size"] = splits.Train.Count,
            ["validation_size"] = splits.Validation.Count,
            ["test_size"] = splits.Test.Count,
            ["train_seconds"] = Math.Round(result.TrainSeconds, 3),
            ["seconds_per_epoch"] = Math.Round(result.TrainSeconds / Math.Max(1, result.History.Count), 3),
            ["validation_accuracy"] = result.BestValidationAccuracy,
            ["test_accuracy"] = testAccuracy,
            ["test_inference_seconds"] = Math.Round(testSeconds, 3),
            ["peak_memory_mb"] = Math.Round(TorchRuntime.PeakMemoryMb(), 1),
            ["history"] = result.History.Select(h => new Dictionary<string, object?>
            {
                ["epoch"] = h.Epoch, ["train_seconds"] = Math.Round(h.TrainSeconds, 3),
                ["losses"] = h.Losses, ["validation_accuracy"] = h.ValidationAccuracy,
            }).ToList(),
        };
        extras.AddMetrics(metrics);
        File.WriteAllText(Path.Combine(output, "metrics.json"),
            JsonSerializer.Serialize(metrics, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
        extras.WriteCharts(stderr);

        string validation = result.BestValidationAccuracy is double v ? $"{v * 100:F2} % (epoch {result.BestEpoch})" : "n/a";
        stdout.WriteLine($"test accuracy: {testAccuracy * 100:F2} % ({splits.Test.Count} images, {testSeconds:F1} s inference)");
        stdout.WriteLine($"validation accuracy: {validation}");
        stdout.WriteLine($"training: {result.TrainSeconds:F1} s for {result.History.Count} epoch(s); peak memory {TorchRuntime.PeakMemoryMb():F0} MB");
        stdout.WriteLine($"model and metrics: {output}");
        return 0;
    }
}
