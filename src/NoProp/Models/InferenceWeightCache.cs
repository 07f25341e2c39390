using static TorchSharp.torch;

namespace NoProp.Models;

/// <summary>
/// The fused encoders' stacked and packed inference weights (<see cref="FusedDtBlocks"/>: the T blocks' convolutions
/// concatenated, Winograd's transformed weights, the FC layers packed for their kernel), kept across calls while the
/// cache is current on a thread (<see cref="Use"/>) instead of being rebuilt for every batch: MNIST's DT model packs
/// ~50 MB of them, in 20–30 ms. For runs of inference over parameters that do not change: an evaluation's batches
/// (<c>Evaluator</c>), a trained model's scorer (ML.NET). Training, autograd and anything that changes the parameters
/// must happen outside: the cache does not see parameter updates. One cache serves one thread at a time (its users
/// serialise: a scorer holds its lock, an evaluation runs on its thread).
/// </summary>
public sealed class InferenceWeightCache : IDisposable
{
    [ThreadStatic] private static InferenceWeightCache? current;

    private readonly List<(object[] Key, IDisposable Value)> entries = [];
    private bool disposed;

    /// <summary>The cache current on this thread, if any.</summary>
    internal static InferenceWeightCache? Current => current;

    /// <summary>Makes this cache the thread's current one until the returned handle is disposed (then the previous one).</summary>
    public IDisposable Use()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var previous = current;
        current = this;
        return new Restore(previous);
    }

    /// <summary>
    /// A cache current on this thread for the caller's run of inference: a new one (the returned handle disposes it),
    /// or none where one is current already (an outer caller's, e.g. a scorer's: the handle does nothing).
    /// </summary>
    public static IDisposable UseForThisRun()
    {
        if (current is not null) return new Restore(current);
        var cache = new InferenceWeightCache();
        return new Owned(cache, cache.Use());
    }

    /// <summary>How many sets of weights it holds (tests).</summary>
    internal int Count => entries.Count;

    /// <summary>The value built for <paramref name="key"/> (element by element: references, or equal values), built now if none.</summary>
    internal T GetOrAdd<T>(object[] key, Func<T> build) where T : class, IDisposable
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        foreach (var (k, v) in entries)
            if (k.Length == key.Length && k.Zip(key).All(p => ReferenceEquals(p.First, p.Second) || Equals(p.First, p.Second)))
                return (T)v;
        var value = build();
        entries.Add((key, value));
        return value;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (ReferenceEquals(current, this)) current = null;   // disposed while in use on this thread: no longer current
        foreach (var (_, value) in entries) value.Dispose();
        entries.Clear();
    }

    /// <summary>Whether it has been disposed (tests).</summary>
    internal bool IsDisposed => disposed;

    private sealed class Restore(InferenceWeightCache? previous) : IDisposable
    {
        private bool done;

        public void Dispose()
        {
            if (done) return;
            done = true;
            current = previous;
        }
    }

    private sealed class Owned(InferenceWeightCache cache, IDisposable use) : IDisposable
    {
        public void Dispose()
        {
            use.Dispose();
            cache.Dispose();
        }
    }
}
