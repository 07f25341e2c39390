using System.Runtime.InteropServices;
using NoProp.Data;
using NoProp.Runtime;
using SkiaSharp;

namespace NoProp.Cli;

/// <summary>
/// PNG/JPEG decoding and PNG encoding for the CLI with SkiaSharp 3 (the SkiaSharp the charts use). The core library
/// has no image codec of its own: the host passes one with the data set (<see cref="DatasetSpec.ImageDecoder"/>;
/// the CLI passes <see cref="Decoder"/>), because one process can hold only one SkiaSharp, and ML.NET's
/// ImageAnalytics 5.0.1 (used by NoProp.ML) needs SkiaSharp 2.88 while ScottPlot 5.1 needs 3.x.
/// </summary>
public static class SkiaImageCodec
{
    /// <summary>The CLI's image decoder, for <see cref="DatasetSpec.ImageDecoder"/>.</summary>
    public static IImageDecoder Decoder { get; } = new SkiaDecoder();

    /// <summary>Loads the data set a spec names, image folders decoded by <see cref="Decoder"/>.</summary>
    public static DatasetPair Load(DatasetSpec spec) => Datasets.Load(spec with { ImageDecoder = spec.ImageDecoder ?? Decoder });

    private sealed class SkiaDecoder : IImageDecoder
    {
        public DecodedImage Decode(string path) => SkiaImageCodec.Decode(path);
    }

    /// <summary>Decodes an image file to straight (unpremultiplied) RGBA bytes.</summary>
    public static DecodedImage Decode(string path)
    {
        using var decoded = SKBitmap.Decode(path) ?? throw new NoPropException($"{path}: not a readable image (unknown or corrupt format)");
        var info = new SKImageInfo(decoded.Width, decoded.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var rgba = new SKBitmap(info);
        if (!decoded.CopyTo(rgba, SKColorType.Rgba8888) && !decoded.ExtractSubset(rgba, new SKRectI(0, 0, decoded.Width, decoded.Height)))
            throw new NoPropException($"{path}: could not convert the image to RGBA");
        var bytes = new byte[info.BytesSize];
        Marshal.Copy(rgba.GetPixels(), bytes, 0, bytes.Length);
        return new DecodedImage(bytes, decoded.Width, decoded.Height);
    }

    /// <summary>Writes straight RGBA bytes as a PNG file.</summary>
    public static void SavePng(string path, byte[] rgba, int width, int height)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        Marshal.Copy(rgba, 0, bitmap.GetPixels(), info.BytesSize);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(path);
        data.SaveTo(file);
    }
}
