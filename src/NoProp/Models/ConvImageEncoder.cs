using NoProp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Models;

/// <summary>The layer that finishes the 256 features of the paper's conv module (the ML.NET adapter's input standardisation is NoProp.ML.FeatureNormalization).</summary>
public enum EncoderOutputLayer
{
    /// <summary>FC(256) → BatchNorm: the discrete-time blocks (Fig. 6, left).</summary>
    BatchNorm,
    /// <summary>FC(256) → ReLU: the continuous-time model, which has no BatchNorm (Fig. 6, right).</summary>
    Relu,
}

/// <summary>
/// The image path of the paper's blocks (Fig. 6): conv3×3(32) → ReLU → maxpool2 → dropout,
/// conv3×3(64) → ReLU → dropout (no pooling), conv3×3(128) → ReLU → maxpool2 → dropout, flatten → FC(256) → BN or ReLU.
/// Convolutions are unpadded, which reproduces the paper's parameter counts (Table 5 of v2).
/// </summary>
public sealed class ConvImageEncoder : Module<Tensor, Tensor>
{
    public const int Features = 256;

    private readonly Conv2d conv1, conv2, conv3;
    private readonly Linear fc;
    private readonly Module<Tensor, Tensor> finish;

    public ConvImageEncoder(int channels, int height, int width, EncoderOutputLayer outputLayer, double dropout = 0.2)
        : base(nameof(ConvImageEncoder))
    {
        if (!(dropout >= 0 && dropout <= 1)) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "dropout probability must be in [0, 1]");
        FlattenedSize = FlattenedFeatures(height, width);
        DropoutRate = dropout;
        conv1 = Conv2d(channels, 32, 3);
        conv2 = Conv2d(32, 64, 3);
        conv3 = Conv2d(64, 128, 3);
        fc = Linear(FlattenedSize, Features);
        finish = outputLayer == EncoderOutputLayer.BatchNorm ? BatchNorm1d(Features) : ReLU();
        RegisterComponents();
    }

    public long FlattenedSize { get; }

    /// <summary>The dropout probability after each convolution.</summary>
    public double DropoutRate { get; }

    // The layers, for FusedDtBlocks (which computes T encoders as one from their own parameters).
    internal Conv2d Conv1 => conv1;
    internal Conv2d Conv2 => conv2;
    internal Conv2d Conv3 => conv3;
    internal Linear Fc => fc;
    internal Module<Tensor, Tensor> Finish => finish;

    /// <summary>128 × h × w after the three unpadded convolutions and two poolings (2048 for 28×28, 3200 for 32×32).</summary>
    public static long FlattenedFeatures(int height, int width)
    {
        int h = FeatureSide(height), w = FeatureSide(width);
        if (h < 1 || w < 1) throw new NoPropException($"images of {height}×{width} are too small for the paper's conv module (at least 14×14)");
        return 128L * h * w;
    }

    /// <summary>
    /// The top-left part of an image [.., H, W] that reaches the output: the floor of each 2×2 pooling drops the last
    /// row and column of an odd-sized input, and with them everything only they depend on. For 28×28 the second pooling
    /// reads 8 of conv3's 9 rows, which read 10 of conv2's 11, which read 12 of the first pooling's 13, which read 24 of
    /// conv1's 26 rows, which read the image's rows 0–25: the last two rows and columns of an MNIST image never reach
    /// the features. In general 4·s + 10 rows for s = <see cref="FlattenedFeatures"/>' side (30 of 32 for CIFAR).
    /// </summary>
    public static (int Height, int Width) ReceptiveField(int height, int width) => (4 * FeatureSide(height) + 10, 4 * FeatureSide(width) + 10);

    /// <summary>The side of the final feature map for an input side s: conv (−2), pool (÷2), conv, conv (−4), pool (÷2).</summary>
    internal static int FeatureSide(int s) => ((s - 2) / 2 - 2 - 2) / 2;

    /// <summary>
    /// x [N, C, H, W] narrowed to its <see cref="ReceptiveField"/> (a view; x itself when it is all used). The three
    /// convolutions then compute only outputs that reach the features: for 28×28 images 15 %, 17 % and 21 % fewer
    /// positions for conv1, conv2 and conv3 (conv3 holds 65 % of the multiply-adds), forward and backward. The
    /// features are the same: the dropped positions fed only outputs the pooling discarded.
    /// </summary>
    internal static Tensor CropToReceptiveField(Tensor x)
    {
        var (h, w) = ReceptiveField((int)x.shape[2], (int)x.shape[3]);
        return !CropInputs || (h == x.shape[2] && w == x.shape[3]) ? x : x.narrow(2, 0, h).narrow(3, 0, w);
    }

    /// <summary>
    /// Whether inference runs through <see cref="FusedDtBlocks.EncodeForInference"/> (true) or this module's own NCHW
    /// layers (false): a switch for tests, which compare the two, and benchmarks.
    /// </summary>
    internal static bool FastInference { get; set; } = true;

    /// <summary>Whether <see cref="CropToReceptiveField"/> crops (the same results either way): a switch for benchmarks and tests.</summary>
    internal static bool CropInputs { get; set; } = true;

    /// <summary>
    /// The sides of the first two dropped activations (after the first pooling, after conv2) of an uncropped
    /// <paramref name="height"/>×<paramref name="width"/> input: the dropout masks are drawn for these (the third's are
    /// the same either way), so cropping leaves a run's random streams as they were.
    /// </summary>
    internal static ((long, long) Pool1, (long, long) Conv2) DropoutDrawSides(long height, long width)
    {
        long h = (height - 2) / 2, w = (width - 2) / 2;
        return ((h, w), (h - 2, w - 2));
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // Inference (eval mode, no autograd) takes the fused blocks' path with one block: channels-last convolutions,
        // conv1's zero second channel, chunks that stay in cache, bf16 when asked (the same values to float rounding;
        // CT/FM image features, the per-block DT and backprop chains, prototype label images).
        if (FastInference && !training && !is_grad_enabled())
            return FusedDtBlocks.EncodeForInference(this, x).MoveToOuterDisposeScope();
        var (pool1, conv2Sides) = DropoutDrawSides(x.shape[2], x.shape[3]);
        // Inference in bfloat16 (--inference-precision): the convolutions, ReLU and pooling; FC and what follows stay float32.
        var type = ConvolutionPrecision.For(training);
        Tensor Convolve(Conv2d conv, Tensor input) => type == ScalarType.Float32
            ? conv.forward(input)
            : functional.conv2d(input, conv.weight.to_type(type), conv.bias!.to_type(type));
        var image = CropToReceptiveField(x);   // x itself when uncropped: never disposed here
        var h = Convolve(conv1, type == ScalarType.Float32 ? image : image.to_type(type)).Then(t => PoolThenDropout(t, DropoutRate, training, relu: true, pool1))
            .Then(t => Convolve(conv2, t)).Then(t => ReluDropout(t, conv2Sides))
            .Then(t => Convolve(conv3, t)).Then(t => PoolThenDropout(t, DropoutRate, training, relu: true, null));
        if (type != ScalarType.Float32) h = h.Then(t => t.to_type(ScalarType.Float32));
        var output = finish.forward(fc.forward(h.flatten(1)));
        return output.MoveToOuterDisposeScope();
    }

    private Tensor ReluDropout(Tensor h, (long, long)? drawSides) => UniformDropout.AfterRelu(h, DropoutRate, training, drawSides);

    /// <summary>The same tensor [N, C, H, W] with channels-last strides (torch.channels_last): one copy.</summary>
    internal static Tensor ChannelsLast(Tensor t)
    {
        using var scope = NewDisposeScope();   // no handle to the copy outlives the returned view
        return t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// 2×2 max-pooling (stride 2, floor) of conv activations [N, C, H, W]; the ReLU before it in the paper's block is
    /// applied after it (<see cref="UniformDropout.AfterRelu"/>): ReLU is monotone, so the values are the same, and so is
    /// every gradient (the window's first maximum receives it when positive, nothing otherwise), with ReLU on a quarter of
    /// the elements.
    /// <para>
    /// On the CPU, ATen's NCHW max-pool runs at under 1 GB/s (a fifth of a DT training step, measured with perf); its
    /// channels-last kernel is vectorised over channels. NCHW activations are therefore pooled by finding each window's
    /// maximum with the channels-last kernel on a copy (no autograd) and selecting the values at those positions from
    /// the NCHW tensor (forward and backward 2.4× faster than max_pool2d on the fused conv1 output, measured with a
    /// gather; `NoProp.Bench pool`, and `pool-dropout` for the selection below against the gather). The selection
    /// is <c>index_select</c> on the flat tensor, whose backward needs only the indices (int32: half the bytes) and the
    /// input's shape: autograd keeps no copy of the activation (<c>max_pool2d</c> and <c>gather</c> both keep their
    /// whole input, and int64 indices), 160 MB less of the parallel schedule's fused step (BENCHMARKS.md); with more
    /// than <see cref="SelectionMaxThreads"/> threads, a gather.
    /// </para>
    /// <para>
    /// Training with dropout on the CPU no longer comes here: <see cref="PoolThenDropout"/> computes the pooling, ReLU and
    /// dropout as one operation. This path serves inference, autograd outside training (eval-mode gradients), p = 0,
    /// other devices and layouts.
    /// </para>
    /// </summary>
    internal static Tensor MaxPool(Tensor h)
    {
        bool channelsLast = h.stride(1) == 1 && h.shape[1] > 1;
        if (channelsLast || h.device_type != DeviceType.CPU || !h.is_contiguous())
            return functional.max_pool2d(h, 2);
        using var scope = NewDisposeScope();
        long n = h.shape[0], c = h.shape[1], plane = h.shape[2] * h.shape[3];
        bool select = get_num_threads() <= SelectionMaxThreads;
        Tensor index;
        long[] pooledShape;
        using (no_grad())
        {
            // Each temporary is released as soon as it has been read (TensorLifetime), as Python would: fewer holes
            // in glibc's heap between the activations autograd keeps.
            Tensor indices;
            using (var copy = ChannelsLast(h.detach()))
            {
                var (pooled, positions) = functional.max_pool2d_with_indices(copy, new long[] { 2, 2 }, strides: new long[] { 2, 2 });
                pooled.Dispose();
                indices = positions;
            }
            pooledShape = indices.shape;
            index = indices.Then(i => i.contiguous());
            if (select)
            {
                // The window maxima's positions within their planes, made positions in the flat NCHW tensor.
                using var end = HeldScalars.Hold(n * c * plane);
                using var step = HeldScalars.Hold(plane);
                using var planes = arange(HeldScalars.Zero, end, step, ScalarType.Int64, h.device).view(n, c, 1, 1);
                index = index.Then(i => i.PlusInPlace(planes));
                if (h.numel() <= int.MaxValue) index = index.Then(i => i.to_type(ScalarType.Int32));
            }
        }
        var values = select
            ? h.view(-1).index_select(0, index.view(-1))
            : h.flatten(2).gather(2, index.view(n, c, -1));
        return values.view(pooledShape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="MaxPool"/>, then <see cref="UniformDropout.AfterRelu"/> (<paramref name="relu"/>) or
    /// <see cref="UniformDropout.Apply"/>: in training with 0 &lt; p &lt; 1 on a contiguous float32 CPU activation as one
    /// fused operation (<see cref="PoolDropout"/>: the same values, gradients and random draws, one pass each way and one
    /// byte per output kept for the backward pass), otherwise as the two.
    /// </summary>
    internal static Tensor PoolThenDropout(Tensor h, double p, bool training, bool relu, (long, long)? drawSides)
    {
        if (FusedPooling && training && p > 0 && p < 1 && h.device_type == DeviceType.CPU && h.dtype == ScalarType.Float32
            && h.dim() == 4 && h.is_contiguous() && h.numel() <= CpuKernels.MaxElements
            && UniformDropout.CpuMaskFits([h.shape[0], h.shape[1], h.shape[2] / 2, h.shape[3] / 2], drawSides))
        {
            using var scope = NewDisposeScope();
            using var mask = UniformDropout.CpuMask([h.shape[0], h.shape[1], h.shape[2] / 2, h.shape[3] / 2], p, drawSides);
            return PoolDropout.Apply(h, mask, UniformDropout.KeptScale(p), relu).MoveToOuterDisposeScope();
        }
        return MaxPool(h).Then(t => relu ? UniformDropout.AfterRelu(t, p, training, drawSides) : UniformDropout.Apply(t, p, training, drawSides));
    }

    /// <summary>Whether <see cref="PoolThenDropout"/> fuses where it can (the same results either way): a switch for tests and benchmarks.</summary>
    internal static bool FusedPooling { get; set; } = true;

    /// <summary>
    /// Up to this many intra-op threads <see cref="MaxPool"/> selects with <c>index_select</c>, which keeps no copy of
    /// the activation for the backward pass but runs (forward and backward) on one thread; with more, it gathers in
    /// parallel (<c>gather</c>/<c>scatter_add</c>) and autograd keeps the activation. Both give the same values and
    /// gradients. At 1–2 threads the two are equally fast (BENCHMARKS.md); beyond that the serial selection has not been
    /// measured and could cost a many-core step ~30 ms, so the parallel gather stays. A switch for tests too.
    /// </summary>
    internal static int SelectionMaxThreads { get; set; } = 2;
}
