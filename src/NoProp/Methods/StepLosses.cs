using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>
/// The loss terms a method reports, by name: the components of its objective (NoProp-DT: "cross_entropy", "kl",
/// "denoise"; the backprop baseline: "cross_entropy") and the total. The column names of losses in metrics.csv,
/// metrics.json and the run folder are <see cref="Columns"/>: the components, then "total".
/// </summary>
public sealed record LossLayout
{
    public const string TotalName = "total";

    public LossLayout(params string[] components)
    {
        if (components.Contains(TotalName)) throw new ArgumentException($"'{TotalName}' is the layout's own column", nameof(components));
        Components = components;
        Columns = [.. components, TotalName];
    }

    /// <summary>The named terms of the objective, in column order.</summary>
    public IReadOnlyList<string> Components { get; }

    /// <summary>The components, then "total".</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>A layout with no components: a single "total" column.</summary>
    public static LossLayout TotalOnly { get; } = new();

    /// <summary>
    /// One step's losses: <paramref name="terms"/> are the components in <see cref="Components"/> order. The values
    /// are detached and stay on the device. Call it in the training step's own dispose scope: the values move out of
    /// that scope to the step's caller with the returned record.
    /// </summary>
    public StepLosses Record(Tensor total, params Tensor[] terms)
    {
        if (terms.Length != Components.Count)
            throw new ArgumentException($"{terms.Length} loss terms for the {Components.Count} components {string.Join(", ", Components)}", nameof(terms));
        var values = terms.Length == 0 ? total.detach().reshape(1) : stack([.. terms, total]).detach();
        return new StepLosses(this, values.MoveToOuterDisposeScope());
    }
}

/// <summary>
/// The losses of one training step, laid out by a <see cref="LossLayout"/>: <see cref="Values"/> [columns] holds the
/// components and then the total, detached, on the training device (reading them syncs with the device: the training
/// loop sums them there and reads the sum only when it reports progress).
/// </summary>
public sealed class StepLosses : IDisposable
{
    internal StepLosses(LossLayout layout, Tensor values)
    {
        Layout = layout;
        Values = values;
    }

    public LossLayout Layout { get; }

    /// <summary>[<see cref="LossLayout.Columns"/>.Count]: the components, then the total.</summary>
    public Tensor Values { get; }

    /// <summary>The total (a view of <see cref="Values"/>).</summary>
    public Tensor Total => Values[^1];

    /// <summary>A component or "total", by name (a view of <see cref="Values"/>).</summary>
    public Tensor this[string name]
    {
        get
        {
            int i = Layout.Columns.ToList().IndexOf(name);
            return i >= 0 ? Values[i] : throw new KeyNotFoundException($"no loss '{name}' (the losses are {string.Join(", ", Layout.Columns)})");
        }
    }

    public void Dispose() => Values.Dispose();
}
