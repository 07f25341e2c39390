using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Models;
using NoProp.Runtime;

[assembly: Parallelize(Workers = 1, Scope = ExecutionScope.ClassLevel)]

namespace NoProp.Tests;

/// <summary>Shared helpers: the embedded MNIST (loaded once) and small model configurations.</summary>
internal static class TestSupport
{
    private static readonly Lazy<DatasetPair> mnist = new(() =>
    {
        TorchRuntime.Initialize();
        return Datasets.Load("mnist");
    });

    public static DatasetPair Mnist => mnist.Value;

    public static string TempDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "noprop-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static ModelConfig Config(LabelEmbeddingKind embedding = LabelEmbeddingKind.OneHot, int blocks = 3, int? learnedDim = null)
    {
        var image = new ImageShape(1, 28, 28);
        return new ModelConfig
        {
            Method = MethodKind.DiscreteTime,
            Dataset = "mnist",
            Image = image,
            ClassNames = Datasets.DigitClassNames.ToArray(),
            NormalizationMean = Normalization.Mnist.Mean,
            NormalizationStd = Normalization.Mnist.Std,
            Embedding = embedding,
            EmbeddingDimension = ModelConfig.DefaultEmbeddingDimension(embedding, 10, image, learnedDim),
            Blocks = blocks,
        };
    }

    /// <summary>
    /// How many more tensors are alive after <paramref name="action"/> than before, exactly: a full collection first
    /// (so tensors earlier code left to the garbage collector are gone), then no collection inside the window (so
    /// none of those is finalized there and offsets a leak). Counts every thread's tensors: the tests run one at a time.
    /// </summary>
    public static long TensorsLeftAlive(Action action)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        bool noGc = GC.TryStartNoGCRegion(200_000_000);
        try
        {
            long before = TorchSharp.torch.Tensor.TotalCount;
            action();
            return TorchSharp.torch.Tensor.TotalCount - before;
        }
        finally
        {
            if (noGc && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        }
    }
}

internal static class TensorAssertions
{
    /// <summary>Same shape and bitwise-equal values.</summary>
    public static bool SameAs(this TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    public static bool CloseTo(this TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b, double tolerance = 1e-5) =>
        a.shape.SequenceEqual(b.shape) && (a - b).abs().max().item<float>() <= tolerance;

    /// <summary>The same float bit patterns (signed zeros and NaNs included) and shape, or a failure counting the differences.</summary>
    public static void AssertSameBits(TorchSharp.torch.Tensor expected, TorchSharp.torch.Tensor actual, string what)
    {
        CollectionAssert.AreEqual(expected.shape, actual.shape, what);
        static int[] Bits(TorchSharp.torch.Tensor t) => t.contiguous().data<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();
        int[] a = Bits(expected), b = Bits(actual);
        int differ = a.Zip(b).Count(pair => pair.First != pair.Second);
        Assert.AreEqual(0, differ, $"{what}: {differ} of {a.Length} elements differ");
    }
}
