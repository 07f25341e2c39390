using System.Runtime.InteropServices;
using NoProp.Models;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Tests.Models;

/// <summary>The conv module's ReLU + 2×2 max-pool (pooled first, through the channels-last kernel's window maxima, ReLU after).</summary>
[TestClass]
public sealed class ConvImageEncoderTests
{
    [TestInitialize]
    public void Seed() { TorchRuntime.Initialize(); TorchRuntime.Seed(11); }

    /// <summary>max_pool2d(relu(h)) and its gradient: the reference relu(MaxPool(h)) must reproduce exactly.</summary>
    private static (Tensor Value, Tensor Gradient) Reference(Tensor h, Tensor upstream)
    {
        var leaf = h.detach().requires_grad_();
        var y = nn.functional.max_pool2d(nn.functional.relu(leaf), 2);
        (y * upstream).sum().backward();
        return (y.detach(), leaf.grad!.clone());
    }

    [TestMethod]
    [DataRow(26, 26, false, true)]
    [DataRow(9, 9, false, true)]     // conv3's output: the last row and column are dropped (floor)
    [DataRow(7, 10, false, true)]
    [DataRow(26, 26, false, false)]  // more threads than SelectionMaxThreads: a gather
    [DataRow(9, 9, false, false)]
    [DataRow(7, 10, false, false)]
    [DataRow(26, 26, true, true)]    // a channels-last input (inference) takes the direct kernel
    public void MaxPoolThenReluEqualsReluThenMaxPoolInValueAndGradient(int height, int width, bool channelsLast, bool select)
    {
        int threads = ConvImageEncoder.SelectionMaxThreads;
        ConvImageEncoder.SelectionMaxThreads = select ? int.MaxValue : 0;
        try { CheckMaxPool(height, width, channelsLast); }
        finally { ConvImageEncoder.SelectionMaxThreads = threads; }
    }

    private static void CheckMaxPool(int height, int width, bool channelsLast)
    {
        // Values on a coarse grid: many ties inside windows, exact zeros and all-negative windows, where the
        // gradient's routing (first maximum, nothing through a non-positive maximum) is what is being checked.
        var h = (randn(3, 5, height, width) * 2).round() / 2;
        if (channelsLast) h = h.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        var upstream = randn(3, 5, height / 2, width / 2);
        var (expected, expectedGradient) = Reference(h, upstream);

        var leaf = h.detach().requires_grad_();
        var y = nn.functional.relu(ConvImageEncoder.MaxPool(leaf));
        (y * upstream).sum().backward();

        CollectionAssert.AreEqual(expected.shape, y.shape);
        Assert.IsTrue(y.equal(expected).all().item<bool>(), "values differ from max_pool2d(relu(h))");
        Assert.IsTrue(leaf.grad!.equal(expectedGradient).all().item<bool>(),
            $"gradients differ from max_pool2d(relu(h))'s by up to {(leaf.grad! - expectedGradient).abs().max().item<float>()}");
        Assert.IsTrue(expectedGradient.count_nonzero().item<long>() > 0 && (h <= 0).any().item<bool>(), "the data must exercise both cases");
    }

    [TestMethod]
    public void MaxPoolWithoutAutogradGivesTheSameValues()
    {
        var h = randn(4, 8, 26, 26);
        using var _ = no_grad();
        Assert.IsTrue(ConvImageEncoder.MaxPool(h).equal(nn.functional.max_pool2d(h, 2)).all().item<bool>());
    }

    /// <summary>
    /// Autograd keeps only the window maxima's positions, not the pooled activation: changing the activation in place
    /// after the pooling leaves the backward pass valid and its gradient unchanged (max_pool2d and gather keep their
    /// input, and autograd then refuses the backward pass).
    /// </summary>
    [TestMethod]
    public void TheBackwardPassNeedsNotThePooledActivation()
    {
        int threads = ConvImageEncoder.SelectionMaxThreads;
        ConvImageEncoder.SelectionMaxThreads = int.MaxValue;
        try { CheckNoActivationKept(); }
        finally { ConvImageEncoder.SelectionMaxThreads = threads; }
    }

    private static void CheckNoActivationKept()
    {
        var leaf = randn(3, 6, 10, 10).requires_grad_();
        var upstream = randn(3, 6, 5, 5);
        var (_, expected) = Reference(leaf, upstream);
        var h = leaf * 1;   // not a leaf: it may be changed in place
        var y = nn.functional.relu(ConvImageEncoder.MaxPool(h));
        using (no_grad()) h.mul_(-3).add_(7);
        (y * upstream).sum().backward();
        Assert.IsTrue(leaf.grad!.equal(expected).all().item<bool>());

        var kept = leaf * 1;
        var pooled = nn.functional.max_pool2d(kept, 2);
        using (no_grad()) kept.add_(1);   // the same check fails where the input is kept
        Assert.ThrowsExactly<ExternalException>(() => pooled.sum().backward());
    }

    /// <summary>The paper's block as usually written: every convolution over the whole image, masks drawn for each activation.</summary>
    private static Tensor Uncropped(ConvImageEncoder e, Tensor x, bool training)
    {
        Tensor Drop(Tensor t) => UniformDropout.Apply(t, e.DropoutRate, training);
        var h = Drop(nn.functional.max_pool2d(nn.functional.relu(e.Conv1.forward(x)), 2));
        h = Drop(nn.functional.relu(e.Conv2.forward(h)));
        h = Drop(nn.functional.max_pool2d(nn.functional.relu(e.Conv3.forward(h)), 2));
        return e.Finish.forward(e.Fc.forward(h.flatten(1)));
    }

    private static (Tensor Output, Tensor[] Gradients) WithGradients(ConvImageEncoder e, Func<Tensor> forward, Tensor upstream)
    {
        e.zero_grad();
        var y = forward();
        (y * upstream).sum().backward();
        return (y.detach(), e.parameters().Select(p => p.grad!.clone()).ToArray());
    }

    /// <summary>
    /// The encoder convolves only the rows and columns that reach its features (ReceptiveField): the features and every
    /// parameter's gradient are those of the uncropped block, in training mode too (the dropout masks are drawn for the
    /// uncropped activations, so the random streams are the same), and the pixels outside the field change nothing.
    /// </summary>
    [TestMethod]
    [DataRow(28, 28, 1, 26, 26)]
    [DataRow(32, 32, 3, 30, 30)]
    [DataRow(29, 31, 1, 26, 30)]
    public void CroppingToTheReceptiveFieldChangesNoFeatureNorGradient(int height, int width, int channels, int fieldHeight, int fieldWidth)
    {
        Assert.AreEqual((fieldHeight, fieldWidth), ConvImageEncoder.ReceptiveField(height, width));
        var encoder = new ConvImageEncoder(channels, height, width, EncoderOutputLayer.BatchNorm);
        var x = randn(6, channels, height, width);
        var upstream = randn(6, ConvImageEncoder.Features);
        foreach (bool training in new[] { true, false })
        {
            encoder.train(training);
            TorchRuntime.Seed(3);
            var (cropped, croppedGradients) = WithGradients(encoder, () => encoder.forward(x), upstream);
            TorchRuntime.Seed(3);
            var (full, fullGradients) = WithGradients(encoder, () => Uncropped(encoder, x, training), upstream);
            Assert.IsTrue((cropped - full).abs().max().item<float>() < 1e-5f, $"training={training}: features differ");
            for (int i = 0; i < fullGradients.Length; i++)
            {
                float scale = Math.Max(1f, fullGradients[i].abs().max().item<float>());
                Assert.IsTrue((croppedGradients[i] - fullGradients[i]).abs().max().item<float>() < 1e-5f * scale, $"training={training}: gradient {i} differs");
            }
            Assert.IsTrue(fullGradients.All(g => g.abs().sum().item<float>() > 0));
        }

        // Outside the field: no effect at all.
        encoder.eval();
        var changed = x.clone();
        changed.narrow(2, fieldHeight, height - fieldHeight).fill_(100);
        changed.narrow(3, fieldWidth, width - fieldWidth).fill_(-100);
        using (no_grad())
            Assert.IsTrue(encoder.forward(changed).equal(encoder.forward(x)).all().item<bool>());
        // ... and inside it, one pixel does.
        changed = x.clone();
        changed[0, 0, fieldHeight - 1, fieldWidth - 1] = 100;
        using (no_grad())
            Assert.IsFalse(encoder.forward(changed).equal(encoder.forward(x)).all().item<bool>());
    }
    [TestMethod]
    [DataRow(1, 28, 28, EncoderOutputLayer.Relu)]        // CT/FM on MNIST: conv1 gets the zero second channel
    [DataRow(1, 28, 28, EncoderOutputLayer.BatchNorm)]   // a DT block alone, or a prototype label image
    [DataRow(3, 32, 32, EncoderOutputLayer.Relu)]        // CIFAR: three channels are channels-last already
    [DataRow(1, 31, 29, EncoderOutputLayer.Relu)]        // odd sides: the crop to the receptive field
    public void InferenceThroughTheFusedPathEqualsTheModulesOwnLayers(int channels, int height, int width, EncoderOutputLayer output)
    {
        var encoder = new ConvImageEncoder(channels, height, width, output);
        var x = randn(300, channels, height, width);   // more than one chunk of the fused path (T = 1: 280 MNIST images)
        if (output == EncoderOutputLayer.BatchNorm)
            using (no_grad()) encoder.forward(x * 1.5 + 0.2).Dispose();   // running statistics off 0/1
        encoder.eval();
        using var _ = no_grad();
        var fast = encoder.forward(x);
        ConvImageEncoder.FastInference = false;
        Tensor own;
        try { own = encoder.forward(x); }
        finally { ConvImageEncoder.FastInference = true; }
        CollectionAssert.AreEqual(own.shape, fast.shape);
        float difference = (fast - own).abs().max().item<float>();
        Assert.IsTrue(difference <= 1e-5, $"the fused path differs from the module's own layers by {difference}");
        Assert.AreEqual(1L, fast.stride(1), "features [B, 256] come out contiguous");
    }
}
