using NoProp.Data;
using NoProp.Runtime;

namespace NoProp.Tests.Data;

[TestClass]
public sealed class DataSplitsTests
{
    private static DatasetPair Small(int trainImages) => new(TestSupport.Mnist.Train.Take(trainImages), TestSupport.Mnist.Test.Take(50));

    [TestMethod]
    [DataRow(60000, 5000)]
    [DataRow(50000, 5000)]
    [DataRow(49999, 4999)]
    [DataRow(600, 60)]
    [DataRow(19, 1)]
    [DataRow(9, 0)]
    public void TheDefaultValidationSplitIsATenthCappedAt5000(int trainingImages, int expected) =>
        Assert.AreEqual(expected, DataSplits.DefaultValidationSize(trainingImages));

    [TestMethod]
    public void MnistKeepsItsFiveThousandValidationImages()
    {
        var byDefault = DataSplits.Create(TestSupport.Mnist, null, null, 10, seed: 4);
        var explicitly = DataSplits.Create(TestSupport.Mnist, null, 5000, 10, seed: 4);
        Assert.AreEqual(5000, byDefault.Validation.Count);
        Assert.AreEqual(55000, byDefault.Train.Count);
        CollectionAssert.AreEqual(explicitly.Validation.Labels, byDefault.Validation.Labels, "the default is the old 5,000-image split, image for image");
        Assert.IsNull(byDefault.Notice);
    }

    [TestMethod]
    public void ASmallDataSetStillTrainsOnMostOfIt()
    {
        var splits = DataSplits.Create(Small(600), null, null, null, seed: 1);
        Assert.AreEqual(540, splits.Train.Count);
        Assert.AreEqual(60, splits.Validation.Count);
        Assert.IsNull(splits.Notice);
    }

    [TestMethod]
    public void MessagesNameWhatTheUserSet()
    {
        var e = Assert.ThrowsExactly<NoPropException>(() => DataSplits.Create(Small(100), null, 100, null, seed: 1));
        Assert.AreEqual("--validation-size 100 leaves no image to train on: mnist-train has 100 training images", e.Message);
        e = Assert.ThrowsExactly<NoPropException>(() => DataSplits.Create(Small(100), 101, null, null, seed: 1));
        StringAssert.StartsWith(e.Message, "--train-size 101 is larger than the 100 training images");
        var shrunk = DataSplits.Create(Small(100), 95, null, null, seed: 1);
        Assert.AreEqual(5, shrunk.Validation.Count);
        Assert.AreEqual("the validation split has 5 images instead of 10: only 5 training images remain after --train-size 95", shrunk.Notice);
    }
}
