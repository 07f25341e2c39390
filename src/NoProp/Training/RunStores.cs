using NoProp.Methods;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Training;

/// <summary>
/// Sees a <see cref="Trainer"/>'s commit points, in order: the selected model changing, each completed epoch, and a
/// cancellation. The run's <see cref="IRunStore"/> is called first at each point, then the sinks in the order they
/// were added (<see cref="Trainer.Sinks"/>), so a sink never sees an epoch the store has not committed.
/// </summary>
public interface IEpochSink
{
    /// <summary>
    /// The network now holds the selected model, from epoch <paramref name="record"/>.Epoch: the best validation accuracy
    /// so far (<see cref="EpochRecord.ValidationAccuracy"/> set), or, without validation images, the latest epoch (null).
    /// Called before <see cref="EpochCommitted"/> of the same epoch.
    /// </summary>
    void ModelSelected(INoPropMethod method, EpochRecord record) { }

    /// <summary>
    /// An epoch ended: <paramref name="record"/> is its row of metrics.csv, <paramref name="next"/> the state a resumed run
    /// continues from (the start of the next epoch, the history up to this one). Called once per epoch, in order.
    /// </summary>
    void EpochCommitted(INoPropMethod method, EpochRecord record, TrainerState next) { }

    /// <summary>Training was cancelled between two steps; <paramref name="state"/> is where a resumed run continues.</summary>
    void Cancelled(INoPropMethod method, TrainerState state) { }

    /// <summary>
    /// A resumed run continues from <paramref name="state"/>; the network holds the checkpoint's weights. Called once,
    /// before the first step, after the store has restored the state. A sink that writes after the checkpoint (the
    /// test curve) can complete here what a run stopped between the two did not write.
    /// </summary>
    void Resumed(INoPropMethod method, TrainerState state) { }
}

/// <summary>
/// Where a run's progress is kept: the selected model, the per-epoch metrics and the checkpoints a run resumes from.
/// <see cref="RunFolderStore"/> writes a run folder; <see cref="InMemoryRunStore"/> keeps only the best weights (no
/// output folder: the ML.NET adapter, tests). The trainer takes the folder store when
/// <see cref="TrainingOptions.OutputDirectory"/> is set, else the in-memory one.
/// </summary>
public interface IRunStore : IEpochSink, IDisposable
{
    /// <summary>Where checkpoints are kept, for messages ("runs/a/checkpoint"); null when the store keeps none.</summary>
    string? CheckpointLocation { get; }

    /// <summary>Whether a checkpoint of a completed epoch exists (what a diverged run can fall back to).</summary>
    bool HasCheckpoint { get; }

    /// <summary>Restores the method (weights, optimisers, generator) from the latest checkpoint and returns the trainer's state.</summary>
    TrainerState Resume(INoPropMethod method);

    /// <summary>Called once before the first step of a new or resumed run (after <see cref="Resume"/>).</summary>
    void Open(INoPropMethod method);

    /// <summary>Loads the selected model into the network, if the store holds one (the network holds the latest epoch otherwise).</summary>
    void RestoreSelected(INoPropMethod method);
}

/// <summary>
/// A run folder: <c>model.json</c> + <c>model.bin</c> (the selected model, <see cref="ModelStore"/>), <c>metrics.csv</c>
/// (a header, then one row per epoch) and <c>checkpoint/</c> (<see cref="Checkpoint"/>). At an epoch's end the row is
/// appended, then the checkpoint of the next epoch's start swapped in; a resumed run continues from the checkpoint.
/// </summary>
public sealed class RunFolderStore : IRunStore
{
    /// <summary>The per-epoch metrics file.</summary>
    public const string MetricsCsv = "metrics.csv";

    public RunFolderStore(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = directory;
        System.IO.Directory.CreateDirectory(directory);
    }

    public string Directory { get; }

    public string? CheckpointLocation => Checkpoint.PathIn(Directory);

    public bool HasCheckpoint => Checkpoint.Exists(Directory);

    /// <summary>
    /// Restores the checkpoint, and cuts metrics.csv back to the epochs it holds: a run stopped between an epoch's row and
    /// its checkpoint (the row is written first) trains that epoch again, and must not list it twice.
    /// </summary>
    public TrainerState Resume(INoPropMethod method)
    {
        var state = Checkpoint.Load(method, Directory);
        var path = Path.Combine(Directory, MetricsCsv);
        if (File.Exists(path))
        {
            var lines = File.ReadAllLines(path);
            if (lines.Length > state.History.Count + 1)
                AtomicFile.WriteAllText(path, string.Concat(lines.Take(state.History.Count + 1).Select(l => l + Environment.NewLine)));
        }
        return state;
    }

    /// <summary>Writes metrics.csv's header unless the file exists (a resumed run appends to it).</summary>
    public void Open(INoPropMethod method)
    {
        var path = Path.Combine(Directory, MetricsCsv);
        if (!File.Exists(path)) File.WriteAllText(path, EpochRecord.CsvHeader(method.LossNames) + Environment.NewLine);
    }

    public void ModelSelected(INoPropMethod method, EpochRecord record) => ModelStore.Save(method, Directory);

    public void EpochCommitted(INoPropMethod method, EpochRecord record, TrainerState next)
    {
        File.AppendAllText(Path.Combine(Directory, MetricsCsv), record.ToCsv(method.LossNames) + Environment.NewLine);
        Checkpoint.Save(method, next, Directory);
    }

    public void Cancelled(INoPropMethod method, TrainerState state) => Checkpoint.Save(method, state, Directory);

    public void RestoreSelected(INoPropMethod method)
    {
        var weights = Path.Combine(Directory, ModelStore.WeightsFile);
        if (File.Exists(weights)) ModelStore.LoadWeights(method, weights);
    }

    public void Dispose() { }
}

/// <summary>
/// No output folder: a copy of the weights of the best validation epoch, loaded back at the end. Without validation
/// images the latest epoch is the model and nothing is copied. Nothing survives the process, so a run cannot resume.
/// </summary>
public sealed class InMemoryRunStore : IRunStore
{
    private Dictionary<string, Tensor>? best;

    public string? CheckpointLocation => null;

    public bool HasCheckpoint => false;

    public TrainerState Resume(INoPropMethod method) =>
        throw new NoPropException("resuming needs an output directory holding a checkpoint");

    public void Open(INoPropMethod method) => Clear();

    public void ModelSelected(INoPropMethod method, EpochRecord record)
    {
        Clear();
        if (record.ValidationAccuracy is not null)
        {
            using var scope = NewDisposeScope();
            best = method.Network.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone().MoveToOuterDisposeScope());
        }
    }

    public void RestoreSelected(INoPropMethod method)
    {
        if (best is not null) method.Network.load_state_dict(best);
    }

    public void Dispose() => Clear();

    private void Clear()
    {
        if (best is not null) foreach (var t in best.Values) t.Dispose();
        best = null;
    }
}
