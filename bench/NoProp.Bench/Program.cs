using System.Diagnostics;
using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Methods.DiscreteTime;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Training;
using static TorchSharp.torch;

// Micro-benchmarks of the hot paths. Usage: dotnet run -c Release --project bench/NoProp.Bench -- dt-step [batch] [iterations]
TorchRuntime.Initialize();
var command = args.Length > 0 ? args[0] : "dt-step";
int batch = args.Length > 1 ? int.Parse(args[1]) : 128;
int iterations = args.Length > 2 ? int.Parse(args[2]) : 30;

var data = Datasets.Load("mnist").Train.Take(batch);
var (x, y) = data.ToTensors();
var config = new ModelConfig
{
    ClassNames = Datasets.DigitClassNames.ToArray(), NormalizationMean = Normalization.Mnist.Mean, NormalizationStd = Normalization.Mnist.Std,
    Embedding = LabelEmbeddingKind.OneHot, EmbeddingDimension = 10, Blocks = 10, Image = new ImageShape(1, 28, 28),
};
TorchRuntime.Seed(1);
using var method = new NoPropDt(config);

double Time(string name, Action action)
{
    for (int i = 0; i < 3; i++) action();
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < iterations; i++) action();
    double ms = sw.Elapsed.TotalMilliseconds / iterations;
    Console.WriteLine($"{name,-28} {ms,8:F2} ms  ({batch / ms * 1000,7:F0} images/s)");
    return ms;
}

switch (command)
{
    case "dt-step":
        {
            method.Network.train();
            var block = method.DtNetwork.Blocks[4];
            var z = randn(batch, 10);
            Time("block forward (train mode)", () => { using var s = NewDisposeScope(); block.forward(x, z); });
            Time("block forward+backward", () => { using var s = NewDisposeScope(); block.forward(x, z).sum().backward(); });
            Time("TrainStep (fwd+bwd+2×AdamW)", () => method.TrainStep(4, x, y).Dispose());
            method.Network.eval();
            using (no_grad())
                Time("inference chain (10 blocks)", () => { using var s = NewDisposeScope(); method.PredictProbabilities(x, new InferenceOptions()); });
            break;
        }
    case "dt-fused":
        {
            // One minibatch through all T blocks: Algorithm 1's T separate steps against the parallel schedule's one fused
            // step; inference through the chain with per-block image paths against the fused, chunked image features.
            method.Network.train();
            Time("sequential: T TrainSteps", () => { for (int t = 0; t < config.Blocks; t++) method.TrainStep(t, x, y).Dispose(); });
            using var parallel = new NoPropDt(config with { BlockSchedule = BlockSchedule.Parallel });
            parallel.Network.train();
            double whole = Time("parallel: one fused TrainStep", () => parallel.TrainStep(0, x, y).Dispose());
            // Where the parallel step's time goes: the fused image paths, the whole fused forward, forward + backward.
            var zAll = randn(config.Blocks, batch, 10);
            double image = Time("  fused image paths (train)", () => { using var s = NewDisposeScope(); parallel.FusedBlocks.ImageFeatures(x); });
            double forward = Time("  fused forward (train)", () => { using var s = NewDisposeScope(); parallel.FusedBlocks.Logits(x, zAll); });
            double backward = Time("  fused forward+backward", () => { using var s = NewDisposeScope(); parallel.FusedBlocks.Logits(x, zAll).sum().backward(); });
            Console.WriteLine($"  breakdown: image paths forward {image / whole:P0}, label paths + heads forward {(forward - image) / whole:P0}, " +
                              $"backward {(backward - forward) / whole:P0}, optimiser steps and the rest {(whole - backward) / whole:P0}");
            method.Network.eval();
            using (no_grad())
            {
                Time("per-block image paths", () => { using var s = NewDisposeScope(); foreach (var b in method.DtNetwork.Blocks) b.ImageFeatures(x); });
                foreach (int chunk in new[] { 32, 64, 100, 128, 256, 500 })
                {
                    if (chunk > batch) continue;
                    method.ImageChunk = chunk;
                    Time($"fused image paths, chunk {chunk}", () => { using var s = NewDisposeScope(); method.ImageFeatures(x); });
                }
                method.ImageChunk = 100;
                Time("inference chain (fused)", () => { using var s = NewDisposeScope(); method.PredictProbabilities(x, new InferenceOptions()); });
            }
            break;
        }
    case "load":
        {
            // MNIST: gunzip + IDX parse of the embedded files, then the normalised float tensor of the training set.
            for (int run = 0; run < 3; run++)
            {
                var clock = Stopwatch.StartNew();
                var mnist = Datasets.Load("mnist");
                double read = clock.Elapsed.TotalSeconds;
                var (images, labels) = mnist.Train.ToTensors();
                Console.WriteLine($"MNIST: read {read:F3} s, + tensor of 60,000 images {clock.Elapsed.TotalSeconds - read:F3} s, total {clock.Elapsed.TotalSeconds:F3} s");
                images.Dispose(); labels.Dispose();
            }
            // CIFAR-10: files of the official size and layout (50,000 + 10,000 records of 3,073 bytes), random content.
            var dir = Path.Combine(Path.GetTempPath(), "noprop-bench-cifar10", "cifar-10-batches-bin");
            Directory.CreateDirectory(dir);
            var random = new Random(1);
            foreach (var name in new[] { "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch" })
            {
                var path = Path.Combine(dir, name + ".bin");
                if (File.Exists(path)) continue;
                var bytes = new byte[10_000 * 3073];
                random.NextBytes(bytes);
                for (int i = 0; i < 10_000; i++) bytes[i * 3073] = (byte)(bytes[i * 3073] % 10);
                File.WriteAllBytes(path, bytes);
            }
            for (int run = 0; run < 3; run++)
            {
                var clock = Stopwatch.StartNew();
                var cifar = CifarReader.LoadCifar10(Path.GetDirectoryName(dir)!);
                double read = clock.Elapsed.TotalSeconds;
                var (images, labels) = cifar.Train.ToTensors();
                Console.WriteLine($"CIFAR-10: read {read:F3} s, + tensor of 50,000 images {clock.Elapsed.TotalSeconds - read:F3} s, total {clock.Elapsed.TotalSeconds:F3} s");
                images.Dispose(); labels.Dispose();
            }
            break;
        }
    default:
        Console.Error.WriteLine($"unknown benchmark '{command}' (expected dt-step or load)");
        return 2;
}
return 0;
