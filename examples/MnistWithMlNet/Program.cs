// NoProp in an ML.NET pipeline on the embedded MNIST, fed through LoadFromEnumerable.
// Usage: dotnet run -c Release --project examples/MnistWithMlNet -- [--train N] [--test N] [--epochs E] [--blocks T] [--save model.zip]
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.Data;
using NoProp.ML;

namespace NoProp.Examples;

public static class MnistWithMlNet
{
    /// <summary>One MNIST image as ML.NET sees it: a text label and 1 × 28 × 28 intensities in [0, 1].</summary>
    public sealed class Digit
    {
        public string Label { get; set; } = "";

        [VectorType(1, 28, 28)]
        public float[] Pixels { get; set; } = [];
    }

    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var options = Arguments.Parse(args, new() { ["train"] = "10000", ["test"] = "10000", ["epochs"] = "1", ["blocks"] = "10", ["save"] = "" });
        int trainSize = int.Parse(options["train"], CultureInfo.InvariantCulture);
        int testSize = int.Parse(options["test"], CultureInfo.InvariantCulture);

        var mlContext = new MLContext(seed: 1);
        // NoProp reports its progress through the MLContext log.
        mlContext.Log += (_, e) =>
        {
            if (e.Kind >= Microsoft.ML.Runtime.ChannelMessageKind.Info && e.Source.StartsWith("NoProp", StringComparison.Ordinal))
                stderr.WriteLine(e.RawMessage);
        };

        var mnist = Datasets.Load("mnist");
        IDataView train = mlContext.Data.LoadFromEnumerable(Digits(mnist.Train, trainSize));
        IDataView test = mlContext.Data.LoadFromEnumerable(Digits(mnist.Test, testSize));

        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.MulticlassClassification.Trainers.NoProp(new NoPropOptions
            {
                FeatureColumnName = nameof(Digit.Pixels),
                Method = NoPropMethod.DiscreteTime,
                Epochs = int.Parse(options["epochs"], CultureInfo.InvariantCulture),
                Blocks = int.Parse(options["blocks"], CultureInfo.InvariantCulture),
                Seed = 1,
            }));
        using var model = pipeline.Fit(train);

        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(test));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"MicroAccuracy {metrics.MicroAccuracy:F4}, MacroAccuracy {metrics.MacroAccuracy:F4}, LogLoss {metrics.LogLoss:F4} ({testSize} test images)"));
        stdout.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

        if (options["save"] is { Length: > 0 } path)
        {
            mlContext.Model.Save(model, train.Schema, path);
            stdout.WriteLine($"saved {path}");
        }
        return 0;
    }

    private static IEnumerable<Digit> Digits(ImageDataset set, int count)
    {
        var pixels = set.Pixels;
        int size = set.ImageSize;
        for (int i = 0; i < Math.Min(count, set.Count); i++)
        {
            var image = new float[size];
            for (int p = 0; p < size; p++) image[p] = pixels[i * size + p] / 255f;
            yield return new Digit { Label = set.ClassNames[set.Labels[i]], Pixels = image };
        }
    }
}
