using NoProp.Runtime;

namespace NoProp.Data;

/// <summary>Which labels of CIFAR-100 to use.</summary>
public enum Cifar100Labels { Fine, Coarse }

/// <summary>
/// A data set named on the command line: <c>mnist</c>, <c>fashion-mnist</c>, <c>cifar10</c>, <c>cifar100</c> or
/// <c>folder:PATH</c> (one sub-folder per class), with the options that shape it.
/// </summary>
public sealed record DatasetSpec
{
    public static readonly string[] Names = ["mnist", "fashion-mnist", "cifar10", "cifar100", "folder:PATH"];

    /// <summary>mnist, fashion-mnist, cifar10, cifar100 or folder.</summary>
    public string Kind { get; init; } = "mnist";

    /// <summary>The image folder for <c>folder:PATH</c>.</summary>
    public string? FolderPath { get; init; }

    /// <summary>Where the data set's files are looked for (and downloaded to); null: the per-user cache, or the embedded MNIST.</summary>
    public string? DataDirectory { get; init; }

    public Cifar100Labels CifarLabels { get; init; } = Cifar100Labels.Fine;

    /// <summary>Image folders: the size every image is resized to.</summary>
    public int FolderHeight { get; init; } = 28;
    public int FolderWidth { get; init; } = 28;

    /// <summary>Image folders: 1 (grayscale) or 3 (RGB) channels.</summary>
    public int FolderChannels { get; init; } = 1;

    /// <summary>Image folders: what decodes the image files (the host's codec; null: folders cannot be read).</summary>
    public IImageDecoder? ImageDecoder { get; init; }

    public static DatasetSpec Parse(string value, string? dataDirectory = null, IImageDecoder? imageDecoder = null) =>
        Parse(value, dataDirectory) with { ImageDecoder = imageDecoder };

    public static DatasetSpec Parse(string value, string? dataDirectory)
    {
        var v = value.Trim();
        if (v.StartsWith("folder:", StringComparison.OrdinalIgnoreCase))
        {
            var path = v["folder:".Length..];
            if (path.Length == 0) throw new NoPropException("--dataset folder:PATH needs a path");
            return new DatasetSpec { Kind = "folder", FolderPath = path, DataDirectory = dataDirectory };
        }
        var kind = v.ToLowerInvariant() switch
        {
            "mnist" => "mnist",
            "fashion-mnist" or "fashionmnist" or "fashion_mnist" => "fashion-mnist",
            "cifar10" or "cifar-10" => "cifar10",
            "cifar100" or "cifar-100" => "cifar100",
            _ => throw new NoPropException($"unknown dataset '{value}' (expected one of: {string.Join(", ", Names)})"),
        };
        return new DatasetSpec { Kind = kind, DataDirectory = dataDirectory };
    }

    /// <summary>The name written into model.json and metrics: mnist, cifar100, folder:PATH, ...</summary>
    public string Name => Kind == "folder" ? $"folder:{FolderPath}" : Kind;

    /// <summary>The per-user cache folder: $XDG_CACHE_HOME/noprop or ~/.cache/noprop (LocalApplicationData on Windows).</summary>
    public static string DefaultCacheDirectory()
    {
        var overridden = Environment.GetEnvironmentVariable("NOPROP_DATA_DIR");
        if (!string.IsNullOrEmpty(overridden)) return overridden;
        if (OperatingSystem.IsWindows())
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "noprop", "data");
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "noprop");
    }
}
