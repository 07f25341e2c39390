using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using NoProp.Training;

namespace NoProp.ML.Training;

/// <summary>
/// Forwards the trainer's progress to the MLContext log (<c>mlContext.Log</c>) and to the caller's optional
/// <see cref="NoPropOptions.Progress"/>. The log gets every message and epoch summary, but minibatch reports at most
/// every <see cref="LogInterval"/>: a full MNIST epoch has thousands of steps. <paramref name="afterStep"/> runs after every
/// minibatch (the estimator checks the MLContext's cancellation there).
/// </summary>
internal sealed class ChannelProgress(IChannel channel, ITrainingProgress? user, Action? afterStep = null,
    Action<NoPropEpochMetrics>? metricsCallback = null) : ITrainingProgress
{
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);
    private readonly Stopwatch sinceLastLog = Stopwatch.StartNew();

    public void Report(ProgressInfo info)
    {
        user?.Report(info);
        afterStep?.Invoke();   // after the user's callback, so that a cancellation fired there stops the next minibatch
        if (sinceLastLog.Elapsed < LogInterval) return;
        sinceLastLog.Restart();
        channel.Info(string.Create(CultureInfo.InvariantCulture,
            $"epoch {info.Epoch}/{info.Epochs} step {info.Step}/{info.StepsInEpoch} ({info.Stage}): loss {info.Loss:G5}, {info.ImagesPerSecond:F0} images/s"));
    }

    public void EpochCompleted(EpochRecord record)
    {
        user?.EpochCompleted(record);
        metricsCallback?.Invoke(NoPropEpochMetrics.From(record));
        string validation = record.ValidationAccuracy is double v
            ? string.Create(CultureInfo.InvariantCulture, $"validation accuracy {v:P2}")
            : "no validation rows";
        double loss = record.Losses.GetValueOrDefault("total", double.NaN);
        channel.Info(string.Create(CultureInfo.InvariantCulture, $"epoch {record.Epoch}: loss {loss:G5}, {validation}, {record.EpochTrainSeconds:F1} s"));
    }

    public void Message(string line)
    {
        user?.Message(line);
        channel.Info(line);
    }
}
