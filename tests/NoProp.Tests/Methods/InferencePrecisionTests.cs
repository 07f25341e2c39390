using NoProp.Methods;
using NoProp.Methods.DiscreteTime;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Training;
using static TorchSharp.torch;

namespace NoProp.Tests.Methods;

/// <summary>--inference-precision bf16: the conv image paths convolve in bfloat16 at inference, and nowhere else.</summary>
[TestClass]
public sealed class InferencePrecisionTests
{
    [TestInitialize]
    public void Seed() { TorchRuntime.Initialize(); TorchRuntime.Seed(11); }

    /// <summary>max |a − b| relative to max |a|.</summary>
    private static double RelativeDifference(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return (a - b).abs().max().item<float>() / (double)a.abs().max().item<float>();
    }

    /// <summary>A DT model whose BatchNorm statistics have moved off 0/1 (eval mode then normalises with them).</summary>
    private static NoPropDt Model(int blocks = 3, NoProp.Embeddings.LabelEmbeddingKind embedding = NoProp.Embeddings.LabelEmbeddingKind.OneHot)
    {
        var method = new NoPropDt(TestSupport.Config(embedding, blocks));
        var (x, _) = TestSupport.Mnist.Train.Take(40).ToTensors();
        method.Network.train();
        using (no_grad())
            foreach (var block in method.DtNetwork.Blocks) block.forward(x, randn(40, method.Config.EmbeddingDimension)).Dispose();
        method.Network.eval();
        return method;
    }

    [TestMethod]
    public void BFloat16ImageFeaturesStayWithinBFloat16RoundingOfFloat32()
    {
        using var method = Model();
        var (x, _) = TestSupport.Mnist.Test.Take(70).ToTensors();
        using var _ = no_grad();
        method.ImageChunk = 32;   // three chunks
        using var fp32 = method.ImageFeatures(x);
        Tensor bf16;
        using (ConvolutionPrecision.Use(InferencePrecision.BFloat16)) bf16 = method.ImageFeatures(x);
        Assert.AreEqual(ScalarType.Float32, bf16.dtype, "the features leave the convolutions as float32");
        CollectionAssert.AreEqual(fp32.shape, bf16.shape);
        double difference = RelativeDifference(fp32, bf16);
        // bfloat16 keeps 8 bits of mantissa (relative rounding 2⁻⁹ ≈ 0.2 %) at each of three convolutions' inputs and outputs.
        Assert.IsTrue(difference < 2e-2, $"bf16 features differ by {difference:P2} of the largest feature");
        Assert.IsTrue(difference > 1e-5, $"bf16 features must come from bfloat16 convolutions (differ by {difference:G3})");

        // Outside the region, float32 again, bit for bit.
        using var again = method.ImageFeatures(x);
        Assert.IsTrue(again.SameAs(fp32));
        bf16.Dispose();
    }

    [TestMethod]
    public void TheFusedAndThePerBlockImagePathsAgreeInBFloat16()
    {
        using var method = Model();
        var (x, _) = TestSupport.Mnist.Test.Take(20).ToTensors();
        using var _ = no_grad();
        using var region = ConvolutionPrecision.Use(InferencePrecision.BFloat16);
        using var fused = method.ImageFeatures(x);
        for (int t = 0; t < method.Config.Blocks; t++)
        {
            int block = t;
            using var own = FusedDtBlocksTests.OwnLayers(() => method.DtNetwork.Blocks[block].ImageFeatures(x));   // ConvImageEncoder's own bf16 layers
            double difference = RelativeDifference(own, fused[t]);
            Assert.IsTrue(difference < 2e-2, $"block {t + 1}: per-block bf16 features differ from the fused ones by {difference:P2}");
        }
        using var fp32Block = ConvolutionPrecision.Use(InferencePrecision.Float32);   // regions nest
        using var plain = method.DtNetwork.Blocks[0].ImageFeatures(x);
        Assert.IsTrue(RelativeDifference(plain, fused[0]) > 1e-5, "the inner float32 region must convolve in float32");
    }

    [TestMethod]
    public void TrainingAndAutogradAlwaysConvolveInFloat32()
    {
        using var method = Model();
        var (x, _) = TestSupport.Mnist.Test.Take(8).ToTensors();
        var block = method.DtNetwork.Blocks[1];
        // Eval mode with autograd on, per block and fused.
        using var blockReference = block.ImageFeatures(x);
        using var fusedReference = method.FusedBlocks.ImageFeatures(x);
        using (ConvolutionPrecision.Use(InferencePrecision.BFloat16))
        {
            using var blockInRegion = block.ImageFeatures(x);
            Assert.IsTrue(blockInRegion.SameAs(blockReference), "per block, with autograd on: float32");
            using var fusedInRegion = method.FusedBlocks.ImageFeatures(x);
            Assert.IsTrue(fusedInRegion.SameAs(fusedReference), "fused, with autograd on: float32");
        }

        // Training mode without autograd (dropout from the same seed; BatchNorm normalises with the batch's statistics).
        method.Network.train();
        using var _ = no_grad();
        TorchRuntime.Seed(4);
        using var trainingReference = method.FusedBlocks.ImageFeatures(x);
        TorchRuntime.Seed(4);
        using var region = ConvolutionPrecision.Use(InferencePrecision.BFloat16);
        using var trainingInRegion = method.FusedBlocks.ImageFeatures(x);
        Assert.IsTrue(trainingInRegion.SameAs(trainingReference), "training mode, without autograd: float32");
    }

    [TestMethod]
    public void PredictionsInBFloat16MatchFloat32AndTheOptionReachesEveryEntryPoint()
    {
        using var method = Model(blocks: 4);
        var (x, y) = TestSupport.Mnist.Test.Take(60).ToTensors();
        InferenceOptions Options(InferencePrecision p) => new() { Generator = Evaluator.InferenceGenerator(5), Precision = p };
        using var fp32 = Evaluator.PredictProbabilities(method, x, Options(InferencePrecision.Float32), 25);
        using var bf16 = Evaluator.PredictProbabilities(method, x, Options(InferencePrecision.BFloat16), 25);
        double difference = (fp32 - bf16).abs().max().item<float>();
        Assert.IsTrue(difference > 0, "bf16 inference must differ from fp32 somewhere (the option reached the convolutions)");
        Assert.IsTrue(difference < 0.05, $"class probabilities moved by {difference:G3}");
        Assert.AreEqual(InferencePrecision.Float32, ConvolutionPrecision.Current, "the region ends with the call");

        // RepeatedEvaluation (eval --runs, --per-block) shares the image features; with bf16 it gives what Evaluator gives.
        var request = new EvaluationRequest { Runs = 1, Seed = 5, BatchSize = 25, Inference = new InferenceOptions { Precision = InferencePrecision.BFloat16 } };
        double shared = RepeatedEvaluation.Run(method, x, y, request).Accuracies[0];
        Assert.AreEqual(Evaluator.Accuracy(bf16, y), shared);

        // The chain (per-block diagnostics) runs under the option too.
        using var __ = no_grad();
        using var direct = method.PredictProbabilities(x, Options(InferencePrecision.BFloat16));   // one batch of 60
        using var chain = method.RunChain(x, Options(InferencePrecision.BFloat16));
        using var head = method.HeadProbabilities(chain);
        Assert.IsTrue(head.SameAs(direct), "RunChain with bf16 must give PredictProbabilities' values");
    }

    [TestMethod]
    public void ContinuousTimeModelsInferInBFloat16ThroughTheirEncoder()
    {
        var config = TestSupport.Config() with { Method = MethodKind.FlowMatching, InferenceSteps = 3, Prediction = ModelConfig.DefaultPrediction(MethodKind.FlowMatching) };
        using var method = MethodFactory.Create(config);
        var (x, _) = TestSupport.Mnist.Test.Take(12).ToTensors();
        InferenceOptions Options(InferencePrecision p, bool cache = true) => new() { Generator = Evaluator.InferenceGenerator(2), Precision = p, CacheImageFeatures = cache };
        using var fp32 = Evaluator.PredictProbabilities(method, x, Options(InferencePrecision.Float32));
        using var bf16 = Evaluator.PredictProbabilities(method, x, Options(InferencePrecision.BFloat16));
        using var bf16Uncached = Evaluator.PredictProbabilities(method, x, Options(InferencePrecision.BFloat16, cache: false));
        double difference = (fp32 - bf16).abs().max().item<float>();
        Assert.IsTrue(difference > 0 && difference < 0.05, $"FM probabilities moved by {difference:G3}");
        Assert.IsTrue(bf16.CloseTo(bf16Uncached, 1e-5), "cached or not, the features come from the same bf16 encoder");
    }

    [TestMethod]
    public void BFloat16IsRefusedForResNetBackbonesBeforeAnyWork()
    {
        var config = TestSupport.Config() with { Method = MethodKind.FlowMatching, Backbone = BackboneKind.ResNet18 };
        var e = Assert.ThrowsExactly<NoPropException>(() => InferenceOptions.CheckPrecision(InferencePrecision.BFloat16, config));
        StringAssert.Contains(e.Message, "--inference-precision bf16: only the paper's conv module computes in bfloat16; this model's backbone is resnet18");
        InferenceOptions.CheckPrecision(InferencePrecision.Float32, config);
        Assert.ThrowsExactly<NoPropException>(() => new InferenceOptions { Precision = InferencePrecision.BFloat16 }.PrecisionRegion(config));
        Assert.AreEqual(InferencePrecision.Float32, ConvolutionPrecision.Current);
    }

    [TestMethod]
    public void PrecisionNamesParseAndUnknownOnesAreNamed()
    {
        Assert.AreEqual(InferencePrecision.BFloat16, EnumNames<InferencePrecision>.Parse("bf16"));
        Assert.AreEqual(InferencePrecision.BFloat16, EnumNames<InferencePrecision>.Parse("BFloat16"));
        Assert.AreEqual("fp32", InferencePrecision.Float32.ToCliName());
        var e = Assert.ThrowsExactly<NoPropException>(() => EnumNames<InferencePrecision>.Parse("fp16"));
        StringAssert.Contains(e.Message, "(expected fp32 or bf16)");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ConvolutionPrecision.Use((InferencePrecision)7));
    }
}
