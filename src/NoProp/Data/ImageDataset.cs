using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Data;

/// <summary>Per-channel mean and standard deviation applied to pixel intensities scaled to [0, 1].</summary>
public sealed record Normalization(float[] Mean, float[] Std)
{
    /// <summary>The usual MNIST statistics (training set, one channel).</summary>
    public static Normalization Mnist { get; } = new([0.1307f], [0.3081f]);

    /// <summary>Fashion-MNIST training-set statistics.</summary>
    public static Normalization FashionMnist { get; } = new([0.2860f], [0.3530f]);

    /// <summary>CIFAR-10 training-set statistics (R, G, B).</summary>
    public static Normalization Cifar10 { get; } = new([0.4914f, 0.4822f, 0.4465f], [0.2470f, 0.2435f, 0.2616f]);

    /// <summary>CIFAR-100 training-set statistics (R, G, B).</summary>
    public static Normalization Cifar100 { get; } = new([0.5071f, 0.4865f, 0.4409f], [0.2673f, 0.2564f, 0.2762f]);

    /// <summary>No normalisation: intensities stay in [0, 1].</summary>
    public static Normalization Identity(int channels) =>
        new(Enumerable.Repeat(0f, channels).ToArray(), Enumerable.Repeat(1f, channels).ToArray());

    /// <summary>
    /// Per-channel mean and standard deviation of channel-major images (N × C × H × W flattened). A channel
    /// with no spread gets std 1, so normalising it cannot divide by zero.
    /// </summary>
    public static Normalization Estimate(ReadOnlySpan<float> images, int channels, int pixelsPerChannel)
    {
        if (channels < 1 || pixelsPerChannel < 1) throw new ArgumentOutOfRangeException(nameof(channels));
        long imageSize = (long)channels * pixelsPerChannel;
        if (images.Length == 0 || images.Length % imageSize != 0)
            throw new ArgumentException($"{images.Length} values do not make whole images of {channels}×{pixelsPerChannel}", nameof(images));
        return Estimate(new SpanImages(images, (int)imageSize), images.Length / imageSize, channels, pixelsPerChannel);
    }

    /// <summary>
    /// <see cref="Estimate(ReadOnlySpan{float}, int, int)"/> of the images <paramref name="indices"/> of a chunked buffer, in
    /// that order (the same sums, so the same statistics as for those images copied into one array).
    /// </summary>
    public static Normalization Estimate(ChunkedImages images, IReadOnlyList<int> indices, int channels, int pixelsPerChannel)
    {
        if (channels < 1 || pixelsPerChannel < 1) throw new ArgumentOutOfRangeException(nameof(channels));
        if ((long)channels * pixelsPerChannel != images.ImageSize)
            throw new ArgumentException($"images of {images.ImageSize} values are not {channels}×{pixelsPerChannel}", nameof(images));
        if (indices.Count == 0) throw new ArgumentException("no images to estimate the normalisation from", nameof(indices));
        return Estimate(new ChunkView(images, indices), indices.Count, channels, pixelsPerChannel);
    }

    private interface IImageSequence
    {
        ReadOnlySpan<float> Image(long index);
    }

    private readonly ref struct SpanImages(ReadOnlySpan<float> values, int imageSize) : IImageSequence
    {
        private readonly ReadOnlySpan<float> values = values;
        public ReadOnlySpan<float> Image(long index) => values.Slice((int)(index * imageSize), imageSize);
    }

    private readonly struct ChunkView(ChunkedImages images, IReadOnlyList<int> indices) : IImageSequence
    {
        public ReadOnlySpan<float> Image(long index) => images.Image(indices[(int)index]);
    }

    private static Normalization Estimate<TImages>(TImages images, long count, int channels, int pixelsPerChannel)
        where TImages : IImageSequence, allows ref struct
    {
        var mean = new float[channels];
        var std = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            // Two passes in double: a one-pass sum of squares loses the variance of pixels far from zero.
            double sum = 0;
            for (long i = 0; i < count; i++)
                foreach (var v in images.Image(i).Slice(c * pixelsPerChannel, pixelsPerChannel)) sum += v;
            double m = sum / (count * pixelsPerChannel);
            double squares = 0;
            for (long i = 0; i < count; i++)
                foreach (var v in images.Image(i).Slice(c * pixelsPerChannel, pixelsPerChannel)) squares += (v - m) * (v - m);
            double s = Math.Sqrt(squares / (count * pixelsPerChannel));
            mean[c] = (float)m;
            std[c] = s > 1e-12 ? (float)s : 1f;
        }
        return new Normalization(mean, std);
    }

    /// <summary>Normalises float images [N, C, H, W] in place: (x − mean_c) / std_c. Returns <paramref name="images"/>.</summary>
    public Tensor ApplyInPlace(Tensor images)
    {
        using var scope = NewDisposeScope();
        int channels = Mean.Length;
        if (images.dim() != 4 || images.shape[1] != channels)
            throw new ArgumentException($"expected images [N, {channels}, H, W], got [{string.Join(", ", images.shape)}]", nameof(images));
        var mean = tensor(Mean).view(1, channels, 1, 1).to(images.device);
        var std = tensor(Std).view(1, channels, 1, 1).to(images.device);
        images.sub_(mean).div_(std);
        return images;
    }
}

/// <summary>
/// Images held as bytes (N × C × H × W, channel-major like the CIFAR binary format) with integer labels
/// and class names. Converted to a normalised float tensor once, when training or evaluation starts.
/// Images that arrive as floats (from ML.NET pipelines, say) are held as intensities instead; see
/// <see cref="FromIntensities"/>.
/// </summary>
public sealed class ImageDataset
{
    // Exactly one of the three is set: bytes scaled by 1/255, intensities used as they are, or a view (image indices)
    // of intensities in a chunked buffer shared with other views.
    private readonly byte[]? pixels;
    private readonly float[]? intensities;
    private readonly ChunkedImages? chunks;
    private readonly int[]? chunkIndices;

    public ImageDataset(string name, byte[] pixels, int[] labels, int channels, int height, int width,
        IReadOnlyList<string> classNames, Normalization normalization)
        : this(name, pixels, null, pixels.LongLength, "pixel bytes", labels, channels, height, width, classNames, normalization)
    {
    }

    /// <summary>
    /// Images given as float intensities (N × C × H × W, channel-major), for example pixels already scaled to
    /// [0, 1]. <see cref="ToTensors"/> applies only the normalisation to them, not the 1/255 byte scale.
    /// </summary>
    public static ImageDataset FromIntensities(string name, float[] intensities, int[] labels, int channels, int height, int width,
        IReadOnlyList<string> classNames, Normalization normalization) =>
        new(name, null, intensities, intensities.LongLength, "intensities", labels, channels, height, width, classNames, normalization);

    /// <summary>
    /// The images <paramref name="indices"/> of a chunked buffer of float intensities, in that order, with their
    /// <paramref name="labels"/>: a view, not a copy (several views, a training and a validation split say, share the
    /// buffer). <see cref="ToTensors"/> copies the viewed images into one tensor, which has no array size limit.
    /// </summary>
    public static ImageDataset FromChunks(string name, ChunkedImages images, int[] indices, int[] labels, int channels, int height, int width,
        IReadOnlyList<string> classNames, Normalization normalization)
    {
        if (images.ImageSize != (long)channels * height * width)
            throw new NoPropException($"{name}: images of {images.ImageSize} values are not {channels}×{height}×{width}");
        if (indices.Length != labels.Length)
            throw new NoPropException($"{name}: {indices.Length} images but {labels.Length} labels");
        foreach (var index in indices)
            if ((uint)index >= (uint)images.Count)
                throw new NoPropException($"{name}: image {index} is outside the buffer of {images.Count} images");
        return new(name, null, null, (long)indices.Length * images.ImageSize, "intensities", labels, channels, height, width, classNames, normalization,
            images, indices);
    }

    private ImageDataset(string name, byte[]? pixels, float[]? intensities, long valueCount, string valueName, int[] labels,
        int channels, int height, int width, IReadOnlyList<string> classNames, Normalization normalization,
        ChunkedImages? chunks = null, int[]? chunkIndices = null)
    {
        long imageSize = (long)channels * height * width;
        if (imageSize <= 0) throw new NoPropException($"{name}: invalid image shape {channels}×{height}×{width}");
        if (valueCount != imageSize * labels.Length)
            throw new NoPropException($"{name}: {valueCount} {valueName} do not make {labels.Length} images of {channels}×{height}×{width}");
        if (normalization.Mean.Length != channels || normalization.Std.Length != channels)
            throw new NoPropException($"{name}: normalisation has {normalization.Mean.Length} channels, the images have {channels}");
        foreach (var label in labels)
            if (label < 0 || label >= classNames.Count)
                throw new NoPropException($"{name}: label {label} is outside 0..{classNames.Count - 1}");
        Name = name; this.pixels = pixels; this.intensities = intensities; this.chunks = chunks; this.chunkIndices = chunkIndices; Labels = labels; Channels = channels; Height = height; Width = width;
        ClassNames = classNames; Normalization = normalization;
    }

    public string Name { get; }

    /// <summary>The pixel bytes; only for data sets built from bytes (<see cref="HoldsBytes"/>).</summary>
    public byte[] Pixels => pixels ?? throw new InvalidOperationException($"{Name} holds float intensities, not pixel bytes");

    /// <summary>True when the images are bytes (<see cref="Pixels"/>), false when they are float intensities.</summary>
    public bool HoldsBytes => pixels is not null;

    /// <summary>The chunked buffer this data set views (<see cref="FromChunks"/>), else null.</summary>
    public ChunkedImages? Chunks => chunks;

    /// <summary>The buffer images this data set views, in its order (<see cref="FromChunks"/>), else null.</summary>
    public IReadOnlyList<int>? ChunkIndices => chunkIndices;
    public int[] Labels { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count => Labels.Length;
    public int ImageSize => Channels * Height * Width;
    public IReadOnlyList<string> ClassNames { get; }
    public int ClassCount => ClassNames.Count;
    public Normalization Normalization { get; }

    /// <summary>The images at the given indices, in that order.</summary>
    public ImageDataset Select(IReadOnlyList<int> indices, string? name = null)
    {
        int size = ImageSize;
        var labels = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++) labels[i] = Labels[indices[i]];
        if (chunks is not null)
        {
            var view = new int[indices.Count];
            for (int i = 0; i < indices.Count; i++) view[i] = chunkIndices![indices[i]];
            return FromChunks(name ?? Name, chunks, view, labels, Channels, Height, Width, ClassNames, Normalization);
        }
        if (intensities is not null)
        {
            var selected = new float[(long)indices.Count * size];
            for (int i = 0; i < indices.Count; i++)
                Array.Copy(intensities, (long)indices[i] * size, selected, (long)i * size, size);
            return FromIntensities(name ?? Name, selected, labels, Channels, Height, Width, ClassNames, Normalization);
        }
        var bytes = new byte[(long)indices.Count * size];
        for (int i = 0; i < indices.Count; i++)
            Buffer.BlockCopy(pixels!, indices[i] * size, bytes, i * size, size);
        return new ImageDataset(name ?? Name, bytes, labels, Channels, Height, Width, ClassNames, Normalization);
    }

    /// <summary>The first <paramref name="count"/> images (all when null or larger than the set).</summary>
    public ImageDataset Take(int? count)
    {
        if (count is null || count >= Count) return this;
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        return Select(Enumerable.Range(0, count.Value).ToArray());
    }

    /// <summary>Normalised float images [N, C, H, W] and int64 labels [N] on the given device.</summary>
    private static readonly Scalar ByteScale = 255f.ToScalar();

    public (Tensor Images, Tensor Labels) ToTensors(Device? device = null)
    {
        device ??= CPU;
        using var scope = NewDisposeScope();
        var floats = pixels is not null
            ? tensor(pixels, [Count, Channels, Height, Width], ScalarType.Byte).to_type(ScalarType.Float32).div_(ByteScale)
            : chunks is not null ? GatherChunks()
            : tensor(intensities!, [Count, Channels, Height, Width], ScalarType.Float32);
        Normalization.ApplyInPlace(floats);
        var labels = tensor(Labels.Select(l => (long)l).ToArray(), ScalarType.Int64);
        var x = floats.to(device);
        var y = labels.to(device);
        return (x.MoveToOuterDisposeScope(), y.MoveToOuterDisposeScope());
    }

    /// <summary>The viewed images of the chunked buffer, in view order, as one [N, C, H, W] tensor (copied image by image).</summary>
    private Tensor GatherChunks()
    {
        var floats = empty([Count, Channels, Height, Width], ScalarType.Float32);
        using var values = floats.data<float>();
        long size = ImageSize;
        for (int i = 0; i < chunkIndices!.Length; i++)
            values.CopyFrom(chunks!.Image(chunkIndices[i]), 0, i * size);
        return floats;
    }
}
