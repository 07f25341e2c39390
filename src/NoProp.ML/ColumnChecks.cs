using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using NoProp.Models;

namespace NoProp.ML;

/// <summary>
/// The input checks shared by the estimator and the transformer. Every message names the column, what it must be
/// and what it is, as ML.NET's own components do; schema problems throw <see cref="ArgumentOutOfRangeException"/>
/// (ML.NET's "schema mismatch" exception type).
/// </summary>
internal static class ColumnChecks
{
    public static DataViewSchema.Column FindColumn(DataViewSchema schema, string name, string role)
    {
        var column = schema.GetColumnOrNull(name);
        if (column is null)
            throw new ArgumentOutOfRangeException(nameof(schema), $"{role} column '{name}' not found in the input (columns: {DescribeColumns(schema)})");
        return column.Value;
    }

    /// <summary>The label must be a key with a known count of at least 2: the classes are the key values.</summary>
    public static KeyDataViewType CheckLabel(DataViewSchema schema, string name)
    {
        var column = FindColumn(schema, name, "label");
        if (column.Type is not KeyDataViewType key)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"label column '{name}' must be a key type (Key<UInt32, K>: add mlContext.Transforms.Conversion.MapValueToKey(\"{name}\") before NoProp), got {column.Type}");
        if (key.RawType != typeof(uint))
            throw new ArgumentOutOfRangeException(nameof(schema), $"label column '{name}' must be a key of UInt32, got {column.Type}");
        if (key.Count < 2)
            throw new ArgumentOutOfRangeException(nameof(schema), $"label column '{name}' has {key.Count} class(es); NoProp needs at least 2");
        return key;
    }

    public static void CheckLabel(SchemaShape shape, string name)
    {
        if (!shape.TryFindColumn(name, out var column))
            throw new ArgumentOutOfRangeException(nameof(shape), $"label column '{name}' not found in the input");
        if (!column.IsKey || column.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(nameof(shape),
                $"label column '{name}' must be a key type (Key<UInt32, K>: add mlContext.Transforms.Conversion.MapValueToKey(\"{name}\") before NoProp), got {Describe(column)}");
    }

    private const string FeatureRule = "a known-size vector of Single or an image (MLImage, from LoadImages)";

    /// <summary>The features must be a known-size vector of Single or an image column; returns the column's type.</summary>
    public static DataViewType CheckFeatures(DataViewSchema schema, string name)
    {
        var column = FindColumn(schema, name, "feature");
        if (column.Type is ImageDataViewType) return column.Type;
        if (column.Type is not VectorDataViewType vector || vector.ItemType != NumberDataViewType.Single || !vector.IsKnownSize)
            throw new ArgumentOutOfRangeException(nameof(schema), $"feature column '{name}' must be {FeatureRule}, got {column.Type}");
        return vector;
    }

    public static void CheckFeatures(SchemaShape shape, string name)
    {
        if (!shape.TryFindColumn(name, out var column))
            throw new ArgumentOutOfRangeException(nameof(shape), $"feature column '{name}' not found in the input");
        bool image = column.Kind == SchemaShape.Column.VectorKind.Scalar && column.ItemType is ImageDataViewType;
        bool vector = column.Kind == SchemaShape.Column.VectorKind.Vector && !column.IsKey && column.ItemType == NumberDataViewType.Single;
        if (!image && !vector)
            throw new ArgumentOutOfRangeException(nameof(shape), $"feature column '{name}' must be {FeatureRule}, got {Describe(column)}");
    }

    /// <summary>At scoring: an image column for a model trained on images, else a vector holding exactly one image of the model's shape.</summary>
    public static void CheckFeaturesMatchModel(DataViewSchema schema, string name, ImageShape image, bool imageInput)
    {
        var type = CheckFeatures(schema, name);
        if (imageInput != type is ImageDataViewType)
            throw new ArgumentOutOfRangeException(nameof(schema), imageInput
                ? $"feature column '{name}' must be an image (MLImage, from LoadImages) as in training, got {type}"
                : $"feature column '{name}' must be a vector of {image.Size} Single values (C×H×W = {image}) as in training, got {type}");
        if (type is VectorDataViewType vector && vector.Size != image.Size)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"feature column '{name}' has {vector.Size} values ({vector}), the model expects C×H×W = {image} = {image.Size}");
    }

    /// <summary>
    /// The shape an image column is read as: Channels (1 = grayscale, 3 = RGB; default 3), Height and Width (together; by
    /// default the size of the first training image, <paramref name="firstImageSize"/>).
    /// </summary>
    public static ImageShape ImageInputShape(string name, int? channels, int? height, int? width, Func<(int Height, int Width)> firstImageSize)
    {
        if (channels is not null and not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), $"image column '{name}': Channels must be 1 (grayscale) or 3 (RGB), got {channels}");
        if ((height is null) != (width is null))
            throw new ArgumentOutOfRangeException(nameof(height), $"image column '{name}': set Height and Width together (or neither, to take the first image's size)");
        if (height is < 1 || width is < 1)
            throw new ArgumentOutOfRangeException(nameof(height), $"image column '{name}': Height and Width must be positive, got {height}×{width}");
        var (h, w) = height is int hh && width is int ww ? (hh, ww) : firstImageSize();
        return new ImageShape(channels ?? 3, h, w);
    }

    /// <summary>
    /// The image shape: explicit options first (all three), else the column's dimensions ([C, H, W] from ExtractPixels,
    /// [H, W] as one channel), else a flat vector of n² values as a 1 × n × n image.
    /// </summary>
    public static ImageShape InferImageShape(VectorDataViewType vector, string name, int? channels, int? height, int? width)
    {
        int size = vector.Size;
        if (channels is not null || height is not null || width is not null)
        {
            if (channels is not int c || height is not int h || width is not int w)
                throw new ArgumentOutOfRangeException(nameof(channels), "set Channels, Height and Width together (or none of them, to read the shape from the feature column)");
            if (c < 1 || h < 1 || w < 1)
                throw new ArgumentOutOfRangeException(nameof(channels), $"the image shape {c}×{h}×{w} must be positive");
            if ((long)c * h * w != size)
                throw new ArgumentOutOfRangeException(nameof(channels),
                    $"feature column '{name}' has {size} values ({vector}), but Channels×Height×Width = {c}×{h}×{w} = {(long)c * h * w}");
            return new ImageShape(c, h, w);
        }
        var dims = vector.Dimensions;
        if (dims.Length == 3) return new ImageShape(dims[0], dims[1], dims[2]);
        if (dims.Length == 2) return new ImageShape(1, dims[0], dims[1]);
        int side = (int)Math.Round(Math.Sqrt(size));
        if (dims.Length == 1 && side * side == size) return new ImageShape(1, side, side);
        throw new ArgumentOutOfRangeException(nameof(channels),
            $"cannot tell the image shape of feature column '{name}' ({vector}): set NoPropOptions.Channels, Height and Width");
    }

    private static string Describe(SchemaShape.Column column)
    {
        string item = column.IsKey ? $"Key<{column.ItemType}>" : column.ItemType.ToString() ?? "?";
        return column.Kind switch
        {
            SchemaShape.Column.VectorKind.Scalar => item,
            SchemaShape.Column.VectorKind.VariableVector => $"Vector<{item}> of variable size",
            _ => $"Vector<{item}>",
        };
    }

    private static string DescribeColumns(DataViewSchema schema) =>
        string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name));
}
