using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.Data;
using NoProp.Training;
using static TorchSharp.torch;

namespace NoProp.ML.Tests;

[TestClass]
public sealed class EvaluationTests
{
    [TestMethod]
    public void EvaluateAgreesWithTheCoreEvaluatorOnTheSameModelAndData()
    {
        var ml = MlTestSupport.Context;
        var metrics = ml.MulticlassClassification.Evaluate(MlTestSupport.Model.Transform(MlTestSupport.Test));

        // The same images through the library's Evaluator, with the transformer's normalisation and per-row noise.
        var transformer = MlTestSupport.NoProp;
        var digits = MlTestSupport.Digits(train: false, MlTestSupport.TestRows);
        var features = digits.SelectMany(d => d.Features).ToArray();
        var labels = digits.Select(d => (long)transformer.ClassNames.ToList().IndexOf(d.Label)).ToArray();
        Assert.IsTrue(labels.All(l => l >= 0), "every test label is a class of the model");
        // Batch by batch as the transformer goes (so the arithmetic is the same), then the library's accuracy.
        var config = transformer.Configuration;
        var normalization = new Normalization(config.NormalizationMean, config.NormalizationStd);
        int batch = transformer.InferenceBatchSize, size = config.Image.Size;
        var parts = new List<Tensor>();
        for (int start = 0; start < digits.Count; start += batch)
        {
            int rows = Math.Min(batch, digits.Count - start);
            var slice = features.AsSpan(start * size, rows * size).ToArray();
            using var x = normalization.ApplyInPlace(tensor(slice, [rows, 1, 28, 28]));
            var options = transformer.Scorer.InferenceOptionsFor(slice, rows, out var noise);
            using (noise) parts.Add(Evaluator.PredictProbabilities(transformer.Method, x, options, batchSize: rows));
        }
        using var probabilities = cat(parts, 0);
        parts.ForEach(p => p.Dispose());
        using var labelTensor = tensor(labels);
        double expected = Evaluator.Accuracy(probabilities, labelTensor);
        Assert.AreEqual(expected, metrics.MicroAccuracy, 1e-12);
        // Row by row, too: PredictedLabel (key k + 1) names the class the library's argmax picks.
        using var argmax = probabilities.argmax(1);
        var predicted = MlTestSupport.Model.Transform(MlTestSupport.Test).GetColumn<uint>("PredictedLabel").ToArray();
        for (int i = 0; i < predicted.Length; i++) Assert.AreEqual(argmax[i].item<long>() + 1, (long)predicted[i], $"row {i}");
        Assert.AreEqual(10, metrics.ConfusionMatrix.NumberOfClasses);
        Assert.IsTrue(double.IsFinite(metrics.LogLoss) && metrics.LogLoss > 0, "Score holds probabilities, so the log-loss is finite");
    }

    [TestMethod]
    public void ScoresAreProbabilitiesAndPredictedLabelIsTheirArgmax()
    {
        var scored = MlTestSupport.Model.Transform(MlTestSupport.Test);
        var scores = MlTestSupport.Scores(scored);
        var predicted = scored.GetColumn<uint>("PredictedLabel").ToList();
        Assert.AreEqual(MlTestSupport.TestRows, scores.Count);
        for (int i = 0; i < scores.Count; i++)
        {
            Assert.AreEqual(1.0, scores[i].Sum(), 1e-4);
            Assert.IsTrue(scores[i].All(p => p >= 0));
            Assert.AreEqual((uint)(Array.IndexOf(scores[i], scores[i].Max()) + 1), predicted[i]);
        }
    }

    [TestMethod]
    public void ARowGetsTheSameScoreInAnyBatchOrderAndPass()
    {
        var ml = MlTestSupport.Context;
        var digits = MlTestSupport.Digits(train: false, 70);
        var first = MlTestSupport.Scores(MlTestSupport.Model.Transform(ml.Data.LoadFromEnumerable(digits)));
        var again = MlTestSupport.Scores(MlTestSupport.Model.Transform(ml.Data.LoadFromEnumerable(digits)));
        for (int i = 0; i < first.Count; i++) CollectionAssert.AreEqual(first[i], again[i], "a second pass gives identical scores");

        // Reversed, the rows fall into other batches at other positions; each row keeps its own noise.
        var reversed = MlTestSupport.Scores(MlTestSupport.Model.Transform(ml.Data.LoadFromEnumerable(Enumerable.Reverse(digits).ToList())));
        for (int i = 0; i < first.Count; i++)
            for (int k = 0; k < 10; k++)
                Assert.AreEqual(first[i][k], reversed[first.Count - 1 - i][k], 1e-5, $"row {i}, class {k}");
    }

    [TestMethod]
    public void PredictionEngineScoresSingleRowsLikeTransform()
    {
        var ml = MlTestSupport.Context;
        var model = MlTestSupport.Model.Append(ml.Transforms.Conversion.MapKeyToValue("PredictedDigit", "PredictedLabel").Fit(MlTestSupport.Model.Transform(MlTestSupport.Train)));
        var engine = ml.Model.CreatePredictionEngine<Digit, DigitPrediction>(model);
        var digits = MlTestSupport.Digits(train: false, 12);
        var batch = MlTestSupport.Scores(MlTestSupport.Model.Transform(ml.Data.LoadFromEnumerable(digits)));
        var classNames = MlTestSupport.NoProp.ClassNames;
        for (int i = 0; i < digits.Count; i++)
        {
            var prediction = engine.Predict(digits[i]);
            for (int k = 0; k < 10; k++) Assert.AreEqual(batch[i][k], prediction.Score[k], 1e-5, $"row {i}, class {k}");
            Assert.AreEqual(classNames[Array.IndexOf(batch[i], batch[i].Max())], prediction.PredictedDigit);
        }
    }

    [TestMethod]
    public void AModelFolderWrittenLikeTheCliScoresLikeTheModelItCameFrom()
    {
        var dir = MlTestSupport.TempDirectory();
        ModelStore.Save(MlTestSupport.NoProp.Method, dir);   // model.json + model.bin, as `noprop train --output` writes them
        var ml = new MLContext();
        using var wrapped = NoPropTransformer.LoadFromModelDirectory(ml, dir, scoringSeed: MlTestSupport.NoProp.ScoringSeed);
        CollectionAssert.AreEqual(MlTestSupport.NoProp.ClassNames.ToArray(), wrapped.ClassNames.ToArray());

        // The label keys must follow the model's class order; MapLabelToKey builds that mapping from the class names.
        var test = ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, MlTestSupport.TestRows));
        var keyed = wrapped.MapLabelToKey(ml).Fit(test).Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(wrapped.Transform(keyed));
        var original = MlTestSupport.Context.MulticlassClassification.Evaluate(MlTestSupport.Model.Transform(MlTestSupport.Test));
        Assert.AreEqual(original.MicroAccuracy, metrics.MicroAccuracy, 1e-12);
        Assert.AreEqual(original.LogLoss, metrics.LogLoss, 1e-5);
    }

    [TestMethod]
    public void ProgressReachesTheMlContextLogAndTheCallback()
    {
        var ml = new MLContext(seed: 1);
        var logged = new List<string>();
        ml.Log += (_, e) => { if (e.Source.StartsWith("NoProp", StringComparison.Ordinal)) lock (logged) logged.Add(e.RawMessage); };
        var progress = new RecordingProgress();
        var options = MlTestSupport.TinyOptions();
        options.Method = NoPropMethod.FlowMatching;   // also shows that the continuous methods train through the adapter
        options.InferenceSteps = 2;
        options.Progress = progress;
        var train = ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: true, 128));
        using var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.NoProp(options)).Fit(train);
        Assert.AreEqual(Methods.MethodKind.FlowMatching, model.LastTransformer.Configuration.Method);
        Assert.AreEqual(2, model.LastTransformer.Configuration.InferenceSteps);
        Assert.IsTrue(logged.Any(l => l.StartsWith("training NoProp-FM on 103 rows", StringComparison.Ordinal)), string.Join("\n", logged));
        Assert.IsTrue(logged.Any(l => l.StartsWith("epoch 1:", StringComparison.Ordinal)), string.Join("\n", logged));
        Assert.AreEqual(1, progress.Epochs);
        Assert.IsTrue(progress.Reports > 0);
    }

    public sealed class DigitPrediction
    {
        public float[] Score { get; set; } = [];
        public string PredictedDigit { get; set; } = "";
    }

    private sealed class RecordingProgress : ITrainingProgress
    {
        public int Reports, Epochs;
        public void Report(ProgressInfo info) => Reports++;
        public void EpochCompleted(EpochRecord record) => Epochs++;
        public void Message(string line) { }
    }
}
