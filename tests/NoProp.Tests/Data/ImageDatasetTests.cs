using NoProp.Data;
using NoProp.Methods;
using static TorchSharp.torch;

namespace NoProp.Tests.Data;

[TestClass]
public sealed class ImageDatasetTests
{
    [TestMethod]
    public void FloatIntensitiesGetOnlyTheNormalisationNotTheByteScale()
    {
        var bytes = new ImageDataset("bytes", [0, 51, 102, 255], [0, 1], 1, 1, 2, ["a", "b"], new Normalization([0.2f], [0.5f]));
        var floats = ImageDataset.FromIntensities("floats", [0f, 0.2f, 0.4f, 1f], [0, 1], 1, 1, 2, ["a", "b"], new Normalization([0.2f], [0.5f]));
        var (xb, yb) = bytes.ToTensors();
        var (xf, yf) = floats.ToTensors();
        using (xb) using (yb) using (xf) using (yf)
        {
            Assert.IsTrue(xb.CloseTo(xf, 1e-6), "the same images, whether given as bytes or as intensities");
            Assert.AreEqual(-0.4f, xf[0, 0, 0, 0].item<float>(), 1e-6);
            Assert.AreEqual(1.6f, xf[1, 0, 0, 1].item<float>(), 1e-6);
        }
        Assert.IsTrue(bytes.HoldsBytes);
        Assert.IsFalse(floats.HoldsBytes);
        Assert.ThrowsExactly<InvalidOperationException>(() => floats.Pixels);
    }

    [TestMethod]
    public void SelectKeepsFloatIntensitiesAndTheirLabels()
    {
        var floats = ImageDataset.FromIntensities("floats", [0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f], [0, 1, 0], 1, 1, 2, ["a", "b"], Normalization.Identity(1));
        var picked = floats.Select([2, 0]);
        CollectionAssert.AreEqual(new[] { 0, 0 }, picked.Labels);
        var (x, y) = picked.ToTensors();
        using (x) using (y)
            CollectionAssert.AreEqual(new[] { 0.5f, 0.6f, 0.1f, 0.2f }, x.data<float>().ToArray());
        Assert.ThrowsExactly<NoProp.Runtime.NoPropException>(() =>
            ImageDataset.FromIntensities("short", [0.1f], [0], 1, 1, 2, ["a", "b"], Normalization.Identity(1)));
    }

    [TestMethod]
    public void EstimatedStatisticsArePerChannelAndNormaliseToZeroMeanUnitSpread()
    {
        // Two images of 2 channels × 2 pixels; channel 1 is constant, so its spread falls back to 1.
        float[] images = [1, 3, 7, 7, 5, 7, 7, 7];
        var stats = Normalization.Estimate(images, channels: 2, pixelsPerChannel: 2);
        Assert.AreEqual(4f, stats.Mean[0], 1e-6);
        Assert.AreEqual(MathF.Sqrt(5f), stats.Std[0], 1e-5);
        Assert.AreEqual(7f, stats.Mean[1], 1e-6);
        Assert.AreEqual(1f, stats.Std[1]);
        using var x = stats.ApplyInPlace(tensor(images, [2, 2, 1, 2]));
        using var channel0 = x.select(1, 0);
        Assert.AreEqual(0.0, channel0.mean().item<float>(), 1e-6);
        Assert.AreEqual(1.0, channel0.square().mean().sqrt().item<float>(), 1e-5);
    }

    [TestMethod]
    public void ANoiseSourceReplacesTheGenerator()
    {
        int calls = 0;
        var options = new InferenceOptions { NoiseSource = (shape, device) => { calls++; return full(shape, 7f, device: device); } };
        using var noise = options.Noise([3, 4], CPU);
        Assert.AreEqual(1, calls);
        Assert.AreEqual(7f, noise.min().item<float>());
    }
}
