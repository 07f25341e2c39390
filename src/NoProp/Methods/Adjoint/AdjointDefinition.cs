using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Methods.Adjoint;

/// <summary>
/// The adjoint baseline: the CT network as a neural ODE trained by the adjoint method (Chen et al. 2018); AdamW as in the
/// paper's Table 3, the class read off z_1 by the linear classifier. <c>--steps</c> sets the training solves too.
/// </summary>
public sealed class AdjointDefinition() : MethodDefinition(
    MethodKind.Adjoint, "adjoint", "Adjoint", MethodStructure.Continuous,
    "baseline: the CT network as a neural ODE trained by the adjoint method",
    Adjoint,
    ContinuousOptions.For(Adjoint, stepsNote: "training too"))
{
    private static readonly MethodDefaults Adjoint = new() { Optimizer = OptimizerKind.AdamW, Prediction = PredictionRule.OutputHead };

    /// <summary>z_1 is trained for the linear classifier only, never towards the class embeddings.</summary>
    public override void ValidatePrediction(ModelConfig config, PredictionRule rule)
    {
        if (rule != PredictionRule.OutputHead)
            throw new NoPropException("--prediction nearest: the adjoint model classifies z_1 with its linear layer (its z is not trained towards the class embeddings); use --prediction head");
    }

    public override INoPropMethod Create(ModelConfig config, Device? device = null) => new AdjointOde(config, device);
}
