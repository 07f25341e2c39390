using System.Diagnostics;
using System.Runtime.CompilerServices;
using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Solvers;
using TorchSharp;

namespace NoProp.Training.Runs;

/// <summary>What an observer of a run sees once the model is built: the request, the method, the splits and the trainer.</summary>
public sealed record RunContext(TrainRequest Request, string? Output, INoPropMethod Method, DataSplits Splits, TorchSharp.torch.Device Device,
    Trainer Trainer, ITrainingProgress Progress);

/// <summary>
/// Watches a <see cref="TrainingRun"/>: <see cref="Started"/> once the model and trainer exist (per-epoch work: an
/// <see cref="IEpochSink"/> in <see cref="TrainingRun.Sinks"/>), <see cref="Finished"/> with the final metrics, which
/// it may extend before they are written, <see cref="Completed"/> once they are written (the model is still alive:
/// charts, exports).
/// </summary>
public interface IRunObserver
{
    void Started(RunContext context) { }
    RunMetrics Finished(RunContext context, RunMetrics metrics) => metrics;
    void Completed(RunContext context, RunMetrics metrics) { }
}

/// <summary>The outcome of a run: its metrics (as written to metrics.json) and the training loop's result.</summary>
public sealed record RunOutcome(RunMetrics Metrics, TrainingResult Training);

/// <summary>
/// One training run from a <see cref="TrainRequest"/>: loads the data, carves the splits, builds (or, resuming, reloads)
/// the model, trains it with the shared <see cref="Trainer"/>, evaluates the selected model on the test split and
/// returns typed <see cref="RunMetrics"/>. With an output folder the run keeps run.json, the model, checkpoints,
/// metrics.csv (<see cref="RunFolderStore"/>), test-curve.csv (<see cref="TrainingSettings.TrackTest"/>:
/// <see cref="TestCurve"/>) and metrics.json there, so a host needs nothing but this class to reproduce <c>noprop train</c>.
/// </summary>
public sealed class TrainingRun(TrainRequest request)
{
    public TrainRequest Request { get; } = request;
    /// <summary>Continue the run in <see cref="TrainRequest.Output"/> from its checkpoint.</summary>
    public bool Resume { get; init; }
    public ITrainingProgress Progress { get; init; } = SilentProgress.Instance;
    /// <summary>Loads the data set (a host may download it first); <see cref="Datasets.Load(DatasetSpec)"/> by default.</summary>
    public Func<DatasetSpec, DatasetPair> LoadData { get; init; } = Datasets.Load;
    public IReadOnlyList<IRunObserver> Observers { get; init; } = [];
    /// <summary>Observers of the trainer's commit points (every epoch, the selected model, a cancellation), after the run folder and the test curve.</summary>
    public IReadOnlyList<IEpochSink> Sinks { get; init; } = [];

    /// <summary>Trains and tests; a cancelled token stops after the current step (with an output folder: a checkpoint is saved).</summary>
    public RunOutcome Run(CancellationToken cancellation = default)
    {
        var request = Request;
        var output = request.Output;
        if (Resume && output is null) throw new ArgumentException("a resumed run needs its output folder");
        if (request.Training.TrackTest && output is null)
            throw new NoPropException("--track-test writes test-curve.csv into the run folder: it needs an output folder");
        var precision = request.Training.InferencePrecision is string precisionName ? EnumNames<InferencePrecision>.Parse(precisionName) : InferencePrecision.Float32;
        TorchRuntime.Initialize(request.Threads);
        var device = TorchRuntime.ResolveDevice(request.Device);
        if (output is not null)
        {
            if (!Resume && Checkpoint.Exists(output))
                throw new NoPropException($"--output {output} already holds a run; continue it with --resume {output} or choose another folder");
            Directory.CreateDirectory(output);
            RunFile.Save(request, output);
        }

        var spec = request.Data.ToSpec();
        var splits = LoadSplits(spec);
        if (splits.Notice is not null) Progress.Message(splits.Notice);
        TorchRuntime.ReturnFreeMemory(collectManaged: true);   // the data set as read (MNIST: 55 MB) is garbage now, but for what the splits use

        var config = Resume ? Checkpoint.ReadConfig(output!) : ModelConfigFor(request, spec, splits.Train);
        InferenceOptions.CheckPrecision(precision, config);   // before training, not at the first validation
        TorchRuntime.Seed(request.Training.Seed);   // initialisation is part of the seeded run
        using var method = MethodRegistry.Create(config, device);
        if (!Resume && config.Embedding == LabelEmbeddingKind.Prototype)
            PrototypeInitialisation.Apply(method, splits.Train, request.Training.Seed);

        var training = request.Training;
        string shape = config.Method.IsBlockChain()
            ? $"T = {config.Blocks}"
            : $"{config.Backbone.ToCliName()} backbone, {OdeSolvers.ToCliName(config.Solver)} × {config.InferenceSteps} steps";
        Progress.Message($"training {config.Method.DisplayName()} on {request.Data.Dataset}: {splits.Train.Count} training, {splits.Validation.Count} validation, {splits.Test.Count} test images; " +
                         $"{config.Embedding.ToCliName()} embedding (d = {config.EmbeddingDimension}), {shape}, {training.Epochs} epochs, batch {training.BatchSize}, {torch.get_num_threads()} threads" +
                         (output is null ? "" : $"; output in {output}"));

        var options = new TrainingOptions
        {
            Epochs = training.Epochs,
            BatchSize = training.BatchSize,
            Seed = training.Seed,
            EvaluateEvery = training.EvalEvery,
            EarlyStopping = training.EarlyStoppingPatience is int patience ? new EarlyStopping(patience, training.EarlyStoppingMinDelta) : null,
            OutputDirectory = output,
            Augmentation = request.Data.Augment ? new AugmentationOptions { CropPadding = request.Data.CropPadding } : null,
            InferenceBatchSize = training.InferenceBatchSize,
            InferencePrecision = precision,
            LearningRateSchedule = training.LrSchedule == "constant" && training.WarmupEpochs is null ? null
                : new LearningRateSchedule { Kind = EnumNames<LearningRateScheduleKind>.Parse(training.LrSchedule), WarmupEpochs = training.WarmupEpochs },
        };
        var trainer = new Trainer(method, splits, options, Progress);
        using var testCurve = training.TrackTest ? new TestCurve(output!, splits.Test, device, training.Seed, precision) : null;
        if (testCurve is not null) trainer.Sinks.Add(testCurve);
        foreach (var sink in Sinks) trainer.Sinks.Add(sink);
        var context = new RunContext(request, output, method, splits, device, trainer, Progress);
        foreach (var observer in Observers) observer.Started(context);
        var result = trainer.Run(Resume, cancellation);

        // Final test pass with the selected model (the model's inference rule, seeded noise).
        var (testX, testY) = splits.Test.ToTensors(device);
        var clock = Stopwatch.StartNew();
        var inference = new InferenceOptions { Generator = Evaluator.InferenceGenerator(training.Seed, device), BatchSize = training.InferenceBatchSize, Precision = precision };
        double testAccuracy = Evaluator.Accuracy(method, testX, testY, inference);
        double testSeconds = clock.Elapsed.TotalSeconds;
        testX.Dispose(); testY.Dispose();
        // The training steps' free heap, before the charts allocate (after the test pass, which reuses that heap: released
        // pages would only be faulted in again while it is timed).
        TorchRuntime.ReturnFreeMemory(collectManaged: true);

        var metrics = Metrics(request, config, spec, splits, result, testAccuracy, testSeconds);
        foreach (var observer in Observers) metrics = observer.Finished(context, metrics);
        if (output is not null) metrics.Save(output);
        foreach (var observer in Observers) observer.Completed(context, metrics);
        return new RunOutcome(metrics, result);
    }

    /// <summary>
    /// The request's splits of the data set <paramref name="spec"/> names. The data set as read is referenced from this
    /// frame only, so that all of it but what the splits use is garbage once they exist, whatever the JIT makes of the
    /// caller's locals.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private DataSplits LoadSplits(DatasetSpec spec) => Request.Splits.Create(LoadData(spec), Request.Training.Seed);

    /// <summary>The model of a new run: the request's options over the method's defaults (the registry's), the data set's shape and classes.</summary>
    public static ModelConfig ModelConfigFor(TrainRequest request, DatasetSpec spec, ImageDataset train)
    {
        var m = request.Model;
        var definition = MethodRegistry.Parse(request.Method);
        var defaults = definition.Defaults;
        var embedding = EnumNames<LabelEmbeddingKind>.Parse(m.Embedding);
        var image = new ImageShape(train.Channels, train.Height, train.Width);
        var weighting = m.Weighting is string w ? EnumNames<CtWeighting>.Parse(w) : defaults.Weighting;
        return new ModelConfig
        {
            Method = definition.Kind,
            Dataset = spec.Name,
            DatasetLabels = spec.CifarLabels,
            Image = image,
            ClassNames = train.ClassNames.ToArray(),
            NormalizationMean = train.Normalization.Mean,
            NormalizationStd = train.Normalization.Std,
            Embedding = embedding,
            EmbeddingDimension = ModelConfig.DefaultEmbeddingDimension(embedding, train.ClassCount, image, m.EmbeddingDim),
            Blocks = m.Blocks ?? defaults.Blocks,
            Eta = m.Eta ?? defaults.Eta,
            LearningRate = m.LearningRate,
            WeightDecay = m.WeightDecay,
            Backbone = m.Backbone is string backbone ? EnumNames<BackboneKind>.Parse(backbone) : defaults.Backbone,
            Solver = m.Solver is string solver ? OdeSolvers.Parse(solver) : defaults.Solver,
            InferenceSteps = m.Steps ?? defaults.InferenceSteps,
            Weighting = weighting,
            Prediction = m.Prediction is string rule ? EnumNames<PredictionRule>.Parse(rule) : defaults.Prediction,
            ScheduleTraining = m.ScheduleTraining is string schedule ? EnumNames<CtScheduleTraining>.Parse(schedule) : defaults.ScheduleTraining(weighting),
            ScheduleWeightDecay = m.ScheduleWeightDecay ?? ModelConfig.DefaultScheduleWeightDecay,
            InitialGammaMax = m.GammaMax ?? 5.0,
            InitialGammaMin = m.GammaMin ?? -5.0,
            FlowSigma = m.FlowSigma,
            BlockSchedule = m.Schedule is string order ? EnumNames<BlockSchedule>.Parse(order) : defaults.BlockSchedule,
            DtInference = m.Inference is string inference ? EnumNames<DtInference>.Parse(inference) : DtInference.Stochastic,
        };
    }

    private static RunMetrics Metrics(TrainRequest request, ModelConfig config, DatasetSpec spec, DataSplits splits, TrainingResult result,
        double testAccuracy, double testSeconds)
    {
        var definition = MethodRegistry.Get(config.Method);
        bool chain = definition.Structure == MethodStructure.BlockChain;
        var training = request.Training;
        return new RunMetrics
        {
            Method = request.Method,
            Dataset = spec.Name,
            Augmentation = request.Data.Augment ? $"crop (padding {request.Data.CropPadding}) + horizontal flip" : null,
            Embedding = config.Embedding.ToCliName(),
            EmbeddingDim = config.EmbeddingDimension,
            Blocks = chain ? config.Blocks : null,
            LrSchedule = training.LrSchedule,
            WarmupEpochs = training.WarmupEpochs,
            Schedule = definition.Accepts(MethodOption.Schedule) ? config.BlockSchedule.ToCliName() : null,
            Backbone = chain ? null : config.Backbone.ToCliName(),
            Solver = chain ? null : OdeSolvers.ToCliName(config.Solver),
            Steps = chain ? null : config.InferenceSteps,
            Prediction = chain ? null : config.Prediction.ToCliName(),
            Weighting = definition.Accepts(MethodOption.Weighting) ? config.Weighting.ToCliName() : null,
            ScheduleTraining = definition.Accepts(MethodOption.ScheduleTraining) ? config.ScheduleTrainingOrDefault.ToCliName() : null,
            ScheduleWeightDecay = definition.Accepts(MethodOption.ScheduleWeightDecay) ? config.ScheduleWeightDecay : null,
            Eta = definition.Accepts(MethodOption.Eta) ? config.Eta : null,
            Inference = config.DtInference == DtInference.Stochastic ? null : config.DtInference.ToCliName(),
            InferencePrecision = training.InferencePrecision is string name && EnumNames<InferencePrecision>.Parse(name) is var p && p != NoProp.Runtime.InferencePrecision.Float32
                ? p.ToCliName() : null,
            Epochs = training.Epochs,
            BestEpoch = result.BestEpoch,
            EpochsTrained = result.History.Count,
            StoppedEarly = result.StoppedEarly,
            BatchSize = training.BatchSize,
            Seed = training.Seed,
            Threads = torch.get_num_threads(),
            Device = request.Device,
            TrainSize = splits.Train.Count,
            ValidationSize = splits.Validation.Count,
            TestSize = splits.Test.Count,
            TrainSeconds = Math.Round(result.TrainSeconds, 3),
            SecondsPerEpoch = Math.Round(result.TrainSeconds / Math.Max(1, result.History.Count), 3),
            ValidationAccuracy = result.BestValidationAccuracy,
            TestAccuracy = testAccuracy,
            TestInferenceSeconds = Math.Round(testSeconds, 3),
            PeakMemoryMb = Math.Round(TorchRuntime.PeakMemoryMb(), 1),
            History = result.History.Select(h => new EpochMetrics
            {
                Epoch = h.Epoch, TrainSeconds = Math.Round(h.TrainSeconds, 3), Losses = h.Losses, ValidationAccuracy = h.ValidationAccuracy,
            }).ToList(),
        };
    }
}
