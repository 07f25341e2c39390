using static TorchSharp.torch;

namespace NoProp.ML.Scoring;

/// <summary>
/// Inference noise drawn row by row, each row from its own generator seeded by the model's scoring seed and a hash
/// of the row's features. DT draws noise at every block and CT/FM draw their initial z; with one shared generator a
/// row's noise would depend on its position in the batch, so the same image would score differently in
/// <c>Transform</c>, in a <c>PredictionEngine</c> and after reordering. Per-row generators make the score a function
/// of (model, row) only. The cost is one small draw per row and noise tensor (about 1 ms per 100 rows here).
/// </summary>
internal sealed class PerRowNoise : IDisposable
{
    private readonly Generator[] generators;

    public PerRowNoise(long seed, ReadOnlySpan<float> features, int rows, int featureSize)
    {
        generators = new Generator[rows];
        for (int r = 0; r < rows; r++)
            generators[r] = new Generator(RowSeed(seed, features.Slice(r * featureSize, featureSize)), CPU);
    }

    /// <summary>FNV-1a (64 bit) over the seed and the features' bits: stable across processes and machines, unlike string.GetHashCode.</summary>
    public static ulong RowSeed(long seed, ReadOnlySpan<float> features)
    {
        const ulong prime = 1099511628211UL;
        ulong hash = 14695981039346656037UL;
        void Mix(uint value)
        {
            for (int i = 0; i < 4; i++) { hash ^= (byte)(value >> (8 * i)); hash *= prime; }
        }
        Mix((uint)seed);
        Mix((uint)(seed >> 32));
        foreach (var v in features) Mix(BitConverter.SingleToUInt32Bits(v));
        return hash;
    }

    /// <summary>Standard normal noise of <paramref name="shape"/> [rows, ...]: row r from generator r.</summary>
    public Tensor Draw(long[] shape, Device device)
    {
        if (shape.Length == 0 || shape[0] != generators.Length)
            throw new InvalidOperationException($"noise for [{string.Join(", ", shape)}] asked of a batch of {generators.Length} rows");
        long[] rowShape = [1, .. shape[1..]];
        using var scope = NewDisposeScope();
        var rows = generators.Select(g => randn(rowShape, ScalarType.Float32, generator: g)).ToArray();
        return cat(rows, 0).to(device).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var g in generators) g.Dispose();
    }
}
