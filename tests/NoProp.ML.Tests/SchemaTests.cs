using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML.Tests;

[TestClass]
public sealed class SchemaTests
{
    private static string[] Texts(VBuffer<ReadOnlyMemory<char>> values) => values.DenseValues().Select(v => v.ToString()).ToArray();

    [TestMethod]
    public void ScoreAndPredictedLabelHaveTheTypesAndAnnotationsOfABuiltInMulticlassScorer()
    {
        var schema = MlTestSupport.Model.GetOutputSchema(MlTestSupport.Test.Schema);
        var label = schema["Label"];
        VBuffer<ReadOnlyMemory<char>> labelKeys = default;
        label.GetKeyValues(ref labelKeys);

        var score = schema["Score"];
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 10), score.Type);
        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        score.GetSlotNames(ref slotNames);
        CollectionAssert.AreEqual(Texts(labelKeys), Texts(slotNames), "Score slot i is the class of label key i + 1");
        CollectionAssert.AreEqual(MlTestSupport.NoProp.ClassNames.ToArray(), Texts(slotNames));
        Assert.AreEqual("MulticlassClassification", Annotation(score, "ScoreColumnKind"));
        Assert.AreEqual("Score", Annotation(score, "ScoreValueKind"));

        var predicted = schema["PredictedLabel"];
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 10), predicted.Type);
        Assert.AreEqual(((KeyDataViewType)label.Type).Count, ((KeyDataViewType)predicted.Type).Count);
        VBuffer<ReadOnlyMemory<char>> predictedKeys = default;
        predicted.GetKeyValues(ref predictedKeys);
        CollectionAssert.AreEqual(Texts(labelKeys), Texts(predictedKeys));
        Assert.AreEqual("MulticlassClassification", Annotation(predicted, "ScoreColumnKind"));
        Assert.AreEqual("PredictedLabel", Annotation(predicted, "ScoreValueKind"));

        // NoProp's input columns keep their place; the two outputs come after them.
        var noPropInput = MlTestSupport.Model.Take(1).Single().GetOutputSchema(MlTestSupport.Test.Schema);
        for (int i = 0; i < noPropInput.Count; i++) Assert.AreEqual(noPropInput[i].Name, schema[i].Name);
        Assert.AreEqual(noPropInput.Count, score.Index);
        Assert.AreEqual(noPropInput.Count + 1, predicted.Index);
    }

    [TestMethod]
    public void TheEstimatorPromisesTheColumnsTheTransformerProduces()
    {
        var ml = MlTestSupport.Context;
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(MlTestSupport.Train).Transform(MlTestSupport.Train);
        var shape = new NoPropEstimator(ml, MlTestSupport.TinyOptions()).GetOutputSchema(MlTestSupport.ShapeOf(keyed.Schema));

        var score = shape.Single(c => c.Name == "Score");
        Assert.AreEqual(SchemaShape.Column.VectorKind.Vector, score.Kind);
        Assert.AreEqual(NumberDataViewType.Single, score.ItemType);
        Assert.IsTrue(score.Annotations.Any(a => a.Name == "SlotNames"));
        var predicted = shape.Single(c => c.Name == "PredictedLabel");
        Assert.IsTrue(predicted.IsKey);
        Assert.AreEqual(SchemaShape.Column.VectorKind.Scalar, predicted.Kind);
        Assert.IsTrue(predicted.Annotations.Any(a => a.Name == "KeyValues"));
        Assert.IsTrue(shape.Any(c => c.Name == "Features"), "input columns pass through");
    }

    [TestMethod]
    public void OutputColumnNamesFollowTheOptions()
    {
        var transformer = MlTestSupport.NoProp;
        Assert.AreEqual("Score", transformer.ScoreColumnName);
        var ml = MlTestSupport.Context;
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(MlTestSupport.Train).Transform(MlTestSupport.Train);
        var options = MlTestSupport.TinyOptions();
        options.ScoreColumnName = "Probabilities";
        options.PredictedLabelColumnName = "Digit";
        var shape = new NoPropEstimator(ml, options).GetOutputSchema(MlTestSupport.ShapeOf(keyed.Schema));
        Assert.IsTrue(shape.Any(c => c.Name == "Probabilities"));
        Assert.IsTrue(shape.Any(c => c.Name == "Digit"));
        Assert.IsFalse(shape.Any(c => c.Name == "Score"));
    }

    private static string Annotation(DataViewSchema.Column column, string kind)
    {
        ReadOnlyMemory<char> value = default;
        column.Annotations.GetValue(kind, ref value);
        return value.ToString();
    }
}
