using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML.Tests;

/// <summary>Every input problem fails with a message that names the column and what it must be.</summary>
[TestClass]
public sealed class ErrorTests
{
    public sealed class TextLabelRow
    {
        public string Label { get; set; } = "";
        [VectorType(1, 28, 28)] public float[] Features { get; set; } = [];
    }

    public sealed class VariableRow
    {
        public string Label { get; set; } = "";
        public float[] Features { get; set; } = [];   // no VectorType: variable size
    }

    public sealed class DoubleRow
    {
        public string Label { get; set; } = "";
        [VectorType(784)] public double[] Features { get; set; } = [];
    }

    public sealed class SmallRow
    {
        public string Label { get; set; } = "";
        [VectorType(1, 10, 10)] public float[] Features { get; set; } = [];
    }

    private static MLContext Ml => MlTestSupport.Context;

    private static IDataView TwoClasses<T>(Func<int, T> row) where T : class => Ml.Data.LoadFromEnumerable(Enumerable.Range(0, 8).Select(row).ToList());

    private static TException Fails<TException>(Action action, params string[] fragments) where TException : Exception
    {
        var e = Assert.ThrowsExactly<TException>(action);
        foreach (var f in fragments) StringAssert.Contains(e.Message, f);
        return e;
    }

    private static IEstimator<ITransformer> Pipeline(NoPropOptions? options = null) =>
        Ml.Transforms.Conversion.MapValueToKey("Label").Append(new NoPropEstimator(Ml, options ?? MlTestSupport.TinyOptions()));

    [TestMethod]
    public void AMissingFeatureColumnIsNamed()
    {
        var options = MlTestSupport.TinyOptions();
        options.FeatureColumnName = "Pixels";
        Fails<ArgumentOutOfRangeException>(() => Pipeline(options).Fit(MlTestSupport.Train), "feature column 'Pixels' not found");
        var keyed = Ml.Transforms.Conversion.MapValueToKey("Label").Fit(MlTestSupport.Train).Transform(MlTestSupport.Train);
        Fails<ArgumentOutOfRangeException>(() => new NoPropEstimator(Ml, options).Fit(keyed), "feature column 'Pixels' not found", "columns: Label, Features");
    }

    [TestMethod]
    public void AMissingLabelColumnIsNamed()
    {
        var options = MlTestSupport.TinyOptions();
        options.LabelColumnName = "Digit";
        Fails<ArgumentOutOfRangeException>(() => new NoPropEstimator(Ml, options).Fit(MlTestSupport.Train), "label column 'Digit' not found");
    }

    [TestMethod]
    public void ALabelThatIsNotAKeyIsRefusedWithTheFix()
    {
        var data = TwoClasses(i => new TextLabelRow { Label = (i % 2).ToString(), Features = new float[784] });
        Fails<ArgumentOutOfRangeException>(() => new NoPropEstimator(Ml, MlTestSupport.TinyOptions()).Fit(data),
            "label column 'Label' must be a key type", "MapValueToKey", "got String");
        Fails<ArgumentOutOfRangeException>(() => new NoPropEstimator(Ml, MlTestSupport.TinyOptions()).GetOutputSchema(MlTestSupport.ShapeOf(data.Schema)),
            "label column 'Label' must be a key type");
    }

    [TestMethod]
    public void AVariableSizeFeatureVectorIsRefused()
    {
        var data = TwoClasses(i => new VariableRow { Label = (i % 2).ToString(), Features = new float[784] });
        Fails<ArgumentOutOfRangeException>(() => Pipeline().Fit(data), "feature column 'Features' must be a known-size vector of Single", "got Vector<Single>");
    }

    [TestMethod]
    public void ANonSingleFeatureVectorIsRefused()
    {
        var data = TwoClasses(i => new DoubleRow { Label = (i % 2).ToString(), Features = new double[784] });
        Fails<ArgumentOutOfRangeException>(() => Pipeline().Fit(data), "feature column 'Features' must be a known-size vector of Single", "got Vector<Double>");
    }

    [TestMethod]
    public void FeaturesOfAnotherSizeThanTheModelsImagesAreRefused()
    {
        var data = TwoClasses(i => new SmallRow { Label = (i % 2).ToString(), Features = new float[100] });
        Fails<ArgumentOutOfRangeException>(() => MlTestSupport.NoProp.Transform(data),
            "feature column 'Features' has 100 values", "the model expects C×H×W = 1×28×28 = 784");
        Fails<ArgumentOutOfRangeException>(() => MlTestSupport.NoProp.GetRowToRowMapper(data.Schema), "the model expects C×H×W = 1×28×28 = 784");
    }

    [TestMethod]
    public void AnImageShapeThatDoesNotMatchTheFeatureSizeIsRefused()
    {
        var options = MlTestSupport.TinyOptions();
        (options.Channels, options.Height, options.Width) = (3, 28, 28);
        Fails<ArgumentOutOfRangeException>(() => Pipeline(options).Fit(MlTestSupport.Train),
            "feature column 'Features' has 784 values", "Channels×Height×Width = 3×28×28 = 2352");
    }

    [TestMethod]
    public void AnEmptyTrainingSetIsRefused()
    {
        // Keys from the real training set (10 classes), rows from nowhere.
        var keys = Ml.Transforms.Conversion.MapValueToKey("Label").Fit(MlTestSupport.Train);
        var empty = keys.Transform(Ml.Data.LoadFromEnumerable(new List<Digit>()));
        Fails<InvalidOperationException>(() => new NoPropEstimator(Ml, MlTestSupport.TinyOptions()).Fit(empty), "the training set is empty (no rows)");

        // Rows whose labels the key mapping does not know (key 0) are no training data either.
        var unknown = Ml.Data.LoadFromEnumerable(new[] { new Digit { Label = "eleven", Features = new float[784] } });
        Fails<InvalidOperationException>(() => new NoPropEstimator(Ml, MlTestSupport.TinyOptions()).Fit(keys.Transform(unknown)),
            "all 1 rows have a missing label (key 0) in column 'Label'");
    }

    [TestMethod]
    [DataRow("Epochs", "NoPropOptions.Epochs must be at least 1, got 0")]
    [DataRow("BatchSize", "NoPropOptions.BatchSize must be at least 2")]
    [DataRow("ValidationFraction", "NoPropOptions.ValidationFraction must lie in [0, 1), got 1")]
    [DataRow("EmbeddingDimension", "NoPropOptions.EmbeddingDimension applies to NoPropLabelEmbedding.Learned only")]
    [DataRow("Eta", "NoPropOptions.Eta does not apply to NoPropMethod.FlowMatching")]
    [DataRow("NormalizationMean", "NoPropOptions.NormalizationMean and NormalizationStd apply to FeatureNormalization.Explicit only")]
    [DataRow("DeterministicInference", "NoPropOptions.DeterministicInference applies to NoPropMethod.DiscreteTime only")]
    public void OptionsOutOfRangeAreNamed(string option, string message)
    {
        var options = MlTestSupport.TinyOptions();
        switch (option)
        {
            case "Epochs": options.Epochs = 0; break;
            case "BatchSize": options.BatchSize = 1; break;
            case "ValidationFraction": options.ValidationFraction = 1; break;
            case "EmbeddingDimension": options.EmbeddingDimension = 8; break;
            case "Eta": options.Method = NoPropMethod.FlowMatching; options.Eta = 0.5; break;
            case "NormalizationMean": options.NormalizationMean = [0.5f]; break;
            case "DeterministicInference": options.Method = NoPropMethod.ContinuousTime; options.DeterministicInference = true; break;
        }
        Fails<ArgumentOutOfRangeException>(() => new NoPropEstimator(Ml, options), message);
    }

    [TestMethod]
    public void AMissingModelFolderIsNamed()
    {
        Fails<DirectoryNotFoundException>(() => NoPropTransformer.LoadFromModelDirectory(Ml, "/nonexistent/noprop-model"),
            "NoProp model folder '/nonexistent/noprop-model' not found");
        var notAModel = MlTestSupport.TempDirectory();
        Fails<InvalidOperationException>(() => NoPropTransformer.LoadFromModelDirectory(Ml, notAModel), "model.json: file not found");
    }
}
