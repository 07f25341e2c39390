using System.Diagnostics;
using System.Globalization;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Training.Runs;

/// <summary>
/// <c>--track-test</c>: the test accuracy after every committed epoch, appended to test-curve.csv in the run folder
/// (for accuracy-against-time charts). Seeded per epoch like validation; never used to select the model. A resumed run
/// appends to the file it finds, after completing the row a stopped run did not write (<see cref="Resumed"/>).
/// </summary>
public sealed class TestCurve : IEpochSink, IDisposable
{
    /// <summary>The file in the run folder.</summary>
    public const string FileName = "test-curve.csv";

    public const string Header = "epoch,train_seconds,test_accuracy,test_seconds";

    private readonly string path;
    private readonly Tensor testX, testY;
    private readonly long seed;
    private readonly InferencePrecision precision;

    /// <summary>Holds the test split on <paramref name="device"/> and writes the header unless the file exists.</summary>
    public TestCurve(string directory, ImageDataset test, Device device, long seed, InferencePrecision precision = InferencePrecision.Float32)
    {
        path = Path.Combine(directory, FileName);
        this.seed = seed;
        this.precision = precision;
        (testX, testY) = test.ToTensors(device);
        if (!File.Exists(path)) File.WriteAllText(path, Header + "\n");
    }

    /// <summary>
    /// The row is written after the epoch's checkpoint, so a run stopped between the two resumes at the start of the next
    /// epoch without the last epoch's row. The network then holds that epoch's weights, and the row is computed now with
    /// the epoch's own seed: the same row the run would have written. A line cut off by the stop is dropped first.
    /// </summary>
    public void Resumed(INoPropMethod method, TrainerState state)
    {
        DropIncompleteLastLine();
        if (state.Batch != 0 || state.Stage != 0 || state.History.Count == 0) return;   // mid-epoch: the rows are complete
        var last = state.History[^1];
        if (last.Epoch != state.Epoch || RecordedEpochs().Contains(last.Epoch)) return;
        EpochCommitted(method, last, state);
    }

    private HashSet<int> RecordedEpochs() =>
        File.ReadLines(path).Skip(1)
            .Select(line => int.TryParse(line.Split(',')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int e) ? e : -1)
            .ToHashSet();

    private void DropIncompleteLastLine()
    {
        var text = File.ReadAllText(path);
        if (text.EndsWith('\n')) return;
        var kept = text[..(text.LastIndexOf('\n') + 1)];
        File.WriteAllText(path, kept.Length == 0 ? Header + "\n" : kept);
    }

    public void EpochCommitted(INoPropMethod method, EpochRecord record, TrainerState next)
    {
        var clock = Stopwatch.StartNew();
        var options = new InferenceOptions { Generator = Evaluator.InferenceGenerator(seed + record.Epoch, testX.device), Precision = precision };
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
