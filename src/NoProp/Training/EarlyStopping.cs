using NoProp.Runtime;

namespace NoProp.Training;

/// <summary>
/// Early stopping on validation accuracy, as Keras' EarlyStopping (mode "max") counts it: a validation improves when it
/// beats the best accuracy so far by more than <see cref="MinDelta"/>; training stops once <see cref="Patience"/>
/// validations in a row did not. The model keeps the best epoch's weights either way (the trainer's model selection).
/// </summary>
public sealed record EarlyStopping
{
    public EarlyStopping(int patience, double minDelta = 0)
    {
        if (patience < 1) throw new NoPropException($"--early-stopping-patience must be at least 1, got {patience}");
        if (!(minDelta >= 0 && minDelta < 1)) throw new NoPropException($"--early-stopping-min-delta must lie in [0, 1) (an accuracy difference), got {minDelta}");
        Patience = patience;
        MinDelta = minDelta;
    }

    /// <summary>Validations without improvement that end training.</summary>
    public int Patience { get; }

    /// <summary>The accuracy gain (a fraction, 0.001 = 0.1 point) that counts as an improvement.</summary>
    public double MinDelta { get; }

    /// <summary>True when the validations in <paramref name="history"/> end with <see cref="Patience"/> that did not improve.</summary>
    public bool ShouldStop(IEnumerable<EpochRecord> history)
    {
        double best = double.NegativeInfinity;
        int withoutImprovement = 0;
        foreach (var record in history)
        {
            if (record.ValidationAccuracy is not double accuracy) continue;
            if (accuracy - MinDelta > best)
            {
                best = accuracy;
                withoutImprovement = 0;
            }
            else
            {
                withoutImprovement++;
            }
        }
        return withoutImprovement >= Patience;
    }
}
