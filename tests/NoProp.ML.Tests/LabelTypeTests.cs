using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML.Tests;

/// <summary>One MNIST image with a label of type <typeparamref name="T"/> in column "Digit".</summary>
public sealed class TypedDigit<T>
{
    public T Digit { get; set; } = default!;

    [VectorType(1, 28, 28)]
    public float[] Features { get; set; } = [];
}

/// <summary>What PredictionEngine returns for a pipeline that maps the predicted key back to the label's type.</summary>
public sealed class TypedPrediction<T>
{
    public T PredictedDigit { get; set; } = default!;
    public float[] Score { get; set; } = [];
}

/// <summary>
/// Numeric and text labels come back in their own type through MapKeyToValue, in Transform and in a PredictionEngine,
/// before and after save/load (issue 11, defect 1). The labels are not 0..9 and MNIST's first digits (5, 0, 4, 1, 9, …)
/// give MapValueToKey a key order that is neither the numeric nor the text order, so naming the classes "0".."K−1" or
/// sorting them fails these tests.
/// </summary>
[TestClass]
public sealed class LabelTypeTests
{
    private const int Rows = 240;

    private static List<TypedDigit<T>> Rows_<T>(Func<int, T> label) =>
        MlTestSupport.Digits(train: true, Rows).Select(d => new TypedDigit<T> { Digit = label(int.Parse(d.Label)), Features = d.Features }).ToList();

    [TestMethod]
    public void UInt32LabelsComeBackAsTheirValues() => CheckRoundTrip(d => (uint)(100 + 7 * d), NumberDataViewType.UInt32);

    [TestMethod]
    public void Int32LabelsComeBackAsTheirValues() => CheckRoundTrip(d => -3 * d - 1, NumberDataViewType.Int32);

    [TestMethod]
    public void SingleLabelsComeBackAsTheirValues() => CheckRoundTrip(d => d + 0.25f, NumberDataViewType.Single);

    [TestMethod]
    public void TextLabelsComeBackAsTheirValues() => CheckRoundTrip(d => $"digit {d}", TextDataViewType.Instance, text: true);

    private static void CheckRoundTrip<T>(Func<int, T> label, DataViewType type, bool text = false)
    {
        var ml = new MLContext(seed: 1);
        var rows = Rows_(label);
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = MlTestSupport.TinyOptions();
        options.LabelColumnName = "Label";
        options.Blocks = 1;
        var model = ml.Transforms.Conversion.MapValueToKey("Label", "Digit")
            .Append(new NoPropEstimator(ml, options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedDigit", "PredictedLabel"))
            .Fit(data);
        using var noProp = model.OfType<NoPropTransformer>().Single();

        var scored = model.Transform(data);
        Assert.AreEqual(type, scored.Schema["PredictedDigit"].Type, "MapKeyToValue gives the label's own type");
        var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
        var predicted = scored.GetColumn<T>("PredictedDigit").ToArray();
        var keyValues = KeyValues<T>(scored.Schema["Label"]);
        CollectionAssert.AreEqual(keys.Select(k => keyValues[(int)k - 1]).ToArray(), predicted, "key k maps back to the label's k-th key value");
        CollectionAssert.IsSubsetOf(predicted.Distinct().ToArray(), rows.Select(r => r.Digit).Distinct().ToArray());

        // The model carries the values in their own type, SlotNames only for text (as ML.NET's scorers).
        var score = scored.Schema["Score"];
        Assert.AreEqual(new VectorDataViewType((PrimitiveDataViewType)type, 10), score.Annotations.Schema["TrainingLabelValues"].Type);
        Assert.AreEqual(text, score.Annotations.Schema.GetColumnOrNull("SlotNames") is not null);
        CollectionAssert.AreEqual(keyValues.Select(v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
            noProp.ClassNames.ToArray(), "the class names are the key values as text");

        // PredictionEngine, then a fresh MLContext after save/load: same values, same scores.
        var engine = ml.Model.CreatePredictionEngine<TypedDigit<T>, TypedPrediction<T>>(model);
        var first = engine.Predict(rows[0]);
        Assert.AreEqual(predicted[0], first.PredictedDigit);
        var path = Path.Combine(MlTestSupport.TempDirectory(), "typed.zip");
        ml.Model.Save(model, data.Schema, path);
        var fresh = new MLContext();
        var loaded = fresh.Model.Load(path, out _);
        using (loaded as IDisposable)
        {
            var reloaded = loaded.Transform(fresh.Data.LoadFromEnumerable(rows));
            Assert.AreEqual(type, reloaded.Schema["PredictedDigit"].Type);
            CollectionAssert.AreEqual(predicted, reloaded.GetColumn<T>("PredictedDigit").ToArray());
            var before = MlTestSupport.Scores(scored);
            var after = MlTestSupport.Scores(reloaded);
            for (int i = 0; i < before.Count; i++) CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
            var reloadedEngine = fresh.Model.CreatePredictionEngine<TypedDigit<T>, TypedPrediction<T>>(loaded);
            Assert.AreEqual(predicted[0], reloadedEngine.Predict(rows[0]).PredictedDigit);
            Assert.AreEqual(predicted[7], reloadedEngine.Predict(rows[7]).PredictedDigit);
        }
    }

    private static T[] KeyValues<T>(DataViewSchema.Column column)
    {
        if (typeof(T) == typeof(string))
        {
            VBuffer<ReadOnlyMemory<char>> texts = default;
            column.GetKeyValues(ref texts);
            return (T[])(object)texts.DenseValues().Select(t => t.ToString()).ToArray();
        }
        VBuffer<T> values = default;
        column.GetKeyValues(ref values);
        return values.DenseValues().ToArray();
    }

    [TestMethod]
    public void NoPropsColumnsCarryTheAnnotationsOfAnMlNetMulticlassTrainer()
    {
        // Issue 11, point 9: the same annotation kinds and types as SdcaMaximumEntropy's columns, for a numeric label.
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows_(d => (uint)(100 + d)));
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label", "Digit").Fit(data).Transform(data);
        var sdca = ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(maximumNumberOfIterations: 1).Fit(keyed).Transform(keyed).Schema;
        var noPropShape = new NoPropEstimator(ml, MlTestSupport.TinyOptions()).GetOutputSchema(MlTestSupport.ShapeOf(keyed.Schema));
        using var noProp = new NoPropEstimator(ml, new NoPropOptions { Epochs = 1, Blocks = 1, BatchSize = 64, Seed = 1 }).Fit(keyed);
        var schema = noProp.GetOutputSchema(keyed.Schema);
        foreach (var column in new[] { "Score", "PredictedLabel" })
        {
            string Kinds(DataViewSchema s) => string.Join(", ", s[column].Annotations.Schema.Select(a => $"{a.Name}: {a.Type}").Order());
            Assert.AreEqual(Kinds(sdca), Kinds(schema), column);
            var promised = string.Join(", ", noPropShape.Single(c => c.Name == column).Annotations.Select(a => a.Name).Order());
            Assert.AreEqual(string.Join(", ", sdca[column].Annotations.Schema.Select(a => a.Name).Order()), promised, $"{column} in GetOutputSchema");
        }
        uint scoreSet = 0;
        schema["Score"].Annotations.GetValue("ScoreColumnSetId", ref scoreSet);
        Assert.AreEqual(1u, scoreSet, "the first score set of the data");
        // A second scorer after this one gets the next set id, as ML.NET numbers them.
        var twice = noProp.GetOutputSchema(new NoPropEstimator(ml, MlTestSupport.TinyOptions()).Fit(keyed).GetOutputSchema(keyed.Schema));
        twice["Score"].Annotations.GetValue("ScoreColumnSetId", ref scoreSet);
        Assert.AreEqual(2u, scoreSet);
        // Evaluate reads the columns as it reads SDCA's.
        var metrics = ml.MulticlassClassification.Evaluate(noProp.Transform(keyed));
        Assert.AreEqual(10, metrics.ConfusionMatrix.NumberOfClasses);
    }
}
