using NoProp.Data;
using NoProp.Methods;
using NoProp.Methods.DiscreteTime;
using NoProp.Runtime;
using NoProp.Training;
using NoProp.Training.Runs;

namespace NoProp.Tests.Training;

/// <summary>
/// The trainer's commit points (<see cref="IEpochSink"/>): the run store (a run folder or the in-memory best weights)
/// first, then the test curve, then the sinks a host adds, each seeing what metrics.csv and the checkpoint hold.
/// </summary>
[TestClass]
public sealed class RunStoreTests
{
    [TestInitialize]
    public void Init() => TorchRuntime.Initialize();

    private sealed record Event(string Kind, int Epoch, string? CsvRow = null, TrainerState? State = null, double? Validation = null);

    /// <summary>Records the commit points, and at each epoch's commit what the run folder already holds.</summary>
    private sealed class Recorder(string? folder = null) : IEpochSink
    {
        public List<Event> Events { get; } = [];
        public List<(int MetricsRows, bool Checkpoint, int CheckpointEpoch, int TestCurveRows)> FolderAtCommit { get; } = [];

        public void ModelSelected(INoPropMethod method, EpochRecord record) =>
            Events.Add(new Event("selected", record.Epoch, Validation: record.ValidationAccuracy));

        public void EpochCommitted(INoPropMethod method, EpochRecord record, TrainerState next)
        {
            Events.Add(new Event("committed", record.Epoch, record.ToCsv(method.LossNames), next));
            if (folder is null) return;
            var state = File.ReadAllText(Path.Combine(Checkpoint.PathIn(folder), "state.json"));
            int checkpointEpoch = System.Text.Json.JsonDocument.Parse(state).RootElement.GetProperty("epoch").GetInt32();
            FolderAtCommit.Add((File.ReadAllLines(Path.Combine(folder, RunFolderStore.MetricsCsv)).Length - 1, Checkpoint.Exists(folder), checkpointEpoch,
                File.ReadAllLines(Path.Combine(folder, TestCurve.FileName)).Length - 1));
        }

        public void Cancelled(INoPropMethod method, TrainerState state) => Events.Add(new Event("cancelled", state.Epoch + 1, State: state));
    }

    [TestMethod]
    public void ASinkGivenToATrainingRunSeesEveryEpochInOrderWithTheRowsOfMetricsCsv()
    {
        var dir = TestSupport.TempDirectory();
        var recorder = new Recorder(dir);
        var request = new TrainRequest
        {
            Method = "dt",
            Model = new ModelRequest { Blocks = 2 },
            Splits = new SplitRequest { TrainSize = 64, ValidationSize = 32, TestSize = 32 },
            Training = new TrainingSettings { Epochs = 3, BatchSize = 16, Seed = 4, TrackTest = true },
            Output = dir,
        };
        var outcome = new TrainingRun(request) { LoadData = _ => TestSupport.Mnist, Sinks = [recorder] }.Run();

        var commits = recorder.Events.Where(e => e.Kind == "committed").ToList();
        CollectionAssert.AreEqual(new[] { 1, 2, 3 }, commits.Select(c => c.Epoch).ToArray(), "one commit per epoch, in order");
        var csv = File.ReadAllLines(Path.Combine(dir, RunFolderStore.MetricsCsv));
        Assert.AreEqual(4, csv.Length, "header and three rows");
        for (int e = 0; e < 3; e++)
        {
            Assert.AreEqual(csv[e + 1], commits[e].CsvRow, $"epoch {e + 1}: the sink's record is metrics.csv's row");
            Assert.AreEqual(outcome.Training.History[e].Epoch, commits[e].Epoch);
            Assert.AreEqual(e + 1, commits[e].State!.Epoch, "the next state starts the following epoch");
            Assert.AreEqual(0, commits[e].State!.Stage);
            Assert.AreEqual(0, commits[e].State!.Batch);
            Assert.AreEqual(e + 1, commits[e].State!.History.Count);
            // The run folder and the test curve committed the epoch before the host's sink saw it.
            Assert.AreEqual((e + 1, true, e + 1, e + 1), recorder.FolderAtCommit[e], $"epoch {e + 1}");
        }

        // Each improvement of validation accuracy selects the model, before that epoch's commit.
        double best = double.NegativeInfinity;
        var expected = new List<Event>();
        foreach (var record in outcome.Training.History)
        {
            if (record.ValidationAccuracy > best)
            {
                best = record.ValidationAccuracy.Value;
                expected.Add(new Event("selected", record.Epoch, Validation: record.ValidationAccuracy));
            }
            expected.Add(commits[record.Epoch - 1]);
        }
        CollectionAssert.AreEqual(expected, recorder.Events);
        Assert.AreEqual(best, outcome.Metrics.ValidationAccuracy);
    }

    /// <summary>A run stopped after an epoch's metrics.csv row but before its checkpoint trains the epoch again, listed once.</summary>
    [TestMethod]
    public void AResumedRunListsAnEpochOnceThoughItsRowOutlivedItsCheckpoint()
    {
        var splits = DataSplits.Create(TestSupport.Mnist, 32, 16, 16, seed: 3);
        var dir = TestSupport.TempDirectory();
        var options = new TrainingOptions { Epochs = 1, BatchSize = 16, Seed = 4, OutputDirectory = dir };
        TorchRuntime.Seed(5);
        using (var first = new NoPropDt(TestSupport.Config(blocks: 1)))
            new Trainer(first, splits, options).Run();
        var csv = Path.Combine(dir, RunFolderStore.MetricsCsv);
        var afterOne = File.ReadAllLines(csv);
        Assert.AreEqual(2, afterOne.Length);
        File.AppendAllText(csv, afterOne[1].Replace("1,", "2,") + Environment.NewLine);   // epoch 2's row, then the crash

        using var resumed = new NoPropDt(TestSupport.Config(blocks: 1));
        var result = new Trainer(resumed, splits, options with { Epochs = 2 }).Run(resume: true);
        var lines = File.ReadAllLines(csv);
        Assert.AreEqual(3, lines.Length, "header and one row per epoch");
        Assert.AreEqual(afterOne[1], lines[1]);
        Assert.AreEqual(result.History[1].ToCsv(resumed.LossNames), lines[2], "epoch 2 as trained after the resume");
    }

    /// <summary>
    /// test-curve.csv's row is written after the epoch's checkpoint: a run stopped between the two (here: epoch 2's row
    /// lost and a cut-off line in its place) resumes with the row it would have written, then goes on.
    /// </summary>
    [TestMethod]
    public void AResumedRunWritesTheTestCurveRowItsStopMissed()
    {
        var dir = TestSupport.TempDirectory();
        TrainRequest Request(int epochs) => new()
        {
            Method = "dt",
            Model = new ModelRequest { Blocks = 2 },
            Splits = new SplitRequest { TrainSize = 64, ValidationSize = 32, TestSize = 64 },
            Training = new TrainingSettings { Epochs = epochs, BatchSize = 16, Seed = 4, TrackTest = true },
            Output = dir,
        };
        new TrainingRun(Request(2)) { LoadData = _ => TestSupport.Mnist }.Run();
        var curve = Path.Combine(dir, TestCurve.FileName);
        var complete = File.ReadAllLines(curve);
        Assert.AreEqual(3, complete.Length, "header and two rows");
        File.WriteAllText(curve, string.Join("\n", complete.Take(2)) + "\n2,0.");   // the stop: row 2 cut off

        var recorder = new Recorder();
        new TrainingRun(Request(3)) { LoadData = _ => TestSupport.Mnist, Resume = true, Sinks = [recorder] }.Run();
        var lines = File.ReadAllLines(curve);
        Assert.AreEqual(4, lines.Length, "header and one row per epoch");
        static string WithoutTiming(string row) => string.Join(',', row.Split(',')[..3]);   // epoch, train_seconds, accuracy
        Assert.AreEqual(complete[0], lines[0]);
        Assert.AreEqual(complete[1], lines[1]);
        Assert.AreEqual(WithoutTiming(complete[2]), WithoutTiming(lines[2]), "epoch 2's row as the run would have written it");
        StringAssert.StartsWith(lines[3], "3,");
        CollectionAssert.AreEqual(new[] { 3 }, recorder.Events.Where(e => e.Kind == "committed").Select(e => e.Epoch).ToArray(),
            "the recovered row is not a new commit for the other sinks");

        // The recovery draws nothing from the training's random streams: epoch 3 is the epoch of a run never stopped.
        var whole = TestSupport.TempDirectory();
        new TrainingRun(Request(3) with { Output = whole }) { LoadData = _ => TestSupport.Mnist }.Run();
        var uninterrupted = File.ReadAllLines(Path.Combine(whole, TestCurve.FileName));
        for (int e = 1; e <= 3; e++)
            Assert.AreEqual(uninterrupted[e].Split(',')[2], lines[e].Split(',')[2], $"epoch {e}'s test accuracy");
    }

    [TestMethod]
    public void TheTestCurveNeedsARunFolder()
    {
        var e = Assert.ThrowsExactly<NoPropException>(() =>
            new TrainingRun(new TrainRequest { Training = new TrainingSettings { TrackTest = true } }) { LoadData = _ => TestSupport.Mnist }.Run());
        StringAssert.Contains(e.Message, "--track-test");
    }

    [TestMethod]
    public void WithoutAFolderTheSinksStillSeeEveryCommitAndTheCancellation()
    {
        var splits = DataSplits.Create(TestSupport.Mnist, 96, 32, 32, seed: 3);
        TorchRuntime.Seed(5);
        using var method = new NoPropDt(TestSupport.Config(blocks: 2));
        var recorder = new Recorder();
        using var cts = new CancellationTokenSource();
        var trainer = new Trainer(method, splits, new TrainingOptions { Epochs = 3, BatchSize = 16, Seed = 4 }, new CancelAtStep(cts, epoch: 2, step: 9));
        trainer.Sinks.Add(recorder);
        Assert.ThrowsExactly<OperationCanceledException>(() => trainer.Run(cancellation: cts.Token));

        // Epoch 1 committed; epoch 2 cancelled after step 9 of 12 (block 2 of 2, batch 3 of 6 next).
        var kinds = recorder.Events.Select(e => (e.Kind, e.Epoch)).ToList();
        Assert.AreEqual(("committed", 1), kinds[^2]);
        Assert.AreEqual(("cancelled", 2), kinds[^1]);
        Assert.AreEqual(1, kinds.Count(k => k.Kind == "committed"));
        var state = recorder.Events[^1].State!;
        Assert.AreEqual((1, 1, 3), (state.Epoch, state.Stage, state.Batch));
        Assert.AreEqual(9, state.EpochLossSteps);
        Assert.AreEqual(9 * 16, state.EpochImages);
        Assert.IsTrue(state.EpochLossSums.All(double.IsFinite) && state.EpochLossSums[^1] > 0, "the epoch's losses so far are folded in");
        Assert.AreEqual(1, state.History.Count);
    }

    [TestMethod]
    public void AGivenStoreReplacesTheRunFolderAndStaysTheCallers()
    {
        var splits = DataSplits.Create(TestSupport.Mnist, 32, 16, 16, seed: 3);
        TorchRuntime.Seed(5);
        using var method = new NoPropDt(TestSupport.Config(blocks: 1));
        var dir = TestSupport.TempDirectory();
        using var store = new CountingStore();
        var result = new Trainer(method, splits, new TrainingOptions { Epochs = 2, BatchSize = 16, OutputDirectory = dir }) { Store = store }.Run();
        var expected = "open";
        double best = double.NegativeInfinity;
        foreach (var record in result.History)
        {
            if (record.ValidationAccuracy > best) { best = record.ValidationAccuracy.Value; expected += " selected"; }
            expected += " committed";
        }
        Assert.AreEqual(expected + " restore", store.Calls);
        Assert.IsFalse(store.Disposed, "a given store is the caller's");
        Assert.AreEqual(0, Directory.GetFileSystemEntries(dir).Length, "nothing written to the output directory");
    }

    private sealed class CountingStore : IRunStore
    {
        public string Calls { get; private set; } = "";
        public bool Disposed { get; private set; }
        public string? CheckpointLocation => null;
        public bool HasCheckpoint => false;
        public TrainerState Resume(INoPropMethod method) => throw new NotSupportedException();
        public void Open(INoPropMethod method) => Calls += "open";
        public void ModelSelected(INoPropMethod method, EpochRecord record) => Calls += " selected";
        public void EpochCommitted(INoPropMethod method, EpochRecord record, TrainerState next) => Calls += " committed";
        public void RestoreSelected(INoPropMethod method) => Calls += " restore";
        public void Dispose() => Disposed = true;
    }

    private sealed class CancelAtStep(CancellationTokenSource cts, int epoch, long step) : ITrainingProgress
    {
        public void Report(ProgressInfo info) { if (info.Epoch == epoch && info.Step == step) cts.Cancel(); }
        public void EpochCompleted(EpochRecord record) { }
        public void Message(string line) { }
    }
}
