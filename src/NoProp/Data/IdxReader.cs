using System.Buffers.Binary;
using System.IO.Compression;
using NoProp.Runtime;

namespace NoProp.Data;

/// <summary>
/// Reads the IDX format used by MNIST and Fashion-MNIST (plain or gzipped): a big-endian magic number
/// 0x00000800 | (type code 0x08 = unsigned byte) &lt;&lt; 8 | rank, then rank big-endian 32-bit sizes, then the
/// data. Every problem is reported with the file name and what is wrong.
/// </summary>
public static class IdxReader
{
    /// <summary>The contents of one IDX file of unsigned bytes.</summary>
    public sealed record IdxArray(int[] Dimensions, byte[] Data);

    /// <summary>
    /// Reads a plain or gzipped IDX file. The data is decompressed straight into one array of the size the header
    /// announces (MNIST's training images: one 47 MB array, where reading the whole file and slicing off the header
    /// made three).
    /// </summary>
    public static IdxArray Read(string path, int expectedRank)
    {
        if (!File.Exists(path)) throw new NoPropException($"{path}: file not found");
        try
        {
            using var file = File.OpenRead(path);
            Span<byte> head = stackalloc byte[2];
            int got = file.ReadAtLeast(head, 2, throwOnEndOfStream: false);
            file.Position = 0;
            if (got == 2 && head[0] == 0x1f && head[1] == 0x8b)
            {
                using var gz = new GZipStream(file, CompressionMode.Decompress);
                return Read(gz, path, expectedRank, knownLength: null);
            }
            return Read(file, path, expectedRank, knownLength: file.Length);
        }
        catch (InvalidDataException e)
        {
            throw new NoPropException($"{path}: corrupt gzip stream ({e.Message})", e);
        }
    }

    /// <summary>Parses the IDX bytes of <paramref name="name"/> held in memory.</summary>
    public static IdxArray Parse(byte[] bytes, string name, int expectedRank)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        return Read(stream, name, expectedRank, knownLength: bytes.Length);
    }

    /// <summary>
    /// The IDX contents of <paramref name="stream"/>: header, then the data read into an array of exactly the announced
    /// size. <paramref name="knownLength"/> (a plain file's size) lets a truncated file be reported before allocating.
    /// </summary>
    private static IdxArray Read(Stream stream, string name, int expectedRank, long? knownLength)
    {
        Span<byte> word = stackalloc byte[4];
        int got = stream.ReadAtLeast(word, 4, throwOnEndOfStream: false);
        if (got < 4) throw new NoPropException($"{name}: truncated IDX file ({got} bytes, no header)");
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(word);
        int rank = (int)(magic & 0xff);
        uint type = (magic >> 8) & 0xff;
        if ((magic >> 16) != 0 || type != 0x08 || rank != expectedRank)
            throw new NoPropException(
                $"{name}: wrong magic number 0x{magic:X8} (expected 0x{0x800 | expectedRank:X8}: unsigned bytes, {expectedRank} dimension{(expectedRank == 1 ? "" : "s")})");
        int headerLength = 4 + 4 * rank;
        var dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            got = stream.ReadAtLeast(word, 4, throwOnEndOfStream: false);
            if (got < 4) throw new NoPropException($"{name}: truncated IDX header ({4 + 4 * i + got} bytes, {headerLength} needed)");
            uint d = BinaryPrimitives.ReadUInt32BigEndian(word);
            if (d == 0 || d > int.MaxValue) throw new NoPropException($"{name}: dimension {i} has invalid size {d}");
            dims[i] = (int)d;
            count *= d;
            if (count > Array.MaxLength)
                throw new NoPropException($"{name}: the header announces more than {Array.MaxLength} bytes of data, more than one array can hold");
        }
        string Truncated(long actual) =>
            $"{name}: truncated: the header announces {string.Join("×", dims)} = {count} bytes of data, the file holds {actual}";
        if (knownLength is long length && length - headerLength < count) throw new NoPropException(Truncated(length - headerLength));
        var data = ReadData(stream, (int)count, knownLength is not null);
        if (data.Length < count) throw new NoPropException(Truncated(data.Length));
        long extra = 0;
        Span<byte> rest = stackalloc byte[4096];
        for (int n; (n = stream.Read(rest)) > 0;) extra += n;
        if (extra > 0)
            throw new NoPropException($"{name}: {extra} unexpected bytes after the {string.Join("×", dims)} data the header announces");
        return new IdxArray(dims, data);
    }

    /// <summary>
    /// Up to <paramref name="count"/> bytes of data. Where the stream's length is unknown (gzip) and the header
    /// announces much, the data is read in segments first, so that a corrupt header cannot make the reader allocate
    /// gigabytes for a small file; a shorter result means the stream ended early.
    /// </summary>
    private static byte[] ReadData(Stream stream, int count, bool lengthKnown)
    {
        const int Segment = 64 << 20;
        if (lengthKnown || count <= Segment)
        {
            var data = new byte[count];
            int read = stream.ReadAtLeast(data, count, throwOnEndOfStream: false);
            return read == count ? data : data[..read];
        }
        var segments = new List<byte[]>();
        long total = 0;
        while (total < count)
        {
            var segment = new byte[(int)Math.Min(Segment, count - total)];
            int read = stream.ReadAtLeast(segment, segment.Length, throwOnEndOfStream: false);
            segments.Add(read == segment.Length ? segment : segment[..read]);
            total += read;
            if (read < segment.Length) break;
        }
        var all = new byte[total];
        long offset = 0;
        foreach (var segment in segments)
        {
            segment.CopyTo(all, offset);
            offset += segment.Length;
        }
        return all;
    }

    /// <summary>Reads an images file (rank 3: count × rows × columns) and its labels file (rank 1).</summary>
    public static (byte[] Pixels, int[] Labels, int Height, int Width) ReadImagesAndLabels(string imagesPath, string labelsPath, int classCount)
    {
        var images = Read(imagesPath, 3);
        var labels = Read(labelsPath, 1);
        if (labels.Dimensions[0] != images.Dimensions[0])
            throw new NoPropException(
                $"{labelsPath}: label count {labels.Dimensions[0]} does not match the image count {images.Dimensions[0]} of {imagesPath}");
        var ints = new int[labels.Data.Length];
        for (int i = 0; i < ints.Length; i++)
        {
            int v = labels.Data[i];
            if (v >= classCount) throw new NoPropException($"{labelsPath}: label {v} at index {i} is outside 0..{classCount - 1}");
            ints[i] = v;
        }
        return (images.Data, ints, images.Dimensions[1], images.Dimensions[2]);
    }
}
