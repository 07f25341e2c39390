using NoProp.Runtime;

namespace NoProp.Training;

/// <summary>The shape of the learning rate over a run (<c>--lr-schedule</c>).</summary>
[NamedAs("learning-rate schedule")]
public enum LearningRateScheduleKind
{
    /// <summary>The configured learning rate throughout (the paper's recipe), after an optional linear warm-up.</summary>
    [Name("constant")] Constant,
    /// <summary>Linear warm-up, then a cosine decay to <see cref="LearningRateSchedule.FinalFraction"/> of the peak.</summary>
    [Name("cosine")] Cosine,
    /// <summary>
    /// One cycle (Smith and Topin 2019, PyTorch's OneCycleLR with cosine annealing): from peak/25 up to the peak over
    /// the warm-up (30 % of the run unless set), then a cosine decay to peak/(25·10⁴).
    /// </summary>
    [Name("one-cycle", "onecycle")] OneCycle,
}

/// <summary>
/// A learning-rate multiplier as a function of training progress p ∈ [0, 1], where p counts epochs and the batches of
/// the current stage: (epoch + batch / batchesPerStage) / epochs. Progress does not depend on the stage, so under
/// Algorithm 1's sequential schedule every block follows the same curve within an epoch; a resumed run recomputes
/// the same rate from its position.
/// </summary>
public sealed record LearningRateSchedule
{
    public LearningRateScheduleKind Kind { get; init; } = LearningRateScheduleKind.Constant;

    /// <summary>Warm-up length in epochs (null: none, or 30 % of the run for one-cycle).</summary>
    public double? WarmupEpochs { get; init; }

    /// <summary>Cosine: the final learning rate as a fraction of the peak.</summary>
    public double FinalFraction { get; init; }

    public void Validate(int epochs)
    {
        if (WarmupEpochs is double w && !(w >= 0 && w < epochs))
            throw new NoPropException($"--warmup-epochs {w}: must lie in [0, --epochs {epochs})");
        if (!(FinalFraction >= 0 && FinalFraction <= 1)) throw new NoPropException("the final learning-rate fraction must lie in [0, 1]");
    }

    /// <summary>The multiplier of the peak learning rate at progress <paramref name="progress"/> ∈ [0, 1] of a run of <paramref name="epochs"/> epochs.</summary>
    public double Factor(double progress, int epochs)
    {
        double p = Math.Clamp(progress, 0, 1);
        double warmup = (WarmupEpochs ?? (Kind == LearningRateScheduleKind.OneCycle ? 0.3 * epochs : 0)) / epochs;
        switch (Kind)
        {
            case LearningRateScheduleKind.Constant:
                return warmup > 0 && p < warmup ? p / warmup : 1.0;
            case LearningRateScheduleKind.Cosine:
            {
                if (warmup > 0 && p < warmup) return p / warmup;
                double q = warmup >= 1 ? 1 : (p - warmup) / (1 - warmup);
                return FinalFraction + (1 - FinalFraction) * 0.5 * (1 + Math.Cos(Math.PI * q));
            }
            case LearningRateScheduleKind.OneCycle:
            {
                const double start = 1.0 / 25, finalFactor = start / 1e4;   // PyTorch: initial = max/25, final = initial/10⁴
                if (p < warmup) return start + (1 - start) * 0.5 * (1 - Math.Cos(Math.PI * p / warmup));
                double q = warmup >= 1 ? 1 : (p - warmup) / (1 - warmup);
                return finalFactor + (1 - finalFactor) * 0.5 * (1 + Math.Cos(Math.PI * q));
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(Kind));
        }
    }
}
