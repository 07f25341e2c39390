using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>Builds the method a configuration names (forwards to <see cref="MethodRegistry"/>).</summary>
public static class MethodFactory
{
    public static INoPropMethod Create(ModelConfig config, Device? device = null) => MethodRegistry.Create(config, device);
}
