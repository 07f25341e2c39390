using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;

namespace NoProp.Training;

/// <summary>Initialises a prototype embedding from the training split's class medoids (paper §2.2.1).</summary>
public static class PrototypeInitialisation
{
    public static void Apply(INoPropMethod method, ImageDataset train, long seed)
    {
        var embedding = method.Embedding;
        if (embedding.Kind != LabelEmbeddingKind.Prototype) return;
        var (images, labels) = train.ToTensors();
        using (images) using (labels)
            embedding.InitialiseFromPrototypes(images, labels, seed: seed);
    }
}
