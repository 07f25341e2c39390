// A consumer of NoProp.ML as a user writes one, built outside the repository by tests/consumer/run.sh (once with
// package references, once with a project reference). Only the basic documented surface: MLContext, NoPropEstimator,
// NoPropOptions, Fit, Transform, Model.Save, Model.Load; MNIST from the opt-in NoProp.Data.Mnist content.
//   consumer train MODEL.zip SCORES.txt   trains on 400 images, saves the model, writes the test scores
//   consumer score MODEL.zip SCORES.txt   loads the model in this (fresh) process and writes the test scores
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.Data;
using NoProp.ML;

if (args.Length != 3 || args[0] is not ("train" or "score"))
{
    Console.Error.WriteLine("usage: consumer train|score MODEL.zip SCORES.txt");
    return 2;
}
var mlContext = new MLContext(seed: 1);
var mnist = Datasets.Load("mnist");   // data/mnist beside this app, from the NoProp.Data.Mnist package
var test = mlContext.Data.LoadFromEnumerable(Digits(mnist.Test, 100));

ITransformer model;
if (args[0] == "train")
{
    var train = mlContext.Data.LoadFromEnumerable(Digits(mnist.Train, 400));
    var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
        .Append(new NoPropEstimator(mlContext, new NoPropOptions { FeatureColumnName = "Pixels", Epochs = 2, Blocks = 2, Seed = 1 }));
    model = pipeline.Fit(train);
    mlContext.Model.Save(model, train.Schema, args[1]);
}
else
{
    model = new MLContext().Model.Load(args[1], out _);
}

var scored = model.Transform(test);
var metrics = mlContext.MulticlassClassification.Evaluate(scored);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{args[0]}: accuracy {metrics.MicroAccuracy:F4} on {100} test images"));
using (var writer = new StreamWriter(args[2]))
{
    foreach (var row in mlContext.Data.CreateEnumerable<Scored>(scored, reuseRowObject: false))
        writer.WriteLine(string.Join(' ', row.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture))) + $" -> {row.PredictedLabel}");
}
return 0;

static IEnumerable<Digit> Digits(ImageDataset set, int count)
{
    var pixels = set.Pixels;
    for (int i = 0; i < count; i++)
    {
        var image = new float[set.ImageSize];
        for (int p = 0; p < image.Length; p++) image[p] = pixels[i * set.ImageSize + p] / 255f;
        yield return new Digit { Label = set.ClassNames[set.Labels[i]], Pixels = image };
    }
}

sealed class Digit
{
    public string Label { get; set; } = "";
    [VectorType(1, 28, 28)] public float[] Pixels { get; set; } = [];
}

sealed class Scored
{
    public float[] Score { get; set; } = [];
    public uint PredictedLabel { get; set; }
}
