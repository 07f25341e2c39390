using NoProp.Runtime;
using NoProp.Models;
using NoProp.Solvers;
using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>
/// Inference shared by NoProp-CT and NoProp-FM: integrate dz/dt = f(z, t) from z_0 ~ N(0, I) over t ∈ [0, 1] with
/// the chosen solver, with the image features computed once per batch (or, for comparison, at every evaluation).
/// </summary>
public static class ContinuousInference
{
    /// <summary>The network's logits at (z, t) for a batch, given either cached features or the raw images.</summary>
    public delegate Tensor LogitsAt(Tensor z, Tensor t);

    /// <summary>Integrates <paramref name="drift"/> (built on top of the network) and returns z at t = 1.</summary>
    public static Tensor Integrate(
        CtDenoiser denoiser, Tensor x, int dimension, ModelConfig config, InferenceOptions options,
        Func<LogitsAt, Tensor, double, Tensor> drift)
    {
        using var precision = options.PrecisionRegion(config);   // the image path's, cached or not
        long batch = x.shape[0];
        // Chunks on the CPU (its caches); a GPU takes the whole batch at once, and so does a network in training mode
        // (a backbone's BatchNorm would then use per-chunk statistics).
        long chunk = x.device_type == TorchSharp.DeviceType.CPU && !denoiser.training ? ImageChunk : Math.Max(1, x.shape[0]);
        using var features = options.CacheImageFeatures ? Chunking.Map(x, chunk, denoiser.EncodeImage) : null;
        LogitsAt logits = features is not null
            ? (z, t) => denoiser.Logits(features, z, t)
            : (z, t) => denoiser.forward(x, z, t);
        // Deterministic inference starts from the prior's mean; the ODE itself has no noise.
        using var z0 = options.ZeroInitialState || options.Deterministic
            ? zeros(batch, dimension, device: x.device)
            : options.Noise([batch, dimension], x.device);
        var kind = options.Solver ?? config.Solver;
        var solver = OdeSolvers.Create(kind, new OdeSolverOptions());
        // Dopri5 chooses its own steps; a finer grid would only force it to stop at every point.
        double[] grid = kind == OdeSolverKind.Dopri5 ? [0.0, 1.0] : TimeGrid.Uniform(0.0, 1.0, options.Steps ?? config.InferenceSteps);
        var solution = solver.Integrate((z, t) => drift(logits, z, t), z0, grid);
        if (options.Statistics is not null)
        {
            options.Statistics.FunctionEvaluations += solution.FunctionEvaluations;
            options.Statistics.Batches++;
        }
        return solution.Z;
    }

    /// <summary>
    /// Images per image-encoder call when the features are cached: a batch of 1000 MNIST images gives conv1 an 86 MB
    /// activation (above glibc's mmap threshold, so mapped and faulted in afresh every batch) where chunks stay in
    /// cache. The features, and so the results, are the same (the encoder has no batch statistics in eval mode).
    /// CPU only: on a GPU the whole batch is one call.
    /// </summary>
    internal static int ImageChunk { get; set; } = 64;

    /// <summary>Class probabilities from the final z: the output head's softmax, or softmax(−‖z − u_c‖²) whose argmax is the nearest embedding.</summary>
    public static Tensor Classify(Tensor z, PredictionRule rule, TorchSharp.Modules.Linear outputHead, Tensor embedding) => rule switch
    {
        PredictionRule.OutputHead => nn.functional.softmax(outputHead.forward(z), 1),
        PredictionRule.NearestEmbedding => nn.functional.softmax(-cdist(z.unsqueeze(0), embedding.unsqueeze(0)).squeeze(0).Squared(), 1),
        _ => throw new ArgumentOutOfRangeException(nameof(rule)),
    };
}
