using NoProp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Embeddings;

/// <summary>How class labels are embedded as the targets u_y = W_Embed[y] (paper §2.2.1).</summary>
[NamedAs("embedding")]
public enum LabelEmbeddingKind
{
    /// <summary>W_Embed = I (fixed), so d = number of classes.</summary>
    [Name("onehot", "one-hot")] OneHot,
    /// <summary>W_Embed learned, dimension k, orthogonal initialisation (semi-orthogonal when m &gt; k).</summary>
    [Name("learned")] Learned,
    /// <summary>W_Embed learned with d = image size, each row initialised from its class's medoid training image.</summary>
    [Name("prototype")] Prototype,
}

/// <summary>The class embedding matrix W_Embed ∈ R^{m×d} (m classes, d dimensions).</summary>
public sealed class LabelEmbedding : Module
{
    private readonly Parameter weight;

    public LabelEmbedding(LabelEmbeddingKind kind, int classes, int dimension) : base(nameof(LabelEmbedding))
    {
        Kind = kind;
        Classes = classes;
        Dimension = dimension;
        using (no_grad())
        {
            var w = kind switch
            {
                LabelEmbeddingKind.OneHot => eye(classes),
                _ => init.orthogonal_(empty(classes, dimension)),
            };
            if (kind == LabelEmbeddingKind.OneHot && dimension != classes)
                throw new NoPropException($"a one-hot embedding has dimension {classes} (the class count), not {dimension}");
            weight = new Parameter(w, requires_grad: kind != LabelEmbeddingKind.OneHot);
        }
        register_parameter("weight", weight);
    }

    public LabelEmbeddingKind Kind { get; }
    public int Classes { get; }
    public int Dimension { get; }
    public bool IsTrainable => Kind != LabelEmbeddingKind.OneHot;

    /// <summary>W_Embed [m, d].</summary>
    public Tensor Weight => weight;

    /// <summary>u_y = W_Embed[y] for a batch of labels: [B, d].</summary>
    public Tensor Lookup(Tensor labels) => weight.index_select(0, labels);

    /// <summary>
    /// Initialises each row to the training image of that class with the smallest median Euclidean distance to
    /// the other images of the class (a medoid; paper §2.2.1). For speed the median is taken over a seeded
    /// sample of at most <paramref name="maxPerClass"/> images of each class.
    /// </summary>
    public void InitialiseFromPrototypes(Tensor images, Tensor labels, int maxPerClass = 2000, long seed = 0)
    {
        if (Kind != LabelEmbeddingKind.Prototype) throw new InvalidOperationException("only prototype embeddings are initialised from images");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var flat = images.reshape(images.shape[0], -1).cpu();
        if (flat.shape[1] != Dimension)
            throw new NoPropException($"prototype embedding: images have {flat.shape[1]} values, the embedding dimension is {Dimension}");
        var labelArray = labels.cpu().data<long>().ToArray();
        var rng = SeedStreams.Random(seed, SeedPurpose.PrototypeSample);
        for (int c = 0; c < Classes; c++)
        {
            var members = Enumerable.Range(0, labelArray.Length).Where(i => labelArray[i] == c).ToArray();
            if (members.Length == 0) throw new NoPropException($"prototype embedding: class {c} has no training image");
            if (members.Length > maxPerClass) { rng.Shuffle(members); members = members[..maxPerClass]; }
            var x = flat.index_select(0, tensor(members.Select(i => (long)i).ToArray()));
            var distances = cdist(x.unsqueeze(0), x.unsqueeze(0)).squeeze(0);   // [n, n]
            var sorted = distances.sort(1).Values;
            // Median over the *other* images: drop the zero self-distance in column 0.
            var medianOfOthers = members.Length > 1 ? sorted[.., 1..].select(1, (members.Length - 2) / 2) : sorted.select(1, 0);
            long medoid = medianOfOthers.argmin().item<long>();
            weight[c].copy_(x[medoid].to(weight.device));
        }
    }
}
