namespace NoProp.Training;

/// <summary>Settings of the shared training loop (not of the model).</summary>
public sealed record TrainingOptions
{
    public int Epochs { get; init; } = 100;
    public int BatchSize { get; init; } = 128;
    public long Seed { get; init; } = 1;

    /// <summary>Evaluate on the validation split every this many epochs (and after the last one).</summary>
    public int EvaluateEvery { get; init; } = 1;

    /// <summary>Where the model, checkpoints and metrics go; null keeps everything in memory.</summary>
    public string? OutputDirectory { get; init; }

    /// <summary>Train-time augmentation of training minibatches (never of validation or test data); null: none.</summary>
    public NoProp.Data.AugmentationOptions? Augmentation { get; init; }

    /// <summary>Stop when validation accuracy stops improving; null trains every epoch. Needs a validation split.</summary>
    public EarlyStopping? EarlyStopping { get; init; }

    /// <summary>The learning rate over the run (<c>--lr-schedule</c>); null keeps every optimiser's rate unchanged.</summary>
    public LearningRateSchedule? LearningRateSchedule { get; init; }

    /// <summary>Batch size for inference passes.</summary>
    public int InferenceBatchSize { get; init; } = NoProp.Methods.InferenceOptions.DefaultBatchSize;

    /// <summary>The convolutions' precision in validation inference (<c>--inference-precision</c>).</summary>
    public NoProp.Runtime.InferencePrecision InferencePrecision { get; init; }
}
