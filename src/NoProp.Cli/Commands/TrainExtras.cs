using System.Globalization;
using System.Text;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Methods.Backprop;
using NoProp.Methods.ContinuousTime;
using NoProp.Plots;
using NoProp.Runtime;
using NoProp.Training;
using static TorchSharp.torch;

namespace NoProp.Cli.Commands;

/// <summary>
/// What <c>noprop train</c> adds around the training loop besides the model and metrics: the per-epoch test
/// curve (<c>--track-test</c>), peak CUDA memory, method details for metrics.json, the CT schedule and the charts
/// written at the end. Kept out of <see cref="TrainCommand"/> so that command stays a plain sequence of steps.
/// </summary>
internal sealed class TrainExtras : IDisposable
{
    public const string TestCurveHeader = "epoch,train_seconds,test_accuracy,test_seconds";

    private readonly INoPropMethod method;
    private readonly string output;
    private readonly CudaMemoryMonitor? cuda;
    private readonly string? cudaUnavailable;
    private readonly Tensor? testX, testY;
    private readonly long seed;

    private TrainExtras(INoPropMethod method, string output, bool trackTest, DataSplits splits, Device device, long seed, ITrainingProgress progress)
    {
        this.method = method;
        this.output = output;
        this.seed = seed;
        if (device.type == TorchSharp.DeviceType.CUDA)
        {
            cuda = CudaMemoryMonitor.TryStart(TimeSpan.FromMilliseconds(100), out cudaUnavailable);
            if (cuda is null) progress.Message($"peak CUDA memory is not recorded: {cudaUnavailable}");
        }
        // The CT schedule as initialised, beside the learned one written at the end (schedule.csv).
        if (!File.Exists(Path.Combine(output, ScheduleExport.InitialCsv))) ScheduleExport.WriteIfContinuous(method, output, ScheduleExport.InitialCsv);
        if (trackTest)
        {
            (testX, testY) = splits.Test.ToTensors(device);
            var path = Path.Combine(output, RunFolder.TestCurveCsv);
            if (!File.Exists(path)) File.WriteAllText(path, TestCurveHeader + "\n");
        }
    }

    public static TrainExtras Attach(Trainer trainer, INoPropMethod method, string output, bool trackTest, DataSplits splits, Device device, long seed, ITrainingProgress progress)
    {
        var extras = new TrainExtras(method, output, trackTest, splits, device, seed, progress);
        if (trackTest) trainer.EpochCompleted += extras.RecordTestAccuracy;
        return extras;
    }

    /// <summary>Test accuracy after an epoch (seeded per epoch, like validation). Never used for model selection.</summary>
    private void RecordTestAccuracy(EpochRecord record)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var options = new InferenceOptions { Generator = Evaluator.InferenceGenerator(seed + record.Epoch, testX!.device) };
        double accuracy = Evaluator.Accuracy(method, testX!, testY!, options);
        var c = CultureInfo.InvariantCulture;
        File.AppendAllText(Path.Combine(output, RunFolder.TestCurveCsv),
            $"{record.Epoch.ToString(c)},{record.TrainSeconds.ToString("F3", c)},{accuracy.ToString("F6", c)},{clock.Elapsed.TotalSeconds.ToString("F3", c)}\n");
    }

    /// <summary>Adds peak CUDA memory (null on the CPU) and what the method learned that is worth a look.</summary>
    public void AddMetrics(Dictionary<string, object?> metrics)
    {
        cuda?.Stop();
        metrics["peak_cuda_memory_mb"] = cuda is null ? null : Math.Round(cuda.PeakMb, 1);
        if (cuda is not null) metrics["cuda_memory_source"] = cuda.Source;
        switch (method)
        {
            case BackpropBaseline bp:
                metrics["alphas"] = bp.Alphas().Select(a => Math.Round(a, 5)).ToArray();
                break;
            case NoPropCt ct:
                var (gammaMax, gammaMin) = ct.CtNetwork.Schedule.Endpoints();
                metrics["gamma_max"] = Math.Round(gammaMax, 5);
                metrics["gamma_min"] = Math.Round(gammaMin, 5);
                break;
        }
    }

    /// <summary>
    /// schedule.csv for NoProp-CT models, then losses.png, accuracy.png (and schedule.png) in the run folder.
    /// A chart that fails is reported on stderr and does not fail the run: the model and metrics are already saved.
    /// </summary>
    public void WriteCharts(TextWriter stderr)
    {
        try
        {
            ScheduleExport.WriteIfContinuous(method, output, RunFolder.ScheduleCsv);
            var run = RunFolder.Load(output);
            Charts.LossComponents(run, Path.Combine(output, "losses.png"));
            if (run.Epochs.Any(e => e.ValidationAccuracy is not null) || run.TestCurve.Count > 0)
                Charts.AccuracyPerEpoch(run, Path.Combine(output, "accuracy.png"));
            if (run.Schedule.Count > 1) Charts.NoiseSchedule([run], Path.Combine(output, "schedule.png"));
        }
        catch (Exception e) when (e is PlotException or IOException or TypeInitializationException or DllNotFoundException)
        {
            stderr.WriteLine($"noprop: charts not written: {e.Message.Split('\n')[0]}");
        }
    }

    public void Dispose()
    {
        cuda?.Dispose();
        testX?.Dispose();
        testY?.Dispose();
    }
}

/// <summary>
/// The noise schedule of a NoProp-CT model as a CSV file (t, ᾱ(t), SNR(t), γ(t)) on a 201-point grid: schedule.csv
/// for the trained model, schedule-initial.csv for the schedule before the first step.
/// </summary>
internal static class ScheduleExport
{
    public const string InitialCsv = "schedule-initial.csv";

    public static bool WriteIfContinuous(INoPropMethod method, string directory, string fileName, int points = 201)
    {
        if (method is not NoPropCt ct) return false;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var device = ct.Network.parameters().First().device;
        var t = linspace(0, 1, points, device: device);
        var (gamma, _) = ct.CtNetwork.Schedule.Gamma(t);
        var alphaBar = nn.functional.sigmoid(-gamma).cpu().data<float>().ToArray();
        var gammaValues = gamma.cpu().data<float>().ToArray();
        var c = CultureInfo.InvariantCulture;
        var csv = new StringBuilder("t,alpha_bar,snr,gamma\n");
        for (int i = 0; i < points; i++)
        {
            double ti = i / (double)(points - 1);
            csv.Append(ti.ToString("F4", c)).Append(',').Append(alphaBar[i].ToString("G7", c)).Append(',')
               .Append(Math.Exp(-gammaValues[i]).ToString("G7", c)).Append(',').Append(gammaValues[i].ToString("G7", c)).Append('\n');
        }
        File.WriteAllText(Path.Combine(directory, fileName), csv.ToString());
        return true;
    }
}
