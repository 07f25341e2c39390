using NoProp.Data;
using NoProp.Methods.DiscreteTime;
using NoProp.Runtime;
using NoProp.Training;

namespace NoProp.Tests.Training;

[TestClass]
public sealed class LearningRateScheduleTests
{
    [TestMethod]
    public void ConstantWithWarmUpRampsLinearlyThenHolds()
    {
        var s = new LearningRateSchedule { Kind = LearningRateScheduleKind.Constant, WarmupEpochs = 2 };
        Assert.AreEqual(0.0, s.Factor(0, 10), 1e-12);
        Assert.AreEqual(0.5, s.Factor(0.1, 10), 1e-12);   // 1 epoch of 2
        Assert.AreEqual(1.0, s.Factor(0.2, 10), 1e-12);
        Assert.AreEqual(1.0, s.Factor(0.9, 10), 1e-12);
        Assert.AreEqual(1.0, new LearningRateSchedule().Factor(0.0, 10), 1e-12, "no warm-up: the configured rate from the start");
    }

    [TestMethod]
    public void CosineDecaysFromThePeakToTheFinalFraction()
    {
        var s = new LearningRateSchedule { Kind = LearningRateScheduleKind.Cosine, WarmupEpochs = 1, FinalFraction = 0.1 };
        Assert.AreEqual(0.5, s.Factor(0.05, 10), 1e-12);
        Assert.AreEqual(1.0, s.Factor(0.1, 10), 1e-12);
        Assert.AreEqual(0.1 + 0.9 * 0.5, s.Factor(0.55, 10), 1e-12, "half way through the decay");
        Assert.AreEqual(0.1, s.Factor(1.0, 10), 1e-12);
    }

    [TestMethod]
    public void OneCycleFollowsPyTorchsOneCycleLr()
    {
        var s = new LearningRateSchedule { Kind = LearningRateScheduleKind.OneCycle };
        Assert.AreEqual(1.0 / 25, s.Factor(0, 10), 1e-12);
        Assert.AreEqual(1.0, s.Factor(0.3, 10), 1e-12, "the peak after 30 % of the run");
        Assert.AreEqual((1.0 / 25 + 1) / 2, s.Factor(0.15, 10), 1e-12);
        Assert.AreEqual(1.0 / 25 / 1e4, s.Factor(1.0, 10), 1e-15);
    }

    [TestMethod]
    public void BadWarmUpIsRefused()
    {
        var e = Assert.ThrowsExactly<NoPropException>(() => new LearningRateSchedule { WarmupEpochs = 3 }.Validate(3));
        StringAssert.Contains(e.Message, "--warmup-epochs 3");
    }

    [TestMethod]
    public void TheTrainerSetsEveryOptimisersRateAlongTheSchedule()
    {
        TorchRuntime.Initialize();
        TorchRuntime.Seed(3);
        var splits = DataSplits.Create(TestSupport.Mnist, 64, 0, 16, seed: 3);
        using var method = new NoPropDt(TestSupport.Config(blocks: 2));
        var options = new TrainingOptions
        {
            Epochs = 2, BatchSize = 16, Seed = 3,
            LearningRateSchedule = new LearningRateSchedule { Kind = LearningRateScheduleKind.Cosine },
        };
        new Trainer(method, splits, options).Run();
        // The last step of epoch 2 ran at progress (1 + 3/4) / 2 = 0.875: factor ½(1 + cos 0.875π).
        double expected = 1e-3 * 0.5 * (1 + Math.Cos(Math.PI * 0.875));
        foreach (var o in method.Optimizers)
            foreach (var group in o.ParamGroups) Assert.AreEqual(expected, group.LearningRate, 1e-12);
    }
}
