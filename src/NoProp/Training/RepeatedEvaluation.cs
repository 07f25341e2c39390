using NoProp.Models;
using System.Diagnostics;
using NoProp.Methods;
using static TorchSharp.torch;

namespace NoProp.Training;

/// <summary>What <see cref="RepeatedEvaluation.Run"/> measures.</summary>
public sealed record EvaluationRequest
{
    /// <summary>R, the number of inference runs; run r draws its noise from seed <see cref="Seed"/> + r.</summary>
    public int Runs { get; init; } = 1;
    public long Seed { get; init; } = 1;
    /// <summary>The inference settings of every run (its generator is replaced per run).</summary>
    public InferenceOptions Inference { get; init; } = new();
    /// <summary>Also the accuracy after every block (NoProp-DT, backprop).</summary>
    public bool PerBlock { get; init; }
    /// <summary>Also the image-only ablation (deterministic, so measured once).</summary>
    public bool ImageOnly { get; init; }
    public int BatchSize { get; init; } = InferenceOptions.DefaultBatchSize;
}

/// <summary>The accuracies of R runs (fractions), per block when asked, and the image-only accuracy when asked.</summary>
public sealed record EvaluationResult(double[] Accuracies, double[][]? PerBlock, double? ImageOnly, double SecondsPerRun)
{
    public (double Mean, double StandardError) Summary => Statistics.MeanAndStandardError(Accuracies);

    /// <summary>Mean and standard error over runs of the accuracy after block t (index t − 1).</summary>
    public (double Mean, double StandardError)[] PerBlockSummary() =>
        PerBlock is null ? [] : Enumerable.Range(0, PerBlock[0].Length).Select(b => Statistics.MeanAndStandardError(PerBlock.Select(r => r[b]).ToArray())).ToArray();
}

/// <summary>
/// Evaluates a model R times with independent inference noise (the paper reports mean ± standard error over
/// such runs), optionally with the per-block and image-only diagnostics of <see cref="ChainDiagnostics"/>.
/// With <see cref="EvaluationRequest.PerBlock"/> the model's accuracy is the last block's from the same pass.
/// </summary>
public static class RepeatedEvaluation
{
    public static EvaluationResult Run(INoPropMethod method, Tensor images, Tensor labels, EvaluationRequest request)
    {
        if (request.Runs < 1) throw new ArgumentOutOfRangeException(nameof(request), "at least one run");
        if (request.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(request), "the inference batch size must be at least 1");
        using var precision = request.Inference.PrecisionRegion(method.Config);   // also the diagnostics' image paths
        if (method is NoProp.Methods.DiscreteTime.NoPropDt dt) return RunSharingImageFeatures(dt, images, labels, request);
        var device = images.device;
        var accuracies = new double[request.Runs];
        double[][]? perBlock = request.PerBlock ? new double[request.Runs][] : null;
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < request.Runs; r++)
        {
            var options = Copy(request.Inference, Evaluator.InferenceGenerator(request.Seed + r, device));
            if (perBlock is null)
            {
                accuracies[r] = Evaluator.Accuracy(method, images, labels, options, request.BatchSize);
            }
            else
            {
                perBlock[r] = PerBlockAccuracy(method, images, labels, options, request.BatchSize);
                accuracies[r] = perBlock[r][^1];
            }
        }
        double secondsPerRun = clock.Elapsed.TotalSeconds / request.Runs;
        double? imageOnly = request.ImageOnly ? ImageOnlyAccuracy(method, images, labels, request.BatchSize) : null;
        return new EvaluationResult(accuracies, perBlock, imageOnly, secondsPerRun);
    }

    /// <summary>
    /// NoProp-DT: batches outside, runs inside, so each batch's image features (every block's, one fused computation)
    /// are computed once and serve all R runs, the per-block accuracies and the image-only ablation. Run r keeps its
    /// own generator across batches, so every run draws exactly the noise it would draw alone: the accuracies equal
    /// R separate passes.
    /// </summary>
    private static EvaluationResult RunSharingImageFeatures(NoProp.Methods.DiscreteTime.NoPropDt method, Tensor images, Tensor labels, EvaluationRequest request)
    {
        var device = images.device;
        int runs = request.Runs, blocks = method.Config.Blocks;
        var options = Enumerable.Range(0, runs).Select(r => Copy(request.Inference, Evaluator.InferenceGenerator(request.Seed + r, device))).ToArray();
        var correct = new long[runs, blocks];
        long imageOnlyCorrect = 0;
        long n = images.shape[0];
        var clock = Stopwatch.StartNew();
        double imageOnlySeconds = 0;
        InEvalMode(method, () =>
        {
            for (long start = 0; start < n; start += request.BatchSize)
            {
                using var scope = NewDisposeScope();
                long count = Math.Min(request.BatchSize, n - start);
                var y = labels.narrow(0, start, count);
                var features = method.ImageFeatures(images.narrow(0, start, count));
                for (int r = 0; r < runs; r++)
                {
                    using var runScope = NewDisposeScope();
                    if (request.PerBlock)
                    {
                        int run = r;
                        method.RunChainFromImageFeatures(features, options[r],
                            step => correct[run, step.Step - 1] += method.HeadProbabilities(step.Z).argmax(1).eq(y).sum().item<long>());
                    }
                    else
                    {
                        correct[r, blocks - 1] += method.PredictFromImageFeatures(features, options[r]).argmax(1).eq(y).sum().item<long>();
                    }
                }
                if (request.ImageOnly)
                {
                    var imageOnlyClock = Stopwatch.StartNew();
                    var z = zeros(count, method.Config.EmbeddingDimension, device: device);
                    imageOnlyCorrect += method.DtNetwork.Blocks[0].Logits(features[0], z).argmax(1).eq(y).sum().item<long>();
                    imageOnlySeconds += imageOnlyClock.Elapsed.TotalSeconds;
                }
            }
        });
        double secondsPerRun = (clock.Elapsed.TotalSeconds - imageOnlySeconds) / runs;
        var accuracies = Enumerable.Range(0, runs).Select(r => correct[r, blocks - 1] / (double)n).ToArray();
        double[][]? perBlockAccuracies = request.PerBlock
            ? Enumerable.Range(0, runs).Select(r => Enumerable.Range(0, blocks).Select(b => correct[r, b] / (double)n).ToArray()).ToArray()
            : null;
        return new EvaluationResult(accuracies, perBlockAccuracies, request.ImageOnly ? imageOnlyCorrect / (double)n : null, secondsPerRun);
    }

    private static InferenceOptions Copy(InferenceOptions o, Generator generator) => o with { Generator = generator, NoiseSource = null };

    /// <summary>Accuracy after each block over the whole split, in batches.</summary>
    public static double[] PerBlockAccuracy(INoPropMethod method, Tensor images, Tensor labels, InferenceOptions options, int batchSize = 1000)
    {
        long[]? correct = null;
        InEvalMode(method, () =>
        {
            long n = images.shape[0];
            for (long start = 0; start < n; start += batchSize)
            {
                using var scope = NewDisposeScope();
                long count = Math.Min(batchSize, n - start);
                var batch = images.narrow(0, start, count);
                var y = labels.narrow(0, start, count);
                var blocks = ChainDiagnostics.PerBlockProbabilities(method, batch, options);
                correct ??= new long[blocks.Count];
                for (int b = 0; b < blocks.Count; b++)
                    correct[b] += blocks[b].argmax(1).eq(y).sum().item<long>();
            }
        });
        return correct!.Select(c => c / (double)images.shape[0]).ToArray();
    }

    public static double ImageOnlyAccuracy(INoPropMethod method, Tensor images, Tensor labels, int batchSize = 1000)
    {
        long correct = 0;
        InEvalMode(method, () =>
        {
            long n = images.shape[0];
            for (long start = 0; start < n; start += batchSize)
            {
                using var scope = NewDisposeScope();
                long count = Math.Min(batchSize, n - start);
                var p = ChainDiagnostics.ImageOnlyProbabilities(method, images.narrow(0, start, count));
                correct += p.argmax(1).eq(labels.narrow(0, start, count)).sum().item<long>();
            }
        });
        return correct / (double)images.shape[0];
    }

    private static void InEvalMode(INoPropMethod method, Action action)
    {
        bool wasTraining = method.Network.training;
        method.Network.eval();
        try
        {
            using var _ = no_grad();
            using var weights = InferenceWeightCache.UseForThisRun();   // the batches' stacked weights built once
            action();
        }
        finally
        {
            if (wasTraining) method.Network.train();
        }
    }
}
