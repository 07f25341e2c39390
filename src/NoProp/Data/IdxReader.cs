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

    public static IdxArray Read(string path, int expectedRank)
    {
        if (!File.Exists(path)) throw new NoPropException($"{path}: file not found");
        byte[] bytes;
        try
        {
            bytes = ReadAllBytesMaybeGzip(path);
        }
        catch (InvalidDataException e)
        {
            throw new NoPropException($"{path}: corrupt gzip stream ({e.Message})", e);
        }
        return Parse(bytes, path, expectedRank);
    }

    internal static byte[] ReadAllBytesMaybeGzip(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> head = stackalloc byte[2];
        int got = file.Read(head);
        file.Position = 0;
        bool gzip = got == 2 && head[0] == 0x1f && head[1] == 0x8b;
        if (!gzip) return File.ReadAllBytes(path);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        using var buffer = new MemoryStream(capacity: (int)Math.Min(int.MaxValue / 2, file.Length * 6));
        gz.CopyTo(buffer);
        return buffer.ToArray();
    }

    public static IdxArray Parse(byte[] bytes, string name, int expectedRank)
    {
        if (bytes.Length < 4) throw new NoPropException($"{name}: truncated IDX file ({bytes.Length} bytes, no header)");
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(bytes);
        int rank = (int)(magic & 0xff);
        uint type = (magic >> 8) & 0xff;
        if ((magic >> 16) != 0 || type != 0x08 || rank != expectedRank)
            throw new NoPropException(
                $"{name}: wrong magic number 0x{magic:X8} (expected 0x{0x800 | expectedRank:X8}: unsigned bytes, {expectedRank} dimension{(expectedRank == 1 ? "" : "s")})");
        int headerLength = 4 + 4 * rank;
        if (bytes.Length < headerLength) throw new NoPropException($"{name}: truncated IDX header ({bytes.Length} bytes, {headerLength} needed)");
        var dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            uint d = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(4 + 4 * i));
            if (d == 0 || d > int.MaxValue) throw new NoPropException($"{name}: dimension {i} has invalid size {d}");
            dims[i] = (int)d;
            count *= d;
        }
        long actual = bytes.Length - headerLength;
        if (actual < count)
            throw new NoPropException($"{name}: truncated: the header announces {string.Join("×", dims)} = {count} bytes of data, the file holds {actual}");
        if (actual > count)
            throw new NoPropException($"{name}: {actual - count} unexpected bytes after the {string.Join("×", dims)} data the header announces");
        var data = bytes.AsSpan(headerLength).ToArray();
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
