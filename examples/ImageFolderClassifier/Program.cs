// An image-folder classifier: one sub-folder per class (as `noprop export-images` writes them), loaded with ML.NET's
// LoadImages and handed to NoProp as an image column (NoProp resizes and reads the pixels itself), trained with early
// stopping on a validation split, evaluated, saved, reloaded and used through a PredictionEngine.
// Usage: dotnet run -c Release --project examples/ImageFolderClassifier -- --images DIR
//            [--epochs E] [--blocks T] [--test-fraction F] [--size S] [--color false|true] [--model model.zip]
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.ML;

namespace NoProp.Examples;

public static class ImageFolderClassifier
{
    public sealed class ImageFile
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class ImagePrediction
    {
        public string PredictedClass { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var options = Arguments.Parse(args, new()
        {
            ["images"] = "", ["epochs"] = "3", ["blocks"] = "10", ["test-fraction"] = "0.2", ["size"] = "28", ["color"] = "false",
            ["model"] = "noprop-images.zip",
        });
        string folder = options["images"] is { Length: > 0 } f ? Path.GetFullPath(f) : throw new ArgumentException("--images DIR is required");
        int size = int.Parse(options["size"], CultureInfo.InvariantCulture);
        bool color = bool.Parse(options["color"]);
        string modelPath = options["model"];

        // Paths are stored relative to the folder, which LoadImages keeps in the model.
        var files = Directory.EnumerateDirectories(folder).OrderBy(d => d, StringComparer.Ordinal)
            .SelectMany(dir => Directory.EnumerateFiles(dir, "*.png").Order(StringComparer.Ordinal)
                .Select(file => new ImageFile { ImagePath = Path.GetRelativePath(folder, file), Label = Path.GetFileName(dir) }))
            .ToList();
        if (files.Count == 0) throw new ArgumentException($"--images {folder}: no PNG files in class sub-folders");
        stderr.WriteLine($"{files.Count} images in {files.Select(x => x.Label).Distinct().Count()} classes under {folder}");

        var mlContext = new MLContext(seed: 1);
        mlContext.Log += (_, e) =>
        {
            if (e.Kind >= Microsoft.ML.Runtime.ChannelMessageKind.Info && e.Source.StartsWith("NoProp", StringComparison.Ordinal))
                stderr.WriteLine(e.RawMessage);
        };
        var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(files),
            testFraction: double.Parse(options["test-fraction"], CultureInfo.InvariantCulture), seed: 1);

        // No AppendCacheCheckpoint: NoProp reads its training rows once into memory, so a cache would only hold them twice.
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Transforms.LoadImages("Image", folder, nameof(ImageFile.ImagePath)))
            .Append(mlContext.MulticlassClassification.Trainers.NoProp(new NoPropOptions
            {
                FeatureColumnName = "Image",               // an MLImage column: NoProp resizes it and reads its pixels
                Channels = color ? 3 : 1, Height = size, Width = size,
                Epochs = int.Parse(options["epochs"], CultureInfo.InvariantCulture),
                Blocks = int.Parse(options["blocks"], CultureInfo.InvariantCulture),
                EarlyStoppingPatience = 2,                 // on the held-out 10 % (ValidationFraction)
                MetricsCallback = m => stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  epoch {m.Epoch}: loss {m.Loss:F4}, validation accuracy {m.ValidationAccuracy:P2}, {m.ImagesPerSecond:F0} images/s")),
            }))                                            // Seed: from the MLContext's seed
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        using var model = pipeline.Fit(split.TrainSet);
        var trained = model.OfType<NoPropTransformer>().Single().Model;
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"model: NoProp-{trained.Method}, T = {trained.Configuration.Blocks}, images {trained.ImageShape}, seed {trained.Seed}, " +
            $"{trained.History.Count} epoch(s){(trained.StoppedEarly ? " (stopped early)" : "")}, best epoch {trained.BestEpoch} " +
            $"(validation accuracy {trained.BestValidationAccuracy:P2})"));

        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"MicroAccuracy {metrics.MicroAccuracy:F4}, MacroAccuracy {metrics.MacroAccuracy:F4}, LogLoss {metrics.LogLoss:F4}"));
        stdout.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

        mlContext.Model.Save(model, split.TrainSet.Schema, modelPath);
        stdout.WriteLine($"saved {modelPath} ({new FileInfo(modelPath).Length / 1024} KiB)");

        // A fresh context, as another program would have: no registration, just Load.
        var serving = new MLContext();
        var loaded = serving.Model.Load(modelPath, out _);
        using (loaded as IDisposable)
        {
            var engine = serving.Model.CreatePredictionEngine<ImageFile, ImagePrediction>(loaded);
            foreach (var file in mlContext.Data.CreateEnumerable<ImageFile>(split.TestSet, reuseRowObject: false).Take(5))
            {
                var prediction = engine.Predict(file);
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{file.ImagePath}: true {file.Label}, predicted {prediction.PredictedClass} (p = {prediction.Score.Max():F3})"));
            }
        }
        return 0;
    }
}
