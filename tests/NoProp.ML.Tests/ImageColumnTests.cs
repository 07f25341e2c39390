using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.ML.Features;
using NoProp.Models;

namespace NoProp.ML.Tests;

/// <summary>Issue 11, point 7: an MLImage column (LoadImages' output) straight into NoProp.</summary>
[TestClass]
public sealed class ImageColumnTests
{
    public sealed class ImageFile
    {
        public string Label { get; set; } = "";
        public string Path { get; set; } = "";
    }

    /// <summary>An MNIST digit as a BGRA image, each pixel repeated <paramref name="scale"/> × <paramref name="scale"/> times.</summary>
    private static MLImage DigitImage(float[] intensities, int scale = 1)
    {
        int side = 28 * scale;
        var bgra = new byte[side * side * 4];
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
            {
                byte v = (byte)Math.Round(intensities[(y / scale) * 28 + x / scale] * 255);
                int at = (y * side + x) * 4;
                (bgra[at], bgra[at + 1], bgra[at + 2], bgra[at + 3]) = (v, v, v, 255);
            }
        return MLImage.CreateFromPixels(side, side, MLPixelFormat.Bgra32, bgra);
    }

    private static List<ImageFile> WritePngs(string dir, bool train, int count)
    {
        var files = new List<ImageFile>();
        foreach (var (digit, i) in MlTestSupport.Digits(train, count).Select((d, i) => (d, i)))
        {
            var name = $"{(train ? "train" : "test")}-{i:D4}.png";
            using (var image = DigitImage(digit.Features)) image.Save(Path.Combine(dir, name));
            files.Add(new ImageFile { Label = digit.Label, Path = name });
        }
        return files;
    }

    [TestMethod]
    public void PixelsAreTheIntensitiesAndAResizeOfAnUpscaledDigitGivesItBack()
    {
        var digit = MlTestSupport.Digits(train: true, 1)[0].Features;
        var shape = new ImageShape(1, 28, 28);
        var same = new float[784];
        using (var image = DigitImage(digit)) ImagePixels.Extract(image, shape, same);
        for (int i = 0; i < 784; i++) Assert.AreEqual(digit[i], same[i], 1e-6, $"pixel {i}");
        // 56 × 56 (each pixel doubled) back to 28 × 28: bilinear at pixel centres averages two equal pixels.
        var resized = new float[784];
        using (var image = DigitImage(digit, scale: 2)) ImagePixels.Extract(image, shape, resized);
        for (int i = 0; i < 784; i++) Assert.AreEqual(digit[i], resized[i], 1e-6, $"pixel {i} after resizing");
    }

    [TestMethod]
    public void RgbPlanesComeOutInRgbOrderWhateverThePixelFormat()
    {
        // One red, one green, one blue, one white pixel (2 × 2), in both pixel formats.
        byte[] bgra = [0, 0, 255, 255, 0, 255, 0, 255, 255, 0, 0, 255, 255, 255, 255, 255];
        byte[] rgba = [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255];
        float[] expected = [1, 0, 0, 1, /* G */ 0, 1, 0, 1, /* B */ 0, 0, 1, 1];
        foreach (var (format, bytes) in new[] { (MLPixelFormat.Bgra32, bgra), (MLPixelFormat.Rgba32, rgba) })
        {
            using var image = MLImage.CreateFromPixels(2, 2, format, bytes);
            var planes = new float[12];
            ImagePixels.Extract(image, new ImageShape(3, 2, 2), planes);
            CollectionAssert.AreEqual(expected, planes, format.ToString());
            var gray = new float[4];
            ImagePixels.Extract(image, new ImageShape(1, 2, 2), gray);
            CollectionAssert.AreEqual(new[] { 0.299f, 0.587f, 0.114f, 1f }, gray, new FloatTolerance(1e-6f), $"BT.601 luma, {format}");
        }
    }

    private sealed class FloatTolerance(float tolerance) : System.Collections.IComparer
    {
        public int Compare(object? x, object? y) => Math.Abs((float)x! - (float)y!) <= tolerance ? 0 : 1;
    }

    [TestMethod]
    public void LoadImagesThenNoPropIsACompletePipelineThatScoresNewImageFilesAfterSaveAndLoad()
    {
        var dir = MlTestSupport.TempDirectory();
        var train = WritePngs(dir, train: true, 160);
        var test = WritePngs(dir, train: false, 20);
        var ml = new MLContext(seed: 1);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadImages("Image", dir, "Path"))
            .Append(ml.MulticlassClassification.Trainers.NoProp(new NoPropOptions
            {
                FeatureColumnName = "Image", Channels = 1, Epochs = 1, Blocks = 1, BatchSize = 32, Seed = 2,
            }));
        var model = pipeline.Fit(ml.Data.LoadFromEnumerable(train));
        var noProp = model.LastTransformer;
        Assert.IsTrue(noProp.ImageInput);
        Assert.AreEqual(new ImageShape(1, 28, 28), noProp.ImageShape, "the first image's size, one channel as asked");
        Assert.IsInstanceOfType<Microsoft.ML.Transforms.Image.ImageDataViewType>(noProp.FeatureColumnType);

        // The rows NoProp trains on are the images' intensities, as ExtractPixels(scaleImage: 1/255) gives them.
        var keyedImages = model.Take(2).Aggregate(ml.Data.LoadFromEnumerable(train), (data, t) => t.Transform(data));
        var rows = Training.TrainingRows.Read(keyedImages, keyedImages.Schema["Image"], keyedImages.Schema["Label"], noProp.ImageShape);
        var digits = MlTestSupport.Digits(train: true, 160);
        Assert.AreEqual(160, rows.Count);
        for (int i = 0; i < 160 * 784; i += 97) Assert.AreEqual(digits[i / 784].Features[i % 784], rows.Images.Image(i / 784)[i % 784], 1e-6, $"value {i}");
        var testFiles = ml.Data.LoadFromEnumerable(test);
        var scores = MlTestSupport.Scores(model.Transform(testFiles));

        // Scoring decodes each image once (LoadImages reads a row's path once per decode), in one cursor, even with the
        // image column itself read downstream too; and scores as the plain Transform did.
        var counted = new CountingDataView(testFiles);
        var scored = model.Transform(counted);
        var scoredSchema = scored.Schema;
        using (var cursor = scored.GetRowCursor([scoredSchema["Image"], scoredSchema["Score"], scoredSchema["PredictedLabel"]]))
        {
            var getImage = cursor.GetGetter<MLImage>(scoredSchema["Image"]);
            var getScore = cursor.GetGetter<VBuffer<float>>(scoredSchema["Score"]);
            MLImage image = null!;
            VBuffer<float> score = default;
            int row = 0;
            while (cursor.MoveNext())
            {
                getImage(ref image);
                getScore(ref score);
                Assert.AreEqual(28, image!.Width, $"row {row}: the image passes through");
                CollectionAssert.AreEqual(scores[row], score.DenseValues().ToArray(), $"row {row}");
                row++;
            }
            Assert.AreEqual(test.Count, row);
        }
        Assert.AreEqual(1, counted.CursorsOpened, "one cursor over the input");
        Assert.AreEqual(test.Count, counted.Reads("Path"), "one decode per image");
        Assert.AreEqual(10, ml.MulticlassClassification.Evaluate(model.Transform(testFiles)).ConfusionMatrix.NumberOfClasses);

        var path = Path.Combine(dir, "images.zip");
        ml.Model.Save(model, ml.Data.LoadFromEnumerable(train).Schema, path);
        model.LastTransformer.Dispose();
        var fresh = new MLContext();
        var loaded = fresh.Model.Load(path, out _);
        using (loaded as IDisposable)
        {
            var after = MlTestSupport.Scores(loaded.Transform(fresh.Data.LoadFromEnumerable(test)));
            for (int i = 0; i < scores.Count; i++) CollectionAssert.AreEqual(scores[i], after[i], $"row {i}");
            var engine = fresh.Model.CreatePredictionEngine<ImageFile, ScoreOnly>(loaded);
            // One row at a time instead of a batch of 20: the same noise, the same scores up to float rounding.
            var single = engine.Predict(test[3]).Score;
            for (int k = 0; k < 10; k++) Assert.AreEqual(scores[3][k], single[k], 1e-5, $"one new image file through a PredictionEngine, class {k}");
        }
    }

    public sealed class ScoreOnly
    {
        public float[] Score { get; set; } = [];
    }

    [TestMethod]
    public void AVectorModelRejectsAnImageColumnAndTheReverse()
    {
        var ml = MlTestSupport.Context;
        var dir = MlTestSupport.TempDirectory();
        var files = ml.Data.LoadFromEnumerable(WritePngs(dir, train: false, 2));
        var images = ml.Transforms.LoadImages("Features", dir, "Path").Fit(files).Transform(files);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MlTestSupport.NoProp.Transform(images));
        StringAssert.Contains(e.Message, "feature column 'Features' must be a vector of 784 Single values (C×H×W = 1×28×28) as in training");
    }
}
