namespace NoProp.Runtime;

/// <summary>What a random stream is used for; part of every derived seed, so two purposes never share a stream.</summary>
public enum SeedPurpose : long
{
    /// <summary>The train/validation split of a data set's training images.</summary>
    DataSplit = 1,
    /// <summary>The order of the training images in one (epoch, stage).</summary>
    BatchOrder = 2,
    /// <summary>torch's generator during one training step: marginal noise, t ~ U(0, 1), dropout, augmentation.</summary>
    TrainingStep = 3,
    /// <summary>The sample of class members a prototype embedding is chosen from.</summary>
    PrototypeSample = 4,
    /// <summary>The held-out test files of an image folder without a test/ sub-folder.</summary>
    FolderTestSplit = 5,
    /// <summary>The ML.NET estimator's train/validation split of its input rows.</summary>
    EstimatorSplit = 6,
}

/// <summary>
/// The one place where random streams are derived from a run's seed. Every stream is a pure function of
/// (seed, purpose, indices) through SplitMix64's finaliser: stable across processes, machines and .NET
/// versions (unlike <see cref="HashCode"/>, which .NET seeds randomly in every process, or
/// <see cref="Random"/>(int), whose algorithm is not guaranteed across versions). Because each training step
/// re-seeds torch's generator from (seed, epoch, stage, batch), a run resumed anywhere, in any process and on any
/// device, draws exactly the numbers the uninterrupted run draws.
/// </summary>
public static class SeedStreams
{
    internal const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>SplitMix64's output function: a bijective avalanche mix of 64 bits.</summary>
    public static ulong Mix(ulong x)
    {
        x = unchecked(x + Golden);
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    /// <summary>The seed of the stream for <paramref name="purpose"/> at the given indices (e.g. epoch, stage, batch).</summary>
    public static ulong Derive(long seed, SeedPurpose purpose, params ReadOnlySpan<long> indices)
    {
        ulong h = Mix(unchecked((ulong)seed));
        h = Mix(h ^ unchecked((ulong)purpose));
        foreach (var i in indices) h = Mix(h ^ unchecked((ulong)i));
        return h;
    }

    /// <summary>A generator for the stream <see cref="Derive"/> names.</summary>
    public static StableRandom Random(long seed, SeedPurpose purpose, params ReadOnlySpan<long> indices) =>
        new(Derive(seed, purpose, indices));

    /// <summary>
    /// Seeds torch's global generators (CPU and every CUDA device) for one training step. torch's manual_seed
    /// takes a non-negative 63-bit value, so the top bit is dropped.
    /// </summary>
    public static void SeedTrainingStep(long seed, int epoch, int stage, int batch) =>
        TorchRuntime.Seed((long)(Derive(seed, SeedPurpose.TrainingStep, epoch, stage, batch) >> 1));
}

/// <summary>
/// A small, fast generator (SplitMix64) whose sequence depends only on its seed: the same numbers in every
/// process and every .NET version. Used for shuffles and samples on the host.
/// </summary>
public sealed class StableRandom(ulong seed)
{
    private ulong state = seed;

    public ulong NextUInt64()
    {
        ulong x = state;
        state = unchecked(state + SeedStreams.Golden);
        return SeedStreams.Mix(x);
    }

    /// <summary>A uniform integer in [0, <paramref name="exclusiveMax"/>), without modulo bias (Lemire's method).</summary>
    public int NextInt(int exclusiveMax)
    {
        if (exclusiveMax <= 0) throw new ArgumentOutOfRangeException(nameof(exclusiveMax), "the range must not be empty");
        ulong bound = (ulong)exclusiveMax;
        ulong threshold = (0UL - bound) % bound;
        while (true)
        {
            ulong r = NextUInt64();
            UInt128 product = (UInt128)r * bound;
            if ((ulong)product >= threshold) return (int)(ulong)(product >> 64);
        }
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    public void Shuffle<T>(T[] items) => Shuffle(items.AsSpan());
}
