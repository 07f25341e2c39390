using NoProp.Embeddings;
using NoProp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Methods.DiscreteTime;

/// <summary>
/// All parameters of a NoProp-DT model: the T blocks û_θ1..û_θT, the output head p̂_θout (a linear layer whose
/// softmax gives class probabilities from z_T, Eq. 14) and the class embedding W_Embed.
/// </summary>
public sealed class NoPropDtNetwork : Module
{
    public NoPropDtNetwork(ModelConfig config) : base(nameof(NoPropDtNetwork))
    {
        bool imageShapedLabel = config.Embedding == LabelEmbeddingKind.Prototype;
        blocks = new ModuleList<DtBlock>(Enumerable.Range(0, config.Blocks)
            .Select(_ => new DtBlock(config.Image, config.EmbeddingDimension, config.ClassCount, imageShapedLabel)).ToArray());
        outputHead = Linear(config.EmbeddingDimension, config.ClassCount);
        embedding = new LabelEmbedding(config.Embedding, config.ClassCount, config.EmbeddingDimension);
        // Fields are registered under their names ("blocks.3.imagePath.conv1.weight", "outputHead.weight", ...).
        RegisterComponents();
    }

    private readonly ModuleList<DtBlock> blocks;
    private readonly Linear outputHead;
    private readonly LabelEmbedding embedding;

    public ModuleList<DtBlock> Blocks => blocks;
    public Linear OutputHead => outputHead;
    public LabelEmbedding Embedding => embedding;
}
