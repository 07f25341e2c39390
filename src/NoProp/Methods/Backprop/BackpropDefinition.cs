using static TorchSharp.torch;

namespace NoProp.Methods.Backprop;

/// <summary>The back-propagation baseline (§4, Eqs. 17–19): the DT blocks chained and trained end to end with AdamW.</summary>
public sealed class BackpropDefinition() : MethodDefinition(
    MethodKind.Backprop, "backprop", "Backprop", MethodStructure.BlockChain,
    "baseline: the DT blocks chained and trained end to end by back-propagation (Eqs. 17–19)",
    new MethodDefaults { Optimizer = OptimizerKind.AdamW, Prediction = PredictionRule.OutputHead },
    [new(MethodOption.Blocks, "10")])
{
    public override INoPropMethod Create(ModelConfig config, Device? device = null) => new BackpropBaseline(config, device);
}
