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
        }
        string Truncated(long actual) =>
            $"{name}: truncated: the header announces {string.Join("×", dims)} = {count} bytes of data, the file holds {actual}";
        if (knownLength is long length && length - headerLength < count) throw new NoPropException(Truncated(length - headerLength));
        if (count > Array.MaxLength)
            throw new NoPropException($"{name}: the header announces {string.Join("×", dims)} = {count} bytes of data, more than one array can hold");
        var data = new byte[count];
        int read = stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
        if (read < count) throw new NoPropException(Truncated(read));
        long extra = 0;
        Span<byte> rest = stackalloc byte[4096];
        for (int n; (n = stream.Read(rest)) > 0;) extra += n;
        if (extra > 0)
            throw new NoPropException($"{name}: {extra} unexpected bytes after the {string.Join("×", dims)} data the header announces");
        return new IdxArray(dims, data);
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
