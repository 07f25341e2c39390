using System.CommandLine;
using System.Globalization;
using NoProp.Cli.CommandLine;
using NoProp.Data;
using NoProp.Runtime;

namespace NoProp.Cli.Commands;

/// <summary>
/// <c>noprop export-images</c>: writes a data set's images as PNG files, one folder per class (DIR/&lt;class&gt;/&lt;index&gt;.png),
/// the layout image-folder tools (examples/ImageFolderClassifier, ML.NET's LoadImages) read.
/// </summary>
internal sealed class ExportImagesCommand : Command
{
    private readonly Option<string?> dataset = CliOptions.Choice("--dataset", "data set (mnist is embedded)  [mnist]", Datasets.Names);
    private readonly Option<string?> dataDir = CliOptions.Text("--data-dir", "folder holding the data set's files  [embedded MNIST]", "DIR");
    private readonly Option<string?> split = CliOptions.Choice("--split", "which split to export  [test]", ["test", "train"]);
    private readonly Option<string?> output = CliOptions.Text("--output", "where the class folders go  [required]", "DIR");
    private readonly Option<int?> limit = CliOptions.Int("--limit", "export the first N images of the split  [all]", 1);

    public ExportImagesCommand() : base("export-images", "write a data set's images as PNG files, one folder per class")
    {
        foreach (var option in new Option[] { dataset, dataDir, split, output, limit }) Options.Add(option);
        SetAction(r => Run(r, r.InvocationConfiguration.Output));
    }

    private int Run(ParseResult r, TextWriter stdout)
    {
        var dataset = r.GetValue(this.dataset) ?? "mnist";
        var dataDir = r.GetValue(this.dataDir);
        var split = r.GetValue(this.split) ?? "test";
        var output = r.GetValue(this.output) ?? throw new UsageException("--output is required");
        int? limit = r.GetValue(this.limit);

        var data = Datasets.Load(dataset, dataDir, SkiaImageCodec.Decoder);
        var images = (split == "train" ? data.Train : data.Test).Take(limit);
        if (images.Channels is not (1 or 3))
            throw new NoPropException($"{images.Name}: cannot write {images.Channels}-channel images as PNG (1 or 3 channels)");
        int digits = Math.Max(5, images.Count.ToString(CultureInfo.InvariantCulture).Length);
        foreach (var name in images.ClassNames) Directory.CreateDirectory(Path.Combine(output, SafeFolderName(name)));

        var rgba = new byte[images.Height * images.Width * 4];
        for (int i = 0; i < images.Count; i++)
        {
            ToRgba(images, i, rgba);
            var folder = SafeFolderName(images.ClassNames[images.Labels[i]]);
            SkiaImageCodec.SavePng(Path.Combine(output, folder, i.ToString("D" + digits, CultureInfo.InvariantCulture) + ".png"), rgba, images.Width, images.Height);
        }
        stdout.WriteLine($"wrote {images.Count} PNG files ({images.Width}×{images.Height}, {images.ClassCount} class folders) to {output}");
        return 0;
    }

    /// <summary>Image i as RGBA bytes; a grey image repeats its one channel (the stored layout is channel-major).</summary>
    private static void ToRgba(ImageDataset images, int index, byte[] rgba)
    {
        int plane = images.Height * images.Width;
        var pixels = images.Pixels.AsSpan(index * images.ImageSize, images.ImageSize);
        for (int p = 0; p < plane; p++)
        {
            for (int c = 0; c < 3; c++) rgba[p * 4 + c] = pixels[(images.Channels == 1 ? 0 : c) * plane + p];
            rgba[p * 4 + 3] = 255;
        }
    }

    private static string SafeFolderName(string className)
    {
        var invalid = Path.GetInvalidFileNameChars();
        var name = new string(className.Select(ch => invalid.Contains(ch) ? '_' : ch).ToArray());
        return name is "" or "." or ".." ? "_" + name : name;
    }
}
