using NoProp.Models;
using NoProp.Runtime;
using NoProp.Methods;
using static TorchSharp.torch;

namespace NoProp.Training;

/// <summary>Batched inference over a whole split.</summary>
public static class Evaluator
{
    /// <summary>Class probabilities [N, m] for all images, computed in batches under no_grad in eval mode.</summary>
    public static Tensor PredictProbabilities(INoPropMethod method, Tensor images, InferenceOptions options, int? batchSize = null)
    {
        int size = batchSize ?? options.BatchSize;
        if (size < 1) throw new NoPropException($"--inference-batch-size {size}: must be at least 1");
        bool wasTraining = method.Network.training;
        method.Network.eval();
        try
        {
            using var _ = no_grad();
            using var weights = InferenceWeightCache.UseForThisRun();   // the batches' stacked weights built once
            var parts = new List<Tensor>();
            long n = images.shape[0];
            for (long start = 0; start < n; start += size)
            {
                using var scope = NewDisposeScope();
                var batch = images.narrow(0, start, Math.Min(size, n - start));
                parts.Add(method.PredictProbabilities(batch, options).cpu().MoveToOuterDisposeScope());
            }
            var all = cat(parts, 0);
            foreach (var p in parts) p.Dispose();
            return all;
        }
        finally
        {
            if (wasTraining) method.Network.train();
        }
    }

    /// <summary>The fraction of rows whose argmax equals the label.</summary>
    public static double Accuracy(Tensor probabilities, Tensor labels)
    {
        using var scope = NewDisposeScope();
        return probabilities.argmax(1).eq(labels.cpu()).to_type(ScalarType.Float64).mean().item<double>();
    }

    public static double Accuracy(INoPropMethod method, Tensor images, Tensor labels, InferenceOptions options, int? batchSize = null)
    {
        using var probabilities = PredictProbabilities(method, images, options, batchSize);
        return Accuracy(probabilities, labels);
    }

    /// <summary>
    /// The seed of the inference noise with which training validates epoch <paramref name="epoch"/> of a run seeded
    /// <paramref name="runSeed"/>; <c>noprop eval --split validation</c> uses it to reproduce the recorded accuracy.
    /// </summary>
    public static long ValidationNoiseSeed(long runSeed, int epoch) => runSeed + epoch;

    /// <summary>A fresh generator for repeatable inference noise.</summary>
    public static Generator InferenceGenerator(long seed, Device? device = null) =>
        new Generator(unchecked((ulong)seed), device ?? CPU);
}
