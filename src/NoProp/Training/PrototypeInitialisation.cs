using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Methods.DiscreteTime;

namespace NoProp.Training;

/// <summary>Initialises a prototype embedding from the training split's class medoids (paper §2.2.1).</summary>
public static class PrototypeInitialisation
{
    public static void Apply(INoPropMethod method, ImageDataset train, long seed)
    {
        var embedding = method switch
        {
            NoPropDt dt => dt.DtNetwork.Embedding,
            _ => throw new InvalidOperationException($"{method.GetType().Name} has no prototype embedding"),
        };
        if (embedding.Kind != LabelEmbeddingKind.Prototype) return;
        var (images, labels) = train.ToTensors();
        using (images) using (labels)
            embedding.InitialiseFromPrototypes(images, labels, seed: seed);
    }
}
