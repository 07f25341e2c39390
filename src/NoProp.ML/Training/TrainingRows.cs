using Microsoft.ML;
using NoProp.Data;
using NoProp.ML.Features;
using NoProp.Models;

namespace NoProp.ML.Training;

/// <summary>
/// The labelled rows of a training data view, materialised once (NoProp trains several passes over them) in a chunked
/// buffer: no single array limits their number, and growing never copies the rows already read.
/// </summary>
internal sealed record TrainingRows(ChunkedImages Images, int[] Labels, int SkippedRows)
{
    public int Count => Labels.Length;

    /// <summary>
    /// Reads every row with a label in one cursor: features (channel-major) into <see cref="ChunkedImages"/> of
    /// <paramref name="imagesPerChunk"/> images (null: 64 MiB chunks), labels as 0-based classes (key − 1). Rows whose
    /// label is missing (key 0, e.g. a value MapValueToKey did not know) are skipped, without reading their features, and counted.
    /// </summary>
    public static TrainingRows Read(IDataView data, DataViewSchema.Column featureColumn, DataViewSchema.Column labelColumn, ImageShape image,
        int? imagesPerChunk = null)
    {
        var images = new ChunkedImages(image.Size, imagesPerChunk);
        long? known = data.GetRowCount();
        var labels = new List<int>(known is long m && m < int.MaxValue ? (int)m : 1024);
        int skipped = 0;
        using var cursor = data.GetRowCursor([featureColumn, labelColumn]);
        var readFeatures = FeatureReaders.Create(cursor, featureColumn, image);
        var readLabel = cursor.GetGetter<uint>(labelColumn);
        uint key = 0;
        while (cursor.MoveNext())
        {
            readLabel(ref key);
            if (key == 0) { skipped++; continue; }
            readFeatures(images.Append());
            labels.Add((int)key - 1);
        }
        return new TrainingRows(images.Seal(), labels.ToArray(), skipped);
    }

    /// <summary>All rows, in reading order, as a data set viewing the buffer.</summary>
    public ImageDataset All(string name, ImageShape image, IReadOnlyList<string> classNames, Normalization normalization) =>
        View(name, Enumerable.Range(0, Count).ToArray(), image, classNames, normalization);

    /// <summary>The rows <paramref name="indices"/>, in that order, as a data set viewing the buffer (no copy).</summary>
    public ImageDataset View(string name, int[] indices, ImageShape image, IReadOnlyList<string> classNames, Normalization normalization)
    {
        var labels = new int[indices.Length];
        for (int i = 0; i < indices.Length; i++) labels[i] = Labels[indices[i]];
        return ImageDataset.FromChunks(name, Images, indices, labels, image.Channels, image.Height, image.Width, classNames, normalization);
    }
}
