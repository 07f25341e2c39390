using NoProp.Runtime;

namespace NoProp.Data;

/// <summary>
/// The training and test sets of one data set. A reader may leave the training set to be read on first use: evaluating
/// on the test split then never reads (nor holds) the training files, which are 5–6× the test files for MNIST and CIFAR.
/// </summary>
public sealed class DatasetPair
{
    private readonly Lazy<ImageDataset> train;

    public DatasetPair(ImageDataset train, ImageDataset test)
    {
        ArgumentNullException.ThrowIfNull(train);
        this.train = new Lazy<ImageDataset>(train);
        Test = test ?? throw new ArgumentNullException(nameof(test));
    }

    /// <param name="readTrain">Reads the training set when <see cref="Train"/> is first asked for (once; a failure is rethrown to every caller).</param>
    public DatasetPair(Func<ImageDataset> readTrain, ImageDataset test)
    {
        ArgumentNullException.ThrowIfNull(readTrain);
        train = new Lazy<ImageDataset>(readTrain, LazyThreadSafetyMode.ExecutionAndPublication);
        Test = test ?? throw new ArgumentNullException(nameof(test));
    }

    public ImageDataset Train => train.Value;
    public ImageDataset Test { get; }

    /// <summary>Whether the training set has been read (a lazily read one, only once <see cref="Train"/> was asked for).</summary>
    internal bool TrainLoaded => train.IsValueCreated;
}

/// <summary>
/// Finds and loads data sets by name. MNIST ships with the project (data/mnist, copied next to the
/// binaries), so it needs no download.
/// </summary>
public static class Datasets
{
    public static readonly string[] Names = ["mnist", "fashion-mnist", "cifar10", "cifar100"];

    private static readonly string[] IdxFiles =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    public static readonly IReadOnlyList<string> DigitClassNames = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    public static readonly IReadOnlyList<string> FashionClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>Loads a named data set (mnist, fashion-mnist, cifar10, cifar100) from <paramref name="dataDir"/>.</summary>
    public static DatasetPair Load(string name, string? dataDir = null, IImageDecoder? imageDecoder = null) =>
        Load(DatasetSpec.Parse(name, dataDir, imageDecoder));

    /// <summary>
    /// Loads the data set a spec names. MNIST comes from the embedded copy unless a data directory is given; the
    /// others from the data directory (default: the per-user cache, where <c>noprop download</c> puts them).
    /// </summary>
    public static DatasetPair Load(DatasetSpec spec)
    {
        switch (spec.Kind)
        {
            case "mnist":
                {
                    var dir = spec.DataDirectory is null ? EmbeddedMnistDirectory() : ResolveDirectory(spec.DataDirectory, "mnist");
                    return LoadIdx("mnist", dir, DigitClassNames, Normalization.Mnist);
                }
            case "fashion-mnist":
                {
                    var dir = ResolveDirectory(spec.DataDirectory ?? DatasetSpec.DefaultCacheDirectory(), "fashion-mnist");
                    return LoadIdx("fashion-mnist", dir, FashionClassNames, Normalization.FashionMnist);
                }
            case "cifar10":
                return CifarReader.LoadCifar10(ExistingDirectory(spec.DataDirectory ?? DatasetSpec.DefaultCacheDirectory(), "cifar10"));
            case "cifar100":
                return CifarReader.LoadCifar100(ExistingDirectory(spec.DataDirectory ?? DatasetSpec.DefaultCacheDirectory(), "cifar100"), spec.CifarLabels);
            case "folder":
                return ImageFolderReader.Load(spec);
            default:
                throw new NoPropException($"unknown dataset '{spec.Kind}' (expected one of: {string.Join(", ", DatasetSpec.Names)})");
        }
    }

    /// <summary>The folder holding the embedded MNIST files: next to the binaries, else in the repository.</summary>
    public static string EmbeddedMnistDirectory()
    {
        var candidates = new List<string> { Path.Combine(AppContext.BaseDirectory, "data", "mnist") };
        // Walk up from the binaries to the repository root (for tools run from a source checkout).
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            candidates.Add(Path.Combine(dir.FullName, "data", "mnist"));
        foreach (var c in candidates)
            if (File.Exists(Path.Combine(c, IdxFiles[0] + ".gz")) || File.Exists(Path.Combine(c, IdxFiles[0])))
                return c;
        throw new NoPropException($"the embedded MNIST files were not found (looked in {candidates[0]} and the folders above it); " +
            "an application gets them by referencing the NoProp.Data.Mnist package");
    }

    private static string ExistingDirectory(string dataDir, string datasetName)
    {
        if (!Directory.Exists(dataDir))
            throw new NoPropException($"--data-dir {dataDir}: folder not found (run 'noprop download --dataset {datasetName} --data-dir {dataDir}' or pass --download)");
        return dataDir;
    }

    /// <summary>DIR/NAME when it exists (the layout <c>noprop download</c> writes), else DIR itself.</summary>
    private static string ResolveDirectory(string dataDir, string datasetName)
    {
        ExistingDirectory(dataDir, datasetName);
        var sub = Path.Combine(dataDir, datasetName);
        return Directory.Exists(sub) ? sub : dataDir;
    }

    /// <summary>Loads an IDX data set (MNIST layout) from <paramref name="dir"/>; files may be gzipped.</summary>
    public static DatasetPair LoadIdx(string name, string dir, IReadOnlyList<string> classNames, Normalization normalization)
    {
        string Find(string stem)
        {
            foreach (var candidate in new[] { stem + ".gz", stem, stem.Replace("-idx", ".idx") + ".gz", stem.Replace("-idx", ".idx") })
            {
                var p = Path.Combine(dir, candidate);
                if (File.Exists(p)) return p;
            }
            throw new NoPropException($"{Path.Combine(dir, stem)}[.gz]: file not found (the {name} data set needs the four IDX files in {dir})");
        }
        ImageDataset Read(string split, string images, string labels)
        {
            var (pixels, labelValues, height, width) = IdxReader.ReadImagesAndLabels(images, labels, classNames.Count);
            return new ImageDataset(name + "-" + split, pixels, labelValues, 1, height, width, classNames, normalization);
        }
        string trainImages = Find(IdxFiles[0]), trainLabels = Find(IdxFiles[1]);   // missing files are reported at once
        var test = Read("test", Find(IdxFiles[2]), Find(IdxFiles[3]));
        return new DatasetPair(() => Read("train", trainImages, trainLabels), test);
    }
}

/// <summary>The three splits a run uses: the validation split is carved from the training set, never the test set.</summary>
public sealed record DataSplits(ImageDataset Train, ImageDataset Validation, ImageDataset Test, string? Notice)
{
    /// <summary>The most images the default validation split holds (MNIST, Fashion-MNIST, CIFAR: 5,000).</summary>
    public const int MaxDefaultValidationSize = 5000;

    /// <summary>The share of the training set the default validation split takes, up to <see cref="MaxDefaultValidationSize"/>.</summary>
    public const double DefaultValidationFraction = 0.1;

    /// <summary>
    /// The validation split taken when none is asked for: 10 % of the training set, at most 5,000 images (rounded
    /// down). MNIST's 60,000 training images keep the 5,000 the paper's setup holds out; 600 images give 60.
    /// </summary>
    public static int DefaultValidationSize(int trainingImages) =>
        Math.Min(MaxDefaultValidationSize, (int)Math.Floor(trainingImages * DefaultValidationFraction));

    /// <summary>
    /// Shuffles the training set with <paramref name="seed"/>, takes <paramref name="trainSize"/> images for
    /// training (null: all that the validation split leaves) and up to <paramref name="validationSize"/> of the
    /// remaining ones for validation (null: <see cref="DefaultValidationSize"/> of the training set). When
    /// too few remain after an explicit <paramref name="trainSize"/>, the validation split shrinks and
    /// <see cref="Notice"/> says so. Errors name the option the user set (<c>--train-size</c>, <c>--validation-size</c>).
    /// </summary>
    public static DataSplits Create(DatasetPair data, int? trainSize, int? validationSize, int? testSize, long seed)
    {
        int total = data.Train.Count;
        if (validationSize < 0) throw new NoPropException("--validation-size must be 0 or more");
        if (trainSize < 1) throw new NoPropException("--train-size must be at least 1");
        if (trainSize > total) throw new NoPropException($"--train-size {trainSize} is larger than the {total} training images of {data.Train.Name}");
        int wantValidation = validationSize ?? DefaultValidationSize(total);
        if (trainSize is null && wantValidation >= total)
            throw new NoPropException($"--validation-size {wantValidation} leaves no image to train on: {data.Train.Name} has {total} training images");
        int wantTrain = trainSize ?? total - wantValidation;
        int validation = Math.Min(wantValidation, total - wantTrain);
        string? notice = validation < wantValidation
            ? $"the validation split has {validation} images instead of {wantValidation}: only {total - wantTrain} training images remain after --train-size {wantTrain}"
            : null;
        var order = Enumerable.Range(0, total).ToArray();
        SeedStreams.Random(seed, SeedPurpose.DataSplit).Shuffle(order);
        var train = data.Train.Select(order[..wantTrain], data.Train.Name);
        var val = data.Train.Select(order[wantTrain..(wantTrain + validation)], data.Train.Name + "-validation");
        if (testSize is < 1) throw new NoPropException("--test-size must be at least 1");
        return new DataSplits(train, val, data.Test.Take(testSize), notice);
    }
}
