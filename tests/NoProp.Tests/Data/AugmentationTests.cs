using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Runtime;
using NoProp.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Tests.Data;

[TestClass]
public sealed class AugmentationTests
{
    [TestInitialize]
    public void Init() { TorchRuntime.Initialize(); TorchRuntime.Seed(9); }

    [TestMethod]
    public void FlipOnlyMirrorsSomeRowsAndKeepsTheRest()
    {
        var x = randn(64, 3, 8, 8);
        var y = new AugmentationOptions { CropPadding = 0, HorizontalFlip = true }.Apply(x);
        int flipped = 0;
        for (int i = 0; i < 64; i++)
        {
            bool same = y[i].SameAs(x[i]);
            bool mirrored = y[i].SameAs(x[i].flip(2));
            Assert.IsTrue(same || mirrored, $"row {i} must be the image or its mirror");
            if (mirrored) flipped++;
        }
        Assert.IsTrue(flipped is > 10 and < 54, $"about half the rows are flipped ({flipped})");
    }

    [TestMethod]
    public void CropsAreShiftedWindowsOfThePaddedImage()
    {
        var x = arange(64f).reshape(1, 1, 8, 8).expand(32, 1, 8, 8).contiguous();
        var y = new AugmentationOptions { CropPadding = 2, HorizontalFlip = false }.Apply(x);
        CollectionAssert.AreEqual(x.shape, y.shape);
        var padded = nn.functional.pad(x, [2, 2, 2, 2]);
        for (int i = 0; i < 32; i++)
        {
            bool found = false;
            for (int dy = 0; dy <= 4 && !found; dy++)
                for (int dx = 0; dx <= 4 && !found; dx++)
                    found = padded[i, 0].narrow(0, dy, 8).narrow(1, dx, 8).SameAs(y[i, 0]);
            Assert.IsTrue(found, $"row {i} is not a crop of the padded image");
        }
        Assert.IsFalse(y.SameAs(x), "some crops must move");
    }

    /// <summary>Records what the trainer hands to training and to evaluation.</summary>
    private sealed class SpyMethod : INoPropMethod
    {
        private readonly Linear layer = nn.Linear(784, 10);
        private readonly OptimizerHelper optimizer;
        public SpyMethod() { optimizer = optim.SGD(layer.parameters(), 0.01); Embedding = new LabelEmbedding(LabelEmbeddingKind.OneHot, 10, 10); }
        public List<Tensor> TrainInputs { get; } = new();
        public List<Tensor> PredictInputs { get; } = new();
        public ModelConfig Config { get; } = TestSupport.Config();
        public nn.Module Network => layer;
        public LabelEmbedding Embedding { get; }
        public IReadOnlyList<OptimizerHelper> Optimizers => [optimizer];
        public int StagesPerEpoch => 1;
        public string DescribeStage(int stage) => "spy";
        public IReadOnlyList<string> LossNames => LossLayout.TotalOnly.Columns;
        public StepLosses TrainStep(int stage, Tensor x, Tensor y)
        {
            TrainInputs.Add(x.detach().clone().MoveToOuterDisposeScope());
            return LossLayout.TotalOnly.Record(zeros(1, ScalarType.Float64));
        }
        public Tensor PredictProbabilities(Tensor x, InferenceOptions options)
        {
            PredictInputs.Add(x.detach().clone().MoveToOuterDisposeScope());
            return nn.functional.softmax(layer.forward(x.flatten(1)), 1);
        }
        public void Dispose() => layer.Dispose();
    }

    [TestMethod]
    public void OnlyTrainingBatchesAreAugmented()
    {
        var splits = DataSplits.Create(TestSupport.Mnist, 64, 32, 16, seed: 1);
        using var spy = new SpyMethod();
        new Trainer(spy, splits, new TrainingOptions { Epochs = 1, BatchSize = 64, Augmentation = new AugmentationOptions() }).Run();
        var (trainX, _) = splits.Train.ToTensors();
        var (validX, _) = splits.Validation.ToTensors();
        Assert.AreEqual(1, spy.TrainInputs.Count);
        var trainedOn = spy.TrainInputs[0];
        int unchangedRows = Enumerable.Range(0, 64).Count(i => Enumerable.Range(0, 64).Any(j => trainedOn[i].SameAs(trainX[j])));
        Assert.IsTrue(unchangedRows < 32, "most training rows must be augmented");
        Assert.AreEqual(1, spy.PredictInputs.Count);
        Assert.IsTrue(spy.PredictInputs[0].SameAs(validX), "validation images must reach the model untouched");
    }
}
