using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.Data;
using NoProp.Runtime;

[assembly: Parallelize(Workers = 1, Scope = ExecutionScope.ClassLevel)]

namespace NoProp.ML.Tests;

/// <summary>One MNIST image as a row: a text label and 1 × 28 × 28 intensities in [0, 1].</summary>
public sealed class Digit
{
    public string Label { get; set; } = "";

    [VectorType(1, 28, 28)]
    public float[] Features { get; set; } = [];
}

/// <summary>
/// Shared fixtures: tiny MNIST slices and one model trained on them (1 epoch, T = 2 blocks), fitted once for the
/// whole run so that the suite stays fast. Tests must not dispose or change the shared model.
/// </summary>
internal static class MlTestSupport
{
    public const int TrainRows = 400;
    public const int TestRows = 200;

    private static readonly Lazy<DatasetPair> mnist = new(() =>
    {
        TorchRuntime.Initialize();
        return Datasets.Load("mnist");
    });

    private static readonly Lazy<(MLContext Context, IDataView Train, IDataView Test, TransformerChain<NoPropTransformer> Model)> trained = new(() =>
    {
        var mlContext = new MLContext(seed: 1);
        var train = mlContext.Data.LoadFromEnumerable(Digits(train: true, TrainRows));
        var test = mlContext.Data.LoadFromEnumerable(Digits(train: false, TestRows));
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(new NoPropEstimator(mlContext, TinyOptions()))
            .Fit(train);
        return (mlContext, train, test, model);
    });

    public static DatasetPair Mnist => mnist.Value;

    public static MLContext Context => trained.Value.Context;
    public static IDataView Train => trained.Value.Train;
    public static IDataView Test => trained.Value.Test;

    /// <summary>MapValueToKey("Label") → NoProp, fitted on <see cref="TrainRows"/> images.</summary>
    public static TransformerChain<NoPropTransformer> Model => trained.Value.Model;

    public static NoPropTransformer NoProp => Model.LastTransformer;

    public static NoPropOptions TinyOptions() => new()
    {
        Epochs = 1,
        Blocks = 2,
        BatchSize = 32,
        Seed = 3,
        ValidationFraction = 0.2,
        InferenceBatchSize = 64,
    };

    public static List<Digit> Digits(bool train, int count)
    {
        var set = train ? Mnist.Train : Mnist.Test;
        var pixels = set.Pixels;
        int size = set.ImageSize;
        var rows = new List<Digit>(count);
        for (int i = 0; i < count; i++)
        {
            var image = new float[size];
            for (int p = 0; p < size; p++) image[p] = pixels[i * size + p] / 255f;
            rows.Add(new Digit { Label = set.ClassNames[set.Labels[i]], Features = image });
        }
        return rows;
    }

    public static string TempDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "noprop-ml-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>The SchemaShape an EstimatorChain hands to GetOutputSchema (ML.NET builds it with an internal method).</summary>
    public static SchemaShape ShapeOf(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic,
            [typeof(DataViewSchema)])!.Invoke(null, [schema])!;

    public static List<float[]> Scores(IDataView scored, string column = "Score") =>
        scored.GetColumn<float[]>(column).ToList();
}
