using NoProp.Data;
using NoProp.Methods.DiscreteTime;
using NoProp.Runtime;
using NoProp.Training;

namespace NoProp.Tests.Training;

[TestClass]
public sealed class EarlyStoppingTests
{
    private static List<EpochRecord> History(params double?[] accuracies) =>
        accuracies.Select((a, i) => new EpochRecord { Epoch = i + 1, ValidationAccuracy = a }).ToList();

    [TestMethod]
    public void StopsAfterPatienceValidationsWithoutImprovement()
    {
        var stopping = new EarlyStopping(patience: 2);
        Assert.IsFalse(stopping.ShouldStop(History()), "nothing validated yet");
        Assert.IsFalse(stopping.ShouldStop(History(0.5, 0.6, 0.6)), "one validation without a gain");
        Assert.IsTrue(stopping.ShouldStop(History(0.5, 0.6, 0.6, 0.59)), "two in a row");
        Assert.IsFalse(stopping.ShouldStop(History(0.5, 0.6, 0.6, 0.61)), "a gain resets the count");
        Assert.IsTrue(stopping.ShouldStop(History(0.7, 0.6, 0.65)), "measured against the best, not the last");
        Assert.IsFalse(stopping.ShouldStop(History(0.5, null, 0.6, null, 0.55)), "epochs without validation do not count");
        Assert.IsTrue(new EarlyStopping(patience: 1).ShouldStop(History(0.6, 0.6)), "an equal accuracy is no improvement");
    }

    [TestMethod]
    public void MinDeltaIsTheGainThatCounts()
    {
        var stopping = new EarlyStopping(patience: 1, minDelta: 0.05);
        Assert.IsTrue(stopping.ShouldStop(History(0.5, 0.54)), "+0.04 < 0.05");
        Assert.IsFalse(stopping.ShouldStop(History(0.5, 0.56)), "+0.06 > 0.05");
        // A small gain does not move the reference: 0.5 → 0.54 → 0.58 is +0.08 over the best that counted.
        Assert.IsFalse(new EarlyStopping(patience: 2, minDelta: 0.05).ShouldStop(History(0.5, 0.54, 0.58)));
    }

    [TestMethod]
    [DataRow(0, 0.0, "--early-stopping-patience must be at least 1, got 0")]
    [DataRow(1, -0.1, "--early-stopping-min-delta must lie in [0, 1)")]
    [DataRow(1, 1.0, "--early-stopping-min-delta must lie in [0, 1)")]
    public void BadSettingsAreRejected(int patience, double minDelta, string message)
    {
        var e = Assert.ThrowsExactly<NoPropException>(() => new EarlyStopping(patience, minDelta));
        StringAssert.Contains(e.Message, message);
    }

    [TestMethod]
    public void TheTrainerStopsAndKeepsTheBestEpoch()
    {
        TorchRuntime.Initialize();
        var splits = DataSplits.Create(TestSupport.Mnist, 64, 32, 16, seed: 3);
        TorchRuntime.Seed(5);
        using var method = new NoPropDt(TestSupport.Config(blocks: 1));
        // No epoch after the first can gain 0.99 in accuracy: epochs 2 and 3 exhaust a patience of 2.
        var options = new TrainingOptions { Epochs = 8, BatchSize = 16, Seed = 2, EarlyStopping = new EarlyStopping(2, 0.99) };
        var progress = new RecordingProgress();
        var result = new Trainer(method, splits, options, progress).Run();
        Assert.AreEqual(3, result.History.Count);
        Assert.IsTrue(result.StoppedEarly);
        Assert.IsTrue(progress.Messages.Any(m => m.StartsWith("early stopping after epoch 3", StringComparison.Ordinal)), string.Join("\n", progress.Messages));
        double best = result.History.Max(h => h.ValidationAccuracy!.Value);
        Assert.AreEqual(best, result.BestValidationAccuracy);

        var noValidation = DataSplits.Create(TestSupport.Mnist, 64, 0, 16, seed: 3);
        var e = Assert.ThrowsExactly<NoPropException>(() => new Trainer(method, noValidation, options));
        StringAssert.Contains(e.Message, "early stopping needs validation images");
    }

    private sealed class RecordingProgress : ITrainingProgress
    {
        public List<string> Messages { get; } = [];
        public void Report(ProgressInfo info) { }
        public void EpochCompleted(EpochRecord record) { }
        public void Message(string line) => Messages.Add(line);
    }
}
