using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Methods.DiscreteTime;

/// <summary>
/// NoProp-DT (§2.3, Algorithm 1): T blocks, each trained alone to denoise a noisy label embedding. Defaults: the paper's
/// MNIST configuration (η = 0.1, T = 10, AdamW, the output head's prediction).
/// </summary>
public sealed class NoPropDtDefinition() : MethodDefinition(
    MethodKind.DiscreteTime, "dt", "NoProp-DT", MethodStructure.BlockChain,
    "NoProp-DT (§2.3): T blocks, each trained alone to denoise the label embedding",
    new MethodDefaults { Eta = 0.1, Optimizer = OptimizerKind.AdamW, Prediction = PredictionRule.OutputHead },
    [new(MethodOption.Blocks, "10"), new(MethodOption.Schedule, BlockSchedule.Sequential.ToCliName()), new(MethodOption.Eta, "0.1"),
     new(MethodOption.Inference, DtInference.Stochastic.ToCliName(), "validation, test and saved model alike")],
    aliases: ["noprop-dt"])
{
    public override INoPropMethod Create(ModelConfig config, Device? device = null) => new NoPropDt(config, device);

    /// <summary>Deterministic DT inference drops Eq. 3's ε but still draws z_0.</summary>
    public override bool DeterministicInferenceDrawsNoise => true;
}
