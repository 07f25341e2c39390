using System.Diagnostics;
using System.Globalization;
using NoProp.Data;
using NoProp.Methods;
using static TorchSharp.torch;

namespace NoProp.Training.Runs;

/// <summary>
/// <c>--track-test</c>: the test accuracy after every committed epoch, appended to test-curve.csv in the run folder
/// (for accuracy-against-time charts). Seeded per epoch like validation; never used to select the model. A resumed run
/// appends to the file it finds.
/// </summary>
public sealed class TestCurve : IEpochSink, IDisposable
{
    /// <summary>The file in the run folder.</summary>
    public const string FileName = "test-curve.csv";

    public const string Header = "epoch,train_seconds,test_accuracy,test_seconds";

    private readonly string path;
    private readonly Tensor testX, testY;
    private readonly long seed;

    /// <summary>Holds the test split on <paramref name="device"/> and writes the header unless the file exists.</summary>
    public TestCurve(string directory, ImageDataset test, Device device, long seed)
    {
        path = Path.Combine(directory, FileName);
        this.seed = seed;
        (testX, testY) = test.ToTensors(device);
        if (!File.Exists(path)) File.WriteAllText(path, Header + "\n");
    }

    public void EpochCommitted(INoPropMethod method, EpochRecord record, TrainerState next)
    {
        var clock = Stopwatch.StartNew();
        var options = new InferenceOptions { Generator = Evaluator.InferenceGenerator(seed + record.Epoch, testX.device) };
        double accuracy = Evaluator.Accuracy(method, testX, testY, options);
        var c = CultureInfo.InvariantCulture;
        File.AppendAllText(path,
            $"{record.Epoch.ToString(c)},{record.TrainSeconds.ToString("F3", c)},{accuracy.ToString("F6", c)},{clock.Elapsed.TotalSeconds.ToString("F3", c)}\n");
    }

    public void Dispose()
    {
        testX.Dispose();
        testY.Dispose();
    }
}
