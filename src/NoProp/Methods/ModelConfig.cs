using System.Text.Json;
using System.Text.Json.Serialization;
using NoProp.Embeddings;
using NoProp.Models;
using NoProp.Runtime;

namespace NoProp.Methods;

/// <summary>The training method.</summary>
public enum MethodKind
{
    /// <summary>NoProp-DT: T blocks, each trained alone to denoise a noisy label embedding (§2.3, Algorithm 1).</summary>
    DiscreteTime,
}

public static class MethodKinds
{
    public static string ToCliName(this MethodKind kind) => kind switch
    {
        MethodKind.DiscreteTime => "dt",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static MethodKind Parse(string value) => value.ToLowerInvariant() switch
    {
        "dt" or "noprop-dt" => MethodKind.DiscreteTime,
        _ => throw new NoPropException($"unknown method '{value}' (expected dt)"),
    };
}

/// <summary>Everything needed to rebuild a trained model: saved as model.json beside the weights.</summary>
public sealed record ModelConfig
{
    public MethodKind Method { get; init; } = MethodKind.DiscreteTime;
    public string Dataset { get; init; } = "mnist";
    public ImageShape Image { get; init; } = new(1, 28, 28);
    public string[] ClassNames { get; init; } = [];
    public float[] NormalizationMean { get; init; } = [];
    public float[] NormalizationStd { get; init; } = [];
    public LabelEmbeddingKind Embedding { get; init; } = LabelEmbeddingKind.OneHot;

    /// <summary>d: the class count for one-hot, k for learned, C·H·W for prototype.</summary>
    public int EmbeddingDimension { get; init; }

    /// <summary>T, the number of DT blocks (paper: 10).</summary>
    public int Blocks { get; init; } = 10;

    /// <summary>η, the weight of the denoising term (paper: 0.1 for DT).</summary>
    public double Eta { get; init; } = 0.1;

    /// <summary>ᾱ_T clamp of the cosine schedule (see <see cref="Schedules.CosineSchedule"/>).</summary>
    public double MaxAlphaBar { get; init; } = Schedules.CosineSchedule.DefaultMaxAlphaBar;

    public double LearningRate { get; init; } = 1e-3;
    public double WeightDecay { get; init; } = 1e-3;

    [JsonIgnore] public int ClassCount => ClassNames.Length;

    public static int DefaultEmbeddingDimension(LabelEmbeddingKind kind, int classes, ImageShape image, int? learned) => kind switch
    {
        LabelEmbeddingKind.OneHot => classes,
        LabelEmbeddingKind.Learned => learned ?? 20,
        LabelEmbeddingKind.Prototype => image.Size,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public void Validate()
    {
        if (ClassNames.Length < 2) throw new NoPropException("a model needs at least two classes");
        if (Blocks < 1) throw new NoPropException("--blocks must be at least 1");
        if (EmbeddingDimension < 1) throw new NoPropException("--embedding-dim must be at least 1");
        if (Embedding == LabelEmbeddingKind.OneHot && EmbeddingDimension != ClassCount)
            throw new NoPropException($"--embedding-dim {EmbeddingDimension}: a one-hot embedding has dimension {ClassCount} (the class count)");
        if (Embedding == LabelEmbeddingKind.Prototype && EmbeddingDimension != Image.Size)
            throw new NoPropException($"--embedding-dim {EmbeddingDimension}: a prototype embedding has the image size {Image.Size}");
        if (!(Eta > 0)) throw new NoPropException("--eta must be positive");
        if (!(LearningRate > 0)) throw new NoPropException("--lr must be positive");
        if (!(WeightDecay >= 0)) throw new NoPropException("--weight-decay must be 0 or more");
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static ModelConfig FromJson(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<ModelConfig>(json, Json) ?? throw new NoPropException($"{source}: empty model configuration");
        }
        catch (JsonException e)
        {
            throw new NoPropException($"{source}: invalid model configuration ({e.Message})", e);
        }
    }
}
