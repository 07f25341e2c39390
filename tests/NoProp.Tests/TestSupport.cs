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
}

internal static class TensorAssertions
{
    /// <summary>Same shape and bitwise-equal values.</summary>
    public static bool SameAs(this TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    public static bool CloseTo(this TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b, double tolerance = 1e-5) =>
        a.shape.SequenceEqual(b.shape) && (a - b).abs().max().item<float>() <= tolerance;
}
