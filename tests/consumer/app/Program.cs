// A consumer of NoProp.ML as a user writes one, built outside the repository by tests/consumer/run.sh (with package
// references, and with a project reference). Only the basic documented surface: MLContext, NoPropEstimator,
// NoPropOptions, Fit, Transform, Model.Save, Model.Load; MNIST from the opt-in NoProp.Data.Mnist content.
//   consumer train MODEL.zip SCORES.txt   trains on 400 images, saves the model, writes the test scores
//   consumer score MODEL.zip SCORES.txt   loads the model in this (fresh) process and writes the test scores
using System.Globalization;
using Microsoft.ML;
using NoProp.Data;
using NoProp.ML;

if (args.Length != 3 || args[0] is not ("train" or "score"))
{
    Console.Error.WriteLine("usage: consumer train|score MODEL.zip SCORES.txt");
    return 2;
}
var mlContext = new MLContext(seed: 1);
var mnist = Datasets.Load("mnist");   // data/mnist beside this app, from the NoProp.Data.Mnist package
var test = mlContext.Data.LoadFromEnumerable(ConsumerData.Digits(mnist.Test, ConsumerData.TestRows));

ITransformer model;
if (args[0] == "train")
{
    var train = mlContext.Data.LoadFromEnumerable(ConsumerData.Digits(mnist.Train, 400));
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
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{args[0]}: accuracy {metrics.MicroAccuracy:F4} on {ConsumerData.TestRows} test images"));
File.WriteAllLines(args[2], ConsumerData.ScoreLines(mlContext, scored));
return 0;
