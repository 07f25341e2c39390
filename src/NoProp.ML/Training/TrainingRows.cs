using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML.Training;

/// <summary>The labelled rows of a training data view, materialised once (NoProp trains several passes over them).</summary>
internal sealed record TrainingRows(float[] Features, int[] Labels, int SkippedRows)
{
    public int Count => Labels.Length;

    /// <summary>
    /// Reads every row with a label: features into one channel-major float array, labels as 0-based classes (key − 1).
    /// Rows whose label is missing (key 0, e.g. a value MapValueToKey did not know) are skipped and counted.
    /// </summary>
    public static TrainingRows Read(IDataView data, DataViewSchema.Column featureColumn, DataViewSchema.Column labelColumn, int featureSize)
    {
        long? known = data.GetRowCount();
        var features = new float[(known is long n && n > 0 && n * featureSize < Array.MaxLength ? n : 1024) * featureSize];
        var labels = new List<int>(known is long m && m < int.MaxValue ? (int)m : 1024);
        int skipped = 0;
        using var cursor = data.GetRowCursor([featureColumn, labelColumn]);
        var readFeatures = cursor.GetGetter<VBuffer<float>>(featureColumn);
        var readLabel = cursor.GetGetter<uint>(labelColumn);
        VBuffer<float> row = default;
        uint key = 0;
        while (cursor.MoveNext())
        {
            readLabel(ref key);
            if (key == 0) { skipped++; continue; }
            readFeatures(ref row);
            if (row.Length != featureSize)
                throw new InvalidOperationException($"feature column '{featureColumn.Name}' held {row.Length} values in row {cursor.Position}, expected {featureSize}");
            long offset = (long)labels.Count * featureSize;
            if (offset + featureSize > features.LongLength)
            {
                long grown = Math.Min(Math.Max(features.LongLength * 2, offset + featureSize), Array.MaxLength);
                if (grown < offset + featureSize)
                    throw new InvalidOperationException($"too many training rows for one array ({labels.Count} rows of {featureSize} values)");
                Array.Resize(ref features, (int)grown);
            }
            row.CopyTo(features.AsSpan((int)offset, featureSize));   // densifies sparse rows
            labels.Add((int)key - 1);
        }
        if (features.LongLength != (long)labels.Count * featureSize) Array.Resize(ref features, labels.Count * featureSize);
        return new TrainingRows(features, labels.ToArray(), skipped);
    }
}
