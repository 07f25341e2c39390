using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using NoProp.Models;

namespace NoProp.ML.Features;

/// <summary>Writes the current row's features (C × H × W intensities) into the span.</summary>
internal delegate void FeatureReader(Span<float> destination);

/// <summary>
/// The two kinds of feature column NoProp reads: a known-size vector of Single (one image, channel-major), or an
/// <see cref="MLImage"/> (LoadImages' output), which <see cref="ImagePixels"/> resizes and turns into intensities.
/// Training, batch scoring and the PredictionEngine path all read features through here.
/// </summary>
internal static class FeatureReaders
{
    public static bool IsImage(DataViewType type) => type is ImageDataViewType;

    public static FeatureReader Create(DataViewRow row, DataViewSchema.Column column, ImageShape image)
    {
        if (IsImage(column.Type))
        {
            var getImage = row.GetGetter<MLImage>(column);
            MLImage? current = null;   // the getter disposes the previous row's image when it fills this one
            return destination =>
            {
                getImage(ref current);
                if (current is null)
                    throw new InvalidOperationException($"image column '{column.Name}' has no image in row {row.Position} (an empty path?)");
                ImagePixels.Extract(current, image, destination);
            };
        }
        var getVector = row.GetGetter<VBuffer<float>>(column);
        VBuffer<float> buffer = default;
        return destination =>
        {
            getVector(ref buffer);
            if (buffer.Length != destination.Length)
                throw new InvalidOperationException($"feature column '{column.Name}' held {buffer.Length} values in row {row.Position}, the model expects {destination.Length}");
            buffer.CopyTo(destination);   // densifies sparse rows
        };
    }
}
