using NoProp.Methods;
using NoProp.Methods.ContinuousTime;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Tests.Methods;

/// <summary>What trains NoProp-CT's learnable schedule ψ (<see cref="CtScheduleTraining"/>) and ψ's weight decay.</summary>
[TestClass]
public sealed class CtScheduleTrainingTests
{
    [TestInitialize]
    public void Init() => TorchRuntime.Initialize();

    private static ModelConfig Config(CtScheduleTraining training, CtWeighting weighting = CtWeighting.Constant, double eta = 1.0) =>
        TestSupport.Config() with
        {
            Method = MethodKind.ContinuousTime, Eta = eta, Weighting = weighting, ScheduleTraining = training,
            Prediction = ModelConfig.DefaultPrediction(MethodKind.ContinuousTime),
        };

    /// <summary>A model built and stepped from seed 5 on the same 16 images: the same initial weights, t and noise for every config.</summary>
    private static NoPropCt Stepped(ModelConfig config, int steps = 1)
    {
        TorchRuntime.Seed(5);
        var method = new NoPropCt(config);
        var (x, y) = TestSupport.Mnist.Train.Take(16).ToTensors();
        for (int i = 0; i < steps; i++)
        {
            TorchRuntime.Seed(100 + i);
            method.TrainStep(0, x, y).Dispose();
        }
        x.Dispose(); y.Dispose();
        return method;
    }

    // Every tensor made here is disposed: the leak tests of other classes count live tensors, and a finaliser running
    // during their window would skew the count.
    private static float[] ScheduleGradient(NoPropCt method) =>
        method.CtNetwork.Schedule.parameters().SelectMany(p =>
        {
            using var g = p.grad;
            return g is null ? new float[p.numel()] : g.data<float>().ToArray();
        }).ToArray();

    private static float[] ScheduleValues(NoPropCt method) =>
        method.CtNetwork.Schedule.parameters().SelectMany(p => { using var v = p.detach(); return v.data<float>().ToArray(); }).ToArray();

    private static double MaxDifference(float[] a, float[] b) => a.Zip(b, (p, q) => Math.Abs((double)p - q)).Max();

    [TestMethod]
    [DataRow(CtWeighting.Constant)]
    [DataRow(CtWeighting.SnrDerivative)]
    public void ADetachedScheduleLearnsOnlyFromTheCrossEntropyAndKlTerms(CtWeighting weighting)
    {
        // η scales the denoising term only: ψ's gradient must not depend on it when that term sees the schedule as a constant.
        using var detached1 = Stepped(Config(CtScheduleTraining.Detached, weighting, eta: 1));
        using var detached100 = Stepped(Config(CtScheduleTraining.Detached, weighting, eta: 100));
        var g1 = ScheduleGradient(detached1);
        Assert.IsTrue(g1.Any(v => v != 0), "the CE and KL terms still reach ψ (through ᾱ(1) and ᾱ(0))");
        Assert.AreEqual(0, MaxDifference(g1, ScheduleGradient(detached100)), 1e-6);

        // Trained jointly, the denoising term reaches ψ, so η changes its gradient.
        using var joint1 = Stepped(Config(CtScheduleTraining.Joint, weighting, eta: 1));
        using var joint100 = Stepped(Config(CtScheduleTraining.Joint, weighting, eta: 100));
        double jointDifference = MaxDifference(ScheduleGradient(joint1), ScheduleGradient(joint100));
        Assert.IsTrue(jointDifference > 1e-4, $"joint: η changes ψ's gradient by {jointDifference}");
    }

    [TestMethod]
    public void AFrozenScheduleKeepsItsInitialValuesWhileTheNetworkTrains()
    {
        TorchRuntime.Seed(5);
        using var initial = new NoPropCt(Config(CtScheduleTraining.Frozen));
        using var frozen = Stepped(Config(CtScheduleTraining.Frozen), steps: 3);
        Assert.AreEqual(0, MaxDifference(ScheduleValues(initial), ScheduleValues(frozen)));
        using var before = initial.CtNetwork.Denoiser.parameters().First().detach();
        using var after = frozen.CtNetwork.Denoiser.parameters().First().detach();
        Assert.IsFalse(before.SameAs(after), "the denoiser trains");

        using var joint = Stepped(Config(CtScheduleTraining.Joint), steps: 3);
        Assert.IsTrue(MaxDifference(ScheduleValues(initial), ScheduleValues(joint)) > 1e-4, "a joint schedule moves");
    }

    [TestMethod]
    public void TheScheduleHasAWeightDecayOfItsOwn()
    {
        // ψ's first Adam step depends only on ψ's gradient and ψ's weight decay: a large decay on the other parameters
        // leaves it unchanged (ψ's own decay is 0 by default), and a decay of ψ's own changes it.
        var config = Config(CtScheduleTraining.Joint);
        Assert.AreEqual(0.0, config.ScheduleWeightDecay);
        using var none = Stepped(config with { WeightDecay = 0 });
        using var othersOnly = Stepped(config with { WeightDecay = 50 });
        using var shared = Stepped(config with { WeightDecay = 50, ScheduleWeightDecay = 50 });
        Assert.AreEqual(0, MaxDifference(ScheduleValues(none), ScheduleValues(othersOnly)), 1e-7);
        Assert.IsTrue(MaxDifference(ScheduleValues(none), ScheduleValues(shared)) > 1e-4, "--schedule-weight-decay decays ψ");
        using var denoiserNone = none.CtNetwork.Denoiser.parameters().First().detach();
        using var denoiserOthers = othersOnly.CtNetwork.Denoiser.parameters().First().detach();
        Assert.IsFalse(denoiserNone.CloseTo(denoiserOthers, 1e-7), "the other parameters do decay");
    }

    [TestMethod]
    public void TheDefaultFollowsTheWeighting()
    {
        // Unset (the ML.NET adapter, a model.json written before the option): jointly under Eq. 9's weighting, detached under the constant one.
        Assert.AreEqual(CtScheduleTraining.Detached, (TestSupport.Config() with { Weighting = CtWeighting.Constant }).ScheduleTrainingOrDefault);
        Assert.AreEqual(CtScheduleTraining.Joint, (TestSupport.Config() with { Weighting = CtWeighting.SnrDerivative }).ScheduleTrainingOrDefault);
        var json = Config(CtScheduleTraining.Frozen).ToJson();
        Assert.IsTrue(json.Contains("\"schedule_training\": \"frozen\""), json);
        var old = json.Replace("\"schedule_training\": \"frozen\",", "");
        Assert.AreEqual(CtScheduleTraining.Detached, ModelConfig.FromJson(old, "model.json").ScheduleTrainingOrDefault);
        Assert.AreEqual(CtScheduleTraining.Frozen, ModelConfig.FromJson(json, "model.json").ScheduleTrainingOrDefault);
        Assert.AreEqual(CtScheduleTraining.Detached, EnumNames<CtScheduleTraining>.Parse("detached"));
        Assert.ThrowsExactly<NoPropException>(() => EnumNames<CtScheduleTraining>.Parse("sometimes"));
    }
}
