using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.Data;
using NoProp.ML.Training;
using NoProp.Models;
using static TorchSharp.torch;

namespace NoProp.ML.Tests;

/// <summary>
/// Issue 11, point 8: training rows in a chunked buffer (no one-array limit), a split that views them instead of copying
/// them, and scoring that reads every input row once, in one cursor.
/// </summary>
[TestClass]
public sealed class LargeDataTests
{
    [TestMethod]
    public void ChunkedImagesAppendAcrossChunksAndReadBack()
    {
        var images = new ChunkedImages(imageSize: 3, imagesPerChunk: 4);
        for (int i = 0; i < 10; i++)
        {
            var room = images.Append();
            for (int k = 0; k < 3; k++) room[k] = i * 10 + k;
        }
        Assert.AreEqual(10, images.Count);
        Assert.AreEqual(3, images.Chunks.Count, "4 + 4 + 2 images");
        Assert.AreEqual(4 * 3, images.Chunks[2].Length, "the last chunk is allocated whole until sealed");
        images.Seal();
        Assert.AreEqual(2 * 3, images.Chunks[2].Length, "sealed: the last chunk holds its two images only");
        Assert.AreEqual(30L, images.AllocatedValues);
        Assert.ThrowsExactly<InvalidOperationException>(() => images.Append(), "a sealed buffer takes no more images");
        for (int i = 0; i < 10; i++) CollectionAssert.AreEqual(new float[] { i * 10, i * 10 + 1, i * 10 + 2 }, images.Image(i).ToArray(), $"image {i}");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => images.Image(10));
        Assert.AreEqual(ChunkedImages.DefaultChunkValues / 784, new ChunkedImages(784).ImagesPerChunk, "64 MiB chunks by default");
    }

    private static (MLContext Ml, IDataView Keyed) KeyedDigits(int rows)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: true, rows));
        return (ml, ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data));
    }

    [TestMethod]
    public void TheSplitViewsTheOneBufferOfRowsAndCopiesNoImage()
    {
        var (ml, keyed) = KeyedDigits(100);
        var image = new ImageShape(1, 28, 28);
        var rows = TrainingRows.Read(keyed, keyed.Schema["Features"], keyed.Schema["Label"], image, imagesPerChunk: 16);
        Assert.AreEqual(100, rows.Count);
        Assert.AreEqual(7, rows.Images.Chunks.Count, "100 rows in chunks of 16");
        Assert.AreEqual(100L * 784, rows.Images.AllocatedValues, "the rows are held once, the last chunk trimmed");

        var estimator = new NoPropEstimator(ml, new NoPropOptions { Seed = 3, ValidationFraction = 0.25 });
        var classNames = Enumerable.Range(0, 10).Select(i => i.ToString()).ToArray();
        var (train, validation) = estimator.Split(rows, null, image, classNames);
        Assert.AreSame(rows.Images, train.Chunks, "the training split views the buffer");
        Assert.AreSame(rows.Images, validation.Chunks, "the validation split views the same buffer");
        Assert.AreEqual(100L * 784, rows.Images.AllocatedValues, "splitting allocated no image");
        Assert.AreEqual(75, train.Count);
        Assert.AreEqual(25, validation.Count);
        var seen = train.ChunkIndices!.Concat(validation.ChunkIndices!).OrderBy(i => i).ToArray();
        CollectionAssert.AreEqual(Enumerable.Range(0, 100).ToArray(), seen, "every row on exactly one side");
        Assert.IsFalse(train.ChunkIndices!.SequenceEqual(train.ChunkIndices!.Order()), "a seeded shuffle, not the reading order");

        // The statistics are those of the training rows copied into one array (as before the buffer was chunked), to the bit.
        var gathered = train.ChunkIndices!.SelectMany(i => rows.Images.Image(i).ToArray()).ToArray();
        var expected = Normalization.Estimate(gathered, 1, 784);
        Assert.AreEqual(expected.Mean[0], train.Normalization.Mean[0]);
        Assert.AreEqual(expected.Std[0], train.Normalization.Std[0]);
        Assert.AreSame(train.Normalization, validation.Normalization, "validation rows are normalised with the training statistics");

        // The trainer's tensor holds the viewed rows in view order, normalised; labels follow them.
        var (x, y) = train.ToTensors();
        using (x)
        using (y)
        {
            CollectionAssert.AreEqual(new long[] { 75, 1, 28, 28 }, x.shape);
            using var reference = tensor(gathered, [75, 1, 28, 28]);
            expected.ApplyInPlace(reference);
            Assert.IsTrue(x.eq(reference).all().item<bool>(), "the gathered, normalised rows");
            var labels = y.data<long>().ToArray();
            for (int i = 0; i < 75; i++) Assert.AreEqual(rows.Labels[train.ChunkIndices![i]], (int)labels[i], $"label {i}");
        }
        var subset = validation.Select([3, 0]);
        Assert.AreSame(rows.Images, subset.Chunks, "a selection of a view is a view");
        CollectionAssert.AreEqual(new[] { validation.ChunkIndices![3], validation.ChunkIndices![0] }, subset.ChunkIndices!.ToArray());
    }

    [TestMethod]
    public void ATinyChunkThatSplitsRowsAcrossChunksTrainsTheModelOfOneChunk()
    {
        List<float[]> Scores(int? imagesPerChunk)
        {
            var (ml, keyed) = KeyedDigits(96);
            var options = new NoPropOptions { Epochs = 1, Blocks = 1, BatchSize = 16, Seed = 6, ValidationFraction = 0.25 };
            using var model = new NoPropEstimator(ml, options) { ImagesPerChunk = imagesPerChunk }.Fit(keyed);
            return MlTestSupport.Scores(model.Transform(keyed));
        }
        var oneChunk = Scores(null);
        var tinyChunks = Scores(7);   // 14 chunks; the split and every minibatch mix rows of several chunks
        Assert.AreEqual(96, tinyChunks.Count);
        for (int i = 0; i < oneChunk.Count; i++) CollectionAssert.AreEqual(oneChunk[i], tinyChunks[i], $"row {i}: the same model");
    }

    [TestMethod]
    public void TransformReadsEachInputRowOnceInOneCursorAndScoresAsBefore()
    {
        var ml = MlTestSupport.Context;
        var reference = MlTestSupport.Scores(MlTestSupport.Model.Transform(MlTestSupport.Test));   // 200 rows, batches of 64
        var counted = new CountingDataView(ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, MlTestSupport.TestRows)));
        var metrics = ml.MulticlassClassification.Evaluate(MlTestSupport.Model.Transform(counted));
        Assert.AreEqual(1, counted.CursorsOpened, "Evaluate: one cursor over the input");
        Assert.AreEqual(MlTestSupport.TestRows, counted.RowsRead, "each row moved onto once");
        Assert.AreEqual(MlTestSupport.TestRows, counted.Reads("Features"), "each row's features read once");
        Assert.AreEqual(MlTestSupport.TestRows, counted.Reads("Label"), "each row's label read once");
        Assert.IsTrue(metrics.MicroAccuracy > 0);

        // The features read downstream as well as scored: still one read per row, and the scores of the plain Transform.
        counted = new CountingDataView(ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, MlTestSupport.TestRows)));
        var scored = MlTestSupport.Model.Transform(counted);
        var rows = ml.Data.CreateEnumerable<FeaturesAndScore>(scored, reuseRowObject: false).ToList();
        Assert.AreEqual(1, counted.CursorsOpened);
        Assert.AreEqual(MlTestSupport.TestRows, counted.Reads("Features"));
        var digits = MlTestSupport.Digits(train: false, MlTestSupport.TestRows);
        for (int i = 0; i < rows.Count; i++)
        {
            CollectionAssert.AreEqual(digits[i].Features, rows[i].Features, $"row {i}: the features pass through");
            CollectionAssert.AreEqual(reference[i], rows[i].Score, $"row {i}: the scores of a score-only cursor");
        }
        Assert.AreEqual(MlTestSupport.TestRows, rows.Count);
    }

    public sealed class FeaturesAndScore
    {
        [VectorType(1, 28, 28)] public float[] Features { get; set; } = [];
        public float[] Score { get; set; } = [];
    }

    [TestMethod]
    public void ACursorThatReadsNoScoreDoesNotScore()
    {
        var ml = MlTestSupport.Context;
        var counted = new CountingDataView(ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, 10)));
        var labels = MlTestSupport.Model.Transform(counted).GetColumn<uint>("Label").ToList();
        Assert.AreEqual(10, labels.Count);
        Assert.AreEqual(0, counted.Reads("Features"), "no score asked for, no features read");
    }

    [TestMethod]
    public void AShuffledInputScoresEachRowAsInOrder()
    {
        var ml = MlTestSupport.Context;
        var reference = MlTestSupport.Scores(MlTestSupport.Model.Transform(MlTestSupport.Test));
        var cached = ml.Data.Cache(ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, MlTestSupport.TestRows)));
        var scored = MlTestSupport.Model.Transform(cached);
        Assert.IsTrue(scored.CanShuffle, "a row's score does not depend on its neighbours, so the scores may be shuffled");
        var schema = scored.Schema;
        using var cursor = scored.GetRowCursor([schema["Features"], schema["Score"]], new Random(5));
        var getFeatures = cursor.GetGetter<VBuffer<float>>(schema["Features"]);
        var getScore = cursor.GetGetter<VBuffer<float>>(schema["Score"]);
        var byImage = MlTestSupport.Digits(train: false, MlTestSupport.TestRows).Select((d, i) => (d, i))
            .ToDictionary(p => string.Join(',', p.d.Features), p => p.i);
        VBuffer<float> features = default, score = default;
        int row = 0, moved = 0;
        while (cursor.MoveNext())
        {
            getFeatures(ref features);
            getScore(ref score);
            int original = byImage[string.Join(',', features.DenseValues())];
            if (original != row) moved++;
            var expected = reference[original];
            var actual = score.DenseValues().ToArray();
            // Another batch around the row: the same noise, the same score up to float rounding of the batched arithmetic.
            for (int k = 0; k < expected.Length; k++) Assert.AreEqual(expected[k], actual[k], 1e-5, $"row {original}, class {k}");
            row++;
        }
        Assert.AreEqual(MlTestSupport.TestRows, row);
        Assert.IsTrue(moved > MlTestSupport.TestRows / 2, "the rows came in another order");
    }
}
