using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML.Tests;

[TestClass]
public sealed class ExportImagesTests
{
    public sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
    }

    [TestMethod]
    public void ExportedPngsReadBackThroughLoadImagesAsTheOriginalPixels()
    {
        var dir = MlTestSupport.TempDirectory();
        int code = CliProcess.Run("export-images", "--split", "train", "--output", dir, "--limit", "3").Code;
        Assert.AreEqual(0, code);
        var mnist = MlTestSupport.Mnist.Train;
        var ml = new MLContext();
        for (int i = 0; i < 3; i++)
        {
            var label = mnist.ClassNames[mnist.Labels[i]];
            var path = Path.Combine(label, $"{i:D5}.png");
            Assert.IsTrue(File.Exists(Path.Combine(dir, path)), path);
            var pixels = ml.Transforms.LoadImages("Image", dir, nameof(ImageRow.ImagePath))
                .Append(ml.Transforms.ResizeImages("Image", 28, 28))   // same size: gives the image type a known size
                .Append(ml.Transforms.ExtractPixels("Pixels", "Image", colorsToExtract: Microsoft.ML.Transforms.Image.ImagePixelExtractingEstimator.ColorBits.Red))
                .Fit(ml.Data.LoadFromEnumerable(new[] { new ImageRow { ImagePath = path } }))
                .Transform(ml.Data.LoadFromEnumerable(new[] { new ImageRow { ImagePath = path } }))
                .GetColumn<float[]>("Pixels").Single();
            var expected = mnist.Pixels.AsSpan(i * 784, 784).ToArray().Select(b => (float)b).ToArray();
            CollectionAssert.AreEqual(expected, pixels, $"image {i} survives the PNG round trip");
        }
    }

    [TestMethod]
    public void ExportImagesNeedsAnOutputFolder()
    {
        var stderr = new StringWriter();
        var (missingCode, _, missingErr) = CliProcess.Run("export-images", "--split", "test");
        stderr.Write(missingErr);
        Assert.AreEqual(2, missingCode);
        StringAssert.Contains(stderr.ToString(), "--output is required");
        stderr = new StringWriter();
        var (badCode, _, badErr) = CliProcess.Run("export-images", "--split", "validation", "--output", "x");
        stderr.Write(badErr);
        Assert.AreEqual(2, badCode);
        StringAssert.Contains(stderr.ToString(), "--split: unknown value 'validation'");
    }
}
