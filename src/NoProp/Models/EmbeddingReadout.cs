using static TorchSharp.torch;

namespace NoProp.Models;

/// <summary>How a block's class logits become a point in embedding space (paper §2.3.2).</summary>
public static class EmbeddingReadout
{
    /// <summary>û = softmax(logits)·W_Embed: a convex combination of the class embeddings (DT and CT).</summary>
    public static Tensor ConvexCombination(Tensor logits, Tensor embedding) =>
        nn.functional.softmax(logits, 1).matmul(embedding);
}
