using NoProp.Data;
using NoProp.Runtime;

namespace NoProp.Tests.Data;

[TestClass]
public sealed class ImageFolderReaderTests
{
    [TestInitialize]
    public void Init() { TorchRuntime.Initialize(); NoProp.Cli.SkiaImageCodec.Register(); }

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
        var data = Datasets.Load(spec);
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
        var again = Datasets.Load(spec);
        CollectionAssert.AreEqual(data.Test.Pixels, again.Test.Pixels);

        var gray = Datasets.Load(spec with { FolderChannels = 1 });
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
        var data = Datasets.Load(DatasetSpec.Parse("folder:" + root));
        Assert.AreEqual(6, data.Train.Count);
        Assert.AreEqual(6, data.Test.Count);

        WritePng(Path.Combine(root, "test", "zebra", "z.png"), 28, 28, 1, 2, 3);
        var e = Assert.ThrowsExactly<NoPropException>(() => Datasets.Load(DatasetSpec.Parse("folder:" + root)));
        StringAssert.Contains(e.Message, "unknown label 'zebra'");
    }

    [TestMethod]
    public void RejectsCorruptImagesAndBadLayouts()
    {
        var root = MakeFolder(2);
        var corrupt = Path.Combine(root, "dogs", "broken.png");
        File.WriteAllBytes(corrupt, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        var e = Assert.ThrowsExactly<NoPropException>(() => Datasets.Load(DatasetSpec.Parse("folder:" + root)));
        StringAssert.Contains(e.Message, corrupt);

        var flat = TestSupport.TempDirectory();
        WritePng(Path.Combine(flat, "only", "x.png"), 8, 8, 0, 0, 0);
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => Datasets.Load(DatasetSpec.Parse("folder:" + flat))).Message,
            "expected one sub-folder per class (at least two)");
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => Datasets.Load(DatasetSpec.Parse("folder:/no/such/folder"))).Message,
            "folder not found");
    }
}
