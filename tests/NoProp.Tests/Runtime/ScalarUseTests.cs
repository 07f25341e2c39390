using NoProp.Methods.DiscreteTime;
using NoProp.Runtime;
using TorchSharp;

namespace NoProp.Tests.Runtime;

/// <summary>
/// No TorchSharp Scalar is created implicitly in NoProp: each one would be left to the finalizer, which can free it
/// while libtorch still reads it (see <see cref="HeldScalars"/>). The check reads the IL: NoProp's calls to
/// <c>Scalar.op_Implicit</c>, and to the TorchSharp methods that create Scalars themselves, directly or through other
/// TorchSharp methods they call (<c>a + b</c>, <c>x.square()</c>, <c>x * 0.5</c>, AdamW's step, ...).
/// </summary>
[TestClass]
public sealed class ScalarUseTests
{
    private static bool IsConversion(string key) =>
        key.StartsWith("TorchSharp.Scalar::op_Implicit(") || key.StartsWith("TorchSharp.ScalarExtensionMethods::ToScalar(");

    /// <summary>TorchSharp methods that create a Scalar, by closure over their static calls.</summary>
    private static HashSet<string> CreatingMethods()
    {
        var bodies = IlCalls.Bodies(typeof(Scalar).Assembly.Location)
            .GroupBy(b => b.Method).ToDictionary(g => g.Key, g => g.SelectMany(b => b.Calls).ToList());
        bool Own(string method) => method.StartsWith("TorchSharp.Scalar");
        var creating = bodies.Where(b => !Own(b.Key) && b.Value.Any(IsConversion)).Select(b => b.Key).ToHashSet();
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (var (method, calls) in bodies)
                if (!Own(method) && !creating.Contains(method) && calls.Any(creating.Contains)) changed |= creating.Add(method);
        }
        return creating;
    }

    /// <summary>
    /// TorchSharp calls with no overload that takes Scalars: softplus(x, β, threshold) converts its two doubles itself
    /// (NoProp-CT's learnable schedule: three calls per step on tensors of 32 or B elements, so the window is short).
    /// </summary>
    private static readonly HashSet<string> Unavoidable =
    [
        "TorchSharp.torch/nn/functional::softplus(TorchSharp.torch/Tensor,Double,Double)",
    ];

    private static List<string> ImplicitScalars(string assembly, HashSet<string> creating) =>
        IlCalls.Bodies(assembly)
            .Select(b => (b.Method, Calls: b.Calls.Where(c => c.StartsWith("TorchSharp.Scalar::op_Implicit(") || (creating.Contains(c) && !Unavoidable.Contains(c))).Distinct().ToList()))
            .Where(b => b.Calls.Count > 0)
            .Select(b => $"{b.Method}: {string.Join("; ", b.Calls)}")
            .ToList();

    [TestMethod]
    public void TheScanFindsTheImplicitScalarsTorchSharpCreates()
    {
        var creating = CreatingMethods();
        // The hidden ones: a + b passes alpha = 1, square() an exponent 2, AdamW's step several per parameter.
        Assert.IsTrue(creating.Contains("TorchSharp.torch/Tensor::add(TorchSharp.torch/Tensor)"), "add(Tensor)");
        Assert.IsTrue(creating.Contains("TorchSharp.torch/Tensor::square()"), "square()");
        Assert.IsTrue(creating.Contains("TorchSharp.torch/Tensor::op_Multiply(TorchSharp.torch/Tensor,Double)"), "x * 0.5");
        Assert.IsTrue(creating.Contains("TorchSharp.Modules.AdamW::step(System.Func`1<TorchSharp.torch/Tensor>)"), "AdamW.step");
        Assert.IsFalse(creating.Contains("TorchSharp.torch/Tensor::sub(TorchSharp.torch/Tensor)"), "sub(Tensor) passes no Scalar");
        Assert.IsFalse(creating.Contains("TorchSharp.torch/Tensor::mul(TorchSharp.torch/Tensor)"), "mul(Tensor) passes no Scalar");
        // ... and finds them in this test's own code: this method's x + x below.
        var here = ImplicitScalars(typeof(ScalarUseTests).Assembly.Location, creating);
        Assert.IsTrue(here.Any(line => line.StartsWith("NoProp.Tests.Runtime.ScalarUseTests::ADeliberateImplicitScalar(")), string.Join("\n", here));
    }

    private static torch.Tensor ADeliberateImplicitScalar(torch.Tensor x) => x + x;

    [TestMethod]
    public void NoPropCreatesNoScalarImplicitly()
    {
        var found = ImplicitScalars(typeof(NoPropDt).Assembly.Location, CreatingMethods());
        Assert.AreEqual(0, found.Count, "TorchSharp Scalars created implicitly (use HeldScalars):\n" + string.Join("\n", found));
    }
}
