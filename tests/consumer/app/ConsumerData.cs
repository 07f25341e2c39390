// Shared by the consumer app (Program.cs) and the consumer test project (ConsumerTests.cs), see tests/consumer/run.sh.
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.Data;

static class ConsumerData
{
    public const int TestRows = 100;

    /// <summary>The first <paramref name="count"/> images of a split as ML.NET rows: a text label, 1×28×28 in [0, 1].</summary>
    public static IEnumerable<Digit> Digits(ImageDataset set, int count)
    {
        var pixels = set.Pixels;
        for (int i = 0; i < count; i++)
        {
            var image = new float[set.ImageSize];
            for (int p = 0; p < image.Length; p++) image[p] = pixels[i * set.ImageSize + p] / 255f;
            yield return new Digit { Label = set.ClassNames[set.Labels[i]], Pixels = image };
        }
    }

    /// <summary>One line per scored row: every class probability (round-trip format) and the predicted key.</summary>
    public static IEnumerable<string> ScoreLines(MLContext mlContext, IDataView scored) =>
        mlContext.Data.CreateEnumerable<Scored>(scored, reuseRowObject: false).Select(row =>
            string.Join(' ', row.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture))) + $" -> {row.PredictedLabel}");

    public sealed class Digit
    {
        public string Label { get; set; } = "";
        [VectorType(1, 28, 28)] public float[] Pixels { get; set; } = [];
    }

    public sealed class Scored
    {
        public float[] Score { get; set; } = [];
        public uint PredictedLabel { get; set; }
    }
}
