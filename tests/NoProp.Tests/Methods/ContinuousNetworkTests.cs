using NoProp.Methods;
using NoProp.Methods.Adjoint;
using NoProp.Methods.ContinuousTime;
using NoProp.Methods.FlowMatching;
using NoProp.Runtime;

namespace NoProp.Tests.Methods;

/// <summary>
/// NoProp-CT, NoProp-FM and the adjoint share one network class (<see cref="ContinuousNetwork"/>). Its state dict must
/// keep the names and the order each method saved before (model.bin is read by name; a checkpoint's optimiser state
/// by parameter order): the lists below are the keys of model.bin files written by the three separate classes.
/// </summary>
[TestClass]
public sealed class ContinuousNetworkTests
{
    [TestInitialize]
    public void Init() { TorchRuntime.Initialize(); TorchRuntime.Seed(3); }

    private static readonly string[] CtKeys =
    [
        "denoiser.imagePath.conv1.weight",
        "denoiser.imagePath.conv1.bias",
        "denoiser.imagePath.conv2.weight",
        "denoiser.imagePath.conv2.bias",
        "denoiser.imagePath.conv3.weight",
        "denoiser.imagePath.conv3.bias",
        "denoiser.imagePath.fc.weight",
        "denoiser.imagePath.fc.bias",
        "denoiser.labelPath.0.weight",
        "denoiser.labelPath.0.bias",
        "denoiser.timePath.0.weight",
        "denoiser.timePath.0.bias",
        "denoiser.head.0.weight",
        "denoiser.head.0.bias",
        "denoiser.head.2.weight",
        "denoiser.head.2.bias",
        "denoiser.head.4.weight",
        "denoiser.head.4.bias",
        "outputHead.weight",
        "outputHead.bias",
        "embedding.weight",
        "schedule.w1",
        "schedule.b1",
        "schedule.w2",
        "schedule.b2",
        "schedule.gamma_min",
        "schedule.gamma_gap",
    ];

    /// <summary>NoProp-FM and the adjoint baseline saved the same keys.</summary>
    private static readonly string[] VelocityKeys =
    [
        "velocity.imagePath.conv1.weight",
        "velocity.imagePath.conv1.bias",
        "velocity.imagePath.conv2.weight",
        "velocity.imagePath.conv2.bias",
        "velocity.imagePath.conv3.weight",
        "velocity.imagePath.conv3.bias",
        "velocity.imagePath.fc.weight",
        "velocity.imagePath.fc.bias",
        "velocity.labelPath.0.weight",
        "velocity.labelPath.0.bias",
        "velocity.timePath.0.weight",
        "velocity.timePath.0.bias",
        "velocity.head.0.weight",
        "velocity.head.0.bias",
        "velocity.head.2.weight",
        "velocity.head.2.bias",
        "velocity.head.4.weight",
        "velocity.head.4.bias",
        "outputHead.weight",
        "outputHead.bias",
        "embedding.weight",
    ];

    private static ModelConfig Config(MethodKind kind) => TestSupport.Config() with
    {
        Method = kind, Eta = 1.0, InferenceSteps = 2, Prediction = ModelConfig.DefaultPrediction(kind),
    };

    [TestMethod]
    public void StateDictNamesAndOrderAreThoseOfTheSavedModels()
    {
        using var ct = new NoPropCt(Config(MethodKind.ContinuousTime));
        using var fm = new NoPropFm(Config(MethodKind.FlowMatching));
        using var adjoint = new AdjointOde(Config(MethodKind.Adjoint));
        CollectionAssert.AreEqual(CtKeys, ct.Network.state_dict().Keys.ToArray());
        CollectionAssert.AreEqual(VelocityKeys, fm.Network.state_dict().Keys.ToArray());
        CollectionAssert.AreEqual(VelocityKeys, adjoint.Network.state_dict().Keys.ToArray());
        // The optimiser sees the parameters in the same order as the state dict (checkpoints keep Adam's state by position).
        CollectionAssert.AreEqual(fm.Network.named_parameters().Select(p => p.name).ToArray(), VelocityKeys);
    }

    [TestMethod]
    public void OnlyNoPropCtHasASchedule()
    {
        using var fm = new NoPropFm(Config(MethodKind.FlowMatching));
        Assert.ThrowsExactly<InvalidOperationException>(() => fm.FmNetwork.Schedule);
        using var ct = new NoPropCt(Config(MethodKind.ContinuousTime));
        Assert.AreEqual(6, ct.CtNetwork.Schedule.parameters().Count());
        Assert.AreSame(ct.CtNetwork.Core, ct.CtNetwork.Denoiser);
    }

    [TestMethod]
    public void AModelSavedByOneMethodLoadsIntoAFreshOne()
    {
        var dir = TestSupport.TempDirectory();
        var config = Config(MethodKind.FlowMatching);
        using var saved = MethodRegistry.Create(config);
        saved.Network.save(Path.Combine(dir, "model.bin"));
        TorchRuntime.Seed(99);
        using var loaded = MethodRegistry.Create(config);
        loaded.Network.load(Path.Combine(dir, "model.bin"));
        foreach (var (name, tensor) in saved.Network.state_dict())
            Assert.IsTrue(tensor.SameAs(loaded.Network.state_dict()[name]), name);
    }
}
