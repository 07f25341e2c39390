using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Data;

/// <summary>
/// Reads a folder of images with one sub-folder per class (PNG, JPEG, BMP, GIF, WebP; decoded by the
/// <see cref="DatasetSpec.ImageDecoder"/> the host passes), resizing each image to a fixed size (bilinear, antialiased) and converting it to grayscale
/// (ITU-R BT.601 luma) or RGB. If the folder has <c>train/</c> and <c>test/</c> sub-folders, those are the splits;
/// otherwise a stratified 20 % of each class, drawn with a fixed seed so that every run and every later
/// <c>noprop eval</c> sees the same split, is held out as the test split.
/// </summary>
public static class ImageFolderReader
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

    public const double HeldOutTestFraction = 0.2;

    public static DatasetPair Load(DatasetSpec spec)
    {
        var root = spec.FolderPath ?? throw new NoPropException("--dataset folder:PATH needs a path");
        if (!Directory.Exists(root)) throw new NoPropException($"--dataset folder:{root}: folder not found");
        if (spec.FolderChannels is not (1 or 3)) throw new NoPropException("--channels must be 1 (grayscale) or 3 (RGB)");
        if (spec.FolderHeight < 1 || spec.FolderWidth < 1) throw new NoPropException("--image-size must be positive");
        string trainDir = Path.Combine(root, "train"), testDir = Path.Combine(root, "test");
        bool split = Directory.Exists(trainDir) && Directory.Exists(testDir);
        var classNames = ClassFolders(split ? trainDir : root);
        var trainFiles = ListFiles(split ? trainDir : root, classNames, requireEveryClass: true);
        List<(string Path, int Label)> testFiles;
        if (split)
        {
            foreach (var dir in Directory.GetDirectories(testDir))
                if (!classNames.Contains(Path.GetFileName(dir)))
                    throw new NoPropException($"{dir}: unknown label '{Path.GetFileName(dir)}' (the training folder has no such class)");
            testFiles = ListFiles(testDir, classNames, requireEveryClass: false);
        }
        else
        {
            var rng = SeedStreams.Random(0, SeedPurpose.FolderTestSplit);   // fixed: the held-out files must not depend on --seed
            testFiles = new List<(string, int)>();
            var kept = new List<(string, int)>();
            foreach (var group in trainFiles.GroupBy(f => f.Label))
            {
                var files = group.ToArray();
                rng.Shuffle(files);
                int held = files.Length >= 2 ? Math.Max(1, (int)Math.Round(files.Length * HeldOutTestFraction)) : 0;
                testFiles.AddRange(files[..held]);
                kept.AddRange(files[held..]);
            }
            trainFiles = kept;
        }
        var name = spec.Name;
        var (trainPixels, trainLabels) = Decode(trainFiles, spec);
        var (testPixels, testLabels) = Decode(testFiles, spec);
        var intensities = new float[trainPixels.Length];
        for (long i = 0; i < intensities.LongLength; i++) intensities[i] = trainPixels[i] / 255f;
        var normalization = Normalization.Estimate(intensities, spec.FolderChannels, spec.FolderHeight * spec.FolderWidth);
        return new DatasetPair(
            new ImageDataset(name + "-train", trainPixels, trainLabels, spec.FolderChannels, spec.FolderHeight, spec.FolderWidth, classNames, normalization),
            new ImageDataset(name + "-test", testPixels, testLabels, spec.FolderChannels, spec.FolderHeight, spec.FolderWidth, classNames, normalization));
    }

    private static List<string> ClassFolders(string dir)
    {
        var names = Directory.GetDirectories(dir).Select(Path.GetFileName).OfType<string>()
            .Where(n => !n.StartsWith('.')).OrderBy(n => n, StringComparer.Ordinal).ToList();
        if (names.Count < 2) throw new NoPropException($"{dir}: expected one sub-folder per class (at least two), found {names.Count}");
        return names;
    }

    private static List<(string Path, int Label)> ListFiles(string dir, List<string> classNames, bool requireEveryClass)
    {
        var files = new List<(string, int)>();
        for (int label = 0; label < classNames.Count; label++)
        {
            var classDir = Path.Combine(dir, classNames[label]);
            if (!Directory.Exists(classDir))
            {
                if (requireEveryClass) throw new NoPropException($"{classDir}: folder not found");
                continue;
            }
            var images = Directory.EnumerateFiles(classDir).Where(f => Extensions.Contains(Path.GetExtension(f)))
                .OrderBy(f => f, StringComparer.Ordinal).ToList();
            if (images.Count == 0 && requireEveryClass) throw new NoPropException($"{classDir}: no images (expected .png, .jpg, .jpeg, .bmp, .gif or .webp files)");
            files.AddRange(images.Select(f => (f, label)));
        }
        return files;
    }

    private static (byte[] Pixels, int[] Labels) Decode(List<(string Path, int Label)> files, DatasetSpec spec)
    {
        int c = spec.FolderChannels, h = spec.FolderHeight, w = spec.FolderWidth;
        int size = c * h * w;
        var pixels = new byte[(long)files.Count * size];
        var labels = new int[files.Count];
        for (int i = 0; i < files.Count; i++)
        {
            labels[i] = files[i].Label;
            var image = DecodeOne(spec.ImageDecoder, files[i].Path, c, h, w);
            Buffer.BlockCopy(image, 0, pixels, i * size, size);
        }
        return (pixels, labels);
    }

    /// <summary>One image as C×H×W bytes at the requested size, decoded by <paramref name="decoder"/>.</summary>
    public static byte[] DecodeOne(IImageDecoder? decoder, string path, int channels, int height, int width)
    {
        if (decoder is null) throw new NoPropException(
            "reading image folders needs an image decoder: none was given (set DatasetSpec.ImageDecoder; the noprop CLI passes SkiaSharp's)");
        DecodedImage image;
        try
        {
            image = decoder.Decode(path);
        }
        catch (Exception e) when (e is not NoPropException)
        {
            throw new NoPropException($"{path}: not a readable image ({e.Message})", e);
        }
        using (var scope = NewDisposeScope())
        {
            var raw = image.Rgba;
            if (raw.Length != image.Width * image.Height * 4)
                throw new NoPropException($"{path}: the decoder returned {raw.Length} bytes for {image.Width}×{image.Height} RGBA pixels");
            var hwc = tensor(raw, [image.Height, image.Width, 4], ScalarType.Byte).to_type(ScalarType.Float32);
            var rgb = hwc.narrow(2, 0, 3).permute(2, 0, 1);     // [3, H, W]
            var picked = channels == 1
                ? HeldScalars.WeightedSum((rgb[0], 0.299f), (rgb[1], 0.587f), (rgb[2], 0.114f)).unsqueeze(0)
                : rgb;
            var resized = picked.shape[1] == height && picked.shape[2] == width
                ? picked
                : nn.functional.interpolate(picked.unsqueeze(0), [height, width], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true).squeeze(0);
            using var max = HeldScalars.Hold(255);
            return resized.round().clamp(HeldScalars.Zero, max).to_type(ScalarType.Byte).contiguous().data<byte>().ToArray();
        }
    }
}

/// <summary>An image as straight (unpremultiplied) RGBA bytes, row-major.</summary>
public sealed record DecodedImage(byte[] Rgba, int Width, int Height);

/// <summary>
/// Decodes image files to RGBA bytes for <see cref="ImageFolderReader"/>. The core library has no image codec of its
/// own (a process can hold only one SkiaSharp, and ML.NET's ImageAnalytics and the chart library need different
/// ones): the host passes one with the <see cref="DatasetSpec"/> (<see cref="DatasetSpec.ImageDecoder"/>); the noprop
/// CLI passes SkiaSharp 3's.
/// </summary>
public interface IImageDecoder
{
    /// <summary>Decodes the file at <paramref name="path"/>; throws for a file that is not a readable image.</summary>
    DecodedImage Decode(string path);
}
