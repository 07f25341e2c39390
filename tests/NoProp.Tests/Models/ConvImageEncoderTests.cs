using NoProp.Models;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Tests.Models;

/// <summary>The conv module's ReLU + 2×2 max-pool (pooled first, through the channels-last kernel's window maxima).</summary>
[TestClass]
public sealed class ConvImageEncoderTests
{
    [TestInitialize]
    public void Seed() { TorchRuntime.Initialize(); TorchRuntime.Seed(11); }

    /// <summary>max_pool2d(relu(h)) and its gradient: the reference PoolRelu must reproduce exactly.</summary>
    private static (Tensor Value, Tensor Gradient) Reference(Tensor h, Tensor upstream)
    {
        var leaf = h.detach().requires_grad_();
        var y = nn.functional.max_pool2d(nn.functional.relu(leaf), 2);
        (y * upstream).sum().backward();
        return (y.detach(), leaf.grad!.clone());
    }

    [TestMethod]
    [DataRow(26, 26, false)]
    [DataRow(9, 9, false)]     // conv3's output: the last row and column are dropped (floor)
    [DataRow(7, 10, false)]
    [DataRow(26, 26, true)]    // a channels-last input (inference) takes the direct kernel
    public void PoolReluEqualsReluThenMaxPoolInValueAndGradient(int height, int width, bool channelsLast)
    {
        // Values on a coarse grid: many ties inside windows, exact zeros and all-negative windows, where the
        // gradient's routing (first maximum, nothing through a non-positive maximum) is what is being checked.
        var h = (randn(3, 5, height, width) * 2).round() / 2;
        if (channelsLast) h = h.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        var upstream = randn(3, 5, height / 2, width / 2);
        var (expected, expectedGradient) = Reference(h, upstream);

        var leaf = h.detach().requires_grad_();
        var y = ConvImageEncoder.PoolRelu(leaf);
        (y * upstream).sum().backward();

        CollectionAssert.AreEqual(expected.shape, y.shape);
        Assert.IsTrue(y.equal(expected).all().item<bool>(), "values differ from max_pool2d(relu(h))");
        Assert.IsTrue(leaf.grad!.equal(expectedGradient).all().item<bool>(),
            $"gradients differ from max_pool2d(relu(h))'s by up to {(leaf.grad! - expectedGradient).abs().max().item<float>()}");
        Assert.IsTrue(expectedGradient.count_nonzero().item<long>() > 0 && (h <= 0).any().item<bool>(), "the data must exercise both cases");
    }

    [TestMethod]
    public void PoolReluWithoutAutogradGivesTheSameValues()
    {
        var h = randn(4, 8, 26, 26);
        using var _ = no_grad();
        Assert.IsTrue(ConvImageEncoder.PoolRelu(h).equal(nn.functional.max_pool2d(nn.functional.relu(h), 2)).all().item<bool>());
    }
}
