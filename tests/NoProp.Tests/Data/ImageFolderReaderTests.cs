using NoProp.Data;
using NoProp.Runtime;

namespace NoProp.Tests.Data;

[TestClass]
public sealed class ImageFolderReaderTests
{
    [TestInitialize]
    public void Init() => TorchRuntime.Initialize();

    /// <summary>A solid-colour RGBA PNG of the given size.</summary>
    internal static void WritePng(string path, int width, int height, byte r, byte g, byte b)
    {
        var pixels = new byte[width * height * 4];
        for (int i = 0; i < width * height; i++) { pixels[4 * i] = r; pixels[4 * i + 1] = g; pixels[4 * i + 2] = b; pixels[4 * i + 3] = 255; }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        NoProp.Cli.SkiaImageCodec.SavePng(path, pixels, width, height);
    }

    private static string MakeFolder(int perClass = 5)
    {
        var root = TestSupport.TempDirectory();
        for (int i = 0; i < perClass; i++)
        {
            WritePng(Path.Combine(root, "cats", $"c{i}.png"), 40, 30, 200, 0, 0);
            WritePng(Path.Combine(root, "dogs", $"d{i}.png"), 16, 16, 0, 0, 200);
        }
        return root;
    }

    [TestMethod]
    public void ResizesConvertsAndHoldsOutATestSplit()
    {
        var root = MakeFolder();
        var spec = DatasetSpec.Parse("folder:" + root) with { FolderHeight = 20, FolderWidth = 24, FolderChannels = 3 };
        var data = NoProp.Cli.SkiaImageCodec.Load(spec);
        CollectionAssert.AreEqual(new[] { "cats", "dogs" }, data.Train.ClassNames.ToArray());
        Assert.AreEqual(8, data.Train.Count, "80 % of 5 images per class stay for training");
        Assert.AreEqual(2, data.Test.Count);
        Assert.AreEqual(3, data.Train.Channels);
        Assert.AreEqual(20, data.Train.Height);
        Assert.AreEqual(24, data.Train.Width);
        int catIndex = Array.IndexOf(data.Train.Labels, 0);
        int plane = 20 * 24;
        Assert.AreEqual((byte)200, data.Train.Pixels[catIndex * 3 * plane + 10], "red plane of a red image");
        Assert.AreEqual((byte)0, data.Train.Pixels[catIndex * 3 * plane + 2 * plane + 10], "blue plane of a red image");
        // The same split every time.
        var again = NoProp.Cli.SkiaImageCodec.Load(spec);
        CollectionAssert.AreEqual(data.Test.Pixels, again.Test.Pixels);

        var gray = NoProp.Cli.SkiaImageCodec.Load(spec with { FolderChannels = 1 });
        int grayCat = Array.IndexOf(gray.Train.Labels, 0);
        Assert.AreEqual((byte)Math.Round(200 * 0.299), gray.Train.Pixels[grayCat * plane + 5], "BT.601 luma of pure red");
    }

    [TestMethod]
    public void UsesTrainAndTestSubfoldersWhenPresent()
    {
        var root = TestSupport.TempDirectory();
        foreach (var split in new[] { "train", "test" })
            foreach (var (cls, shade) in new[] { ("a", (byte)10), ("b", (byte)250) })
                for (int i = 0; i < 3; i++) WritePng(Path.Combine(root, split, cls, $"{i}.png"), 28, 28, shade, shade, shade);
        var data = NoProp.Cli.SkiaImageCodec.Load(DatasetSpec.Parse("folder:" + root));
        Assert.AreEqual(6, data.Train.Count);
        Assert.AreEqual(6, data.Test.Count);

        WritePng(Path.Combine(root, "test", "zebra", "z.png"), 28, 28, 1, 2, 3);
        var e = Assert.ThrowsExactly<NoPropException>(() => NoProp.Cli.SkiaImageCodec.Load(DatasetSpec.Parse("folder:" + root)));
        StringAssert.Contains(e.Message, "unknown label 'zebra'");
    }

    [TestMethod]
    public void RejectsCorruptImagesAndBadLayouts()
    {
        var root = MakeFolder(2);
        var corrupt = Path.Combine(root, "dogs", "broken.png");
        File.WriteAllBytes(corrupt, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        var e = Assert.ThrowsExactly<NoPropException>(() => NoProp.Cli.SkiaImageCodec.Load(DatasetSpec.Parse("folder:" + root)));
        StringAssert.Contains(e.Message, corrupt);

        var flat = TestSupport.TempDirectory();
        WritePng(Path.Combine(flat, "only", "x.png"), 8, 8, 0, 0, 0);
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => NoProp.Cli.SkiaImageCodec.Load(DatasetSpec.Parse("folder:" + flat))).Message,
            "expected one sub-folder per class (at least two)");
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => NoProp.Cli.SkiaImageCodec.Load(DatasetSpec.Parse("folder:/no/such/folder"))).Message,
            "folder not found");
    }

    /// <summary>A decoder that counts its calls and returns a solid image of one grey level per decoder.</summary>
    private sealed class SolidDecoder(byte level) : IImageDecoder
    {
        public int Calls { get; private set; }
        public DecodedImage Decode(string path)
        {
            Calls++;
            var rgba = new byte[8 * 8 * 4];
            for (int i = 0; i < 64; i++) { rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = level; rgba[4 * i + 3] = 255; }
            return new DecodedImage(rgba, 8, 8);
        }
    }

    [TestMethod]
    public void TheDecoderTravelsWithTheSpec()
    {
        var root = MakeFolder(perClass: 3);
        var spec = DatasetSpec.Parse("folder:" + root) with { FolderHeight = 8, FolderWidth = 8 };
        var dark = new SolidDecoder(10);
        var light = new SolidDecoder(250);
        var a = Datasets.Load(spec with { ImageDecoder = dark });
        var b = Datasets.Load(DatasetSpec.Parse("folder:" + root, null, light) with { FolderHeight = 8, FolderWidth = 8 });
        Assert.AreEqual(6, dark.Calls, "every file is decoded by the spec's decoder");
        Assert.AreEqual(6, light.Calls, "two decoders in one process do not interfere");
        Assert.IsTrue(a.Train.Pixels.All(p => p == 10));
        Assert.IsTrue(b.Train.Pixels.All(p => p == 250));
        var e = Assert.ThrowsExactly<NoPropException>(() => Datasets.Load(spec));
        StringAssert.Contains(e.Message, "needs an image decoder: none was given (set DatasetSpec.ImageDecoder");
    }
}
