using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Methods.DiscreteTime;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Schedules;
using NoProp.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Tests.Methods;

/// <summary>The fused form of the T DT blocks (one computation) against the blocks one by one, and the parallel schedule.</summary>
[TestClass]
public sealed class FusedDtBlocksTests
{
    private static readonly ImageShape Mnist = new(1, 28, 28);

    [TestInitialize]
    public void Seed() { TorchRuntime.Initialize(); TorchRuntime.Seed(5); }

    private static DtBlock[] Blocks(int count, bool prototype = false, double dropout = 0.2)
    {
        int d = prototype ? Mnist.Size : 10;
        return Enumerable.Range(0, count).Select(_ => new DtBlock(Mnist, d, 10, prototype, dropout)).ToArray();
    }

    /// <summary>Copies with the same weights and buffers (a per-block reference for the fused form).</summary>
    private static DtBlock[] Clones(DtBlock[] blocks, bool prototype = false, double dropout = 0.2)
    {
        var copies = Blocks(blocks.Length, prototype, dropout);
        for (int t = 0; t < blocks.Length; t++) copies[t].load_state_dict(blocks[t].state_dict());
        return copies;
    }

    private static void Train(IEnumerable<DtBlock> blocks, bool training) { foreach (var b in blocks) b.train(training); }

    /// <summary>Moves the running statistics away from their initial 0/1, so eval-mode tests exercise them.</summary>
    private static void WarmUpStatistics(DtBlock[] blocks, Tensor x, int d)
    {
        using var _ = no_grad();
        Train(blocks, true);
        foreach (var b in blocks) b.forward(x, randn(x.shape[0], d)).Dispose();
        Train(blocks, false);
    }

    private static float MaxDifference(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    /// <summary>
    /// <paramref name="compute"/> with every ConvImageEncoder on its own NCHW layers: at inference they otherwise take
    /// the fused path themselves (ConvImageEncoder.FastInference), and a reference must not be what it checks.
    /// </summary>
    internal static T OwnLayers<T>(Func<T> compute)
    {
        ConvImageEncoder.FastInference = false;
        try { return compute(); }
        finally { ConvImageEncoder.FastInference = true; }
    }

    [TestMethod]
    [DataRow(false, 10)]
    [DataRow(true, 784)]
    public void FusedLogitsEqualEachBlocksOwnForInference(bool prototype, int d)
    {
        var blocks = Blocks(3, prototype);
        var x = randn(6, 1, 28, 28);
        WarmUpStatistics(blocks, x * 2 + 0.5, d);
        var z = randn(3, 6, d);
        var fused = new FusedDtBlocks(blocks);
        using var _ = no_grad();
        var logits = fused.Logits(x, z);
        var features = fused.ImageFeatures(x);
        for (int t = 0; t < 3; t++)
        {
            var own = OwnLayers(() => blocks[t].forward(x, z[t]));
            Assert.IsTrue(MaxDifference(logits[t], own) <= 1e-5, $"block {t + 1}: fused logits differ by {MaxDifference(logits[t], own)} (max |logit| {logits[t].abs().max().item<float>()})");
            Assert.IsTrue(MaxDifference(features[t], OwnLayers(() => blocks[t].ImageFeatures(x))) <= 1e-5, $"block {t + 1}: fused image features differ");
            // Each block alone at inference takes the fused path with T = 1: the same features.
            Assert.IsTrue(MaxDifference(features[t], blocks[t].ImageFeatures(x)) <= 1e-5, $"block {t + 1}: its own inference path differs");
        }
    }

    [TestMethod]
    [DataRow(1, 28, 28, true)]
    [DataRow(3, 32, 32, true)]
    [DataRow(1, 31, 29, true)]
    [DataRow(1, 28, 28, false)]
    public void InferenceThroughTheKernelsEqualsEachBlocksOwnLayers(int channels, int height, int width, bool linearKernel)
    {
        // Two blocks: conv1's 2 × 32 output channels fill the kernel's 64-channel block, so on a CPU with AVX-512 all
        // three convolutions (conv1 with its pooling, one-channel images without the zero second channel, three-channel
        // ones copied channels-last) run in GroupedConvolution, conv2 and conv3 by Winograd's algorithms, and the FC
        // layers in GroupedLinear (or bmm). Nine images in chunks of four (4, 4, 1): each chunk's features are written
        // into its rows of the batch's.
        var shape = new ImageShape(channels, height, width);
        var blocks = Enumerable.Range(0, 2).Select(_ => new DtBlock(shape, 10, 10, false)).ToArray();
        var x = randn(9, channels, height, width);
        WarmUpStatistics(blocks, x * 2 + 0.5, 10);
        var fused = new FusedDtBlocks(blocks);
        using var _ = no_grad();
        long saved = FusedDtBlocks.ActivationBytes, convolutions = GroupedConvolution.Calls, linear = GroupedLinear.Calls;
        FusedDtBlocks.ActivationBytes = 4L * 2 * 32 * (height - 2) * (width - 2) * sizeof(float);
        GroupedLinear.Enabled = linearKernel;
        Tensor features;
        try { features = fused.ImageFeatures(x); }
        finally { FusedDtBlocks.ActivationBytes = saved; GroupedLinear.Enabled = true; }
        if (GroupedConvolution.Accelerated && GroupedConvolution.Enabled)
        {
            Assert.AreEqual(3 * 3, GroupedConvolution.Calls - convolutions, "three convolutions of three chunks in the kernel");
            Assert.AreEqual(linearKernel ? 1 : 0, GroupedLinear.Calls - linear, "the FC layers in their kernel");
        }
        for (int t = 0; t < 2; t++)
        {
            var own = OwnLayers(() => blocks[t].ImageFeatures(x));
            Assert.IsTrue(MaxDifference(features[t], own) <= 1e-5 * Math.Max(1, own.abs().max().item<float>()),
                $"block {t + 1}: the kernel's features differ by {MaxDifference(features[t], own)}");
        }
    }

    [TestMethod]
    [DataRow(false, 10)]
    [DataRow(true, 784)]
    public void InTrainingModeFusedBlocksGiveTheSameOutputsStatisticsAndGradients(bool prototype, int d)
    {
        // Chunks of 3 images for the convolutions (8 images: chunks 3, 3, 2), so the chunked path is the one checked.
        long saved = FusedDtBlocks.ActivationBytes;
        FusedDtBlocks.ActivationBytes = 3L * 3 * 32 * 26 * 26 * sizeof(float);
        try { CheckTrainingMode(prototype, d); }
        finally { FusedDtBlocks.ActivationBytes = saved; }
    }

    private static void CheckTrainingMode(bool prototype, int d)
    {
        // No dropout: its masks are random and drawn in a different order; everything else must agree.
        var fusedBlocks = Blocks(3, prototype, dropout: 0);
        var reference = Clones(fusedBlocks, prototype, dropout: 0);
        Train(fusedBlocks, true); Train(reference, true);
        var x = randn(8, 1, 28, 28);
        var z = randn(3, 8, d);
        var targets = randn(3, 8, 10);

        var logits = new FusedDtBlocks(fusedBlocks).Logits(x, z);
        (logits * targets).sum().backward();   // Σ_t loss_t with loss_t = ⟨logits_t, targets_t⟩
        for (int t = 0; t < 3; t++)
        {
            var own = reference[t].forward(x, z[t]);
            Assert.IsTrue(MaxDifference(logits[t].detach(), own.detach()) <= 1e-5, $"block {t + 1}: logits differ");
            (own * targets[t]).sum().backward();   // block t's loss alone

            var fusedParameters = fusedBlocks[t].named_parameters().ToArray();
            var ownParameters = reference[t].named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, p) in fusedParameters)
            {
                var expected = ownParameters[name].grad!;
                float scale = Math.Max(1f, expected.abs().max().item<float>());
                float difference = MaxDifference(p.grad!, expected);
                // 1e-4: float32 sums in another order (the fc biases before BatchNorm have a true gradient of 0 and read ~2e-5 of noise).
                Assert.IsTrue(difference <= 1e-4 * scale, $"block {t + 1} {name}: gradient differs by {difference} (largest {scale})");
            }
            var fusedBuffers = fusedBlocks[t].named_buffers().ToDictionary(b => b.name, b => b.buffer);
            foreach (var (name, buffer) in reference[t].named_buffers())
                Assert.IsTrue(MaxDifference(fusedBuffers[name].to_type(ScalarType.Float32), buffer.to_type(ScalarType.Float32)) <= 1e-5,
                    $"block {t + 1} {name}: running statistics differ");
        }
    }

    [TestMethod]
    public void EachBlocksGradientComesOnlyFromItsOwnLoss()
    {
        var blocks = Blocks(3);
        Train(blocks, true);
        var logits = new FusedDtBlocks(blocks).Logits(randn(8, 1, 28, 28), randn(3, 8, 10));
        logits[1].square().sum().backward();   // block 2's loss only
        for (int t = 0; t < 3; t++)
            foreach (var (name, p) in blocks[t].named_parameters())
            {
                float g = p.grad is null ? 0f : p.grad.abs().max().item<float>();
                if (t == 1) continue;
                Assert.AreEqual(0f, g, $"block {t + 1} {name} received a gradient from block 2's loss");
            }
        Assert.IsTrue(blocks[1].parameters().All(p => p.grad is not null) && blocks[1].parameters().Any(p => p.grad!.abs().max().item<float>() > 0),
            "block 2 must receive its gradient");
    }

    [TestMethod]
    public void FusedTrainingAppliesDropoutPerBlock()
    {
        var blocks = Blocks(2);
        var x = randn(4, 1, 28, 28);
        var fused = new FusedDtBlocks(blocks);
        Train(blocks, true);
        using var _ = no_grad();
        var a = fused.ImageFeatures(x);
        var b = fused.ImageFeatures(x);
        Assert.IsTrue(MaxDifference(a, b) > 1e-3, "training-mode features must vary with the dropout masks");
        Train(blocks, false);
        Assert.IsTrue(MaxDifference(fused.ImageFeatures(x), fused.ImageFeatures(x)) == 0, "eval-mode features are deterministic");
    }

    /// <summary>
    /// The fused convolutions run on the images' receptive field (ConvImageEncoder.ReceptiveField): in training mode,
    /// in chunks, for one-hot and prototype label paths, the logits and every block's gradients are those of the
    /// uncropped computation with the same seed (the masks are drawn for the uncropped activations, chunk by chunk).
    /// </summary>
    [TestMethod]
    [DataRow(false, 10)]
    [DataRow(true, 784)]
    public void CroppingChangesNeitherTheFusedTrainingStepNorItsRandomStreams(bool prototype, int d)
    {
        var blocks = Blocks(3, prototype);
        var fused = new FusedDtBlocks(blocks);
        var x = randn(7, 1, 28, 28);
        var z = randn(3, 7, d);
        var upstream = randn(3, 7, 10);
        var saved = FusedDtBlocks.ActivationBytes;
        // Chunks of 6 uncropped images (6 + 1); sized for the cropped images they would hold 7, and draw other masks.
        FusedDtBlocks.ActivationBytes = 3L * 32 * 26 * 26 * 4 * 6;
        try
        {
            (Tensor Logits, Tensor[] Gradients) Step(bool crop)
            {
                ConvImageEncoder.CropInputs = crop;
                foreach (var b in blocks) b.zero_grad();
                Train(blocks, true);
                TorchRuntime.Seed(8);
                var logits = fused.Logits(x, z);
                (logits * upstream).sum().backward();
                return (logits.detach(), blocks.SelectMany(b => b.parameters()).Select(p => p.grad!.clone()).ToArray());
            }
            var (cropped, croppedGradients) = Step(crop: true);
            var (full, fullGradients) = Step(crop: false);
            Assert.IsTrue(MaxDifference(cropped, full) < 1e-5, $"logits differ by {MaxDifference(cropped, full)}");
            for (int i = 0; i < fullGradients.Length; i++)
                Assert.IsTrue(MaxDifference(croppedGradients[i], fullGradients[i]) < 1e-5 * Math.Max(1, fullGradients[i].abs().max().item<float>()), $"gradient {i}");
            TorchRuntime.Seed(9);
            Assert.IsTrue(MaxDifference(fused.Logits(x, z).detach(), full) > 1e-3, "another seed draws other masks");
        }
        finally
        {
            ConvImageEncoder.CropInputs = true;
            FusedDtBlocks.ActivationBytes = saved;
        }
    }

    [TestMethod]
    public void ParallelScheduleTrainsEveryBlockInOneStageAndLearns()
    {
        var config = TestSupport.Config(LabelEmbeddingKind.OneHot, blocks: 3) with { BlockSchedule = BlockSchedule.Parallel };
        using var method = new NoPropDt(config);
        Assert.AreEqual(1, method.StagesPerEpoch);
        var before = method.Network.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var (x, y) = TestSupport.Mnist.Train.Take(16).ToTensors();
        method.Network.train();
        using var losses = method.TrainStep(0, x, y);
        Assert.AreEqual(4, losses.Values.shape[0]);
        var l = losses.Values.data<float>().ToArray();
        Assert.AreEqual(l[0] + l[1] + l[2], l[3], 1e-4, "total = CE + KL + mean denoising term");
        for (int t = 0; t < 3; t++)
            Assert.IsTrue(method.DtNetwork.Blocks[t].named_parameters().Any(p => !p.parameter.detach().SameAs(before[$"blocks.{t}.{p.name}"])),
                $"block {t + 1} must take a step");
        Assert.IsFalse(method.DtNetwork.OutputHead.weight.detach().SameAs(before["outputHead.weight"]), "the output head takes a step");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => method.TrainStep(1, x, y));

        // And it learns: one epoch on 1,000 images, far above chance.
        var splits = DataSplits.Create(TestSupport.Mnist, 1000, 200, 500, seed: 3);
        using var fresh = new NoPropDt(config);
        new Trainer(fresh, splits, new TrainingOptions { Epochs = 1, BatchSize = 16, Seed = 2 }).Run();
        var (tx, ty) = splits.Test.ToTensors();
        double accuracy = Evaluator.Accuracy(fresh, tx, ty, new InferenceOptions { Generator = Evaluator.InferenceGenerator(1) });
        // T = 3 is a weak chain after one epoch: both schedules reached about 30 % on 500 test images with these settings
        // (`noprop train --blocks 3 --train-size 1000 --batch-size 16 --epochs 1`: sequential 29.4 %, parallel 31.2 %).
        Assert.IsTrue(accuracy > 0.2, $"test accuracy {accuracy:P1} after one parallel epoch (T = 3) on 1,000 images (chance is 10 %)");
    }

    [TestMethod]
    public void ParallelScheduleIsForDtOnly()
    {
        var config = TestSupport.Config() with { Method = MethodKind.Backprop, BlockSchedule = BlockSchedule.Parallel };
        var e = Assert.ThrowsExactly<NoPropException>(config.Validate);
        StringAssert.Contains(e.Message, "--schedule parallel");
    }

    /// <summary>
    /// tests/NoProp.Tests/Fixtures/dt-head-949b309 is a model (14×14 images, T = 2) saved by `noprop train` at commit
    /// 949b309, before the fused form existed. It must keep loading, and both forms must agree on it.
    /// </summary>
    [TestMethod]
    public void AModelSavedBeforeTheFusedFormLoadsAndBothFormsAgreeOnIt()
    {
        var directory = Path.Combine(AppContext.BaseDirectory, "Fixtures", "dt-head-949b309");
        using var method = (NoPropDt)ModelStore.Load(directory);
        Assert.AreEqual(BlockSchedule.Sequential, method.Config.BlockSchedule, "an old model.json has no schedule: sequential");
        method.Network.eval();
        using var _ = no_grad();
        var x = randn(5, 1, 14, 14);
        var z = randn(2, 5, 10);
        var logits = method.FusedBlocks.Logits(x, z);
        for (int t = 0; t < 2; t++)
            Assert.IsTrue(MaxDifference(logits[t], OwnLayers(() => method.DtNetwork.Blocks[t].forward(x, z[t]))) <= 1e-5, $"block {t + 1}");
        // Running statistics were trained (not the initial 0/1): the fixture really carries its buffers.
        var mean = method.DtNetwork.Blocks[0].named_buffers().First(b => b.name.EndsWith("running_mean", StringComparison.Ordinal)).buffer;
        Assert.IsTrue(mean.abs().max().item<float>() > 0);

        // The model saved again by today's code has the same keys and values.
        var again = TestSupport.TempDirectory();
        ModelStore.Save(method, again);
        using var reloaded = (NoPropDt)ModelStore.Load(again);
        foreach (var (name, t) in method.Network.state_dict()) Assert.IsTrue(t.SameAs(reloaded.Network.state_dict()[name]), name);
    }

    [TestMethod]
    public void FusedInferenceEqualsTheChainOfSeparateBlocks()
    {
        using var method = new NoPropDt(TestSupport.Config(blocks: 3));
        var (x, _) = TestSupport.Mnist.Test.Take(7).ToTensors();
        method.Network.train();
        using (no_grad()) method.DtNetwork.Blocks.ToList().ForEach(b => b.forward(x, randn(7, 10)).Dispose());
        method.Network.eval();
        using var __ = no_grad();
        method.ImageChunk = 3;   // several chunks
        var options = new InferenceOptions { Generator = Evaluator.InferenceGenerator(3) };
        var fused = method.PredictProbabilities(x, options);

        // Eq. 3 with each block's own forward pass, the same noise stream.
        var generator = Evaluator.InferenceGenerator(3);
        var z = randn([7, 10], generator: generator);
        for (int t = 1; t <= 3; t++)
        {
            var (a, b, c) = method.Schedule.PosteriorCoefficients(t);
            var uHat = EmbeddingReadout.ConvexCombination(OwnLayers(() => method.DtNetwork.Blocks[t - 1].forward(x, z)), method.Embedding.Weight);
            z = uHat * a + z * b;
            if (c > 0) z = z + randn([7, 10], generator: generator) * Math.Sqrt(c);
        }
        var expected = nn.functional.softmax(method.DtNetwork.OutputHead.forward(z), 1);
        Assert.IsTrue(MaxDifference(fused, expected) <= 1e-5);
    }

    [TestMethod]
    public void RepeatedEvaluationSharesImageFeaturesAndMatchesSeparateRuns()
    {
        using var method = new NoPropDt(TestSupport.Config(blocks: 3));
        var (x, y) = TestSupport.Mnist.Test.Take(50).ToTensors();
        var request = new EvaluationRequest { Runs = 3, Seed = 7, PerBlock = true, ImageOnly = true, BatchSize = 20 };
        var shared = RepeatedEvaluation.Run(method, x, y, request);

        for (int r = 0; r < 3; r++)
        {
            var options = new InferenceOptions { Generator = Evaluator.InferenceGenerator(7 + r) };
            Assert.AreEqual(Evaluator.Accuracy(method, x, y, options, 20), shared.Accuracies[r], $"run {r + 1}");
            var perBlock = RepeatedEvaluation.PerBlockAccuracy(method, x, y, new InferenceOptions { Generator = Evaluator.InferenceGenerator(7 + r) }, 20);
            CollectionAssert.AreEqual(perBlock, shared.PerBlock![r], $"run {r + 1}, per block");
        }
        Assert.AreEqual(RepeatedEvaluation.ImageOnlyAccuracy(method, x, y, 20), shared.ImageOnly);
    }
}
