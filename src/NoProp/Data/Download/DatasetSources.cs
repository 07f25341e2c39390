using NoProp.Runtime;

namespace NoProp.Data.Download;

/// <summary>One file of a data set's official distribution, with its published MD5 checksum.</summary>
public sealed record DownloadFile(string Url, string FileName, string Md5);

/// <summary>Where a data set comes from and how it is laid out once placed in the data directory.</summary>
public sealed record DatasetSource(string Dataset, string FolderName, IReadOnlyList<DownloadFile> Files, bool ExtractTarGz)
{
    /// <summary>The same files fetched from another base URL (a mirror or a local server); checksums are kept.</summary>
    public DatasetSource WithBaseUrl(string baseUrl) => this with
    {
        Files = Files.Select(f => f with { Url = baseUrl.TrimEnd('/') + "/" + f.FileName }).ToArray(),
    };
}

/// <summary>The official sources and the checksums their authors publish.</summary>
public static class DatasetSources
{
    // https://github.com/zalandoresearch/fashion-mnist (README: "Get the Data")
    private const string FashionBase = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

    public static DatasetSource FashionMnist { get; } = new("fashion-mnist", "fashion-mnist",
    [
        new(FashionBase + "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        new(FashionBase + "train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        new(FashionBase + "t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        new(FashionBase + "t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ], ExtractTarGz: false);

    // https://www.cs.toronto.edu/~kriz/cifar.html ("binary version suitable for C programs")
    public static DatasetSource Cifar10 { get; } = new("cifar10", "cifar10",
    [
        new("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),
    ], ExtractTarGz: true);

    public static DatasetSource Cifar100 { get; } = new("cifar100", "cifar100",
    [
        new("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", "cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8"),
    ], ExtractTarGz: true);

    public static DatasetSource For(string dataset) => dataset.ToLowerInvariant() switch
    {
        "fashion-mnist" => FashionMnist,
        "cifar10" => Cifar10,
        "cifar100" => Cifar100,
        "mnist" => throw new NoPropException("mnist ships with NoProp.NET (data/mnist): there is nothing to download"),
        _ => throw new NoPropException($"no download is known for '{dataset}' (expected fashion-mnist, cifar10 or cifar100)"),
    };
}
