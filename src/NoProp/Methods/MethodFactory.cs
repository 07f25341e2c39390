using NoProp.Methods.Adjoint;
using NoProp.Methods.Backprop;
using NoProp.Methods.ContinuousTime;
using NoProp.Methods.DiscreteTime;
using NoProp.Methods.FlowMatching;
using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>Builds the method a configuration names.</summary>
public static class MethodFactory
{
    public static INoPropMethod Create(ModelConfig config, Device? device = null) => config.Method switch
    {
        MethodKind.DiscreteTime => new NoPropDt(config, device),
        MethodKind.ContinuousTime => new NoPropCt(config, device),
        MethodKind.FlowMatching => new NoPropFm(config, device),
        MethodKind.Backprop => new BackpropBaseline(config, device),
        MethodKind.Adjoint => new AdjointOde(config, device),
        _ => throw new ArgumentOutOfRangeException(nameof(config), $"unsupported method {config.Method}"),
    };
}
