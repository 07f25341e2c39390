using NoProp.Embeddings;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Methods.FlowMatching;

/// <summary>NoProp-FM (§2.5, Eqs. 10–13, Algorithm 3): flow matching of the label embedding; Adam, the nearest embedding (the paper's rule).</summary>
public sealed class NoPropFmDefinition() : MethodDefinition(
    MethodKind.FlowMatching, "fm", "NoProp-FM", MethodStructure.Continuous,
    "NoProp-FM (§2.5): flow matching of the label embedding, ODE inference",
    Fm,
    [.. ContinuousOptions.For(Fm), new(MethodOption.FlowSigma, "0")],
    aliases: ["noprop-fm"])
{
    private static readonly MethodDefaults Fm = new() { Optimizer = OptimizerKind.Adam, Prediction = PredictionRule.NearestEmbedding };

    /// <summary>The output head of a one-hot model is never trained: the anchor loss applies to learned embeddings (Eq. 13).</summary>
    public override void ValidatePrediction(ModelConfig config, PredictionRule rule)
    {
        if (rule == PredictionRule.OutputHead && config.Embedding == LabelEmbeddingKind.OneHot)
            throw new NoPropException("--prediction head: a one-hot NoProp-FM model has no trained output head (the anchor loss applies to learned embeddings); use --prediction nearest");
    }

    public override INoPropMethod Create(ModelConfig config, Device? device = null) => new NoPropFm(config, device);
}
