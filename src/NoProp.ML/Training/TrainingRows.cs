using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.ML.Features;
using NoProp.Models;

namespace NoProp.ML.Training;

/// <summary>The labelled rows of a training data view, materialised once (NoProp trains several passes over them).</summary>
internal sealed record TrainingRows(float[] Features, int[] Labels, int SkippedRows)
{
    public int Count => Labels.Length;

    /// <summary>
    /// Reads every row with a label: features into one channel-major float array, labels as 0-based classes (key − 1).
    /// Rows whose label is missing (key 0, e.g. a value MapValueToKey did not know) are skipped and counted.
    /// </summary>
    public static TrainingRows Read(IDataView data, DataViewSchema.Column featureColumn, DataViewSchema.Column labelColumn, ImageShape image)
    {
        int featureSize = image.Size;
        long? known = data.GetRowCount();
        var features = new float[(known is long n && n > 0 && n * featureSize < Array.MaxLength ? n : 1024) * featureSize];
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
            long offset = (long)labels.Count * featureSize;
            if (offset + featureSize > features.LongLength)
            {
                long grown = Math.Min(Math.Max(features.LongLength * 2, offset + featureSize), Array.MaxLength);
                if (grown < offset + featureSize)
                    throw new InvalidOperationException($"too many training rows for one array ({labels.Count} rows of {featureSize} values)");
                Array.Resize(ref features, (int)grown);
            }
            readFeatures(features.AsSpan((int)offset, featureSize));
            labels.Add((int)key - 1);
        }
        if (features.LongLength != (long)labels.Count * featureSize) Array.Resize(ref features, labels.Count * featureSize);
        return new TrainingRows(features, labels.ToArray(), skipped);
    }
}
