// Issue 11's "done means": NoProp used as an ML.NET trainer by an app that references only the NoProp.ML package and
// ML.NET (+ ImageAnalytics for LoadImages), built outside the repository by tests/consumer/run.sh. PNG digits in one
// folder per class (written by `noprop export-images`), numeric (uint) labels, new MLContext(seed: S), an MLImage column
// straight from LoadImages, Fit(train, validation), early stopping, a cancellation fired mid-training, the labels back
// through MapKeyToValue, LastTransformer.Model, save, and scoring in a fresh process.
//   consumer-ml train PNG-DIR MODEL.zip SCORES.txt   cancels one training, trains another, saves it, writes the test scores
//   consumer-ml score PNG-DIR MODEL.zip SCORES.txt   loads the model in this (fresh) process and writes the test scores
// Exits non-zero when any expectation fails.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.ML;
using NoProp.Training;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length != 4 || args[0] is not ("train" or "score"))
{
    Console.Error.WriteLine("usage: consumer-ml train|score PNG-DIR MODEL.zip SCORES.txt");
    return 2;
}
string images = args[1], modelPath = args[2], scoresPath = args[3];
var mlContext = new MLContext(seed: 42);
var test = mlContext.Data.LoadFromEnumerable(DigitFile.In(Path.Combine(images, "test")));

ITransformer model;
if (args[0] == "train")
{
    // 300 training PNGs: every fifth is a validation row.
    var files = DigitFile.In(Path.Combine(images, "train"));
    var train = mlContext.Data.LoadFromEnumerable(files.Where((_, i) => i % 5 != 0));
    var validation = mlContext.Data.LoadFromEnumerable(files.Where((_, i) => i % 5 == 0));
    var prep = mlContext.Transforms.Conversion.MapValueToKey("Label", nameof(DigitFile.Digit))   // uint labels → keys
        .Append(mlContext.Transforms.LoadImages("Image", images, nameof(DigitFile.ImagePath)))    // an MLImage column
        .Fit(train);
    var trainRows = prep.Transform(train);
    var validationRows = prep.Transform(validation);

    // 1. A cancellation fired mid-training, from the progress callback after the 3rd minibatch: Fit must throw
    //    OperationCanceledException before another minibatch runs, and return no model.
    using (var cancellation = new CancellationTokenSource())
    {
        var counter = new MinibatchCounter(after: 3, cancellation);
        var options = Options();
        options.CancellationToken = cancellation.Token;
        options.Progress = counter;
        var clock = Stopwatch.StartNew();
        try
        {
            mlContext.MulticlassClassification.Trainers.NoProp(options).Fit(trainRows, validationRows);
            return Fail("training was not cancelled");
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine($"cancelled after minibatch {counter.CancelledAt}: {counter.Minibatches - counter.CancelledAt} minibatches ran after the cancel, " +
                $"Fit threw OperationCanceledException {counter.SinceCancel.Elapsed.TotalMilliseconds:F0} ms after it");
            if (counter.Minibatches != counter.CancelledAt) return Fail("a minibatch ran after the cancellation");
        }
    }

    // 2. Train with validation data and early stopping; the seed comes from the MLContext.
    var trainOptions = Options();
    trainOptions.MetricsCallback = m => Console.WriteLine($"  epoch {m.Epoch}: loss {m.Loss:F4}, validation accuracy {m.ValidationAccuracy:P2}");
    NoPropTransformer noProp = mlContext.MulticlassClassification.Trainers.NoProp(trainOptions).Fit(trainRows, validationRows);
    var trained = prep.Append(noProp);
    NoPropModelParameters parameters = trained.LastTransformer.Model;
    Describe(parameters);
    if (!parameters.StoppedEarly || parameters.History.Count >= trainOptions.Epochs) return Fail("early stopping did not end training");
    if (parameters.History.Any(h => h.ValidationAccuracy is null)) return Fail("an epoch without validation accuracy");

    // 3. Predicted keys back to the user's uint labels, in the saved pipeline.
    var toDigit = mlContext.Transforms.Conversion.MapKeyToValue("PredictedDigit", "PredictedLabel").Fit(trained.Transform(train));
    model = trained.Append(toDigit);
    mlContext.Model.Save(model, train.Schema, modelPath);
    Console.WriteLine($"saved {Path.GetFileName(modelPath)} ({new FileInfo(modelPath).Length / 1024} KiB)");
}
else
{
    model = new MLContext().Model.Load(modelPath, out _);   // a fresh process and context, no registration call
    var noProp = ((IEnumerable<ITransformer>)model).OfType<NoPropTransformer>().Single();
    Console.Write("loaded: ");
    Describe(noProp.Model);
}

var scored = model.Transform(test);
var metrics = mlContext.MulticlassClassification.Evaluate(scored);
var predictions = mlContext.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).ToList();
// MapKeyToValue gives the uint digits back: counting PredictedDigit == Digit must give Evaluate's accuracy.
double labelAccuracy = predictions.Count(p => p.PredictedDigit == p.Digit) / (double)predictions.Count;
Console.WriteLine($"{args[0]}: {predictions.Count} test images, MicroAccuracy {metrics.MicroAccuracy:F4}, PredictedDigit == Digit for {labelAccuracy:F4}, " +
    $"predicted digits {string.Join(' ', predictions.Select(p => p.PredictedDigit).Take(12))} ... (true {string.Join(' ', predictions.Select(p => p.Digit).Take(12))} ...)");
if (Math.Abs(labelAccuracy - metrics.MicroAccuracy) > 1e-12) return Fail("MapKeyToValue did not give the right labels back");
if (predictions.Any(p => p.PredictedDigit > 9)) return Fail("a predicted digit outside 0-9");
File.WriteAllLines(scoresPath, predictions.Select(p =>
    string.Join(' ', p.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture))) + $" -> {p.PredictedDigit}"));
return 0;

static NoPropOptions Options() => new()
{
    FeatureColumnName = "Image", Channels = 1,            // grey 28 × 28 from the PNGs (the size of the first image)
    Epochs = 8, Blocks = 2, BatchSize = 16, LearningRate = 0.01,
    EarlyStoppingPatience = 1, EarlyStoppingMinDelta = 0.05,   // stop at the first epoch without a 5-point gain
};

static void Describe(NoPropModelParameters m) =>
    Console.WriteLine($"{m.Method}, images {m.ImageShape}, classes {string.Join(',', m.ClassNames)}, seed {m.Seed}: " +
        $"{m.History.Count} epoch(s){(m.StoppedEarly ? " (stopped early)" : "")}, best epoch {m.BestEpoch} " +
        $"(validation accuracy {m.BestValidationAccuracy:P2})");

static int Fail(string message)
{
    Console.Error.WriteLine($"consumer-ml: FAILED: {message}");
    return 1;
}

/// <summary>One PNG: its path under the image folder and its digit (the class folder's name) as a number.</summary>
sealed class DigitFile
{
    public uint Digit { get; set; }
    public string ImagePath { get; set; } = "";

    public static List<DigitFile> In(string folder) =>
        Directory.GetDirectories(folder).OrderBy(d => d, StringComparer.Ordinal)
            .SelectMany(d => Directory.GetFiles(d, "*.png").OrderBy(f => f, StringComparer.Ordinal))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)   // the export's order (file names are indices)
            .Select(f => new DigitFile
            {
                Digit = uint.Parse(Path.GetFileName(Path.GetDirectoryName(f))!, CultureInfo.InvariantCulture),
                ImagePath = Path.GetRelativePath(Path.GetDirectoryName(folder)!, f),
            }).ToList();
}

sealed class Prediction
{
    public uint Digit { get; set; }
    public uint PredictedDigit { get; set; }
    public float[] Score { get; set; } = [];
}

/// <summary>Counts the minibatches reported (after each one) and cancels after the given one.</summary>
sealed class MinibatchCounter(int after, CancellationTokenSource cancellation) : ITrainingProgress
{
    public int Minibatches { get; private set; }
    public int CancelledAt { get; private set; }
    public Stopwatch SinceCancel { get; } = new();

    public void Report(ProgressInfo info)
    {
        Minibatches++;
        if (Minibatches != after) return;
        CancelledAt = Minibatches;
        SinceCancel.Start();
        cancellation.Cancel();
    }

    public void EpochCompleted(EpochRecord record) { }
    public void Message(string line) { }
}
