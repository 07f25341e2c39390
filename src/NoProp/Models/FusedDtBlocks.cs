using NoProp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Models;

/// <summary>
/// The T blocks of a NoProp-DT model computed as one: every block reads the same image x, so their image paths
/// become one convolution with T×32 output channels followed by convolutions grouped T ways, and their fully
/// connected layers (image, label and head) become one batched matrix product each (<c>bmm</c> over [T, B, ·]).
/// BatchNorm over T×F channels keeps each block's own statistics, since batch norm works channel by channel.
/// <para>
/// The parameters stay in the blocks: each call gathers them into stacked tensors with differentiable
/// <c>cat</c>/<c>stack</c>, so block t's gradient reaches block t's own parameters and nothing else, every block
/// keeps its own optimiser, and a saved model has the same format whichever form computed it. In training mode the
/// blocks' running statistics are updated exactly as their own BatchNorm modules would.
/// </para>
/// </summary>
public sealed class FusedDtBlocks
{
    private readonly IReadOnlyList<DtBlock> blocks;

    public FusedDtBlocks(IReadOnlyList<DtBlock> blocks)
    {
        if (blocks.Count < 1) throw new NoPropException("fused DT blocks need at least one block");
        this.blocks = blocks;
    }

    public int Count => blocks.Count;

    /// <summary>Image features [T, B, 256] of all T blocks for images x [B, C, H, W] (block t's are row t − 1).</summary>
    public Tensor ImageFeatures(Tensor x)
    {
        using var scope = NewDisposeScope();
        return Encode(blocks.Select(b => b.ImagePath).ToArray(), x, sharedInput: true).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="ImageFeatures(Tensor)"/> computed on chunks of <paramref name="chunk"/> images, the blocks' parameters
    /// stacked once for all of them (inference: without batch statistics the chunks give the whole batch's features).
    /// </summary>
    public Tensor ImageFeatures(Tensor x, long chunk)
    {
        if (blocks[0].training && x.shape[0] > chunk)
            throw new InvalidOperationException("in training mode BatchNorm needs the whole batch: compute the image features in one call");
        using var scope = NewDisposeScope();
        var stacked = StackedEncoders.For(blocks.Select(b => b.ImagePath).ToArray(), sharedInput: true);
        return Chunking.Map(x, chunk, stacked.Encode, resultDimension: 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Class logits [T, B, m] of every block t for the same images x [B, C, H, W] and the block's own noisy labels
    /// z [T, B, d] (block t reads z[t − 1]).
    /// </summary>
    public Tensor Logits(Tensor x, Tensor z)
    {
        if (z.dim() != 3 || z.shape[0] != Count || z.shape[1] != x.shape[0])
            throw new ArgumentException($"z must be [T = {Count}, B = {x.shape[0]}, d], got [{string.Join(", ", z.shape)}]", nameof(z));
        using var scope = NewDisposeScope();
        var image = Encode(blocks.Select(b => b.ImagePath).ToArray(), x, sharedInput: true);
        var label = LabelFeatures(z, x);
        var heads = blocks.Select(b => b.Head).ToArray();
        return Sequence(heads, cat([image, label], 2)).MoveToOuterDisposeScope();
    }

    private Tensor LabelFeatures(Tensor z, Tensor x)
    {
        switch (blocks[0].LabelPath)
        {
            case ResidualLabelMlp:
            {
                var mlps = blocks.Select(b => (ResidualLabelMlp)b.LabelPath).ToArray();
                var h = Sequence(mlps.Select(m => m.Input).ToArray(), z);
                return h.Plus(Sequence(mlps.Select(m => m.Residual).ToArray(), h));
            }
            case ConvImageEncoder:
            {
                // Prototype embeddings: z_t is an image; the T label images become T×C input channels of grouped convolutions.
                long T = Count, B = z.shape[1];
                var shape = x.shape;
                var images = z.transpose(0, 1).reshape(B, T * shape[1], shape[2], shape[3]);
                return Encode(blocks.Select(b => (ConvImageEncoder)b.LabelPath).ToArray(), images, sharedInput: false);
            }
            default:
                throw new NotSupportedException($"no fused form of the label path {blocks[0].LabelPath.GetType().Name}");
        }
    }

    /// <summary>
    /// T conv encoders at once. <paramref name="sharedInput"/>: x [B, C, H, W] is read by all (the first convolution
    /// has T×32 output channels); otherwise x is [B, T×C, H, W], encoder t reading channels tC..(t+1)C − 1.
    /// Returns [T, B, 256].
    /// </summary>
    private static Tensor Encode(ConvImageEncoder[] encoders, Tensor x, bool sharedInput) => StackedEncoders.For(encoders, sharedInput).Encode(x);

    /// <summary>One encoder's features [B, 256] of x [B, C, H, W] through the fused path (T = 1), for inference.</summary>
    internal static Tensor EncodeForInference(ConvImageEncoder encoder, Tensor x)
    {
        using var scope = NewDisposeScope();
        return Encode([encoder], x, sharedInput: true).select(0, 0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The parameters of T conv encoders stacked for one fused computation: built once, they serve any number of
    /// batches or chunks of images (<see cref="ImageFeatures(Tensor, long)"/>), and autograd saves one copy of them.
    /// Its tensors belong to the dispose scope it is built in. The precision and layout are fixed when it is built:
    /// bfloat16 inside a bfloat16 <see cref="ConvolutionPrecision"/> region in eval mode without autograd, and
    /// channels-last without autograd for the shared image (see <see cref="ChannelsLastInference"/>).
    /// </summary>
    private sealed class StackedEncoders : IDisposable
    {
        /// <summary>
        /// The stacked weights of these encoders: built for this call (in the caller's dispose scope), or at inference
        /// (eval mode, no autograd) where an <see cref="InferenceWeightCache"/> is current, the cache's (built once for
        /// the same encoders, layout, precision and kernel switches, and kept out of any dispose scope until the cache
        /// is disposed).
        /// </summary>
        public static StackedEncoders For(ConvImageEncoder[] encoders, bool sharedInput)
        {
            var cache = InferenceWeightCache.Current;
            if (cache is null || is_grad_enabled() || encoders[0].training) return new StackedEncoders(encoders, sharedInput);
            object[] key = [.. encoders, sharedInput, ConvolutionPrecision.For(false), ChannelsLastInference, GroupedConvolution.Enabled,
                            GroupedConvolution.Largest, GroupedLinear.Enabled];
            return cache.GetOrAdd(key, () =>
            {
                using var scope = NewDisposeScope();
                var built = new StackedEncoders(encoders, sharedInput);
                foreach (var tensor in built.Tensors()) tensor.DetachFromDisposeScope();
                return built;
            });
        }

        /// <summary>Every tensor it holds.</summary>
        private IEnumerable<Tensor> Tensors()
        {
            foreach (var conv in new[] { convs.Conv1, convs.Conv2, convs.Conv3 })
            {
                yield return conv.Weight;
                yield return conv.Bias;
                if (conv.Packed is { } packed)
                {
                    yield return packed.Direct;
                    if (packed.Winograd2 is not null) yield return packed.Winograd2;
                    if (packed.Winograd4 is not null) yield return packed.Winograd4;
                }
            }
            foreach (var tensor in new[] { fcWeight, fcBias, fcPacked, fcBiases })
                if (tensor is not null) yield return tensor;
            if (norm is not null)
                foreach (var tensor in norm.Tensors) yield return tensor;
        }

        public void Dispose()
        {
            foreach (var tensor in Tensors()) tensor.Dispose();
        }

        private readonly ConvImageEncoder[] encoders;
        private readonly ScalarType type;
        private readonly bool secondChannel;
        private readonly ConvStackWeights convs;
        private readonly Tensor? fcWeight, fcBias;
        // The FC layers packed for GroupedLinear (inference where the convolution kernel runs), and their biases [T·256].
        private readonly Tensor? fcPacked, fcBiases;
        private readonly BatchNormStack? norm;

        public StackedEncoders(ConvImageEncoder[] encoders, bool sharedInput)
        {
            this.encoders = encoders;
            int T = encoders.Length;
            // Inference in bfloat16 (--inference-precision): the convolutions, ReLU and pooling; FC and BN stay float32.
            type = ConvolutionPrecision.For(encoders[0].training);
            bool channelsLast = ChannelsLastInference && sharedInput && !is_grad_enabled();
            // The kernel written here (GroupedConvolution) serves inference: eval mode without autograd.
            bool kernel = channelsLast && !encoders[0].training;
            var conv1 = FusedConv.Of(encoders.Select(e => e.Conv1), sharedInput ? 1 : T, false, type, kernel);
            // A one-channel image is NCHW and channels-last at once, and oneDNN then returns the first convolution's
            // output NCHW (a reorder, and our copy to channels-last, of its largest activation). With a second, zero
            // channel (and zero weights for it) the input is unambiguously channels-last and so is the output. The
            // kernel needs no such channel.
            secondChannel = channelsLast && conv1.Packed is null && conv1.Weight.shape[1] == 1;
            if (secondChannel) conv1 = conv1 with { Weight = ZeroSecondChannel(conv1.Weight) };
            convs = new ConvStackWeights(conv1,
                FusedConv.Of(encoders.Select(e => e.Conv2), T, channelsLast, type, kernel),
                FusedConv.Of(encoders.Select(e => e.Conv3), T, channelsLast, type, kernel),
                channelsLast, encoders[0].DropoutRate, encoders[0].training);
            var fcs = encoders.Select(e => e.Fc).ToArray();
            if (kernel && type == ScalarType.Float32 && GroupedLinear.Supports(fcs[0].weight!, ConvImageEncoder.Features))
            {
                fcPacked = GroupedLinear.Pack(fcs.Select(l => (Tensor)l.weight!).ToArray(), channels: encoders[0].Conv3.weight!.shape[0]);
                fcBiases = cat(fcs.Select(l => (Tensor)l.bias!).ToArray(), 0);
            }
            else
            {
                (fcWeight, fcBias) = StackLinear(fcs);
            }
            norm = encoders[0].Finish is BatchNorm1d ? new BatchNormStack(encoders.Select(e => (BatchNorm1d)e.Finish).ToArray()) : null;
        }

        /// <summary>The T encoders' features [T, B, 256] of x (see <see cref="FusedDtBlocks.Encode"/>).</summary>
        public Tensor Encode(Tensor x)
        {
            using var scope = NewDisposeScope();
            int T = encoders.Length;
            long B = x.shape[0];
            // The convolutions run on chunks of images whose largest activation (T×32 channels after the first
            // convolution) stays below ActivationBytes: larger buffers are above glibc's largest mmap threshold (32 MB),
            // so every step would map and fault them in afresh. BatchNorm needs the whole batch: FC and BN run after.
            // The chunks are sized for the uncropped images, as before the crop below: each chunk draws its dropout masks
            // in turn, so the same chunks keep a run's random streams (and its trained weights) as they were.
            // bfloat16 activations take half the bytes, so its chunks hold twice the images (never in training).
            long elementBytes = type == ScalarType.Float32 ? sizeof(float) : 2;
            long perImage = convs.Conv1.Weight.shape[0] * (x.shape[2] - 2) * (x.shape[3] - 2) * elementBytes;   // T×32 channels
            long chunk = Math.Max(1, ActivationBytes / perImage);
            var drawSides = ConvImageEncoder.DropoutDrawSides(x.shape[2], x.shape[3]);
            x = ConvImageEncoder.CropToReceptiveField(x);   // the rows and columns that reach the features
            if (type != ScalarType.Float32) x = x.to_type(type);
            if (secondChannel) x = ZeroSecondChannel(x);
            else if (convs.Conv1.Packed is not null && !GroupedConvolution.IsChannelsLast(x)) x = ConvImageEncoder.ChannelsLast(x);   // CIFAR's 3 channels
            // With the FC kernel, conv3's ReLU is applied as it stores its output (inference: no dropout to follow).
            bool lastRelu = fcPacked is not null;
            Tensor Convolve(Tensor images, Tensor? into = null)
            {
                var h = ConvStack(convs, images, drawSides.Pool1, drawSides.Conv2, lastRelu, into);
                return type == ScalarType.Float32 ? h : h.Then(t => t.to_type(ScalarType.Float32));
            }
            Tensor convolved;
            if (B <= chunk)
            {
                convolved = Convolve(x);
            }
            else if (fcPacked is not null)
            {
                // Inference through the kernels: each chunk's features written into its rows of the batch's (no joining copy).
                var (h, w) = (ConvImageEncoder.FeatureSide((int)x.shape[2]), ConvImageEncoder.FeatureSide((int)x.shape[3]));
                convolved = empty([B, h, w, convs.Conv3.Weight.shape[0]], ScalarType.Float32).permute(0, 3, 1, 2);
                for (long start = 0; start < B; start += chunk)
                {
                    using var rows = convolved.narrow(0, start, Math.Min(chunk, B - start));
                    Convolve(x.narrow(0, start, rows.shape[0]), rows);   // returns rows
                }
            }
            else
            {
                var parts = new List<Tensor>();
                for (long start = 0; start < B; start += chunk)
                    parts.Add(Convolve(x.narrow(0, start, Math.Min(chunk, B - start))));
                convolved = cat(parts, 0);
                foreach (var part in parts) part.Dispose();
            }
            Tensor features;
            if (fcPacked is not null)
            {
                // The channels-last features as they lie, ReLU applied.
                features = GroupedLinear.Apply(convolved, fcPacked, fcBiases!);
            }
            else
            {
                // The last ReLU, in place on the joined chunks (dropout's mask is non-negative: the same values and gradients
                // as ReLU before it): autograd keeps its output, which the FC layer keeps anyway, instead of each chunk's too.
                convolved.relu_();
                var flat = convolved.reshape(B, T, -1).transpose(0, 1);   // [T, B, 128·h·w], each block's channels in its own order
                features = ApplyLinear(flat, fcWeight!, fcBias!);
            }
            return (norm is not null ? norm.Apply(features) : functional.relu(features)).MoveToOuterDisposeScope();
        }
    }

    /// <summary>t [N, 1, H, W] as [N, 2, H, W] with channels-last strides, channel 1 being zeros.</summary>
    private static Tensor ZeroSecondChannel(Tensor t)
    {
        using var scope = NewDisposeScope();
        var padded = zeros([t.shape[0], t.shape[2], t.shape[3], 2], t.dtype, t.device);
        padded.select(3, 0).copy_(t.select(1, 0));
        return padded.permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    /// <summary>The largest convolution activation of one chunk of images (see <see cref="Encode"/>); tests lower it.</summary>
    internal static long ActivationBytes { get; set; } = 24L << 20;

    /// <summary>
    /// One fused convolution: the T blocks' weights [T·out, in, k, k] and biases, and its group count; for inference
    /// (<c>kernel</c>), the weights packed for <see cref="GroupedConvolution"/> where it takes them.
    /// </summary>
    private sealed record FusedConv(Tensor Weight, Tensor Bias, long Groups, GroupedConvolution.PackedWeights? Packed = null)
    {
        public static FusedConv Of(IEnumerable<Conv2d> convs, long groups, bool channelsLast, ScalarType type, bool kernel)
        {
            var list = convs.ToArray();
            var weight = cat(list.Select(c => (Tensor)c.weight).ToArray(), 0);
            var bias = cat(list.Select(c => (Tensor)c.bias!).ToArray(), 0);
            if (type != ScalarType.Float32)
            {
                weight = weight.Then(w => w.to_type(type));
                bias = bias.Then(b => b.to_type(type));
            }
            var packed = kernel && GroupedConvolution.Supports(weight, groups) ? GroupedConvolution.Pack(weight, groups) : null;
            return new FusedConv(channelsLast ? weight.Then(ConvImageEncoder.ChannelsLast) : weight, bias, groups, packed);
        }

        public Tensor Apply(Tensor x) => functional.conv2d(x, Weight, Bias, groups: Groups);

        /// <summary>
        /// The convolution of x in <see cref="GroupedConvolution"/>'s kernel, with its 2×2 max-pool and ReLU when asked;
        /// null where the kernel does not take it (no packed weights, autograd on, x not channels-last).
        /// </summary>
        public Tensor? Kernel(Tensor x, bool relu, bool pool, Tensor? into = null) =>
            Packed is not null && !is_grad_enabled() && GroupedConvolution.IsChannelsLast(x) ? GroupedConvolution.Apply(x, Packed, Bias, relu, pool, into) : null;
    }

    /// <summary>The fused conv module of T encoders; <see cref="ChannelsLast"/>: the no-grad channels-last form.</summary>
    private sealed record ConvStackWeights(FusedConv Conv1, FusedConv Conv2, FusedConv Conv3, bool ChannelsLast, double Dropout, bool Training);

    /// <summary>
    /// The three convolutions (with ReLU, pooling and dropout) of T encoders on one chunk of images: [B, T×128, h, w],
    /// all but the last ReLU, which <see cref="StackedEncoders.Encode"/> applies in place once the chunks are joined
    /// (with <paramref name="lastRelu"/>, outside training, here: conv3's kernel applies it as it stores).
    /// Without autograd (inference) the image paths run channels-last (see <see cref="ChannelsLastInference"/>); the
    /// values are the same. Not for the prototype label images (T groups of one input channel each): libtorch 2.10's
    /// channels-last grouped convolution with one input channel per group gave logits 3e-3 away from NCHW's
    /// (FusedDtBlocksTests).
    /// </summary>
    private static Tensor ConvStack(ConvStackWeights stack, Tensor x, (long, long) pool1DrawSides, (long, long) conv2DrawSides, bool lastRelu, Tensor? into = null)
    {
        if (lastRelu && stack.Training) throw new InvalidOperationException("the last ReLU is applied after the chunks in training (dropout, autograd)");
        Tensor ReluDropout(Tensor t, (long, long)? drawSides) => UniformDropout.AfterRelu(t, stack.Dropout, stack.Training, drawSides);
        // Outside training there is no dropout, and the kernel written here (GroupedConvolution) computes ReLU and the
        // pooling as it stores each convolution's output, where it takes the convolution.
        bool inference = !stack.Training;
        // Each intermediate is released as soon as the next layer has read it (TensorLifetime).
        // The masks are drawn for the uncropped activations (UniformDropout), as before the crop.
        // oneDNN returns NCHW from an input that is NCHW and channels-last at once (one channel; StackedEncoders gives
        // the shared image a second channel); the copy to channels-last then costs less than NCHW's 2×2 max-pool alone.
        var h = (inference ? stack.Conv1.Kernel(x, relu: true, pool: true) : null)
                ?? stack.Conv1.Apply(x).Then(t => stack.ChannelsLast && t.stride(1) != 1 ? ConvImageEncoder.ChannelsLast(t) : t)
                    .Then(t => ConvImageEncoder.PoolThenDropout(t, stack.Dropout, stack.Training, relu: true, pool1DrawSides));
        return h.Then(t => (inference ? stack.Conv2.Kernel(t, relu: true, pool: false) : null)
                           ?? stack.Conv2.Apply(t).Then(u => ReluDropout(u, conv2DrawSides)))
            .Then(t => (inference ? stack.Conv3.Kernel(t, relu: lastRelu, pool: true, into) : null)
                       ?? stack.Conv3.Apply(t).Then(u => ConvImageEncoder.PoolThenDropout(u, stack.Dropout, stack.Training, relu: lastRelu, null))
                           .Then(u => into is null ? u : into.copy_(u)));   // otherwise the last ReLU: after the chunks (Encode)
    }

    /// <summary>
    /// Run the no-grad convolutions on channels-last (NHWC-strided) tensors. oneDNN's convolutions work on blocked
    /// layouts; from NCHW every convolution reorders its input and output (a full pass over activations of up to tens
    /// of MB each), from channels-last most of those reorders go, and the 2×2 max-pool runs vectorised over channels:
    /// DT inference (fused features and chain, 1000 images) took 0.8× the time
    /// (BENCHMARKS.md, issue 12). Training keeps NCHW: there channels-last measured no faster, per block or fused
    /// (the backward pass loses what the forward gains). A switch for benchmarks and tests.
    /// </summary>
    internal static bool ChannelsLastInference { get; set; } = true;


    /// <summary>T linear layers on x [T, B, in]: one batched matrix product, [T, B, out].</summary>
    private static Tensor Linear(Linear[] layers, Tensor x)
    {
        var (weight, bias) = StackLinear(layers);
        return ApplyLinear(x, weight, bias);
    }

    /// <summary>T linear layers' weights, transposed, [T, in, out], and biases [T, 1, out].</summary>
    private static (Tensor Weight, Tensor Bias) StackLinear(Linear[] layers)
    {
        var weight = stack(layers.Select(l => (Tensor)l.weight).ToArray(), 0).Then(w => w.transpose(1, 2));   // [T, in, out]
        var bias = stack(layers.Select(l => (Tensor)l.bias!).ToArray(), 0).Then(b => b.unsqueeze(1));          // [T, 1, out]
        return (weight, bias);
    }

    private static Tensor ApplyLinear(Tensor x, Tensor weight, Tensor bias) => x.bmm(weight).PlusInPlace(bias);

    /// <summary>
    /// T BatchNorm1d layers on x [T, B, F] as one batch norm over T×F channels. In training mode the batch statistics
    /// normalise and each block's running mean and variance are updated as its own module would (momentum, unbiased
    /// variance, num_batches_tracked); in eval mode the running statistics normalise.
    /// </summary>
    private static Tensor BatchNorm(BatchNorm1d[] norms, Tensor x) => new BatchNormStack(norms).Apply(x);

    /// <summary>The parameters and running statistics of T BatchNorm1d layers, stacked (see <see cref="BatchNorm"/>).</summary>
    private sealed class BatchNormStack(BatchNorm1d[] norms)
    {
        private readonly Tensor weight = cat(norms.Select(n => (Tensor)n.weight).ToArray(), 0);
        private readonly Tensor bias = cat(norms.Select(n => (Tensor)n.bias!).ToArray(), 0);
        private readonly Tensor runningMean = cat(norms.Select(n => n.running_mean!).ToArray(), 0);
        private readonly Tensor runningVar = cat(norms.Select(n => n.running_var!).ToArray(), 0);

        public IEnumerable<Tensor> Tensors => [weight, bias, runningMean, runningVar];

        public Tensor Apply(Tensor x)
        {
            long T = x.shape[0], B = x.shape[1], F = x.shape[2];
            var first = norms[0];
            bool training = first.training;
            var flat = x.transpose(0, 1).reshape(B, T * F);
            double momentum = first.momentum ?? 0.1;
            if (training && momentum == 0) momentum = 1.0 / (first.num_batches_tracked!.item<long>() + 1);   // TorchSharp's cumulative average
            var y = functional.batch_norm(flat, runningMean, runningVar, weight, bias, training, momentum, first.eps);
            if (training)
            {
                using var _ = no_grad();
                for (int t = 0; t < T; t++)
                {
                    norms[t].running_mean!.copy_(runningMean.narrow(0, t * F, F));
                    norms[t].running_var!.copy_(runningVar.narrow(0, t * F, F));
                    norms[t].num_batches_tracked!.add_(HeldScalars.One, HeldScalars.One);
                }
            }
            return y.view(B, T, F).transpose(0, 1);
        }
    }

    /// <summary>T identical Sequentials of Linear, BatchNorm1d and ReLU layers on x [T, B, in].</summary>
    private static Tensor Sequence(Sequential[] sequences, Tensor x)
    {
        var layers = sequences.Select(s => s.children().ToArray()).ToArray();
        var h = x;
        for (int i = 0; i < layers[0].Length; i++)
        {
            h = layers[0][i] switch
            {
                TorchSharp.Modules.Linear => Linear(layers.Select(l => (TorchSharp.Modules.Linear)l[i]).ToArray(), h),
                TorchSharp.Modules.BatchNorm1d => BatchNorm(layers.Select(l => (BatchNorm1d)l[i]).ToArray(), h),
                TorchSharp.Modules.ReLU => functional.relu(h),
                var other => throw new NotSupportedException($"no fused form of {other.GetType().Name}"),
            };
        }
        return h;
    }
}
