using NoProp.Data;
using NoProp.Methods;
using NoProp.Training;
using static TorchSharp.torch;

namespace NoProp.ML.Scoring;

/// <summary>
/// Turns feature rows into class probabilities with a trained method: reshape to [B, C, H, W], normalise, infer.
/// Every row's inference noise comes from a generator of its own (<see cref="PerRowNoise"/>), so a row's score
/// depends only on the model and the row, not on the batch it is scored in. One scorer may serve several cursors
/// and prediction engines; TorchSharp modules are not meant to run concurrently, so inference is serialised.
/// </summary>
internal sealed class BatchScorer : IDisposable
{
    private readonly INoPropMethod method;
    private readonly Normalization normalization;
    private readonly Device device;
    private readonly long seed;
    private readonly object inferenceLock = new();

    // The model's stacked and packed inference weights, built on the first call and kept: a trained model does not
    // change, and single rows (a prediction engine) would otherwise rebuild them for every row.
    private readonly NoProp.Models.InferenceWeightCache weights = new();

    private readonly NoProp.Runtime.InferencePrecision precision;

    public BatchScorer(INoPropMethod method, long seed, NoProp.Runtime.InferencePrecision precision)
    {
        this.method = method;
        this.seed = seed;
        this.precision = precision;
        var config = method.Config;
        normalization = new Normalization(config.NormalizationMean, config.NormalizationStd);
        device = method.Device;
        FeatureSize = config.Image.Size;
        ClassCount = config.ClassCount;
    }

    public int FeatureSize { get; }
    public NoProp.Models.ImageShape Image => method.Config.Image;
    public int ClassCount { get; }

    /// <summary>The inference settings for one batch of raw feature rows: the model's solver and steps, per-row noise.</summary>
    public InferenceOptions InferenceOptionsFor(ReadOnlySpan<float> features, int rows, out PerRowNoise noise)
    {
        noise = new PerRowNoise(seed, features, rows, FeatureSize);
        return new InferenceOptions { NoiseSource = noise.Draw, Precision = precision };
    }

    /// <summary>Scores <paramref name="rows"/> rows of <paramref name="features"/> into <paramref name="probabilities"/> (rows × K).</summary>
    public void Score(ReadOnlySpan<float> features, int rows, Span<float> probabilities)
    {
        if (rows == 0) return;
        var image = method.Config.Image;
        float[] batch = features[..(rows * FeatureSize)].ToArray();
        lock (inferenceLock)
        {
            using var scope = NewDisposeScope();
            using var cached = weights.Use();
            var options = InferenceOptionsFor(batch, rows, out var noise);
            using (noise)
            {
                var x = normalization.ApplyInPlace(tensor(batch, [rows, image.Channels, image.Height, image.Width]).to(device));
                // One call: Evaluator switches to eval mode and no_grad, as the CLI's evaluation does.
                var result = Evaluator.PredictProbabilities(method, x, options, batchSize: rows);
                using var values = result.to_type(ScalarType.Float32).contiguous().data<float>();
                values.CopyTo(probabilities[..(rows * ClassCount)]);
            }
        }
    }

    /// <summary>Frees the cached inference weights (the transformer's Dispose); scoring afterwards throws.</summary>
    public void Dispose()
    {
        lock (inferenceLock) weights.Dispose();
    }

    /// <summary>The predicted key (argmax + 1; 0 when no probability is a number).</summary>
    public static uint PredictedKey(ReadOnlySpan<float> probabilities)
    {
        int best = -1;
        float bestValue = float.NegativeInfinity;
        for (int i = 0; i < probabilities.Length; i++)
            if (probabilities[i] > bestValue) { best = i; bestValue = probabilities[i]; }
        return (uint)(best + 1);
    }
}
