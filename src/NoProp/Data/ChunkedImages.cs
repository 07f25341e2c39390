namespace NoProp.Data;

/// <summary>
/// Float images (C × H × W intensities each, channel-major) held in fixed-size chunks rather than one array, so that a
/// data set is not limited to the ~2.1·10⁹ values of one .NET array and grows without copying what it already holds.
/// Filled once by appending, then read by index; <see cref="ImageDataset.FromChunks"/> views any subset and order of
/// the images without copying them (a training/validation split is two index lists over one buffer).
/// </summary>
public sealed class ChunkedImages
{
    /// <summary>The default chunk: 16 Mi floats (64 MiB), or one image when an image is larger.</summary>
    public const int DefaultChunkValues = 1 << 24;

    private readonly List<float[]> chunks = [];

    /// <param name="imageSize">Values per image (C × H × W).</param>
    /// <param name="imagesPerChunk">Images per chunk; null: as many as fit in <see cref="DefaultChunkValues"/> (at least one).</param>
    public ChunkedImages(int imageSize, int? imagesPerChunk = null)
    {
        if (imageSize < 1) throw new ArgumentOutOfRangeException(nameof(imageSize), $"an image needs at least one value, got {imageSize}");
        if (imagesPerChunk is < 1) throw new ArgumentOutOfRangeException(nameof(imagesPerChunk), $"a chunk holds at least one image, got {imagesPerChunk}");
        ImageSize = imageSize;
        ImagesPerChunk = imagesPerChunk ?? Math.Max(1, DefaultChunkValues / imageSize);
        if ((long)ImagesPerChunk * imageSize > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(imagesPerChunk), $"{ImagesPerChunk} images of {imageSize} values do not fit in one array");
    }

    public int ImageSize { get; }
    public int ImagesPerChunk { get; }
    public int Count { get; private set; }

    /// <summary>True once <see cref="Seal"/> was called: the images are final.</summary>
    public bool IsSealed { get; private set; }

    /// <summary>The chunks (all full but the last, which is trimmed to its images by <see cref="Seal"/>).</summary>
    public IReadOnlyList<float[]> Chunks => chunks;

    /// <summary>Values allocated in all chunks (equals <see cref="Count"/> × <see cref="ImageSize"/> once sealed).</summary>
    public long AllocatedValues => chunks.Sum(c => (long)c.Length);

    /// <summary>Room for one more image, to be written by the caller; a new chunk is allocated when the last one is full.</summary>
    public Span<float> Append()
    {
        if (IsSealed) throw new InvalidOperationException("the buffer is sealed: no image can be appended");
        int slot = Count % ImagesPerChunk;
        if (slot == 0)
        {
            if (Count == int.MaxValue) throw new InvalidOperationException($"more than {int.MaxValue} images");
            chunks.Add(new float[(long)ImagesPerChunk * ImageSize]);
        }
        Count++;
        return chunks[^1].AsSpan(slot * ImageSize, ImageSize);
    }

    /// <summary>Ends appending: shrinks the last chunk to the images it holds, so that no memory is held for images never appended.</summary>
    public ChunkedImages Seal()
    {
        IsSealed = true;
        int used = Count % ImagesPerChunk;
        if (used != 0 && chunks[^1].Length != used * ImageSize)
        {
            var last = chunks[^1];
            Array.Resize(ref last, used * ImageSize);
            chunks[^1] = last;
        }
        return this;
    }

    /// <summary>Image <paramref name="index"/>'s values.</summary>
    public ReadOnlySpan<float> Image(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"image {index} of {Count}");
        return chunks[index / ImagesPerChunk].AsSpan(index % ImagesPerChunk * ImageSize, ImageSize);
    }
}
