using System.IO.Compression;
using NoProp.Data;
using NoProp.Runtime;

namespace NoProp.Tests.Data;

[TestClass]
public sealed class IdxReaderTests
{
    private static byte[] Header(uint magic, params uint[] dims)
    {
        var bytes = new List<byte>();
        void Be(uint v) { bytes.Add((byte)(v >> 24)); bytes.Add((byte)(v >> 16)); bytes.Add((byte)(v >> 8)); bytes.Add((byte)v); }
        Be(magic);
        foreach (var d in dims) Be(d);
        return bytes.ToArray();
    }

    private static string Write(string dir, string name, byte[] bytes, bool gzip = false)
    {
        var path = Path.Combine(dir, name);
        if (!gzip) { File.WriteAllBytes(path, bytes); return path; }
        using var file = File.Create(path);
        using var gz = new GZipStream(file, CompressionLevel.Fastest);
        gz.Write(bytes);
        return path;
    }

    [TestMethod]
    public void ReadsPlainAndGzippedFiles()
    {
        var dir = TestSupport.TempDirectory();
        byte[] images = [.. Header(0x803, 2, 2, 3), .. Enumerable.Range(0, 12).Select(i => (byte)i)];
        byte[] labels = [.. Header(0x801, 2), 3, 9];
        var (pixels, ls, h, w) = IdxReader.ReadImagesAndLabels(Write(dir, "i", images), Write(dir, "l.gz", labels, gzip: true), 10);
        Assert.AreEqual(2, h);
        Assert.AreEqual(3, w);
        CollectionAssert.AreEqual(new[] { 3, 9 }, ls);
        Assert.AreEqual((byte)11, pixels[11]);
    }

    [TestMethod]
    public void EmbeddedMnistHasTheStandardSizes()
    {
        var mnist = TestSupport.Mnist;
        Assert.AreEqual(60_000, mnist.Train.Count);
        Assert.AreEqual(10_000, mnist.Test.Count);
        Assert.AreEqual(28, mnist.Train.Height);
        Assert.AreEqual(5, mnist.Train.Labels[0], "the first MNIST training digit is a 5");
        Assert.AreEqual(7, mnist.Test.Labels[0], "the first MNIST test digit is a 7");
    }

    [TestMethod]
    public void RejectsAWrongMagicNumber()
    {
        var dir = TestSupport.TempDirectory();
        var path = Write(dir, "bad-magic", [.. Header(0x801, 1, 1, 1), 0]);
        var e = Assert.ThrowsExactly<NoPropException>(() => IdxReader.Read(path, 3));
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "wrong magic number 0x00000801");
    }

    [TestMethod]
    public void RejectsATruncatedFile()
    {
        var dir = TestSupport.TempDirectory();
        var path = Write(dir, "short.gz", [.. Header(0x803, 3, 2, 2), 1, 2, 3], gzip: true);
        var e = Assert.ThrowsExactly<NoPropException>(() => IdxReader.Read(path, 3));
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "truncated");
        StringAssert.Contains(e.Message, "12 bytes of data, the file holds 3");
        var headerOnly = Write(dir, "header", [0, 0, 8, 3, 0, 0]);
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => IdxReader.Read(headerOnly, 3)).Message, "truncated IDX header");
    }

    [TestMethod]
    public void AHeaderThatAnnouncesFarMoreThanAGzipFileHoldsIsReportedAsTruncated()
    {
        // 1000 × 1000 × 100 = 100 MB announced, 5 bytes present: read in segments, never allocated whole.
        var dir = TestSupport.TempDirectory();
        var path = Write(dir, "liar.gz", [.. Header(0x803, 1000, 1000, 100), 1, 2, 3, 4, 5], gzip: true);
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => IdxReader.Read(path, 3)).Message,
            "1000×1000×100 = 100000000 bytes of data, the file holds 5");
        // Dimensions whose product no array can hold are refused from the header alone.
        var huge = Write(dir, "huge.gz", [.. Header(0x803, 2_000_000_000, 2_000_000_000, 2_000_000_000), 1], gzip: true);
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => IdxReader.Read(huge, 3)).Message, "more than one array can hold");
    }

    [TestMethod]
    public void RejectsTrailingBytes()
    {
        var dir = TestSupport.TempDirectory();
        var path = Write(dir, "long", [.. Header(0x801, 2), 1, 2, 3]);
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => IdxReader.Read(path, 1)).Message, "1 unexpected bytes");
    }

    [TestMethod]
    public void RejectsALabelCountThatDiffersFromTheImageCount()
    {
        var dir = TestSupport.TempDirectory();
        var images = Write(dir, "images", [.. Header(0x803, 2, 1, 1), 0, 0]);
        var labels = Write(dir, "labels", [.. Header(0x801, 3), 0, 1, 2]);
        var e = Assert.ThrowsExactly<NoPropException>(() => IdxReader.ReadImagesAndLabels(images, labels, 10));
        StringAssert.Contains(e.Message, "label count 3 does not match the image count 2");
        StringAssert.Contains(e.Message, labels);
    }

    [TestMethod]
    public void RejectsAnUnknownLabel()
    {
        var dir = TestSupport.TempDirectory();
        var images = Write(dir, "images", [.. Header(0x803, 1, 1, 1), 0]);
        var labels = Write(dir, "labels", [.. Header(0x801, 1), 12]);
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => IdxReader.ReadImagesAndLabels(images, labels, 10)).Message, "label 12 at index 0 is outside 0..9");
    }

    [TestMethod]
    public void TheTrainingFilesAreReadOnlyWhenUsed()
    {
        var dir = TestSupport.TempDirectory();
        Write(dir, "t10k-images-idx3-ubyte", [.. Header(0x803, 2, 2, 2), 0, 1, 2, 3, 4, 5, 6, 7]);
        Write(dir, "t10k-labels-idx1-ubyte", [.. Header(0x801, 2), 7, 3]);
        var trainImages = Write(dir, "train-images-idx3-ubyte.gz", [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);   // corrupt
        Write(dir, "train-labels-idx1-ubyte", [.. Header(0x801, 1), 0]);
        var data = Datasets.LoadIdx("mnist", dir, Datasets.DigitClassNames, Normalization.Mnist);
        CollectionAssert.AreEqual(new[] { 7, 3 }, data.Test.Labels);
        CollectionAssert.AreEqual(new byte[] { 0, 1, 2, 3, 4, 5, 6, 7 }, data.Test.Pixels);
        Assert.IsFalse(data.TrainLoaded, "evaluating on the test set reads no training file");
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => data.Train).Message, trainImages);
        File.Delete(trainImages);
        Write(dir, "train-images-idx3-ubyte", [.. Header(0x803, 1, 2, 2), 9, 9, 9, 9]);
        var repaired = Datasets.LoadIdx("mnist", dir, Datasets.DigitClassNames, Normalization.Mnist);
        Assert.AreEqual(1, repaired.Train.Count);
        Assert.AreEqual("mnist-train", repaired.Train.Name);
        Assert.IsTrue(repaired.TrainLoaded);
    }

    [TestMethod]
    public void RejectsMissingAndCorruptFiles()
    {
        var dir = TestSupport.TempDirectory();
        var missing = Path.Combine(dir, "nothing-here");
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => IdxReader.Read(missing, 1)).Message, "file not found");
        var corrupt = Write(dir, "corrupt.gz", [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        var e = Assert.ThrowsExactly<NoPropException>(() => IdxReader.Read(corrupt, 1));
        StringAssert.Contains(e.Message, corrupt);
        var e2 = Assert.ThrowsExactly<NoPropException>(() => Datasets.Load("mnist", dir));
        StringAssert.Contains(e2.Message, "train-images-idx3-ubyte");
    }
}
