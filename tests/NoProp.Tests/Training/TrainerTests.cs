using NoProp.Data;
using NoProp.Methods;
using NoProp.Methods.DiscreteTime;
using NoProp.Runtime;
using NoProp.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Tests.Training;

[TestClass]
public sealed class TrainerTests
{
    [TestInitialize]
    public void Init() => TorchRuntime.Initialize();

    private static DataSplits Splits(int train, int validation, int test) =>
        DataSplits.Create(TestSupport.Mnist, train, validation, test, seed: 3);

    private static NoPropDt NewMethod(int blocks, long seed = 5)
    {
        TorchRuntime.Seed(seed);
        return new NoPropDt(TestSupport.Config(blocks: blocks));
    }

    [TestMethod]
    public void TinyTrainingRunBeatsChanceByAWideMargin()
    {
        var splits = Splits(1000, 200, 500);
        using var method = NewMethod(blocks: 10);
        var options = new TrainingOptions { Epochs = 1, BatchSize = 16, Seed = 2 };
        var result = new Trainer(method, splits, options).Run();
        var (x, y) = splits.Test.ToTensors();
        double accuracy = Evaluator.Accuracy(method, x, y, new InferenceOptions { Generator = Evaluator.InferenceGenerator(1) });
        Assert.IsTrue(accuracy > 0.6, $"test accuracy {accuracy:P1} after one epoch on 1,000 images (chance is 10 %)");
        Assert.IsNotNull(result.BestValidationAccuracy);
        Assert.AreEqual(1, result.History.Count);
        var losses = result.History[0].Losses;
        Assert.AreEqual(losses["cross_entropy"] + losses["kl"] + losses["denoise"], losses["total"], 1e-6 * losses["total"], "the total is the sum of the terms (float32 per step)");
        Assert.AreEqual(0.0, losses["kl"], "ᾱ_0 = 0: the KL term vanishes");
    }

    [TestMethod]
    public void ResumingFromACheckpointContinuesIdentically()
    {
        var splits = Splits(96, 32, 32);
        var straightDir = TestSupport.TempDirectory();
        var resumedDir = TestSupport.TempDirectory();
        var options = new TrainingOptions { Epochs = 2, BatchSize = 16, Seed = 4 };

        using var straight = NewMethod(blocks: 2);
        new Trainer(straight, splits, options with { OutputDirectory = straightDir }).Run();

        // Interrupt in the middle of epoch 1 (block 2, batch 3), then resume in a fresh process-like setting.
        using (var first = NewMethod(blocks: 2))
        {
            using var cts = new CancellationTokenSource();
            var progress = new CancelAtStep(cts, step: 9);
            Assert.ThrowsExactly<OperationCanceledException>(() =>
                new Trainer(first, splits, options with { OutputDirectory = resumedDir }, progress).Run(cancellation: cts.Token));
        }
        Assert.IsTrue(Checkpoint.Exists(resumedDir));
        using var resumed = NewMethod(blocks: 2, seed: 999);   // different initialisation: everything must come from the checkpoint
        var result = new Trainer(resumed, splits, options with { OutputDirectory = resumedDir }).Run(resume: true);
        Assert.AreEqual(2, result.History.Count);

        var a = straight.Network.state_dict();
        var b = resumed.Network.state_dict();
        foreach (var (name, tensor) in a)
            Assert.IsTrue(tensor.SameAs(b[name]), $"{name} differs after resume");
        var straightCsv = File.ReadAllLines(Path.Combine(straightDir, "metrics.csv"));
        var resumedCsv = File.ReadAllLines(Path.Combine(resumedDir, "metrics.csv"));
        Assert.AreEqual(3, resumedCsv.Length, "header and one row per epoch");
        // Same losses and validation accuracy (columns other than the timings).
        for (int row = 1; row < 3; row++)
        {
            var s = straightCsv[row].Split(','); var r = resumedCsv[row].Split(',');
            CollectionAssert.AreEqual(s[3..8], r[3..8], $"epoch {row} metrics differ");
        }
    }

    [TestMethod]
    public void SameSeedGivesTheSameRun()
    {
        var splits = Splits(64, 16, 16);
        var options = new TrainingOptions { Epochs = 1, BatchSize = 16, Seed = 8 };
        using var m1 = NewMethod(blocks: 2);
        var r1 = new Trainer(m1, splits, options).Run();
        using var m2 = NewMethod(blocks: 2);
        var r2 = new Trainer(m2, splits, options).Run();
        Assert.AreEqual(r1.History[0].Losses["total"], r2.History[0].Losses["total"]);
        foreach (var (name, t) in m1.Network.state_dict()) Assert.IsTrue(t.SameAs(m2.Network.state_dict()[name]), name);
    }

    [TestMethod]
    public void TrainingStepsAndInferenceLeakNoTensors()
    {
        using var method = NewMethod(blocks: 2);
        var (x, y) = Splits(64, 0, 16).Train.ToTensors();
        method.Network.train();
        method.TrainStep(0, x, y).Dispose();   // optimizer state is created lazily on the first step
        method.TrainStep(1, x, y).Dispose();
        Assert.AreEqual(0, TestSupport.TensorsLeftAlive(() => { for (int i = 0; i < 20; i++) method.TrainStep(i % 2, x, y).Dispose(); }),
            "tensors left alive by 20 training steps");
        Assert.AreEqual(0, TestSupport.TensorsLeftAlive(() => Evaluator.PredictProbabilities(method, x, new InferenceOptions(), batchSize: 16).Dispose()),
            "tensors left alive by inference");
    }

    private sealed class CountingProgress : ITrainingProgress
    {
        public int Reports;
        public void Report(ProgressInfo info) => Reports++;
        public void EpochCompleted(EpochRecord record) { }
        public void Message(string line) { }
    }

    [TestMethod]
    [DataRow(BlockSchedule.Sequential)]
    [DataRow(BlockSchedule.Parallel)]
    public void AWholeRunLeavesNoTensorsToTheCollector(BlockSchedule schedule)
    {
        // Everything a run creates (progress reads of the loss sum, the per-stage loss folding, validation, the
        // selected-model snapshot, checkpoints) is disposed before Run returns: nothing is left for the finalizer
        // thread to release behind the next run's back.
        var splits = Splits(64, 16, 1);
        TorchRuntime.Seed(5);
        using var method = new NoPropDt(TestSupport.Config(blocks: 2) with { BlockSchedule = schedule });
        var options = new TrainingOptions { Epochs = 2, BatchSize = 16, Seed = 3 };
        new Trainer(method, splits, options).Run();   // optimizer state is created lazily on the first steps
        var progress = new CountingProgress();
        Assert.AreEqual(0, TestSupport.TensorsLeftAlive(() =>
            new Trainer(method, splits, options with { OutputDirectory = TestSupport.TempDirectory() }, progress).Run()),
            $"{schedule}: tensors a run with an output folder left alive");
        Assert.IsTrue(progress.Reports > 0, "the run reported progress (reading the loss sum)");
        Assert.AreEqual(0, TestSupport.TensorsLeftAlive(() => new Trainer(method, splits, options, progress).Run()),
            $"{schedule}: tensors a run kept in memory left alive");
    }

    [TestMethod]
    public void ANanLossStopsTrainingWithAClearMessage()
    {
        var good = TestSupport.Mnist.Train.Take(64);
        // A zero standard deviation turns every pixel into ±inf or NaN.
        var broken = new ImageDataset("broken", good.Pixels, good.Labels, 1, 28, 28, good.ClassNames, new Normalization([0.1f], [0f]));
        var splits = new DataSplits(broken, broken.Take(16), broken.Take(16), null);
        using var method = NewMethod(blocks: 2);
        var dir = TestSupport.TempDirectory();
        var e = Assert.ThrowsExactly<TrainingDivergedException>(() =>
            new Trainer(method, splits, new TrainingOptions { Epochs = 1, BatchSize = 16, OutputDirectory = dir }).Run());
        StringAssert.Contains(e.Message, "training diverged");
        StringAssert.Contains(e.Message, "block 1/2");
    }

    [TestMethod]
    public void WritesModelAndMetricsAndSelectsTheBestValidationEpoch()
    {
        var splits = Splits(64, 32, 16);
        var dir = TestSupport.TempDirectory();
        using var method = NewMethod(blocks: 2);
        var result = new Trainer(method, splits, new TrainingOptions { Epochs = 2, BatchSize = 16, OutputDirectory = dir }).Run();
        Assert.IsTrue(File.Exists(Path.Combine(dir, ModelStore.ConfigFile)));
        Assert.IsTrue(File.Exists(Path.Combine(dir, ModelStore.WeightsFile)));
        var csv = File.ReadAllLines(Path.Combine(dir, "metrics.csv"));
        StringAssert.StartsWith(csv[0], "epoch,train_seconds,epoch_train_seconds,loss_cross_entropy,loss_kl,loss_denoise,loss_total,validation_accuracy");
        Assert.AreEqual(3, csv.Length);
        double best = result.History.Max(h => h.ValidationAccuracy!.Value);
        Assert.AreEqual(best, result.BestValidationAccuracy);

        // The saved model reproduces the trained one.
        using var loaded = ModelStore.Load(dir);
        var (x, _) = splits.Test.ToTensors();
        var options = new InferenceOptions { Deterministic = true, ZeroInitialState = true };
        using var p1 = Evaluator.PredictProbabilities(method, x, options);
        using var p2 = Evaluator.PredictProbabilities(loaded, x, options);
        Assert.IsTrue(p1.SameAs(p2));
    }

    /// <summary>
    /// Model selection (issue 10): a scripted method whose validation accuracy is 10 %, 60 %, 30 % after epochs 1, 2, 3
    /// must end holding epoch 2's weights, with and without an output folder (saved model or in-memory snapshot).
    /// </summary>
    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void ModelSelectionKeepsTheWeightsOfTheBestValidationEpoch(bool withOutputFolder)
    {
        var mnist = TestSupport.Mnist.Train.Take(20);
        // Validation labels: 60 % class 0, 30 % class 1, 10 % class 2.
        var labels = Enumerable.Range(0, 20).Select(i => i % 10 < 6 ? 0 : i % 10 < 9 ? 1 : 2).ToArray();
        var data = new ImageDataset("scripted", mnist.Pixels, labels, 1, 28, 28, mnist.ClassNames, Normalization.Mnist);
        var splits = new DataSplits(data.Take(8), data, data.Take(4), null);
        using var method = new ScriptedMethod(NewMethod(blocks: 1), predictedClassPerEpoch: [2, 0, 1]);
        var options = new TrainingOptions { Epochs = 3, BatchSize = 4, OutputDirectory = withOutputFolder ? TestSupport.TempDirectory() : null };
        var result = new Trainer(method, splits, options).Run();

        double[] expected = [0.1, 0.6, 0.3];
        for (int e = 0; e < 3; e++) Assert.AreEqual(expected[e], result.History[e].ValidationAccuracy!.Value, 1e-6, $"epoch {e + 1}");
        Assert.AreEqual(2, result.BestEpoch);
        Assert.AreEqual(0.6, result.BestValidationAccuracy!.Value, 1e-6);
        Assert.AreEqual(2, method.CompletedEpochs, "the network must hold epoch 2's weights, not the last epoch's");
    }

    /// <summary>
    /// A method whose only "learning" is a step counter kept in a network parameter (the output head's first bias),
    /// and whose prediction after epoch e is the fixed class predictedClassPerEpoch[e − 1]: its validation accuracy
    /// per epoch is scripted, and the weights in the network tell which epoch they come from.
    /// </summary>
    private sealed class ScriptedMethod(NoPropDt inner, int[] predictedClassPerEpoch) : INoPropMethod
    {
        private const int StepsPerEpoch = 2;   // 8 training images, batch 4, one stage
        private Tensor Counter => inner.DtNetwork.OutputHead.bias!;
        public int CompletedEpochs => (int)Math.Round(Counter[0].item<float>() / StepsPerEpoch);
        public ModelConfig Config => inner.Config;
        public nn.Module Network => inner.Network;
        public NoProp.Embeddings.LabelEmbedding Embedding => inner.Embedding;
        public IReadOnlyList<OptimizerHelper> Optimizers => inner.Optimizers;
        public int StagesPerEpoch => 1;
        public string DescribeStage(int stage) => "all";
        public IReadOnlyList<string> LossNames => LossLayout.TotalOnly.Columns;

        public StepLosses TrainStep(int stage, Tensor x, Tensor y)
        {
            using (no_grad()) Counter[0] += 1f;
            return LossLayout.TotalOnly.Record(zeros(1, ScalarType.Float32));
        }

        public Tensor PredictProbabilities(Tensor x, InferenceOptions options)
        {
            int predicted = predictedClassPerEpoch[CompletedEpochs - 1];
            return nn.functional.one_hot(full(x.shape[0], predicted, ScalarType.Int64), 10).to_type(ScalarType.Float32);
        }

        public void Dispose() => inner.Dispose();
    }

    private sealed class CancelAtStep(CancellationTokenSource cts, long step) : ITrainingProgress
    {
        public void Report(ProgressInfo info) { if (info.Step == step) cts.Cancel(); }
        public void EpochCompleted(EpochRecord record) { }
        public void Message(string line) { }
    }
}
