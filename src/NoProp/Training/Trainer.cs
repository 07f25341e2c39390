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
/// set), checkpoints after every epoch and on cancellation, resume, CSV metrics and progress reports.
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
    /// Trains for <see cref="TrainingOptions.Epochs"/> epochs, continuing from the checkpoint in the output
    /// directory when <paramref name="resume"/> is set. On return the network holds the weights of the epoch
    /// with the best validation accuracy. Cancellation saves a checkpoint, then throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public TrainingResult Run(bool resume = false, CancellationToken cancellation = default)
    {
        var device = method.Device;
        var output = options.OutputDirectory;
        if (output is not null) Directory.CreateDirectory(output);

        TrainerState state;
        if (resume)
        {
            if (output is null) throw new NoPropException("resuming needs an output directory holding a checkpoint");
            state = Checkpoint.Load(method, output);
            progress.Message($"resuming from {Checkpoint.PathIn(output)} at epoch {state.Epoch + 1}, {method.DescribeStage(state.Stage)}, batch {state.Batch}");
        }
        else
        {
            RuntimeSeed();
            state = new TrainerState { EpochLossSums = new double[method.LossNames.Count] };
        }
        state.Options = options;

        var (trainX, trainY) = splits.Train.ToTensors(device);
        var (validX, validY) = splits.Validation.Count > 0 ? splits.Validation.ToTensors(device) : (null, null);
        Dictionary<string, Tensor>? bestWeights = null;
        if (output is not null) WriteCsvHeaderIfNew(output);

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
                            SaveCheckpointOnCancel(state, lossSum, stopwatch, output);
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
                            lossSum.add_(losses.Values);
                            state.EpochImages += count;
                        }
                        stopwatch.Stop();
                        state.EpochLossSteps++;
                        long step = (long)state.Stage * batchesPerStage + state.Batch + 1;
                        ReportProgress(state, lossSum, stopwatch, step, stepsPerEpoch, epochNumber);
                    }
                    state.Batch = 0;
                    FoldLosses(state, lossSum);   // also checks for divergence at every stage end
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
                    var inference = new InferenceOptions { Generator = Evaluator.InferenceGenerator(Evaluator.ValidationNoiseSeed(options.Seed, epochNumber), device) };
                    double accuracy = Evaluator.Accuracy(method, validX!, validY!, inference, options.InferenceBatchSize);
                    record = record with { ValidationAccuracy = accuracy, ValidationSeconds = clock.Elapsed.TotalSeconds };
                    if (accuracy > state.BestValidationAccuracy)
                    {
                        state.BestValidationAccuracy = accuracy;
                        state.BestEpoch = epochNumber;
                        if (output is not null) ModelStore.Save(method, output);
                        else ReplaceSnapshot(ref bestWeights);
                    }
                }
                else if (validX is null)
                {
                    // No validation split: the latest epoch is the model.
                    state.BestEpoch = epochNumber;
                    if (output is not null) ModelStore.Save(method, output);
                }
                state.History.Add(record);
                state.EpochTrainSeconds = 0;
                state.EpochImages = 0;
                state.EpochLossSteps = 0;
                Array.Clear(state.EpochLossSums);
                if (output is not null)
                {
                    File.AppendAllText(Path.Combine(output, "metrics.csv"), record.ToCsv(method.LossNames) + Environment.NewLine);
                    var next = state with { Epoch = state.Epoch + 1, History = [.. state.History] };
                    Checkpoint.Save(method, next, output);
                }
                progress.EpochCompleted(record);
                EpochCompleted?.Invoke(record);
            }

            // Leave the network holding the selected (best-validation) weights.
            if (output is not null && File.Exists(Path.Combine(output, ModelStore.WeightsFile)))
                ModelStore.LoadWeights(method, Path.Combine(output, ModelStore.WeightsFile));
            else if (bestWeights is not null)
                method.Network.load_state_dict(bestWeights);

            return new TrainingResult(state.History, state.TrainSeconds,
                double.IsNegativeInfinity(state.BestValidationAccuracy) ? null : state.BestValidationAccuracy,
                state.BestEpoch, TorchRuntime.PeakMemoryMb()) { StoppedEarly = stoppedEarly };
        }
        finally
        {
            lossSum.Dispose();
            trainX.Dispose(); trainY.Dispose();
            validX?.Dispose(); validY?.Dispose();
            if (bestWeights is not null) foreach (var t in bestWeights.Values) t.Dispose();
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
        return tensor(indices, ScalarType.Int64).to(device);
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
            lastReportedLoss = lossSum[^1].item<double>() / stageSteps;
            lossReadClock.Restart();
        }
        double loss = lastReportedLoss;
        double imagesPerSecond = state.EpochImages / Math.Max(1e-9, seconds);
        double stepsPerSecond = state.EpochLossSteps / Math.Max(1e-9, seconds);
        TimeSpan? eta = stepsPerSecond > 0 ? TimeSpan.FromSeconds((stepsPerEpoch - step) / stepsPerSecond) : null;
        progress.Report(new ProgressInfo(epochNumber, options.Epochs, method.DescribeStage(state.Stage), step, stepsPerEpoch, loss, imagesPerSecond, eta));
    }

    /// <summary>Adds the stage's accumulated losses to the epoch's sums; a NaN or infinite loss stops training.</summary>
    private void FoldLosses(TrainerState state, Tensor lossSum)
    {
        var sums = lossSum.cpu().data<double>().ToArray();
        lossSum.zero_();
        if (sums.Any(v => !double.IsFinite(v)))
        {
            string where = options.OutputDirectory is null
                ? "no checkpoint was written (no output directory)"
                : Checkpoint.Exists(options.OutputDirectory)
                    ? $"the last good checkpoint (end of epoch {state.Epoch}) is kept in {Checkpoint.PathIn(options.OutputDirectory)}"
                    : "no epoch had completed, so there is no checkpoint";
            throw new TrainingDivergedException(
                $"training diverged: the loss became {(sums.Any(double.IsNaN) ? "NaN" : "infinite")} in epoch {state.Epoch + 1}, {method.DescribeStage(state.Stage)}; {where}. Try a lower --lr.");
        }
        for (int i = 0; i < sums.Length; i++) state.EpochLossSums[i] += sums[i];
    }

    private void SaveCheckpointOnCancel(TrainerState state, Tensor lossSum, Stopwatch stopwatch, string? output)
    {
        if (output is null) return;
        FoldLosses(state, lossSum);
        state.EpochTrainSeconds += stopwatch.Elapsed.TotalSeconds;
        state.TrainSeconds += stopwatch.Elapsed.TotalSeconds;
        stopwatch.Reset();
        Checkpoint.Save(method, state with { History = [.. state.History] }, output);
        progress.Message($"interrupted: checkpoint saved in {Checkpoint.PathIn(output)} (epoch {state.Epoch + 1}, {method.DescribeStage(state.Stage)}, batch {state.Batch})");
    }

    private void WriteCsvHeaderIfNew(string output)
    {
        var path = Path.Combine(output, "metrics.csv");
        if (!File.Exists(path)) File.WriteAllText(path, EpochRecord.CsvHeader(method.LossNames) + Environment.NewLine);
    }

    private void ReplaceSnapshot(ref Dictionary<string, Tensor>? snapshot)
    {
        if (snapshot is not null) foreach (var t in snapshot.Values) t.Dispose();
        snapshot = method.Network.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());
    }
}
