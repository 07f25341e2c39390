using static TorchSharp.torch;

namespace NoProp.Runtime;

/// <summary>Running a row-wise computation over a large batch in chunks of rows, so that its activations stay in cache.</summary>
public static class Chunking
{
    /// <summary>
    /// <paramref name="compute"/> on rows [start, start + chunk) of <paramref name="x"/> (dimension 0) for every chunk,
    /// the results concatenated along <paramref name="resultDimension"/>. Only for computations whose rows do not
    /// interact (no batch statistics): the result is then the same as one call on the whole batch.
    /// </summary>
    public static Tensor Map(Tensor x, long chunk, Func<Tensor, Tensor> compute, long resultDimension = 0)
    {
        if (chunk < 1) throw new ArgumentOutOfRangeException(nameof(chunk), chunk, "the chunk must hold at least one row");
        long n = x.shape[0];
        if (n <= chunk) return compute(x);
        var parts = new List<Tensor>();
        try
        {
            for (long start = 0; start < n; start += chunk)
            {
                var rows = x.narrow(0, start, Math.Min(chunk, n - start));
                var result = compute(rows);
                if (!ReferenceEquals(result, rows)) rows.Dispose();
                parts.Add(result);
            }
            return cat(parts, resultDimension);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }
}
