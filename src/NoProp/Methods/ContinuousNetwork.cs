using NoProp.Embeddings;
using NoProp.Models;
using NoProp.Schedules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>
/// All parameters of a continuous-time model (NoProp-CT, NoProp-FM, the adjoint baseline): the network
/// <see cref="CtDenoiser"/> (û_θ for CT, the velocity v_θ for FM and the adjoint), the output head p̂_θout, W_Embed, and
/// for NoProp-CT the learnable noise schedule ψ.
/// <para>
/// The state-dict names are those the three methods have always saved: "denoiser.*" (CT) or "velocity.*" (FM,
/// adjoint), "outputHead.*", "embedding.weight" and "schedule.*", registered in that order (the order of the
/// parameters in the optimisers' saved state).
/// </para>
/// </summary>
public sealed class ContinuousNetwork : nn.Module
{
    private readonly CtDenoiser core;
    private readonly Linear outputHead;
    private readonly LabelEmbedding embedding;
    private readonly LearnableNoiseSchedule? schedule;

    /// <param name="config">The model configuration.</param>
    /// <param name="coreName">"denoiser" (CT) or "velocity" (FM, adjoint): the name of the network in the state dict.</param>
    /// <param name="withSchedule">Whether the model learns a noise schedule (CT).</param>
    /// <param name="name">The module's name.</param>
    public ContinuousNetwork(ModelConfig config, string coreName, bool withSchedule, string name) : base(name)
    {
        core = new CtDenoiser(config.Image, config.EmbeddingDimension, config.ClassCount,
            config.Embedding == LabelEmbeddingKind.Prototype, config.Backbone);
        outputHead = nn.Linear(config.EmbeddingDimension, config.ClassCount);
        embedding = new LabelEmbedding(config.Embedding, config.ClassCount, config.EmbeddingDimension);
        if (withSchedule) schedule = new LearnableNoiseSchedule(config.InitialGammaMax, config.InitialGammaMin);
        register_module(coreName, core);
        register_module(nameof(outputHead), outputHead);
        register_module(nameof(embedding), embedding);
        if (schedule is not null) register_module(nameof(schedule), schedule);
    }

    /// <summary>The network û_θ(z, x, t) or v_θ(z, x, t) (class logits; the method turns them into û or v).</summary>
    public CtDenoiser Core => core;

    /// <summary>NoProp-CT's name for <see cref="Core"/>.</summary>
    public CtDenoiser Denoiser => core;

    /// <summary>NoProp-FM's and the adjoint's name for <see cref="Core"/>.</summary>
    public CtDenoiser Velocity => core;

    /// <summary>The network's logits [B, m] for images x at the prior mean z = 0 and t = 0 (the image path alone: <c>--image-only</c>).</summary>
    public Tensor LogitsAtOrigin(Tensor x, int embeddingDimension)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0];
        return core.forward(x, zeros(batch, embeddingDimension, device: x.device), zeros(batch, device: x.device)).MoveToOuterDisposeScope();
    }

    public Linear OutputHead => outputHead;
    public LabelEmbedding Embedding => embedding;

    /// <summary>NoProp-CT's learnable schedule ψ.</summary>
    public LearnableNoiseSchedule Schedule => schedule ?? throw new InvalidOperationException($"{GetName()} has no noise schedule (only NoProp-CT learns one)");
}
