using System.Diagnostics;
using TorchSharp;
using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Methods.DiscreteTime;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

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

// BENCH_THREADS=1: one intra-op thread; then the process's CPU time per iteration (printed beside the wall time)
// hardly depends on other load on the machine, so A/B comparisons can be made on a busy one.
if (Environment.GetEnvironmentVariable("BENCH_THREADS") is string threads) set_num_threads(int.Parse(threads));
// BENCH_CROP=0: the convolutions over whole images instead of their receptive field (the same results; for the timing).
if (Environment.GetEnvironmentVariable("BENCH_CROP") == "0") ConvImageEncoder.CropInputs = false;

double Time(string name, Action action)
{
    for (int i = 0; i < 3; i++) action();
    var process = Process.GetCurrentProcess();
    var cpu = process.TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < iterations; i++) action();
    double ms = sw.Elapsed.TotalMilliseconds / iterations;
    process.Refresh();
    double cpuMs = (process.TotalProcessorTime - cpu).TotalMilliseconds / iterations;
    Console.WriteLine($"{name,-28} {ms,8:F2} ms  ({batch / ms * 1000,7:F0} images/s), CPU {cpuMs,8:F2} ms");
    return ms;
}

// Bytes malloc'd and not freed (heap and mmapped), MB.
static double LiveMb() { var m = MallInfo.mallinfo2(); return (double)(m.uordblks + m.hblkhd) / (1 << 20); }

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
    case "memory":
        {
            // What the parallel schedule's fused step holds: RSS over six steps, glibc's heap, and the bytes autograd
            // keeps between the forward and the backward pass of one minibatch (live malloc'd bytes, mallinfo2).
            // The replica's side: bench/pytorch/step_bench.py --memory.
            static string Rss() => string.Join(", ", File.ReadAllLines("/proc/self/status").Where(l => l.StartsWith("VmRSS") || l.StartsWith("VmHWM"))
                .Select(l => l.Split(':', StringSplitOptions.TrimEntries) switch { var f => $"{f[0]} {long.Parse(f[1].Split(' ')[0]) / 1024} MB" }));
            using var parallel = new NoPropDt(config with { BlockSchedule = BlockSchedule.Parallel });
            parallel.Network.train();
            Console.WriteLine($"before the first step: {Rss()}");
            for (int i = 1; i <= 6; i++)
            {
                parallel.TrainStep(0, x, y).Dispose();
                var heap = MallInfo.mallinfo2();
                Console.WriteLine($"after step {i}: {Rss()}; glibc heap {heap.arena / 1048576.0:F0} MB, in use {heap.uordblks / 1048576.0:F0} MB");
            }
            var zAll = randn(config.Blocks, batch, 10);
            double before = LiveMb();
            using (var s = NewDisposeScope())
            {
                var loss = parallel.FusedBlocks.Logits(x, zAll).sum();
                Console.WriteLine($"kept by autograd between the fused forward and backward pass: {LiveMb() - before:F1} MB");
                loss.backward();
            }
            Console.WriteLine($"left after the backward pass: {LiveMb() - before:F1} MB");
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
            parallel.Network.eval();   // the same computation with autograd, without dropout (and BN on running statistics)
            Time("  fused forward (eval mode, grad)", () => { using var s = NewDisposeScope(); parallel.FusedBlocks.Logits(x, zAll); });
            Time("  fused forward+backward (eval mode)", () => { using var s = NewDisposeScope(); parallel.FusedBlocks.Logits(x, zAll).sum().backward(); });
            parallel.Network.train();
            Console.WriteLine($"  breakdown: image paths forward {image / whole:P0}, label paths + heads forward {(forward - image) / whole:P0}, " +
                              $"backward {(backward - forward) / whole:P0}, optimiser steps and the rest {(whole - backward) / whole:P0}");
            method.Network.eval();
            using (no_grad())
            {
                Time("per-block image paths", () => { using var s = NewDisposeScope(); foreach (var b in method.DtNetwork.Blocks) b.ImageFeatures(x); });
                foreach (bool channelsLast in new[] { false, true, false, true })
                {
                    FusedDtBlocks.ChannelsLastInference = channelsLast;
                    foreach (int chunk in new[] { 32, 64, 100, 128, 256, 500 })
                    {
                        if (chunk > batch) continue;
                        method.ImageChunk = chunk;
                        Time($"fused image paths, chunk {chunk}{(channelsLast ? ", channels-last" : ", NCHW")}", () => { using var s = NewDisposeScope(); method.ImageFeatures(x); });
                    }
                }
                method.ImageChunk = 100;
                Time("inference chain (fused)", () => { using var s = NewDisposeScope(); method.PredictProbabilities(x, new InferenceOptions()); });
            }
            break;
        }
    case "features":
        {
            // Inference: every block's image features (fused, chunks of 64) and the whole chain, NCHW against
            // channels-last convolutions, alternated so that a busy machine's drift hits both alike.
            method.Network.eval();
            using var _ = no_grad();
            foreach (bool channelsLast in new[] { false, true, false, true, false, true })
            {
                FusedDtBlocks.ChannelsLastInference = channelsLast;
                string layout = channelsLast ? "channels-last" : "NCHW";
                Time($"image features, {layout}", () => { using var s = NewDisposeScope(); method.ImageFeatures(x); });
                Time($"inference chain, {layout}", () => { using var s = NewDisposeScope(); method.PredictProbabilities(x, new InferenceOptions()); });
            }
            break;
        }
    case "grouped-conv":
        {
            // conv2 and conv3 of the fused inference stack (T = 10, receptive-field crop, channels-last, `batch` images):
            // libtorch's oneDNN convolution against the kernel written here (GroupedConvolution), alternated, GFLOP/s.
            using var _ = no_grad();
            int T = config.Blocks;
            static Tensor CL(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
            // conv1: one group of T × 32 channels over the one-channel image (the kernel then pools; oneDNN does not here).
            foreach (var (name, side, groups, inPerGroup, outPerGroup) in new[] { ("conv1", 26L, 1L, 1L, T * 32L), ("conv2", 12L, T, 32L, 64L), ("conv3", 10L, T, 64L, 128L) })
            {
                var input = CL(randn(batch, groups * inPerGroup, side, side).relu_());
                var weight = CL(randn(groups * outPerGroup, inPerGroup, 3, 3) * 0.05);
                var bias = randn(groups * outPerGroup) * 0.1;
                var packed = GroupedConvolution.Pack(weight, groups);
                double flop = 2.0 * batch * groups * outPerGroup * inPerGroup * 9 * (side - 2) * (side - 2);
                using (var a = nn.functional.conv2d(input, weight, bias, groups: groups))
                using (var b = GroupedConvolution.Apply(input, packed, bias, relu: false))
                    Console.WriteLine($"{name}: max |oneDNN − kernel| {(a - b).abs().max().item<float>():G3} (max |out| {a.abs().max().item<float>():G3})");
                for (int round = 0; round < 3; round++)
                {
                    double ms = Time($"  {name} oneDNN", () => nn.functional.conv2d(input, weight, bias, groups: groups).Dispose());
                    Console.WriteLine($"      {flop / ms / 1e6:F0} GFLOP/s, {ms / batch:F4} ms per image");
                    // conv3 is pooled in the model: its F(4×4, 3×3) tiles cover the pooling windows (the pooled kernel is timed).
                    bool pool = name == "conv3";
                    foreach (var algorithm in Enum.GetValues<GroupedConvolution.Algorithm>())
                    {
                        GroupedConvolution.Largest = algorithm;
                        var plan = GroupedConvolution.Plan(packed, side, side, pool);
                        if (plan.Length == 0 ? algorithm != GroupedConvolution.Algorithm.Direct : plan.Max(t => t.Algorithm) != algorithm) continue;
                        ms = Time($"  {name} kernel, {string.Join(" + ", plan.Select(t => $"{t.Algorithm} {t.Rows}×{t.Columns}").DefaultIfEmpty("direct"))}{(pool ? " (pooled)" : "")}", () => GroupedConvolution.Apply(input, packed, bias, relu: false, pool).Dispose());
                        Console.WriteLine($"      {flop / ms / 1e6:F0} GFLOP/s (direct-equivalent), {ms / batch:F4} ms per image");
                    }
                }
                GroupedConvolution.Largest = GroupedConvolution.Algorithm.Winograd4;
            }
            break;
        }
    case "features-kernel":
        {
            // Inference (image features, the whole chain) with the grouped convolutions in oneDNN against the kernel
            // written here, alternated.
            method.Network.eval();
            using var _ = no_grad();
            for (int mode = 0; mode < 15; mode++)
            {
                GroupedConvolution.Enabled = mode % 5 > 0;
                GroupedConvolution.Largest = (mode % 5) switch { 2 => GroupedConvolution.Algorithm.Winograd2, >= 3 => GroupedConvolution.Algorithm.Winograd4, _ => GroupedConvolution.Algorithm.Direct };
                GroupedLinear.Enabled = mode % 5 == 4;
                string name = (mode % 5) switch { 0 => "oneDNN", 1 => "kernel, direct", 2 => "kernel, F(2×2)", 3 => "kernel, F(4×4)", _ => "kernel, F(4×4), FC kernel" };
                Time($"image features, {name}", () => { using var s = NewDisposeScope(); method.ImageFeatures(x); });
                Time($"inference chain, {name}", () => { using var s = NewDisposeScope(); method.PredictProbabilities(x, new InferenceOptions()); });
            }
            break;
        }
    case "chain":
        {
            // The default DT inference chain only (for a profiler): `iterations` calls over `batch` images.
            method.Network.eval();
            using var _ = no_grad();
            Time("inference chain", () => { using var s = NewDisposeScope(); method.PredictProbabilities(x, new InferenceOptions()); });
            break;
        }
    case "chain-ab":
        {
            // The inference chain under the kernel variants, interleaved call by call (a drifting VM hits all alike):
            // minimum and median ms per variant over `iterations` calls each.
            method.Network.eval();
            using var _ = no_grad();
            var variants = new (string Name, Action Set)[]
            {
                ("oneDNN", () => { GroupedConvolution.Enabled = false; }),
                ("F(2×2), bmm", () => { GroupedConvolution.Enabled = true; GroupedConvolution.Largest = GroupedConvolution.Algorithm.Winograd2; GroupedLinear.Enabled = false; }),
                ("F(4×4), bmm", () => { GroupedConvolution.Enabled = true; GroupedConvolution.Largest = GroupedConvolution.Algorithm.Winograd4; GroupedLinear.Enabled = false; }),
                ("F(4×4), FC kernel", () => { GroupedConvolution.Enabled = true; GroupedConvolution.Largest = GroupedConvolution.Algorithm.Winograd4; GroupedLinear.Enabled = true; }),
            };
            var times = variants.Select(_ => new List<double>()).ToArray();
            for (int i = 0; i < iterations + 1; i++)
                for (int v = 0; v < variants.Length; v++)
                {
                    variants[v].Set();
                    var sw = Stopwatch.StartNew();
                    using (var s = NewDisposeScope()) method.PredictProbabilities(x, new InferenceOptions());
                    if (i > 0) times[v].Add(sw.Elapsed.TotalMilliseconds);   // the first round warms up
                }
            for (int v = 0; v < variants.Length; v++)
            {
                var sorted = times[v].Order().ToArray();
                Console.WriteLine($"{variants[v].Name,-22} min {sorted[0],8:F1} ms, median {sorted[sorted.Length / 2],8:F1} ms ({batch} images)");
            }
            variants[^1].Set();
            break;
        }
    case "chain-memory":
        {
            // Peak resident memory of inference over `batch` images in batches of 1000 (Evaluator; VmHWM after resetting
            // it), the kernels on and off, alternated, with glibc's free memory returned between calls.
            method.Network.eval();
            using var _ = no_grad();
            static long Status(string key) => long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(key + ":")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
            for (int round = 0; round < 3; round++)
                foreach (bool kernel in new[] { true, false })
                {
                    GroupedConvolution.Enabled = kernel;
                    TorchRuntime.ReturnFreeMemory(collectManaged: true);
                    long before = Status("VmRSS");
                    File.WriteAllText("/proc/self/clear_refs", "5");
                    using (var s = NewDisposeScope()) Evaluator.PredictProbabilities(method, x, new InferenceOptions(), Math.Min(batch, 1000));
                    Console.WriteLine($"kernels {(kernel ? "on " : "off")}: RSS before {before} MB, peak {Status("VmHWM")} MB (+{Status("VmHWM") - before}), after {Status("VmRSS")} MB");
                }
            GroupedConvolution.Enabled = true;
            break;
        }
    case "pack":
        {
            // The fused blocks' stacked and packed inference weights: one image's chain with them built per call against
            // held in an InferenceWeightCache (what a prediction engine scoring single rows pays), alternated.
            method.Network.eval();
            using var _ = no_grad();
            using var one = x.narrow(0, 0, 1);
            using var cache = new InferenceWeightCache();
            for (int round = 0; round < 3; round++)
            {
                Time("1 image, weights per call", () => { using var s = NewDisposeScope(); method.PredictProbabilities(one, new InferenceOptions()); });
                using (cache.Use())
                    Time("1 image, weights held", () => { using var s = NewDisposeScope(); method.PredictProbabilities(one, new InferenceOptions()); });
            }
            break;
        }
    case "bf16":
        {
            // Inference with the convolutions in bfloat16 (--inference-precision bf16) against float32, alternated.
            method.Network.eval();
            using var _ = no_grad();
            for (int r = 0; r < 3; r++)
                foreach (var precision in new[] { InferencePrecision.Float32, InferencePrecision.BFloat16 })
                    using (ConvolutionPrecision.Use(precision))
                    {
                        foreach (int chunk in new[] { 64, 256, batch })
                        {
                            method.ImageChunk = chunk;
                            Time($"image features, {precision.ToCliName()}, chunks of {chunk}", () => { using var s = NewDisposeScope(); method.ImageFeatures(x); });
                        }
                        method.ImageChunk = NoPropDt.DefaultImageChunk;
                        Time($"inference chain, {precision.ToCliName()}", () => { using var s = NewDisposeScope(); method.PredictProbabilities(x, new InferenceOptions { Precision = precision }); });
                    }
            using var a = method.ImageFeatures(x);
            using var region = ConvolutionPrecision.Use(InferencePrecision.BFloat16);
            using var b = method.ImageFeatures(x);
            Console.WriteLine($"image features: max |fp32 - bf16| {(a - b).abs().max().item<float>():G3}, max |fp32| {a.abs().max().item<float>():G3}");
            break;
        }
    case "stack-ops":
        {
            // The fused conv stack of one inference chunk (T = 10, `batch` images, channels-last), op by op, float32
            // against bfloat16: where the time goes besides the convolutions.
            using var _ = no_grad();
            int T = config.Blocks;
            foreach (var type in new[] { ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float32, ScalarType.BFloat16 })
            {
                Tensor CL(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
                var image = CL(randn(batch, 2, 26, 26).to_type(type));
                var w1 = CL(randn(T * 32, 2, 3, 3).to_type(type)); var b1 = randn(T * 32).to_type(type);
                var w2 = CL(randn(T * 64, 32, 3, 3).to_type(type)); var b2 = randn(T * 64).to_type(type);
                var w3 = CL(randn(T * 128, 64, 3, 3).to_type(type)); var b3 = randn(T * 128).to_type(type);
                var h1 = nn.functional.conv2d(image, w1, b1);
                var p1 = nn.functional.max_pool2d(h1, 2);
                var h2 = nn.functional.conv2d(p1, w2, b2, groups: T);
                var h3 = nn.functional.conv2d(h2, w3, b3, groups: T);
                var p3 = nn.functional.max_pool2d(h3, 2);
                Console.WriteLine($"{type}: conv1 out strides [{string.Join(",", h1.stride())}]");
                Time($"  conv1 {type}", () => nn.functional.conv2d(image, w1, b1).Dispose());
                Time($"  maxpool conv1 out {type}", () => nn.functional.max_pool2d(h1, 2).Dispose());
                Time($"  relu pooled {type}", () => nn.functional.relu(p1).Dispose());
                Time($"  conv2 {type}", () => nn.functional.conv2d(p1, w2, b2, groups: T).Dispose());
                Time($"  relu conv2 out {type}", () => nn.functional.relu(h2).Dispose());
                Time($"  relu_ conv2 out {type}", () => h2.relu_());
                Time($"  conv3 {type}", () => nn.functional.conv2d(h2, w3, b3, groups: T).Dispose());
                Time($"  maxpool conv3 out {type}", () => nn.functional.max_pool2d(h3, 2).Dispose());
                Time($"  to float32 {type}", () => p3.to_type(ScalarType.Float32).Dispose());
                Time($"  weights cat+cast+CL {type}", () => { using var s = NewDisposeScope(); CL(cat(Enumerable.Range(0, T).Select(t => w3.narrow(0, t * 128, 128)).ToArray(), 0).to_type(type)); });
            }
            break;
        }
    case "fc-bmm":
        {
            // The image paths' fused FC at inference: [T, B, 2048] × [T, 2048, 256], float32 against bfloat16.
            using var _ = no_grad();
            int T = config.Blocks;
            foreach (var type in new[] { ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float32, ScalarType.BFloat16 })
            {
                var a = randn(T, batch, 2048).to_type(type);
                var w = randn(T, 256, 2048).to_type(type);
                Time($"bmm {type}", () => a.bmm(w.transpose(1, 2)).Dispose());
                Time($"cast input + bmm + cast back {type}", () => { using var s = NewDisposeScope(); a.to_type(type).bmm(w.transpose(1, 2)).to_type(ScalarType.Float32); });
            }
            break;
        }
    case "fc-kernel":
        {
            // The image paths' fused FC at inference on conv3's channels-last output [B, T·128, 4, 4]: the reorder to
            // [T, B, 2048] + bmm (+ bias) against GroupedLinear reading the features as they lie, alternated.
            using var _ = no_grad();
            int T = config.Blocks;
            var features = randn(batch, T * 128, 4, 4).relu_().permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
            var weights = Enumerable.Range(0, T).Select(_ => randn(256, 2048) * 0.02).ToArray();
            var biases = Enumerable.Range(0, T).Select(_ => randn(256) * 0.1).ToArray();
            var stacked = stack(weights, 0).transpose(1, 2);
            var bias = stack(biases, 0).unsqueeze(1);
            var packed = GroupedLinear.Pack(weights, 128);
            var flatBias = cat(biases, 0);
            using (var a = features.reshape(batch, T, -1).transpose(0, 1).bmm(stacked).add_(bias))
            using (var b = GroupedLinear.Apply(features, packed, flatBias))
                Console.WriteLine($"max |bmm − kernel| {(a - b).abs().max().item<float>():G3} (max |out| {a.abs().max().item<float>():G3})");
            double flop = 2.0 * batch * T * 2048 * 256;
            for (int round = 0; round < 3; round++)
            {
                double ms = Time("  reorder + bmm", () => { using var s = NewDisposeScope(); features.reshape(batch, T, -1).transpose(0, 1).bmm(stacked).add_(bias); });
                Console.WriteLine($"      {flop / ms / 1e6:F0} GFLOP/s");
                ms = Time("  GroupedLinear", () => GroupedLinear.Apply(features, packed, flatBias).Dispose());
                Console.WriteLine($"      {flop / ms / 1e6:F0} GFLOP/s");
            }
            break;
        }
    case "bf16-train":
        {
            using var parallel = new NoPropDt(config with { BlockSchedule = BlockSchedule.Parallel });
            parallel.Network.train();
            var zAll = randn(config.Blocks, batch, 10);
            using var xb = x.to(bfloat16);
            using var zb = zAll.to(bfloat16);
            for (int r = 0; r < 3; r++)
            {
                parallel.Network.to(float32);
                Time("fused fwd+bwd fp32", () => { using var s = NewDisposeScope(); parallel.FusedBlocks.Logits(x, zAll).sum().backward(); });
                parallel.Network.to(bfloat16);
                Time("fused fwd+bwd bf16", () => { using var s = NewDisposeScope(); parallel.FusedBlocks.Logits(xb, zb).sum().backward(); });
            }
            break;
        }
    case "pool-dropout":
        {
            // One chunk of the fused conv activations (29 images, T = 10), forward and forward + backward: the 2×2 max-pool
            // (with the ReLU after it) as a gather at the channels-last kernel's indices and as an index_select (the two
            // paths of ConvImageEncoder.MaxPool); dropout of ReLU(x) as Apply(relu(x)) (before) and as UniformDropout.AfterRelu.
            int T = config.Blocks;
            // The two paths of ConvImageEncoder.MaxPool, chosen by its thread switch: a parallel gather, or index_select.
            Func<Tensor, Tensor> Pool(bool select) => h =>
            {
                int threads = ConvImageEncoder.SelectionMaxThreads;
                ConvImageEncoder.SelectionMaxThreads = select ? int.MaxValue : 0;
                try { return functional.relu(ConvImageEncoder.MaxPool(h)); }
                finally { ConvImageEncoder.SelectionMaxThreads = threads; }
            };
            foreach (var a in new[] { randn(29, T * 32, 24, 24), randn(29, T * 128, 8, 8) })
            {
                Console.WriteLine($"input [{string.Join(", ", a.shape)}]");
                for (int round = 0; round < 2; round++)
                    foreach (var (name, f) in new (string, Func<Tensor, Tensor>)[] { ("gather", Pool(false)), ("index_select", Pool(true)) })
                    {
                        var leaf = a.detach().requires_grad_();
                        var g = randn_like(Pool(false)(a));
                        Time($"  {name} fwd", () => { using var s = NewDisposeScope(); f(leaf); });
                        Time($"  {name} fwd+bwd", () => { using var s = NewDisposeScope(); (f(leaf) * g).sum().backward(); leaf.grad!.zero_(); });
                    }
            }
            foreach (var a in new[] { randn(29, T * 32, 12, 12), randn(29, T * 64, 10, 10) })
            {
                Console.WriteLine($"input [{string.Join(", ", a.shape)}]");
                for (int round = 0; round < 2; round++)
                    foreach (var (name, f) in new (string, Func<Tensor, Tensor>)[] { ("Apply(relu)", t => UniformDropout.Apply(functional.relu(t), 0.2, true)), ("AfterRelu", t => UniformDropout.AfterRelu(t, 0.2, true)) })
                    {
                        var leaf = a.detach().requires_grad_();
                        var g = randn_like(a);
                        Time($"  {name} fwd", () => { using var s = NewDisposeScope(); f(leaf); });
                        Time($"  {name} fwd+bwd", () => { using var s = NewDisposeScope(); (f(leaf) * g).sum().backward(); leaf.grad!.zero_(); });
                    }
            }
            break;
        }
    case "pool-fused":
        {
            // One chunk of the fused conv activations (29 images, T = 10) through max-pool, ReLU and dropout, forward and
            // forward + backward: ConvImageEncoder.MaxPool then UniformDropout.AfterRelu, and the fused PoolDropout.
            int T = config.Blocks;
            foreach (var a in new[] { randn(29, T * 32, 24, 24), randn(29, T * 128, 8, 8) })
            {
                Console.WriteLine($"input [{string.Join(", ", a.shape)}]");
                for (int round = 0; round < 2; round++)
                    foreach (var fused in new[] { false, true })
                    {
                        ConvImageEncoder.FusedPooling = fused;
                        string name = fused ? "fused" : "pool, then dropout";
                        var leaf = a.detach().requires_grad_();
                        var g = randn(a.shape[0], a.shape[1], a.shape[2] / 2, a.shape[3] / 2);
                        Time($"  {name} fwd", () => { using var s = NewDisposeScope(); ConvImageEncoder.PoolThenDropout(leaf, 0.2, true, true, null); });
                        Time($"  {name} fwd+bwd", () => { using var s = NewDisposeScope(); (ConvImageEncoder.PoolThenDropout(leaf, 0.2, true, true, null) * g).sum().backward(); leaf.grad!.zero_(); });
                    }
            }
            ConvImageEncoder.FusedPooling = true;
            break;
        }
    case "dropout":
        {
            // Training-mode dropout (p = 0.2) on the fused activations of one minibatch: after pool 1 [B, T·32, 13, 13],
            // after conv 2 [B, T·64, 11, 11] and after pool 3 [B, T·128, 4, 4]: the whole op, ATen's bernoulli_ mask, and the
            // uniform draws UniformDropout compares with 1 − p instead, the mask made from them with ATen's ops, and that mask
            // computed from the generator's state by CpuGeneratorDraws (what UniformDropout does now). Chunk-sized: batch 29.
            int T = config.Blocks;
            foreach (var shape in new long[][] { [batch, T * 32, 13, 13], [batch, T * 64, 11, 11], [batch, T * 128, 4, 4] })
            {
                var a = randn(shape);
                Console.WriteLine($"input [{string.Join(", ", shape)}]");
                Time("  functional.dropout", () => { using var s = NewDisposeScope(); functional.dropout(a, 0.2, true); });
                Time("  bernoulli_ mask", () => { using var s = NewDisposeScope(); empty_like(a).bernoulli_(0.8); });
                Time("  rand_like", () => { using var s = NewDisposeScope(); rand_like(a); });
                Time("  rand_like < 0.8, / 0.8", () => { using var s = NewDisposeScope(); using var k = HeldScalars.Hold(0.8); rand_like(a).lt_(k).div_(k); });
                Time("  CpuGeneratorDraws mask", () => { using var s = NewDisposeScope(); CpuGeneratorDraws.KeepMask(shape, 0.8f, 1f / 0.8f); });
            }
            break;
        }
    case "pool":
        {
            // ReLU + 2×2 max-pool of the fused conv1 output of one chunk (27 images × T·32 channels, 26×26) and of conv3's
            // (27 × T·128, 9×9), forward and backward, formulated four ways (all give the same values and gradients):
            // relu-then-pool (NCHW), pool-then-relu (NCHW), pool-then-relu via a channels-last copy, and via max over a
            // [.., 4] window view (first index wins ties, as in max_pool2d).
            int T = config.Blocks;
            Tensor ReluPool(Tensor t) => functional.max_pool2d(functional.relu(t), 2);
            Tensor PoolRelu(Tensor t) => functional.relu(functional.max_pool2d(t, 2));
            static Tensor Cl(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
            Tensor PoolReluCl(Tensor t) => functional.relu(functional.max_pool2d(Cl(t), 2)).contiguous();
            Tensor Window(Tensor t)
            {
                long n = t.shape[0], c = t.shape[1], h = t.shape[2] / 2, w = t.shape[3] / 2;
                var v = t.narrow(2, 0, 2 * h).narrow(3, 0, 2 * w).reshape(n, c, h, 2, w, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w, 4);
                return functional.relu(v.max(4).values);
            }
            Tensor Gather(Tensor t)
            {
                long n = t.shape[0], c = t.shape[1];
                Tensor index;
                using (no_grad())
                {
                    var (pooled, indices) = functional.max_pool2d_with_indices(Cl(t.detach()), new long[] { 2, 2 });
                    index = indices.contiguous();
                }
                var oh = index.shape[2]; var ow = index.shape[3];
                return functional.relu(t.flatten(2).gather(2, index.view(n, c, -1)).view(n, c, oh, ow));
            }
            var variants = new (string, Func<Tensor, Tensor>)[] { ("relu→pool NCHW", ReluPool), ("pool→relu NCHW", PoolRelu), ("pool→relu channels-last", PoolReluCl), ("pool→relu window max", Window), ("gather at CL pool's indices", Gather) };
            foreach (var a in new[] { randn(27, T * 32, 26, 26), randn(27, T * 128, 9, 9) })
            {
                Console.WriteLine($"input [{string.Join(", ", a.shape)}]");
                using (no_grad())
                    foreach (var (name, f) in variants.Skip(1))
                        Console.WriteLine($"  {name}: max difference from relu→pool {(f(a) - ReluPool(a)).abs().max().item<float>()}");
                for (int round = 0; round < 2; round++)
                    foreach (var (name, f) in variants)
                    {
                        using (no_grad()) Time($"  {name} fwd", () => { using var s = NewDisposeScope(); f(a); });
                        var leaf = a.detach().requires_grad_();
                        var g = randn_like(ReluPool(a));
                        Time($"  {name} fwd+bwd", () => { using var s = NewDisposeScope(); (f(leaf) * g).sum().backward(); leaf.grad!.zero_(); });
                    }
            }
            break;
        }
    case "gemm":
        {
            // The linear layers' matrix products (libtorch's CPU BLAS: MKL), [rows, in] × [in, out]ᵀ, against the
            // same product as a 1×1 convolution (oneDNN), in GFLOP/s.
            foreach (var (rows, inF, outF) in new[] { (1000L, 768L, 256L), (1000L, 256L, 128L), (128L, 2048L, 256L), (128L, 512L, 256L) })
            {
                var a = randn(rows, inF); var w = randn(outF, inF); var b = zeros(outF);
                var a4 = a.view(rows, inF, 1, 1); var w4 = w.view(outF, inF, 1, 1);
                using var _ = no_grad();
                double flop = 2.0 * rows * inF * outF;
                double ms = Time($"linear [{rows}×{inF}]·[{inF}×{outF}]", () => { using var s = NewDisposeScope(); functional.linear(a, w, b); });
                Console.WriteLine($"    {flop / ms / 1e6:F0} GFLOP/s");
                double msc = Time($"  as 1×1 conv", () => { using var s = NewDisposeScope(); functional.conv2d(a4, w4, b); });
                Console.WriteLine($"    {flop / msc / 1e6:F0} GFLOP/s, max difference {(functional.linear(a, w, b) - functional.conv2d(a4, w4, b).view(rows, outF)).abs().max().item<float>()}");
            }
            break;
        }
    case "conv":
        {
            // The fused conv stack of T = 10 blocks on one chunk of images: NCHW against channels-last, forward (eval)
            // and forward + backward, with the achieved GFLOP/s (multiply-adds × 2).
            int T = config.Blocks;
            var w1 = randn(T * 32, 1, 3, 3) * 0.1; var b1 = zeros(T * 32);
            var w2 = randn(T * 64, 32, 3, 3) * 0.05; var b2 = zeros(T * 64);
            var w3 = randn(T * 128, 64, 3, 3) * 0.05; var b3 = zeros(T * 128);
            static Tensor Cl(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
            Tensor Stack(Tensor input, Tensor c1, Tensor c2, Tensor c3)
            {
                var h = functional.max_pool2d(functional.relu(functional.conv2d(input, c1, b1)), 2);
                h = functional.relu(functional.conv2d(h, c2, b2, groups: T));
                return functional.max_pool2d(functional.relu(functional.conv2d(h, c3, b3, groups: T)), 2);
            }
            double macs = T * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 288 + 9 * 9 * 128 * 576.0);
            // BENCH_DTYPE=bfloat16: the same stack in bf16 (oneDNN's avx512_core_bf16 kernels where the CPU has them).
            var dtype = Environment.GetEnvironmentVariable("BENCH_DTYPE") == "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32;
            (w1, b1, w2, b2, w3, b3) = (w1.to(dtype), b1.to(dtype), w2.to(dtype), b2.to(dtype), w3.to(dtype), b3.to(dtype));
            foreach (int chunk in new[] { 27, 64 })
            {
                var xc = x.narrow(0, 0, Math.Min(chunk, batch)).contiguous().to(dtype);
                long n = xc.shape[0];
                foreach (var layout in (Environment.GetEnvironmentVariable("BENCH_LAYOUT") ?? "nchw,channels-last").Split(","))
                {
                    bool cl = layout != "nchw";
                    var (xi, c1, c2, c3) = cl ? (Cl(xc), Cl(w1), Cl(w2), Cl(w3)) : (xc, w1, w2, w3);
                    using (no_grad())
                    {
                        double ms = Time($"{layout} fwd, {n} images", () => { using var s = NewDisposeScope(); Stack(xi, c1, c2, c3); });
                        Console.WriteLine($"    {n * macs * 2 / ms / 1e6:F0} GFLOP/s");
                    }
                    var p1 = c1.detach().requires_grad_(); var p2 = c2.detach().requires_grad_(); var p3 = c3.detach().requires_grad_();
                    double msb = Time($"{layout} fwd+bwd, {n} images", () =>
                    {
                        using var s = NewDisposeScope();
                        Stack(xi, p1, p2, p3).sum().backward();
                        p1.grad!.zero_(); p2.grad!.zero_(); p3.grad!.zero_();
                    });
                    Console.WriteLine($"    {n * macs * 2 * 3 / msb / 1e6:F0} GFLOP/s (3× the forward's multiply-adds)");
                }
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
        Console.Error.WriteLine($"unknown benchmark '{command}' (expected dt-step, dt-fused, memory, features, bf16, stack-ops, fc-bmm, bf16-train, dropout, pool, pool-dropout, gemm, conv or load)");
        return 2;
}
return 0;

/// <summary>glibc's mallinfo2 (Linux): the memory bench mode's heap figures.</summary>
static class MallInfo
{
#pragma warning disable CS0649   // filled in by glibc through the P/Invoke return value
    public struct Info { public nuint arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost; }
#pragma warning restore CS0649
    [System.Runtime.InteropServices.DllImport("libc.so.6")] public static extern Info mallinfo2();
}

