using Microsoft.ML.Data;
using NoProp.Models;

namespace NoProp.ML.Features;

/// <summary>
/// An <see cref="MLImage"/> as the network's input: resized to the model's H × W as ML.NET's <c>ResizeImages</c> does by
/// default (isotropic, centred crop: scale to cover, cut the overflow equally on both sides; bilinear sampling at pixel
/// centres), then its R, G, B planes (or, for one channel, the BT.601 luma 0.299 R + 0.587 G + 0.114 B) as intensities in
/// [0, 1], channel-major like <c>ExtractPixels(..., scaleImage: 1f / 255)</c>. Alpha is ignored. One function for training
/// and scoring, so a saved model reads a new image file exactly as it read its training images.
/// </summary>
internal static class ImagePixels
{
    public static void Extract(MLImage image, ImageShape target, Span<float> destination)
    {
        if (image.BitsPerPixel != 32)
            throw new InvalidOperationException($"NoProp reads 32-bit images (BGRA or RGBA), got {image.BitsPerPixel} bits per pixel");
        var pixels = image.Pixels;
        int width = image.Width, height = image.Height;
        (int r, int g, int b) = image.PixelFormat switch
        {
            MLPixelFormat.Bgra32 => (2, 1, 0),
            MLPixelFormat.Rgba32 => (0, 1, 2),
            _ => throw new InvalidOperationException($"NoProp cannot read images of pixel format {image.PixelFormat}"),
        };
        int outH = target.Height, outW = target.Width, plane = outH * outW;
        if (destination.Length != target.Size) throw new ArgumentException($"the destination holds {destination.Length} values, not {target.Size}");

        // Isotropic crop: the scale that covers the target, and the centred source window it shows.
        double scale = Math.Max((double)outW / width, (double)outH / height);
        double x0 = (width - outW / scale) / 2, y0 = (height - outH / scale) / 2;
        bool identity = width == outW && height == outH;
        const float ToUnit = 1f / 255;
        for (int ty = 0; ty < outH; ty++)
        {
            for (int tx = 0; tx < outW; tx++)
            {
                float red, green, blue;
                if (identity)
                {
                    int at = (ty * width + tx) * 4;
                    (red, green, blue) = (pixels[at + r], pixels[at + g], pixels[at + b]);
                }
                else
                {
                    double sx = Math.Clamp(x0 + (tx + 0.5) / scale - 0.5, 0, width - 1);
                    double sy = Math.Clamp(y0 + (ty + 0.5) / scale - 0.5, 0, height - 1);
                    int xa = (int)sx, ya = (int)sy;
                    int xb = Math.Min(xa + 1, width - 1), yb = Math.Min(ya + 1, height - 1);
                    float fx = (float)(sx - xa), fy = (float)(sy - ya);
                    int a00 = (ya * width + xa) * 4, a01 = (ya * width + xb) * 4, a10 = (yb * width + xa) * 4, a11 = (yb * width + xb) * 4;
                    (red, green, blue) = (Bilinear(pixels, a00, a01, a10, a11, r, fx, fy), Bilinear(pixels, a00, a01, a10, a11, g, fx, fy),
                        Bilinear(pixels, a00, a01, a10, a11, b, fx, fy));
                }
                int o = ty * outW + tx;
                if (target.Channels == 1)
                {
                    destination[o] = (0.299f * red + 0.587f * green + 0.114f * blue) * ToUnit;
                }
                else
                {
                    destination[o] = red * ToUnit;
                    destination[plane + o] = green * ToUnit;
                    destination[2 * plane + o] = blue * ToUnit;
                }
            }
        }
    }

    private static float Bilinear(ReadOnlySpan<byte> pixels, int a00, int a01, int a10, int a11, int channel, float fx, float fy)
    {
        float top = pixels[a00 + channel] * (1 - fx) + pixels[a01 + channel] * fx;
        float bottom = pixels[a10 + channel] * (1 - fx) + pixels[a11 + channel] * fx;
        return top * (1 - fy) + bottom * fy;
    }
}
