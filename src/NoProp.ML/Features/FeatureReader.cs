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

    public static FeatureReader Create(DataViewRow row, DataViewSchema.Column column, ImageShape image) =>
        Create(column, image, IsImage(column.Type) ? row.GetGetter<MLImage>(column) : row.GetGetter<VBuffer<float>>(column), () => row.Position);

    /// <summary>A reader over <paramref name="getter"/> (a <c>ValueGetter&lt;MLImage&gt;</c> or <c>ValueGetter&lt;VBuffer&lt;float&gt;&gt;</c> of <paramref name="column"/>).</summary>
    public static FeatureReader Create(DataViewSchema.Column column, ImageShape image, Delegate getter, Func<long> position)
    {
        if (getter is ValueGetter<MLImage> getImage)
        {
            MLImage current = null!;   // the getter disposes the previous row's image when it fills this one
            return destination =>
            {
                getImage(ref current);
                if (current is null)
                    throw new InvalidOperationException($"image column '{column.Name}' has no image in row {position()} (an empty path?)");
                ImagePixels.Extract(current, image, destination);
            };
        }
        var getVector = getter as ValueGetter<VBuffer<float>>
            ?? throw new InvalidOperationException($"feature column '{column.Name}' is {column.Type}, neither an image nor a vector of Single");
        VBuffer<float> buffer = default;
        return destination =>
        {
            getVector(ref buffer);
            if (buffer.Length != destination.Length)
                throw new InvalidOperationException($"feature column '{column.Name}' held {buffer.Length} values in row {position()}, the model expects {destination.Length}");
            buffer.CopyTo(destination);   // densifies sparse rows
        };
    }
}
