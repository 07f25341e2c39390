using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;

namespace NoProp.Cli.Commands;

/// <summary><c>noprop train</c>: trains a model, evaluates it on the test split and writes metrics.</summary>
public static class TrainCommand
{
    public const string Help = """
        noprop train: train a NoProp model

          --method dt|ct|fm           NoProp-DT (§2.3), NoProp-CT (§2.4), NoProp-FM (§2.5)  [required]
                   |backprop|adjoint  baselines: the DT blocks trained end to end (Eqs. 17–19),
                                      the CT network as a neural ODE trained by the adjoint method
          --dataset NAME              mnist | fashion-mnist | cifar10 | cifar100 | folder:PATH   [mnist, embedded]
          --data-dir DIR              folder holding the data set's files               [per-user cache; MNIST: embedded]
          --download                  download the data set first if it is missing (fashion-mnist, cifar10, cifar100)
          --label fine|coarse         cifar100: fine (100) or coarse (20) labels         [fine]
          --image-size N|HxW          folder: size images are resized to                [28]
          --channels 1|3              folder: grayscale or RGB                          [1]
          --augment                   random crop (padding --crop-padding, 4) and horizontal flip of training images
          --epochs N                  training epochs                                   [100, the paper's]
          --batch-size B              minibatch size                                    [128]
          --embedding KIND            onehot | learned | prototype                      [onehot]
          --embedding-dim K           dimension of a learned embedding                  [20]
          --eta X                     weight η of the denoising loss (dt, ct)           [dt 0.1, ct 1]
          --lr X / --weight-decay X   optimiser (dt, backprop, adjoint: AdamW; ct/fm: Adam)  [0.001 / 0.001]
          --train-size N              training images actually trained on               [all but the validation split]
          --validation-size N         validation split carved from the training set     [5000]
          --test-size N               evaluate on the first N test images               [all]
          --eval-every K              validate every K epochs (and after the last)      [1]
          --early-stopping-patience P stop after P validations without a gain in validation accuracy
                                      (the model keeps the best epoch)                  [off]
          --early-stopping-min-delta X  the accuracy gain that counts (0.001 = 0.1 point) [0]
          --seed S                    seed for data order, initialisation and noise     [1]
          --threads N                 intra-op threads                                  [TorchSharp's default]
          --device cpu|cuda           where to train                                    [cpu]
          --output DIR                where the model, checkpoint and metrics go        [runs/<method>-<dataset>-<time>]
          --resume DIR                continue the run in DIR from its checkpoint (options given again override)
          --track-test                also evaluate the test split after every epoch into test-curve.csv
                                      (for accuracy-against-time charts; never used to select the model)
          --inference-batch-size N    images per inference batch (validation, test)     [1000]
          --lr-schedule NAME          constant (the paper's) | cosine (to 0) | one-cycle (peak --lr,
                                      from lr/25, down to lr/(25·10⁴))                   [constant]
          --warmup-epochs X           linear (one-cycle: cosine) warm-up, in epochs     [0; one-cycle 30 %]
        NoProp-DT and backprop:
          --blocks T                  DT blocks                                         [10]
          --schedule ORDER            dt: sequential (Algorithm 1: block 1 on every minibatch, then
                                      block 2, ...) | parallel (every block steps on each minibatch,
                                      all T computed as one fused computation)          [sequential]
        NoProp-CT, NoProp-FM and adjoint:
          --backbone NAME             paper | resnet18 | resnet50 | resnet152           [paper]
          --solver NAME               euler | heun | midpoint | rk4 | dopri5            [heun]
          --steps N                   solver steps over t in [0, 1] (adjoint: training too)  [40]
          --prediction RULE           head | nearest (class from the final z)           [nearest; adjoint: head]
          --weighting W               ct: constant | snr-derivative (Eq. 9)             [constant]
          --gamma-max X / --gamma-min X   ct: initial γ(0), γ(1) of the schedule        [5 / -5]
          --schedule-training MODE    ct: what trains the schedule: joint (the whole loss, the paper) |
                                      detached (the CE and KL terms only) | frozen
                                      [constant weighting: detached; snr-derivative: joint]
          --schedule-weight-decay X   ct: weight decay of the schedule's parameters     [0]
          --flow-sigma X              fm: σ of the probability path (Eq. 10)            [0]
        """;


    /// <summary>Options that only make sense for other methods are usage errors, not silently ignored flags.</summary>
    private static void RejectOptionsOfOtherMethods(ArgumentReader reader, string method)
    {
        string[] dtOnly = ["blocks"];
        string[] continuousOnly = ["backbone", "solver", "steps", "prediction"];
        bool chain = method is "dt" or "backprop", continuous = method is "ct" or "fm" or "adjoint";
        string[] ctOnly = ["weighting", "gamma-max", "gamma-min", "schedule-training", "schedule-weight-decay"];
        string[] fmOnly = ["flow-sigma"];
        string[] notFm = ["eta"];
        if (reader.Has("schedule") && method != "dt") throw new UsageException($"--schedule applies to --method dt, not --method {method}");
        void Reject(string[] names, bool applies, string which)
        {
            foreach (var name in names)
                if (!applies && reader.Has(name)) throw new UsageException($"--{name} applies to {which}, not --method {method}");
        }
        Reject(dtOnly, chain, "--method dt and backprop");
        Reject(continuousOnly, continuous, "--method ct, fm and adjoint");
        Reject(ctOnly, method == "ct", "--method ct");
        Reject(fmOnly, method == "fm", "--method fm");
        Reject(notFm, method is "dt" or "ct", "--method dt and ct");
    }

    /// <summary>"32" or "32x48" (height × width).</summary>
    internal static (int Height, int Width) ParseImageSize(string value)
    {
        var parts = value.ToLowerInvariant().Split('x');
        if (parts.Length is 1 or 2 && parts.All(p => int.TryParse(p, out int v) && v >= 14 && v <= 1024))
            return parts.Length == 1 ? (int.Parse(parts[0]), int.Parse(parts[0])) : (int.Parse(parts[0]), int.Parse(parts[1]));
        throw new UsageException($"--image-size: '{value}' is not N or HxW with sides from 14 to 1024");
    }

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Contains("--help")) { stdout.Write(Help); return 0; }
        var reader = new ArgumentReader(args, new HashSet<string> { "download", "augment", "track-test" });

        var resumeDir = reader.String("resume");
        var settings = resumeDir is not null ? RunSettings.Load(resumeDir) : new RunSettings();
        if (resumeDir is null && !reader.Has("method")) throw new UsageException("--method is required (dt, ct, fm, backprop or adjoint)");
        if (reader.Has("method")) settings.Method = reader.Choice("method", "dt", MethodKinds.CliNames);
        if (reader.Has("dataset"))
        {
            settings.Dataset = reader.String("dataset")!;
            try { DatasetSpec.Parse(settings.Dataset); }
            catch (NoPropException e) { throw new UsageException("--dataset: " + e.Message); }
        }
        if (reader.Has("data-dir")) settings.DataDir = reader.String("data-dir");
        if (reader.Has("label")) settings.Label = reader.Choice("label", "fine", "fine", "coarse");
        if (reader.Has("image-size")) (settings.ImageHeight, settings.ImageWidth) = ParseImageSize(reader.String("image-size")!);
        settings.Channels = reader.Int("channels", 1, 3) ?? settings.Channels;
        if (settings.Channels == 2) throw new UsageException("--channels: must be 1 (grayscale) or 3 (RGB)");
        settings.Download = reader.Flag("download") || settings.Download;
        settings.Augment = reader.Flag("augment") || settings.Augment;
        settings.CropPadding = reader.Int("crop-padding", 0, 64) ?? settings.CropPadding;
        var datasetKind = DatasetSpec.Parse(settings.Dataset).Kind;
        if (reader.Has("label") && datasetKind != "cifar100") throw new UsageException("--label applies to --dataset cifar100");
        if ((reader.Has("image-size") || reader.Has("channels")) && datasetKind != "folder")
            throw new UsageException("--image-size and --channels apply to --dataset folder:PATH (other data sets have a fixed size)");
        if (reader.Has("crop-padding") && !settings.Augment) throw new UsageException("--crop-padding applies with --augment");
        if (settings.Download && datasetKind is "mnist" or "folder")
            throw new UsageException($"--download applies to fashion-mnist, cifar10 and cifar100, not {datasetKind}");
        if (reader.Has("embedding")) settings.Embedding = reader.Choice("embedding", "onehot", "onehot", "learned", "prototype");
        settings.EmbeddingDim = reader.Int("embedding-dim", 1) ?? settings.EmbeddingDim;
        settings.Blocks = reader.Int("blocks", 1, 1000) ?? settings.Blocks;
        settings.Epochs = reader.Int("epochs", 1) ?? settings.Epochs;
        settings.BatchSize = reader.Int("batch-size", 2) ?? settings.BatchSize;
        settings.TrainSize = reader.Int("train-size", 2) ?? settings.TrainSize;
        settings.ValidationSize = reader.Int("validation-size", 0) ?? settings.ValidationSize;
        settings.TestSize = reader.Int("test-size", 1) ?? settings.TestSize;
        settings.EvalEvery = reader.Int("eval-every", 1) ?? settings.EvalEvery;
        settings.EarlyStoppingPatience = reader.Int("early-stopping-patience", 1) ?? settings.EarlyStoppingPatience;
        settings.EarlyStoppingMinDelta = reader.Double("early-stopping-min-delta", -1e-300) ?? settings.EarlyStoppingMinDelta;
        if (settings.EarlyStoppingMinDelta >= 1)
            throw new UsageException($"--early-stopping-min-delta: an accuracy gain below 1, got {settings.EarlyStoppingMinDelta.ToString(CultureInfo.InvariantCulture)}");
        if (reader.Has("early-stopping-min-delta") && settings.EarlyStoppingPatience is null)
            throw new UsageException("--early-stopping-min-delta applies with --early-stopping-patience");
        if (settings.EarlyStoppingPatience is not null && settings.ValidationSize == 0)
            throw new UsageException("--early-stopping-patience needs a validation split (--validation-size > 0)");
        settings.Seed = reader.Long("seed") ?? settings.Seed;
        settings.Threads = reader.Int("threads", 1, 1024) ?? settings.Threads;
        if (reader.Has("device")) settings.Device = reader.String("device")!;
        settings.LearningRate = reader.Double("lr", 0) ?? settings.LearningRate;
        settings.WeightDecay = reader.Double("weight-decay", -1e-300) ?? settings.WeightDecay;
        settings.Eta = reader.Double("eta", 0) ?? settings.Eta;
        if (reader.Has("backbone")) settings.Backbone = reader.Choice("backbone", "paper", Backbones.CliNames);
        if (reader.Has("solver")) settings.Solver = reader.Choice("solver", "heun", OdeSolvers.Names.ToArray());
        settings.Steps = reader.Int("steps", 1, 1_000_000) ?? settings.Steps;
        if (reader.Has("weighting")) settings.Weighting = reader.Choice("weighting", "constant", "constant", "snr-derivative");
        if (reader.Has("prediction")) settings.Prediction = reader.Choice("prediction", "head", "head", "nearest");
        if (reader.Has("schedule-training")) settings.ScheduleTraining = reader.Choice("schedule-training", "joint", CtScheduleTrainings.CliNames);
        settings.ScheduleWeightDecay = reader.Double("schedule-weight-decay", -1e-300) ?? settings.ScheduleWeightDecay;
        settings.GammaMax = reader.Double("gamma-max") ?? settings.GammaMax;
        settings.GammaMin = reader.Double("gamma-min") ?? settings.GammaMin;
        settings.FlowSigma = reader.Double("flow-sigma", -1e-300) ?? settings.FlowSigma;
        if (reader.Has("track-test")) settings.TrackTest = reader.Flag("track-test");
        if (reader.Has("schedule")) settings.Schedule = reader.Choice("schedule", "sequential", "sequential", "parallel");
        settings.InferenceBatchSize = reader.Int("inference-batch-size", 1) ?? settings.InferenceBatchSize;
        if (reader.Has("lr-schedule")) settings.LrSchedule = reader.Choice("lr-schedule", "constant", LearningRateSchedule.CliNames);
        settings.WarmupEpochs = reader.Double("warmup-epochs", -1e-300) ?? settings.WarmupEpochs;
        if (settings.WarmupEpochs is double warmup && warmup >= settings.Epochs)
            throw new UsageException($"--warmup-epochs {warmup}: must be shorter than the run (--epochs {settings.Epochs})");
        var output = resumeDir ?? reader.String("output")
            ?? Path.Combine("runs", $"{settings.Method}-{settings.Dataset}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
        if (resumeDir is not null && reader.Has("output") && Path.GetFullPath(reader.String("output")!) != Path.GetFullPath(resumeDir))
            throw new UsageException("--output cannot differ from --resume (a resumed run continues in its own folder)");
        if (settings.EmbeddingDim is not null && settings.Embedding != "learned")
            throw new UsageException($"--embedding-dim applies to --embedding learned only (a {settings.Embedding} embedding's dimension is fixed)");
        RejectOptionsOfOtherMethods(reader, settings.Method);
        reader.EnsureAllConsumed("train");

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
