using NoProp.Runtime;
using NoProp.Embeddings;
using NoProp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods.Backprop;

/// <summary>
/// All parameters of the back-propagation baseline: the same T blocks, output head and class embedding as
/// NoProp-DT (<see cref="DtBlock"/>, Fig. 6 left), plus one free scalar w_t per block (α_t = tanh(w_t), Eq. 18).
/// </summary>
public sealed class BackpropNetwork : nn.Module
{
    /// <summary>The initial w_t of every block: α_t = tanh(0.5) ≈ 0.46 (the paper does not give one).</summary>
    public const double InitialMixingWeight = 0.5;

    private readonly ModuleList<DtBlock> blocks;
    private readonly Linear outputHead;
    private readonly LabelEmbedding embedding;
    private readonly Parameter mixing;

    public BackpropNetwork(ModelConfig config) : base(nameof(BackpropNetwork))
    {
        bool imageShapedLabel = config.Embedding == LabelEmbeddingKind.Prototype;
        blocks = new ModuleList<DtBlock>(Enumerable.Range(0, config.Blocks)
            .Select(_ => new DtBlock(config.Image, config.EmbeddingDimension, config.ClassCount, imageShapedLabel)).ToArray());
        outputHead = nn.Linear(config.EmbeddingDimension, config.ClassCount);
        embedding = new LabelEmbedding(config.Embedding, config.ClassCount, config.EmbeddingDimension);
        using (no_grad()) mixing = new Parameter(HeldScalars.Full(config.Blocks, InitialMixingWeight));
        RegisterComponents();
    }

    public ModuleList<DtBlock> Blocks => blocks;
    public Linear OutputHead => outputHead;
    public LabelEmbedding Embedding => embedding;

    /// <summary>The free parameters w_1..w_T (α_t = tanh(w_t)).</summary>
    public Parameter MixingWeights => mixing;
}

/// <summary>
/// The back-propagation baseline of the paper (§4, Eqs. 17–19): z_0 ~ N(0, I), then for t = 1..T
/// z_t = (1 − α_t)·z_{t−1} + α_t·û_θt(z_{t−1}, x), with û_θt = softmax(block_t(x, z_{t−1}))·W_Embed (the NoProp-DT
/// block and readout) and α_t = tanh(w_t) learnable; the class is argmax p̂_θout(y | z_T). Unlike NoProp-DT the
/// whole chain is one network trained end to end: the cross-entropy of p̂_θout(y | z_T) is back-propagated through
/// every block (the paper does not write the loss down; cross-entropy is the natural reading), with a single AdamW
/// over all parameters. Training activations of all T blocks are alive at once, which is what the memory
/// comparison with NoProp-DT measures.
/// </summary>
public sealed class BackpropBaseline : NoPropMethod<BackpropNetwork>, IChainInference, IImageOnlyReadout, ILearnedExtras
{
    private static readonly LossLayout Layout = new("cross_entropy");
    private readonly OptimizerHelper optimizer;

    public BackpropBaseline(ModelConfig config, Device? device = null)
        : base(MethodKind.Backprop, config, device, c => new BackpropNetwork(c), Layout)
    {
        optimizer = NewOptimizer(TrainableParameters());
        SetOptimizers(optimizer);
    }

    public BackpropNetwork BackpropNetwork => Net;
    public override LabelEmbedding Embedding => Net.Embedding;
    public override string DescribeStage(int stage) => "all blocks";

    /// <summary>The current α_t = tanh(w_t), t = 1..T.</summary>
    public double[] Alphas()
    {
        using var _ = no_grad();
        using var alphas = Net.MixingWeights.tanh().cpu();
        return alphas.data<float>().Select(a => (double)a).ToArray();
    }

    public override StepLosses TrainStep(int stage, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var z0 = randn(x.shape[0], Config.EmbeddingDimension, device: x.device);
        var zT = Chain(x, z0, null);
        var crossEntropy = nn.functional.cross_entropy(Net.OutputHead.forward(zT), y);
        optimizer.zero_grad();
        crossEntropy.backward();
        optimizer.step();
        return Layout.Record(total: crossEntropy, crossEntropy);
    }

    public override Tensor PredictProbabilities(Tensor x, InferenceOptions options) =>
        nn.functional.softmax(Net.OutputHead.forward(RunChain(x, options)), 1);

    /// <summary>
    /// Eqs. 17–18 from z_0 ~ N(0, I) (z_0 = 0 when <see cref="InferenceOptions.Deterministic"/> or
    /// <see cref="InferenceOptions.ZeroInitialState"/>: z_0 is the chain's only noise) and returns z_T;
    /// <paramref name="callback"/> sees z_t after every block t = 1..T.
    /// </summary>
    public Tensor RunChain(Tensor x, InferenceOptions options, ChainCallback? callback = null)
    {
        using var precision = options.PrecisionRegion(Config);
        using var z0 = options.ZeroInitialState || options.Deterministic
            ? zeros(x.shape[0], Config.EmbeddingDimension, device: x.device)
            : options.Noise([x.shape[0], Config.EmbeddingDimension], x.device);
        return Chain(x, z0, callback);
    }

    public Tensor HeadProbabilities(Tensor z) => nn.functional.softmax(Net.OutputHead.forward(z), 1);

    /// <summary>softmax(logits of block 1 at z_0 = 0): the image path of the first block alone.</summary>
    public Tensor ImageOnlyProbabilities(Tensor x) => Net.Blocks[0].ImageOnlyProbabilities(x, Config.EmbeddingDimension);

    /// <summary>The learned mixing weights α_t = tanh(w_t) ("alphas").</summary>
    public IReadOnlyDictionary<string, object> LearnedExtras() =>
        new Dictionary<string, object> { ["alphas"] = Alphas().Select(a => Math.Round(a, 5)).ToArray() };

    private Tensor Chain(Tensor x, Tensor z0, ChainCallback? callback)
    {
        using var scope = NewDisposeScope();
        var alphas = Net.MixingWeights.tanh();
        var embedding = Net.Embedding.Weight;
        var z = z0;
        for (int t = 0; t < Config.Blocks; t++)
        {
            var uHat = EmbeddingReadout.ConvexCombination(Net.Blocks[t].forward(x, z), embedding);
            var alpha = alphas[t];
            z = (z * alpha.SubtractedFrom(1)).Plus(uHat * alpha);
            callback?.Invoke(new ChainStep(t + 1, Config.Blocks, (t + 1) / (double)Config.Blocks, z, uHat));
        }
        return (ReferenceEquals(z, z0) ? z0.clone() : z).MoveToOuterDisposeScope();
    }
}
