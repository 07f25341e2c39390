using NoProp.Data;
using NoProp.Runtime;

namespace NoProp.Tests.Data;

[TestClass]
public sealed class CifarReaderTests
{
    /// <summary>Writes records in the exact CIFAR binary layout: label byte(s), then 1,024 R, 1,024 G, 1,024 B bytes.</summary>
    internal static void WriteCifarFile(string path, IReadOnlyList<(byte[] Labels, byte Seed)> records)
    {
        using var file = File.Create(path);
        foreach (var (labels, seed) in records)
        {
            file.Write(labels);
            for (int i = 0; i < CifarReader.ImageBytes; i++) file.WriteByte((byte)((seed + i) % 251));
        }
    }

    internal static string WriteCifar10(string root, int perBatch = 3)
    {
        var dir = Path.Combine(root, "cifar-10-batches-bin");
        Directory.CreateDirectory(dir);
        for (int b = 1; b <= 5; b++)
            WriteCifarFile(Path.Combine(dir, $"data_batch_{b}.bin"),
                Enumerable.Range(0, perBatch).Select(i => (new[] { (byte)((b + i) % 10) }, (byte)(10 * b + i))).ToList());
        WriteCifarFile(Path.Combine(dir, "test_batch.bin"), [([(byte)9], (byte)77), ([(byte)0], (byte)78)]);
        return dir;
    }

    [TestMethod]
    public void ReadsCifar10InTheOfficialLayout()
    {
        var root = TestSupport.TempDirectory();
        WriteCifar10(root);
        var data = CifarReader.LoadCifar10(root);
        Assert.AreEqual(15, data.Train.Count);
        Assert.AreEqual(2, data.Test.Count);
        Assert.AreEqual(3, data.Train.Channels);
        Assert.AreEqual(32, data.Train.Height);
        Assert.AreEqual("airplane", data.Train.ClassNames[0]);
        Assert.AreEqual("truck", data.Train.ClassNames[9]);
        CollectionAssert.AreEqual(new[] { 9, 0 }, data.Test.Labels);
        Assert.AreEqual(2, data.Train.Labels[1], "batch 1, record 1 has label (1 + 1) % 10");
        // Pixel i of record (batch 2, index 0) is (20 + i) % 251, channel-major: the green plane starts at 1024.
        int offset = 3 * CifarReader.ImageBytes;
        Assert.AreEqual((byte)(20 % 251), data.Train.Pixels[offset]);
        Assert.AreEqual((byte)((20 + 1024) % 251), data.Train.Pixels[offset + 1024]);
    }

    [TestMethod]
    public void ReadsCifar100FineAndCoarseLabels()
    {
        var root = TestSupport.TempDirectory();
        var dir = Path.Combine(root, "cifar-100-binary");
        Directory.CreateDirectory(dir);
        WriteCifarFile(Path.Combine(dir, "train.bin"), [([(byte)3, (byte)42], (byte)1), ([(byte)19, (byte)99], (byte)2)]);
        WriteCifarFile(Path.Combine(dir, "test.bin"), [([(byte)0, (byte)5], (byte)3)]);
        var fine = CifarReader.LoadCifar100(root, Cifar100Labels.Fine);
        CollectionAssert.AreEqual(new[] { 42, 99 }, fine.Train.Labels);
        Assert.AreEqual(100, fine.Train.ClassCount);
        Assert.AreEqual("worm", fine.Train.ClassNames[99]);
        var coarse = CifarReader.LoadCifar100(root, Cifar100Labels.Coarse);
        CollectionAssert.AreEqual(new[] { 3, 19 }, coarse.Train.Labels);
        Assert.AreEqual(20, coarse.Train.ClassCount);
        Assert.AreEqual("vehicles_2", coarse.Train.ClassNames[19]);
        // The loader through a data-set spec and the cache layout DIR/cifar100/cifar-100-binary.
        var cache = TestSupport.TempDirectory();
        Directory.Move(root, Path.Combine(cache, "cifar100"));
        var viaSpec = Datasets.Load(DatasetSpec.Parse("cifar100", cache) with { CifarLabels = Cifar100Labels.Coarse });
        Assert.AreEqual(20, viaSpec.Test.ClassCount);
    }

    [TestMethod]
    public void TheTrainingBatchesAreReadOnlyWhenUsed()
    {
        var root = TestSupport.TempDirectory();
        var dir = WriteCifar10(root);
        File.WriteAllBytes(Path.Combine(dir, "data_batch_2.bin"), [1, 2, 3]);   // not a CIFAR file
        var data = CifarReader.LoadCifar10(root);
        CollectionAssert.AreEqual(new[] { 9, 0 }, data.Test.Labels);
        Assert.IsFalse(data.TrainLoaded, "evaluating on the test set reads no training batch");
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => data.Train).Message, "data_batch_2.bin");
        WriteCifar10(root);
        var repaired = CifarReader.LoadCifar10(root);
        Assert.AreEqual(15, repaired.Train.Count);
        Assert.IsTrue(repaired.TrainLoaded);
    }

    [TestMethod]
    public void RejectsTruncatedFilesBadLabelsAndMissingFiles()
    {
        var root = TestSupport.TempDirectory();
        var dir = WriteCifar10(root);
        var batch = Path.Combine(dir, "data_batch_3.bin");
        var bytes = File.ReadAllBytes(batch);
        File.WriteAllBytes(batch, bytes[..^100]);
        var e = Assert.ThrowsExactly<NoPropException>(() => CifarReader.LoadCifar10(root).Train);   // read when first used
        StringAssert.Contains(e.Message, batch);
        StringAssert.Contains(e.Message, "not a whole number of 3073-byte CIFAR records");

        WriteCifarFile(batch, [([(byte)12], (byte)0)]);
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => CifarReader.LoadCifar10(root).Train).Message, "record 0 has label 12, outside 0..9");

        WriteCifarFile(batch, [([(byte)1], (byte)0)]);
        File.Delete(Path.Combine(dir, "data_batch_5.bin"));   // a missing file, though, is reported by the load itself
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => CifarReader.LoadCifar10(root)).Message, "data_batch_5.bin: file not found");

        var empty = TestSupport.TempDirectory();
        var missing = Assert.ThrowsExactly<NoPropException>(() => Datasets.Load(DatasetSpec.Parse("cifar10", empty)));
        StringAssert.Contains(missing.Message, "noprop download --dataset cifar10");
    }
}
