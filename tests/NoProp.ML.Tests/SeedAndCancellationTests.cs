using System.Reflection;
using Microsoft.ML;
using NoProp.Training;

namespace NoProp.ML.Tests;

[TestClass]
public sealed class SeedAndCancellationTests
{
    private static (NoPropTransformer Model, List<float[]> Scores) Train(MLContext ml, NoPropOptions options, int rows = 128)
    {
        var data = ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: true, rows));
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(new NoPropEstimator(ml, options)).Fit(data);
        return (model.LastTransformer, MlTestSupport.Scores(model.Transform(data)));
    }

    private static NoPropOptions Unseeded() => new() { Epochs = 1, Blocks = 1, BatchSize = 32, ValidationFraction = 0 };

    [TestMethod]
    public void WithoutASeedOfItsOwnTheModelFollowsTheMlContextSeed()
    {
        var (a, scoresA) = Train(new MLContext(seed: 7), Unseeded());
        var (b, scoresB) = Train(new MLContext(seed: 7), Unseeded());
        var (c, scoresC) = Train(new MLContext(seed: 8), Unseeded());
        using (a) using (b) using (c)
        {
            Assert.AreEqual(a.Model.Seed, b.Model.Seed, "same MLContext seed, same model seed");
            for (int i = 0; i < scoresA.Count; i++) CollectionAssert.AreEqual(scoresA[i], scoresB[i], $"row {i}: same seed, same model");
            Assert.AreNotEqual(a.Model.Seed, c.Model.Seed, "another MLContext seed, another model seed");
            Assert.IsTrue(scoresA.Zip(scoresC).Any(p => !p.First.SequenceEqual(p.Second)), "another seed, another model");
            Assert.AreEqual(a.Model.Seed, a.ScoringSeed);
        }
    }

    [TestMethod]
    public void AnExplicitSeedWinsOverTheMlContextSeed()
    {
        var options = Unseeded();
        options.Seed = 5;
        var (a, scoresA) = Train(new MLContext(seed: 7), options);
        var (b, scoresB) = Train(new MLContext(seed: 8), options);
        using (a) using (b)
        {
            Assert.AreEqual(5L, a.Model.Seed);
            Assert.AreEqual(5L, b.Model.Seed);
            for (int i = 0; i < scoresA.Count; i++) CollectionAssert.AreEqual(scoresA[i], scoresB[i], $"row {i}");
        }
    }

    /// <summary>Counts minibatch reports and fires a cancellation after the given one.</summary>
    private sealed class CancelAfter(int step, Action cancel) : ITrainingProgress
    {
        public int Reports { get; private set; }
        public void Report(ProgressInfo info)
        {
            Reports++;
            if (Reports == step) cancel();
        }
        public void EpochCompleted(EpochRecord record) { }
        public void Message(string line) { }
    }

    [TestMethod]
    public void ACancellationTokenStopsTrainingWithinOneMinibatch()
    {
        using var source = new CancellationTokenSource();
        var progress = new CancelAfter(3, source.Cancel);
        var options = Unseeded();
        options.Epochs = 5;
        options.Progress = progress;
        options.CancellationToken = source.Token;
        Assert.ThrowsExactly<OperationCanceledException>(() => Train(new MLContext(seed: 1), options));
        Assert.AreEqual(3, progress.Reports, "no minibatch ran after the one during which the token fired");

        // Nothing half-trained is left: the same estimator options with a live token train a whole model.
        options.CancellationToken = CancellationToken.None;
        options.Progress = null;
        var (model, _) = Train(new MLContext(seed: 1), options);
        using (model) Assert.AreEqual(5, model.Model.History.Count);
    }

    [TestMethod]
    public void MlContextCancellationStopsTrainingWithinOneMinibatch()
    {
        // MLContext.CancelExecution is internal (public through Microsoft.ML.Experimental's extension, which AutoML's
        // time budget uses); call it as they do.
        var ml = new MLContext(seed: 1);
        var cancel = typeof(MLContext).GetMethod("CancelExecution", BindingFlags.Instance | BindingFlags.NonPublic)!;
        var progress = new CancelAfter(2, () => cancel.Invoke(ml, null));
        var options = Unseeded();
        options.Epochs = 5;
        options.Progress = progress;
        var e = Assert.ThrowsExactly<OperationCanceledException>(() => Train(ml, options));
        Assert.AreEqual("Operation was canceled.", e.Message, "ML.NET's own CheckAlive exception");
        Assert.AreEqual(2, progress.Reports);
    }
}
