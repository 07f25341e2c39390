using System.Globalization;
using System.Text;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Plots;
using NoProp.Runtime;
using NoProp.Training;
using static TorchSharp.torch;

namespace NoProp.Cli.Commands;

/// <summary>
/// What <c>noprop train</c> adds around the training loop besides the model and metrics (and the test curve, which
/// the core run writes: <see cref="NoProp.Training.Runs.TestCurve"/>): peak CUDA memory, method details for
/// metrics.json, the CT schedule and the charts written at the end. Kept out of <see cref="TrainCommand"/> so that
/// command stays a plain sequence of steps.
/// </summary>
internal sealed class TrainExtras : IDisposable
{
    private readonly INoPropMethod method;
    private readonly string output;
    private readonly CudaMemoryMonitor? cuda;
    private readonly string? cudaUnavailable;

    private TrainExtras(INoPropMethod method, string output, Device device, ITrainingProgress progress)
    {
        this.method = method;
        this.output = output;
        if (device.type == TorchSharp.DeviceType.CUDA)
        {
            cuda = CudaMemoryMonitor.TryStart(TimeSpan.FromMilliseconds(100), out cudaUnavailable);
            if (cuda is null) progress.Message($"peak CUDA memory is not recorded: {cudaUnavailable}");
        }
        // The CT schedule as initialised, beside the learned one written at the end (schedule.csv).
        if (!File.Exists(Path.Combine(output, ScheduleExport.InitialCsv))) ScheduleExport.WriteIfContinuous(method, output, ScheduleExport.InitialCsv);
    }

    public static TrainExtras Attach(INoPropMethod method, string output, Device device, ITrainingProgress progress) =>
        new(method, output, device, progress);

    /// <summary>Adds peak CUDA memory (null on the CPU) and what the method learned that is worth a look.</summary>
    public void AddMetrics(Dictionary<string, object?> metrics)
    {
        cuda?.Stop();
        metrics["peak_cuda_memory_mb"] = cuda is null ? null : Math.Round(cuda.PeakMb, 1);
        if (cuda is not null) metrics["cuda_memory_source"] = cuda.Source;
        if (method is ILearnedExtras learned)
            foreach (var (name, value) in learned.LearnedExtras()) metrics[name] = value;
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
    }
}

/// <summary>
/// The noise schedule of a model that has one (<see cref="INoiseScheduleMethod"/>: NoProp-CT) as a CSV file
/// (t, ᾱ(t), SNR(t), γ(t)) on a 201-point grid: schedule.csv for the trained model, schedule-initial.csv for the
/// schedule before the first step.
/// </summary>
internal static class ScheduleExport
{
    public const string InitialCsv = "schedule-initial.csv";

    public static bool WriteIfContinuous(INoPropMethod method, string directory, string fileName, int points = 201)
    {
        if (method is not INoiseScheduleMethod scheduled) return false;
        var table = scheduled.TabulateSchedule(points);
        var c = CultureInfo.InvariantCulture;
        var csv = new StringBuilder("t,alpha_bar,snr,gamma\n");
        for (int i = 0; i < points; i++)
        {
            csv.Append(table.T[i].ToString("F4", c)).Append(',').Append(table.AlphaBar[i].ToString("G7", c)).Append(',')
               .Append(table.Snr[i].ToString("G7", c)).Append(',').Append(table.Gamma[i].ToString("G7", c)).Append('\n');
        }
        File.WriteAllText(Path.Combine(directory, fileName), csv.ToString());
        return true;
    }
}
