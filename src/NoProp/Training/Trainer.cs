using System.Diagnostics;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Training;

/// <summary>The outcome of <see cref="Trainer.Run"/>.</summary>
public sealed record TrainingResult(
    IReadOnlyList<EpochRecord> History, double TrainSeconds, double? BestValidationAccuracy, int BestEpoch, double PeakMemoryMb)
{
    /// <summary>True when <see cref="TrainingOptions.EarlyStopping"/> ended training before the planned epochs.</summary>
    public bool StoppedEarly { get; init; }
}

/// <summary>Training diverged (a loss became NaN or infinite).</summary>
public sealed class TrainingDivergedException(string message) : NoPropException(message);

/// <summary>
/// The training loop shared by every method: seeded shuffling, stages (DT blocks) over the whole training
/// split in each epoch, per-epoch validation, model selection on the validation split (never on the test
/// set), resume and progress reports. What is kept of a run (the selected model, metrics.csv, checkpoints after
/// every epoch and on cancellation) is the <see cref="IRunStore"/>'s business, told at the commit points; further
/// <see cref="Sinks"/> see the same points.
/// </summary>
public sealed class Trainer
{
    private readonly INoPropMethod method;
    private readonly DataSplits splits;
    private readonly TrainingOptions options;
    private readonly ITrainingProgress progress;

    public Trainer(INoPropMethod method, DataSplits splits, TrainingOptions options, ITrainingProgress? progress = null)
    {
        if (options.Epochs < 1) throw new NoPropException("--epochs must be at least 1");
        if (options.BatchSize < 2) throw new NoPropException("--batch-size must be at least 2 (BatchNorm needs two images)");
        if (options.EvaluateEvery < 1) throw new NoPropException("--eval-every must be at least 1");
        if (options.EarlyStopping is not null && splits.Validation.Count == 0)
            throw new NoPropException("early stopping needs validation images (--validation-size > 0)");
        options.LearningRateSchedule?.Validate(options.Epochs);
        this.method = method;
        this.splits = splits;
        this.options = options;
        this.progress = progress ?? SilentProgress.Instance;
    }

    /// <summary>Called after every epoch (after validation), e.g. for custom evaluation hooks.</summary>
    public event Action<EpochRecord>? EpochCompleted;

    /// <summary>
    /// Where the run is kept; null (the default): a <see cref="RunFolderStore"/> in <see cref="TrainingOptions.OutputDirectory"/>,
    /// or an <see cref="InMemoryRunStore"/> without one (those the trainer creates it disposes; a given one is the caller's).
    /// </summary>
    public IRunStore? Store { get; init; }

    /// <summary>Further observers of the commit points, called after the store, in this order.</summary>
    public IList<IEpochSink> Sinks { get; } = new List<IEpochSink>();

    /// <summary>
    /// Trains for <see cref="TrainingOptions.Epochs"/> epochs, continuing from the checkpoint in the output
    /// directory when <paramref name="resume"/> is set. On return the network holds the weights of the epoch
    /// with the best validation accuracy. Cancellation saves a checkpoint, then throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public TrainingResult Run(bool resume = false, CancellationToken cancellation = default)
    {
        var ownStore = Store is null ? (options.OutputDirectory is string output ? new RunFolderStore(output) : (IRunStore)new InMemoryRunStore()) : null;
        try
        {
            return RunWith(Store ?? ownStore!, resume, cancellation);
        }
        finally
        {
            ownStore?.Dispose();
        }
    }

    private TrainingResult RunWith(IRunStore store, bool resume, CancellationToken cancellation)
    {
        var device = method.Device;
        TrainerState state;
        if (resume)
        {
            state = store.Resume(method);
            progress.Message($"resuming from {store.CheckpointLocation} at epoch {state.Epoch + 1}, {method.DescribeStage(state.Stage)}, batch {state.Batch}");
        }
        else
        {
            RuntimeSeed();
            state = new TrainerState { EpochLossSums = new double[method.LossNames.Count] };
        }
        state.Options = options;

        var (trainX, trainY) = splits.Train.ToTensors(device);
        var (validX, validY) = splits.Validation.Count > 0 ? splits.Validation.ToTensors(device) : (null, null);
        store.Open(method);
        if (resume)
            foreach (var sink in Sinks) sink.Resumed(method, state);

        int n = splits.Train.Count;
        int batchesPerStage = (n + options.BatchSize - 1) / options.BatchSize;
        if (n - (batchesPerStage - 1) * options.BatchSize < 2) batchesPerStage--;   // a last batch of one image breaks BatchNorm
        if (batchesPerStage < 1) throw new NoPropException($"the training split has {n} image(s): too few for one batch of at least 2 images (a larger data set, --train-size or a smaller --validation-size)");
        long stepsPerEpoch = (long)batchesPerStage * method.StagesPerEpoch;

        var stopwatch = new Stopwatch();
        var lossSum = zeros(method.LossNames.Count, ScalarType.Float64, device);
        bool stoppedEarly = false;
        try
        {
            method.Network.train();
            for (; state.Epoch < options.Epochs; state.Epoch++)
            {
                // Before each epoch (a resumed run included): stop once validation accuracy stopped improving.
                if (options.EarlyStopping?.ShouldStop(state.History) == true)
                {
                    stoppedEarly = true;
                    progress.Message($"early stopping after epoch {state.Epoch}: no validation accuracy gain above {options.EarlyStopping.MinDelta:P2} in {options.EarlyStopping.Patience} validation(s)");
                    break;
                }
                int epochNumber = state.Epoch + 1;
                for (; state.Stage < method.StagesPerEpoch; state.Stage++)
                {
                    using var order = ShuffledIndices(n, options.Seed, state.Epoch, state.Stage, device);
                    for (; state.Batch < batchesPerStage; state.Batch++)
                    {
                        if (cancellation.IsCancellationRequested)
                        {
                            CommitCancellation(store, state, lossSum, stopwatch);
                            cancellation.ThrowIfCancellationRequested();
                        }
                        stopwatch.Start();
                        ApplyLearningRate(state, batchesPerStage);
                        using (var scope = NewDisposeScope())
                        {
                            int start = state.Batch * options.BatchSize;
                            int count = Math.Min(options.BatchSize, n - start);
                            var index = order.narrow(0, start, count);
                            SeedStreams.SeedTrainingStep(options.Seed, state.Epoch, state.Stage, state.Batch);
                            var images = trainX.index_select(0, index);
                            if (options.Augmentation is not null) images = options.Augmentation.Apply(images);
                            var losses = method.TrainStep(state.Stage, images, trainY.index_select(0, index));
                            lossSum.PlusInPlace(losses.Values);
                            state.EpochImages += count;
                        }
                        CpuKernels.ReleaseReturned();   // the step's last gradient handed back by our C# kernels
                        stopwatch.Stop();
                        state.EpochLossSteps++;
                        long step = (long)state.Stage * batchesPerStage + state.Batch + 1;
                        ReportProgress(state, lossSum, stopwatch, step, stepsPerEpoch, epochNumber);
                    }
                    state.Batch = 0;
                    FoldLosses(store, state, lossSum);   // also checks for divergence at every stage end
                }
                state.Stage = 0;

                double epochSeconds = state.EpochTrainSeconds + stopwatch.Elapsed.TotalSeconds;
                state.TrainSeconds += stopwatch.Elapsed.TotalSeconds;
                stopwatch.Reset();
                var record = new EpochRecord
                {
                    Epoch = epochNumber,
                    TrainSeconds = state.TrainSeconds,
                    EpochTrainSeconds = epochSeconds,
                    Losses = method.LossNames.Select((name, i) => (name, state.EpochLossSums[i] / Math.Max(1, state.EpochLossSteps)))
                        .ToDictionary(p => p.name, p => p.Item2),
                    ImagesPerSecond = state.EpochImages / Math.Max(1e-9, epochSeconds),
                };
                bool evaluate = validX is not null && (epochNumber % options.EvaluateEvery == 0 || epochNumber == options.Epochs);
                if (evaluate)
                {
                    var clock = Stopwatch.StartNew();
                    var inference = new InferenceOptions
                    {
                        Generator = Evaluator.InferenceGenerator(Evaluator.ValidationNoiseSeed(options.Seed, epochNumber), device),
                        Precision = options.InferencePrecision,
                    };
                    double accuracy = Evaluator.Accuracy(method, validX!, validY!, inference, options.InferenceBatchSize);
                    record = record with { ValidationAccuracy = accuracy, ValidationSeconds = clock.Elapsed.TotalSeconds };
                    if (accuracy > state.BestValidationAccuracy)
                    {
                        state.BestValidationAccuracy = accuracy;
                        state.BestEpoch = epochNumber;
                        Commit(store, s => s.ModelSelected(method, record));
                    }
                }
                else if (validX is null)
                {
                    // No validation split: the latest epoch is the model.
                    state.BestEpoch = epochNumber;
                    Commit(store, s => s.ModelSelected(method, record));
                }
                state.History.Add(record);
                state.EpochTrainSeconds = 0;
                state.EpochImages = 0;
                state.EpochLossSteps = 0;
                Array.Clear(state.EpochLossSums);
                // The store first (metrics.csv's row, then the checkpoint of the next epoch's start), the progress line,
                // then the sinks (the test curve): a sink never sees an epoch a resumed run would train again.
                var next = state with { Epoch = state.Epoch + 1, History = [.. state.History] };
                store.EpochCommitted(method, record, next);
                progress.EpochCompleted(record);
                foreach (var sink in Sinks) sink.EpochCommitted(method, record, next);
                EpochCompleted?.Invoke(record);
            }

            // Leave the network holding the selected (best-validation) weights.
            store.RestoreSelected(method);

            return new TrainingResult(state.History, state.TrainSeconds,
                double.IsNegativeInfinity(state.BestValidationAccuracy) ? null : state.BestValidationAccuracy,
                state.BestEpoch, TorchRuntime.PeakMemoryMb()) { StoppedEarly = stoppedEarly };
        }
        finally
        {
            lossSum.Dispose();
            trainX.Dispose(); trainY.Dispose();
            validX?.Dispose(); validY?.Dispose();
        }
    }

    private void RuntimeSeed() => TorchRuntime.Seed(options.Seed);

    /// <summary>
    /// A permutation of 0..n−1 that depends only on (seed, epoch, stage), in any process, so a resumed run sees the
    /// same order. (Each step's torch noise is seeded from (seed, epoch, stage, batch) the same way: SeedStreams.)
    /// </summary>
    private static Tensor ShuffledIndices(int n, long seed, int epoch, int stage, Device device)
    {
        var indices = new long[n];
        for (int i = 0; i < n; i++) indices[i] = i;
        SeedStreams.Random(seed, SeedPurpose.BatchOrder, epoch, stage).Shuffle(indices);
        using var scope = NewDisposeScope();
        return tensor(indices, ScalarType.Int64).to(device).MoveToOuterDisposeScope();
    }

    private double[][]? peakLearningRates;

    /// <summary>Sets every optimiser's learning rate from <see cref="TrainingOptions.LearningRateSchedule"/> at the current position.</summary>
    private void ApplyLearningRate(TrainerState state, int batchesPerStage)
    {
        if (options.LearningRateSchedule is not { } schedule) return;
        var optimizers = method.Optimizers;
        // Each parameter group's peak is its initial rate (a checkpoint may hold a scheduled one), the configured rate if unknown.
        peakLearningRates ??= optimizers.Select(o => o.ParamGroups.Select(g => g.InitialLearningRate > 0 ? g.InitialLearningRate : method.Config.LearningRate).ToArray()).ToArray();
        double progress = (state.Epoch + state.Batch / (double)batchesPerStage) / options.Epochs;
        double factor = schedule.Factor(progress, options.Epochs);
        for (int i = 0; i < optimizers.Count; i++)
        {
            int g = 0;
            foreach (var group in optimizers[i].ParamGroups) group.LearningRate = peakLearningRates[i][g++] * factor;
        }
    }

    private static readonly TimeSpan LossReadInterval = TimeSpan.FromMilliseconds(200);
    private readonly Stopwatch lossReadClock = Stopwatch.StartNew();
    private double lastReportedLoss = double.NaN;

    private void ReportProgress(TrainerState state, Tensor lossSum, Stopwatch stopwatch, long step, long stepsPerEpoch, int epochNumber)
    {
        if (progress is SilentProgress) return;
        double seconds = state.EpochTrainSeconds + stopwatch.Elapsed.TotalSeconds;
        // Mean total loss over the steps of this stage so far (the last component is the total). Reading it is a
        // host/device sync, so it is read at most every LossReadInterval (and at a stage's end), not at every step.
        long stageSteps = Math.Max(1, state.Batch + 1);
        bool stageEnd = state.Batch + 1 == (int)(stepsPerEpoch / method.StagesPerEpoch);
        if (stageEnd || lossReadClock.Elapsed >= LossReadInterval || double.IsNaN(lastReportedLoss))
        {
            using (NewDisposeScope()) lastReportedLoss = lossSum[^1].item<double>() / stageSteps;
            lossReadClock.Restart();
        }
        double loss = lastReportedLoss;
        double imagesPerSecond = state.EpochImages / Math.Max(1e-9, seconds);
        double stepsPerSecond = state.EpochLossSteps / Math.Max(1e-9, seconds);
        TimeSpan? eta = stepsPerSecond > 0 ? TimeSpan.FromSeconds((stepsPerEpoch - step) / stepsPerSecond) : null;
        progress.Report(new ProgressInfo(epochNumber, options.Epochs, method.DescribeStage(state.Stage), step, stepsPerEpoch, loss, imagesPerSecond, eta));
    }

    /// <summary>Adds the stage's accumulated losses to the epoch's sums; a NaN or infinite loss stops training.</summary>
    private void FoldLosses(IRunStore store, TrainerState state, Tensor lossSum)
    {
        double[] sums;
        using (NewDisposeScope())   // cpu() and zero_() return new handles
        {
            sums = lossSum.cpu().data<double>().ToArray();
            lossSum.zero_();
        }
        if (sums.Any(v => !double.IsFinite(v)))
        {
            string where = store.CheckpointLocation is not string checkpoint
                ? "no checkpoint was written (no output directory)"
                : store.HasCheckpoint
                    ? $"the last good checkpoint (end of epoch {state.Epoch}) is kept in {checkpoint}"
                    : "no epoch had completed, so there is no checkpoint";
            throw new TrainingDivergedException(
                $"training diverged: the loss became {(sums.Any(double.IsNaN) ? "NaN" : "infinite")} in epoch {state.Epoch + 1}, {method.DescribeStage(state.Stage)}; {where}. Try a lower --lr.");
        }
        for (int i = 0; i < sums.Length; i++) state.EpochLossSums[i] += sums[i];
    }

    /// <summary>The store, then each sink, at one commit point.</summary>
    private void Commit(IRunStore store, Action<IEpochSink> point)
    {
        point(store);
        foreach (var sink in Sinks) point(sink);
    }

    /// <summary>
    /// Cancelled between two steps: the epoch so far folded into the state the store keeps (with an output folder, a
    /// checkpoint a resumed run continues from). A store that keeps no checkpoint and no sink: nothing to do.
    /// </summary>
    private void CommitCancellation(IRunStore store, TrainerState state, Tensor lossSum, Stopwatch stopwatch)
    {
        if (store.CheckpointLocation is null && Sinks.Count == 0) return;
        FoldLosses(store, state, lossSum);
        state.EpochTrainSeconds += stopwatch.Elapsed.TotalSeconds;
        state.TrainSeconds += stopwatch.Elapsed.TotalSeconds;
        stopwatch.Reset();
        var snapshot = state with { History = [.. state.History] };
        Commit(store, s => s.Cancelled(method, snapshot));
        if (store.CheckpointLocation is string checkpoint)
            progress.Message($"interrupted: checkpoint saved in {checkpoint} (epoch {state.Epoch + 1}, {method.DescribeStage(state.Stage)}, batch {state.Batch})");
    }

}
