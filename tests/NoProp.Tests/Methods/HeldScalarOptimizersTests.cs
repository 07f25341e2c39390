using NoProp.Methods;
using NoProp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Tests.Methods;

[TestClass]
public sealed class HeldScalarOptimizersTests
{
    [TestInitialize]
    public void Init() => TorchRuntime.Initialize();

    private static Sequential Net(long seed)
    {
        TorchRuntime.Seed(seed);
        return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3));
    }

    private static void Step(Sequential net, OptimizerHelper optimizer, Tensor x)
    {
        using var scope = NewDisposeScope();
        optimizer.zero_grad();
        net.forward(x).pow(3).sum().backward();
        optimizer.step();
    }

    [TestMethod]
    [DataRow("adamw")]
    [DataRow("adam")]
    public void UpdatesEqualTorchSharpsOwnBitForBit(string kind)
    {
        using var theirsNet = Net(4);
        using var oursNet = Net(4);
        OptimizerHelper theirs = kind == "adamw"
            ? optim.AdamW(theirsNet.parameters(), 0.01, weight_decay: 0.05)
            : optim.Adam(theirsNet.parameters(), 0.01, weight_decay: 0.05);
        OptimizerHelper ours = kind == "adamw"
            ? HeldScalarOptimizers.AdamW(oursNet.parameters(), 0.01, 0.05)
            : HeldScalarOptimizers.Adam(oursNet.parameters(), 0.01, 0.05);
        using var x = randn(8, 6, generator: new Generator(9));
        for (int step = 0; step < 6; step++)
        {
            if (step == 3)   // a learning-rate schedule changes the rate between steps
                foreach (var o in new[] { theirs, ours }) foreach (var g in o.ParamGroups) g.LearningRate = 0.003;
            Step(theirsNet, theirs, x);
            Step(oursNet, ours, x);
            foreach (var ((name, a), (_, b)) in theirsNet.named_parameters().Zip(oursNet.named_parameters()))
                Assert.IsTrue(a.SameAs(b), $"{kind}, step {step + 1}: {name}");
        }
        // A mutation check: a different rate gives different parameters (the comparison can fail).
        foreach (var g in ours.ParamGroups) g.LearningRate = 0.004;
        Step(theirsNet, theirs, x);
        Step(oursNet, ours, x);
        Assert.IsFalse(theirsNet.parameters().Zip(oursNet.parameters()).All(p => p.First.SameAs(p.Second)));
    }

    [TestMethod]
    public void AStateSavedByTorchSharpsAdamWLoadsAndContinuesIdentically()
    {
        using var theirsNet = Net(6);
        using var oursNet = Net(6);
        var theirs = optim.AdamW(theirsNet.parameters(), 0.01, weight_decay: 0.01);
        using var x = randn(8, 6, generator: new Generator(2));
        Step(theirsNet, theirs, x);
        Step(theirsNet, theirs, x);
        var path = Path.Combine(TestSupport.TempDirectory(), "optimizer.bin");
        theirs.save_state_dict(path);
        using (no_grad())
            foreach (var (a, b) in theirsNet.parameters().Zip(oursNet.parameters())) b.copy_(a);
        var ours = HeldScalarOptimizers.AdamW(oursNet.parameters(), 0.01, 0.01);
        ours.load_state_dict(path);   // the file names the type: "AdamW"
        Step(theirsNet, theirs, x);
        Step(oursNet, ours, x);
        Assert.IsTrue(theirsNet.parameters().Zip(oursNet.parameters()).All(p => p.First.SameAs(p.Second)), "continued from the loaded moments");
    }
}
