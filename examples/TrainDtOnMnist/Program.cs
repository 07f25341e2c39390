// Trains NoProp-DT on the embedded MNIST with the library API (no CLI), then evaluates it.
// Usage: dotnet run -c Release --project examples/TrainDtOnMnist -- [trainSize] [epochs] [testSize]
using NoProp.Data;
using NoProp.Methods;
using NoProp.Runtime;
using NoProp.Training;

int trainSize = args.Length > 0 ? int.Parse(args[0]) : 10_000;
int epochs = args.Length > 1 ? int.Parse(args[1]) : 1;
int? testSize = args.Length > 2 ? int.Parse(args[2]) : null;

TorchRuntime.Initialize();
TorchRuntime.Seed(1);
var data = Datasets.Load("mnist");
var splits = DataSplits.Create(data, trainSize, validationSize: Math.Min(5_000, 60_000 - trainSize), testSize, seed: 1);

var config = new ModelConfig
{
    Method = MethodKind.DiscreteTime,
    ClassNames = data.Train.ClassNames.ToArray(),
    NormalizationMean = data.Train.Normalization.Mean,
    NormalizationStd = data.Train.Normalization.Std,
    EmbeddingDimension = data.Train.ClassCount,   // one-hot
    Blocks = 10,
};
using var method = MethodRegistry.Create(config);
var trainer = new Trainer(method, splits, new TrainingOptions { Epochs = epochs, BatchSize = 128, Seed = 1 }, new ConsoleProgress());
trainer.EpochCompleted += record => Console.WriteLine($"epoch {record.Epoch}: validation accuracy {record.ValidationAccuracy:P2}");
var result = trainer.Run();

var (x, y) = splits.Test.ToTensors();
var accuracies = Enumerable.Range(0, 3)
    .Select(run => Evaluator.Accuracy(method, x, y, new InferenceOptions { Generator = Evaluator.InferenceGenerator(run) }))
    .ToList();
var (mean, standardError) = Statistics.MeanAndStandardError(accuracies);
Console.WriteLine($"test accuracy over 3 stochastic inference runs: {mean:P2} ± {standardError:P2} ({result.TrainSeconds:F0} s training)");
