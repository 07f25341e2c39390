using NoProp.Runtime;

namespace NoProp.Data;

/// <summary>
/// Reads the CIFAR binary formats (https://www.cs.toronto.edu/~kriz/cifar.html). CIFAR-10: records of 1 label byte
/// and 3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue, row-major 32×32) in data_batch_1..5.bin and
/// test_batch.bin. CIFAR-100: records of a coarse label byte, a fine label byte and the same 3,072 pixel bytes, in
/// train.bin and test.bin. The channel-major pixel layout is exactly the N×C×H×W layout of <see cref="ImageDataset"/>.
/// </summary>
public static class CifarReader
{
    public const int ImageBytes = 3 * 32 * 32;

    public static readonly IReadOnlyList<string> Cifar10ClassNames =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    public static readonly IReadOnlyList<string> Cifar100FineClassNames =
    [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy", "bridge",
        "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach",
        "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster",
        "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree",
        "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
        "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
        "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel",
        "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train",
        "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ];

    public static readonly IReadOnlyList<string> Cifar100CoarseClassNames =
    [
        "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables", "household_electrical_devices",
        "household_furniture", "insects", "large_carnivores", "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
        "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals",
        "trees", "vehicles_1", "vehicles_2",
    ];

    /// <summary>Reads one CIFAR binary file; <paramref name="labelBytes"/> is 1 (CIFAR-10) or 2 (CIFAR-100).</summary>
    public static (byte[] Pixels, int[] Labels) ReadFile(string path, int labelBytes, int labelIndex, int classCount)
    {
        RequireFiles([path]);
        var bytes = File.ReadAllBytes(path);
        int record = labelBytes + ImageBytes;
        if (bytes.Length == 0) throw new NoPropException($"{path}: empty file");
        if (bytes.Length % record != 0)
            throw new NoPropException(
                $"{path}: {bytes.Length} bytes is not a whole number of {record}-byte CIFAR records (truncated or not a CIFAR-{(labelBytes == 1 ? "10" : "100")} binary file)");
        int count = bytes.Length / record;
        var pixels = new byte[(long)count * ImageBytes];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            int offset = i * record;
            int label = bytes[offset + labelIndex];
            if (label >= classCount)
                throw new NoPropException($"{path}: record {i} has label {label}, outside 0..{classCount - 1} (not a CIFAR-{(labelBytes == 1 ? "10" : "100")} file?)");
            labels[i] = label;
            Buffer.BlockCopy(bytes, offset + labelBytes, pixels, i * ImageBytes, ImageBytes);
        }
        return (pixels, labels);
    }

    /// <summary>Reads several files into one set.</summary>
    public static (byte[] Pixels, int[] Labels) ReadFiles(IReadOnlyList<string> paths, int labelBytes, int labelIndex, int classCount)
    {
        var parts = paths.Select(p => ReadFile(p, labelBytes, labelIndex, classCount)).ToList();
        var pixels = new byte[parts.Sum(p => (long)p.Pixels.Length)];
        var labels = new int[parts.Sum(p => p.Labels.Length)];
        long pixelOffset = 0;
        int labelOffset = 0;
        foreach (var (p, l) in parts)
        {
            Buffer.BlockCopy(p, 0, pixels, (int)pixelOffset, p.Length);
            Array.Copy(l, 0, labels, labelOffset, l.Length);
            pixelOffset += p.Length;
            labelOffset += l.Length;
        }
        return (pixels, labels);
    }

    /// <summary>CIFAR-10 from a folder holding data_batch_1..5.bin and test_batch.bin (or its cifar-10-batches-bin sub-folder).</summary>
    public static DatasetPair LoadCifar10(string directory)
    {
        var dir = Resolve(directory, "cifar-10-batches-bin", "test_batch.bin", "cifar10");
        var names = ReadNames(Path.Combine(dir, "batches.meta.txt"), Cifar10ClassNames);
        var trainFiles = Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"data_batch_{i}.bin")).ToArray();
        RequireFiles(trainFiles);
        var test = ReadFile(Path.Combine(dir, "test_batch.bin"), 1, 0, 10);
        return Pair("cifar10", () => ReadFiles(trainFiles, 1, 0, 10), test, names, Normalization.Cifar10);
    }

    /// <summary>CIFAR-100 from a folder holding train.bin and test.bin (or its cifar-100-binary sub-folder).</summary>
    public static DatasetPair LoadCifar100(string directory, Cifar100Labels labels)
    {
        var dir = Resolve(directory, "cifar-100-binary", "test.bin", "cifar100");
        bool fine = labels == Cifar100Labels.Fine;
        var names = fine
            ? ReadNames(Path.Combine(dir, "fine_label_names.txt"), Cifar100FineClassNames)
            : ReadNames(Path.Combine(dir, "coarse_label_names.txt"), Cifar100CoarseClassNames);
        int labelIndex = fine ? 1 : 0;
        var trainFile = Path.Combine(dir, "train.bin");
        RequireFiles([trainFile]);
        var test = ReadFile(Path.Combine(dir, "test.bin"), 2, labelIndex, names.Count);
        return Pair("cifar100", () => ReadFile(trainFile, 2, labelIndex, names.Count), test, names, Normalization.Cifar100);
    }

    /// <summary>Missing files are reported by name: the training files when the data set is loaded, not when its training set is first read.</summary>
    private static void RequireFiles(IEnumerable<string> paths)
    {
        foreach (var path in paths)
            if (!File.Exists(path)) throw new NoPropException($"{path}: file not found");
    }

    /// <summary>The test set read now, the training set when first used (<see cref="DatasetPair"/>).</summary>
    private static DatasetPair Pair(string name, Func<(byte[] Pixels, int[] Labels)> readTrain, (byte[] Pixels, int[] Labels) test,
        IReadOnlyList<string> names, Normalization normalization) => new(
        () =>
        {
            var (pixels, labels) = readTrain();
            return new ImageDataset(name + "-train", pixels, labels, 3, 32, 32, names, normalization);
        },
        new ImageDataset(name + "-test", test.Pixels, test.Labels, 3, 32, 32, names, normalization));

    private static string Resolve(string directory, string archiveFolder, string probe, string datasetName)
    {
        foreach (var candidate in new[] { directory, Path.Combine(directory, archiveFolder), Path.Combine(directory, datasetName), Path.Combine(directory, datasetName, archiveFolder) })
            if (File.Exists(Path.Combine(candidate, probe))) return candidate;
        throw new NoPropException(
            $"{Path.Combine(directory, archiveFolder, probe)}: file not found (the {datasetName} binary files were not found in {directory}; run 'noprop download --dataset {datasetName} --data-dir {directory}' or pass --download)");
    }

    private static IReadOnlyList<string> ReadNames(string path, IReadOnlyList<string> fallback)
    {
        if (!File.Exists(path)) return fallback;
        var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return names.Length == fallback.Count ? names : fallback;
    }
}
