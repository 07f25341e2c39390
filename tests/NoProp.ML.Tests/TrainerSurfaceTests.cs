using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using NoProp.Training;

namespace NoProp.ML.Tests;

/// <summary>Issue 11, points 5 and 6: the typed trainer surface, validation data, early stopping, the metrics callback.</summary>
[TestClass]
public sealed class TrainerSurfaceTests
{
    private const int TrainRows = 160;
    private const int ValidationRows = 50;

    private static NoPropOptions Options() => new() { Epochs = 2, Blocks = 1, BatchSize = 32, Seed = 4 };

    private static (MLContext Ml, IDataView Train, IDataView Validation) Data()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: true, TrainRows));
        var validation = ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, ValidationRows));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        return (ml, keys.Transform(train), keys.Transform(validation));
    }

    private sealed class Messages : ITrainingProgress
    {
        public List<string> Lines { get; } = [];
        public void Report(ProgressInfo info) { }
        public void EpochCompleted(EpochRecord record) { }
        public void Message(string line) => Lines.Add(line);
    }

    [TestMethod]
    public void TheEstimatorIsATrainerAndTheModelParametersAreReadable()
    {
        var estimator = new NoPropEstimator(new MLContext(), Options());
        ITrainerEstimator<ISingleFeaturePredictionTransformer<NoPropModelParameters>, NoPropModelParameters> trainer = estimator;
        Assert.IsFalse(trainer.Info.NeedNormalization, "NoProp standardises its features itself");
        Assert.IsFalse(trainer.Info.WantCaching, "NoProp reads its rows once into memory");

        // The shared fixture: MapValueToKey → NoProp, 1 epoch, T = 2, 20 % held out.
        var model = MlTestSupport.Model.LastTransformer.Model;
        Assert.AreEqual(2, model.Configuration.Blocks);
        Assert.AreEqual(NoPropMethod.DiscreteTime, model.Method);
        Assert.AreEqual(10, model.ClassNames.Count);
        Assert.AreEqual((1, 28, 28), (model.ImageShape.Channels, model.ImageShape.Height, model.ImageShape.Width));
        Assert.AreEqual(3L, model.Seed);
        Assert.AreEqual(1, model.History.Count);
        Assert.AreEqual(1, model.BestEpoch);
        Assert.AreEqual(model.History[0].ValidationAccuracy, model.BestValidationAccuracy);
        Assert.IsTrue(model.History[0].Loss > 0 && double.IsFinite(model.History[0].Loss));
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 1, 28, 28), MlTestSupport.Model.LastTransformer.FeatureColumnType);
        Assert.AreEqual("Features", MlTestSupport.Model.LastTransformer.FeatureColumnName);
    }

    [TestMethod]
    public void ValidationDataPicksTheBestEpochAndTheHistorySurvivesSaveAndLoad()
    {
        var (ml, train, validation) = Data();
        var messages = new Messages();
        var seen = new List<NoPropEpochMetrics>();
        var options = Options();
        options.Epochs = 3;
        options.Progress = messages;
        options.MetricsCallback = seen.Add;
        using var model = new NoPropEstimator(ml, options).Fit(train, validation);

        StringAssert.Contains(messages.Lines[0], $"on {TrainRows} rows ({ValidationRows} validation rows given)", "every training row trains");
        var history = model.Model.History;
        Assert.AreEqual(3, history.Count);
        CollectionAssert.AreEqual(new[] { 1, 2, 3 }, seen.Select(m => m.Epoch).ToArray(), "the callback ran after every epoch");
        CollectionAssert.AreEqual(history.Select(h => h.ValidationAccuracy).ToArray(), seen.Select(m => m.ValidationAccuracy).ToArray());
        foreach (var h in history)
        {
            double correct = h.ValidationAccuracy!.Value * ValidationRows;
            Assert.AreEqual(Math.Round(correct), correct, 1e-6, "an accuracy over the 50 given validation rows");
        }
        double best = history.Max(h => h.ValidationAccuracy!.Value);
        Assert.AreEqual(best, model.Model.BestValidationAccuracy);
        Assert.AreEqual(history.First(h => h.ValidationAccuracy == best).Epoch, model.Model.BestEpoch);

        var path = Path.Combine(MlTestSupport.TempDirectory(), "history.zip");
        ml.Model.Save(model, train.Schema, path);
        using var loaded = (NoPropTransformer)new MLContext().Model.Load(path, out _);
        Assert.AreEqual(model.Model.BestEpoch, loaded.Model.BestEpoch);
        Assert.AreEqual(model.Model.BestValidationAccuracy, loaded.Model.BestValidationAccuracy);
        Assert.AreEqual(4L, loaded.Model.Seed);
        CollectionAssert.AreEqual(history.Select(h => h.Loss).ToArray(), loaded.Model.History.Select(h => h.Loss).ToArray());
        CollectionAssert.AreEqual(history[0].Losses.Keys.ToArray(), loaded.Model.History[0].Losses.Keys.ToArray());
    }

    [TestMethod]
    public void ValidationDataTakesPrecedenceOverTheOptionWhichTakesPrecedenceOverTheFraction()
    {
        var (ml, train, validation) = Data();
        var smaller = ml.Data.TakeRows(validation, 20);
        var messages = new Messages();
        var options = Options();
        options.Epochs = 1;
        options.Progress = messages;
        options.ValidationSet = validation;
        options.ValidationFraction = 0.5;
        using (new NoPropEstimator(ml, options).Fit(train)) { }
        StringAssert.Contains(messages.Lines[0], $"on {TrainRows} rows ({ValidationRows} validation rows given)");
        messages.Lines.Clear();
        using (new NoPropEstimator(ml, options).Fit(train, smaller)) { }
        StringAssert.Contains(messages.Lines[0], $"on {TrainRows} rows (20 validation rows given)");
        messages.Lines.Clear();
        options.ValidationSet = null;
        using (new NoPropEstimator(ml, options).Fit(train)) { }
        StringAssert.Contains(messages.Lines[0], $"on {TrainRows / 2} rows ({TrainRows / 2} held out for validation)");
    }

    [TestMethod]
    public void ValidationDataWithOtherLabelKeysIsRejected()
    {
        var (ml, train, _) = Data();
        // Keys fitted on other data (first-appearance order of the test digits) mean other classes.
        var raw = ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, ValidationRows));
        var otherKeys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new NoPropEstimator(ml, Options()).Fit(train, otherKeys));
        StringAssert.Contains(e.Message, "validation data: label column 'Label' must have the training label's keys (10 keys: 5, 0, 4, 1, 9");
    }

    [TestMethod]
    public void EarlyStoppingEndsTrainingAndIsRecorded()
    {
        var (ml, train, validation) = Data();
        var options = Options();
        options.Epochs = 6;
        options.EarlyStoppingPatience = 1;
        options.EarlyStoppingMinDelta = 0.99;   // no epoch after the first can gain that much
        using var model = new NoPropEstimator(ml, options).Fit(train, validation);
        Assert.AreEqual(2, model.Model.History.Count);
        Assert.IsTrue(model.Model.StoppedEarly);

        options.ValidationFraction = 0;
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new NoPropEstimator(ml, options).Fit(train));
        StringAssert.Contains(e.Message, "NoPropOptions.EarlyStoppingPatience needs validation rows");
    }
}
