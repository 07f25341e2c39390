using NoProp.Models;
using NoProp.Runtime;
using NoProp.Runtime.Native;
using TorchSharp;
using static NoProp.Tests.TensorAssertions;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Tests.Models;

/// <summary>
/// The inference convolution kernel (GroupedConvolution) against libtorch's convolution, ReLU and max-pool, and the
/// OpenMP team the CPU kernels run on.
/// </summary>
[TestClass]
public sealed class GroupedConvolutionTests
{
    [TestInitialize]
    public void Seed()
    {
        TorchRuntime.Initialize();
        TorchRuntime.Seed(17);
        if (!GroupedConvolution.Accelerated) Assert.Inconclusive("no AVX-512 on this CPU: the kernel does not run here");
        if (!GroupedConvolution.EnabledBy(Environment.GetEnvironmentVariable("NOPROP_CONV_KERNEL")))
            Assert.Inconclusive("NOPROP_CONV_KERNEL=0: the kernel is switched off");
    }

    [TestCleanup]
    public void Restore()
    {
        set_num_threads(threads);
        GroupedConvolution.Largest = GroupedConvolution.Algorithm.Winograd4;
    }

    private readonly int threads = get_num_threads();

    private static Tensor ChannelsLast(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    /// <summary>
    /// libtorch's convolution, then its 2×2 max-pool and ReLU when asked, in float64 (a reviewer's probe found libtorch
    /// 2.10's float32 NCHW convolution giving NaN for 17 or 18 input channels on the Zen 5 machines: the reference does
    /// not rely on that path), returned as float32.
    /// </summary>
    private static Tensor Reference(Tensor x, Tensor weight, Tensor bias, long groups, bool relu, bool pool)
    {
        var y = functional.conv2d(x.to_type(ScalarType.Float64).contiguous(), weight.to_type(ScalarType.Float64), bias.to_type(ScalarType.Float64), groups: groups);
        if (pool) y = functional.max_pool2d(y, 2);
        return (relu ? functional.relu(y) : y).to_type(ScalarType.Float32);
    }

    [TestMethod]
    // Output positions in whole blocks of four (8×8) or with one to three left over (5×7 = 35, 9×9 = 81, 13×13 = 169);
    // one group or several; one input channel (conv1) to 64; 64 or 128 output channels per group (one or two register
    // blocks); pooled outputs of even and odd sides (floor: the last row or column is never computed). Each case runs
    // every largest algorithm: direct; where C_in is a multiple of 16 and the output even or pooled, Winograd's F(2×2,
    // 3×3) (a last block of fewer than four tiles: 9×7 pooled is 3×2 = 6 tiles); and F(4×4, 3×3) where 4×4 tiles fit,
    // F(2×2) on the rest: over all (conv3's pooled 8×8, 8×12, 16×8 pooled; tiles taken across images, 3 × 4 = 12 tiles,
    // 5 × 8 = 40: 16 + 16 + 8) or with the last two columns and rows by F(2×2) (conv2's 10×10, CIFAR conv3's pooled
    // 10×10, 14×8, 6×4 pooled).
    [DataRow(3, 2, 5, 64, 7, 9, false, false)]
    [DataRow(3, 2, 5, 64, 7, 9, true, false)]
    [DataRow(2, 10, 32, 64, 12, 12, true, false)]
    [DataRow(2, 10, 64, 128, 10, 10, false, true)]
    [DataRow(2, 1, 1, 320, 26, 26, true, true)]
    [DataRow(4, 3, 4, 64, 11, 11, false, false)]
    [DataRow(1, 3, 4, 128, 9, 7, true, true)]
    [DataRow(2, 1, 3, 192, 15, 15, true, false)]
    [DataRow(1, 2, 16, 64, 9, 7, true, true)]
    [DataRow(3, 1, 16, 64, 7, 9, false, false)]
    [DataRow(2, 1, 48, 192, 8, 6, false, false)]
    [DataRow(3, 2, 32, 128, 10, 10, true, true)]
    [DataRow(2, 2, 16, 64, 10, 14, true, false)]
    [DataRow(5, 1, 16, 64, 18, 10, false, true)]
    [DataRow(2, 2, 64, 128, 12, 12, true, true)]
    [DataRow(3, 1, 16, 64, 16, 10, false, false)]
    public void ItEqualsLibtorchsConvolutionReluAndPooling(int n, int groups, int inPerGroup, int outPerGroup, int height, int width, bool relu, bool pool)
    {
        using var _ = no_grad();
        var x = ChannelsLast(randn(n, groups * inPerGroup, height, width));
        var weight = randn(groups * outPerGroup, inPerGroup, 3, 3) / Math.Sqrt(9 * inPerGroup);
        var bias = randn(groups * outPerGroup) * 0.1;
        Assert.IsTrue(GroupedConvolution.Supports(weight, groups));
        var packed = GroupedConvolution.Pack(weight, groups);
        Assert.AreEqual(inPerGroup % 16 == 0, packed.Winograd2 is not null && packed.Winograd4 is not null, "Winograd's weights where C_in is a multiple of 16");
        var expected = Reference(x, weight, bias, groups, relu, pool);
        // The tiles must cover what is computed: all outputs, or the pooling windows (floor).
        int rows = pool ? (height - 2) / 2 * 2 : height - 2, columns = pool ? (width - 2) / 2 * 2 : width - 2;
        var taken = new List<string>();
        foreach (var largest in Enum.GetValues<GroupedConvolution.Algorithm>())
        {
            GroupedConvolution.Largest = largest;
            var plan = GroupedConvolution.Plan(packed, height, width, pool);
            AssertCovers(plan, rows, columns, largest, inPerGroup);
            taken.Add(string.Join(" + ", plan.Select(t => $"{t.Algorithm} {t.Rows}×{t.Columns}").DefaultIfEmpty("direct")));
            var actual = GroupedConvolution.Apply(x, packed, bias, relu, pool);
            CollectionAssert.AreEqual(expected.shape, actual.shape);
            Assert.IsTrue(GroupedConvolution.IsChannelsLast(actual), "the output is channels-last");
            double error = (expected - actual).abs().max().item<float>();
            Assert.IsTrue(error < 1e-5 * Math.Max(1, expected.abs().max().item<float>()), $"{taken[^1]}: max |difference| {error}");
            if (relu) Assert.IsTrue(expected.eq(0).any().item<bool>() && actual.ge(0).all().item<bool>(), "ReLU clipped something");
        }
        Console.WriteLine($"tilings: {string.Join("; ", taken.Distinct())}");
    }

    /// <summary>
    /// The plan's tiles cover the rows × columns computed outputs once each, by the largest algorithm up to
    /// <paramref name="largest"/> that fits: F(4×4) over the largest multiple of 4 on each side, F(2×2) over the rest,
    /// direct (no tiles) where C_in is not a multiple of 16 or a side is odd.
    /// </summary>
    private static void AssertCovers(GroupedConvolution.Tiling[] plan, int rows, int columns, GroupedConvolution.Algorithm largest, int inPerGroup)
    {
        bool winograd = largest != GroupedConvolution.Algorithm.Direct && inPerGroup % 16 == 0 && rows % 2 == 0 && columns % 2 == 0;
        Assert.AreEqual(winograd, plan.Length > 0, $"Winograd's algorithms for C_in {inPerGroup}, {rows}×{columns} up to {largest}");
        if (!winograd) return;
        var covered = new int[rows, columns];
        foreach (var t in plan)
        {
            Assert.IsTrue(t.Algorithm <= largest && t.Algorithm != GroupedConvolution.Algorithm.Direct, $"{t}");
            for (int i = 0; i < t.Rows * t.Side; i++)
                for (int j = 0; j < t.Columns * t.Side; j++)
                    covered[t.Row + i, t.Column + j]++;
        }
        Assert.IsTrue(covered.Cast<int>().All(c => c == 1), "every computed output in exactly one tile");
        bool large = largest == GroupedConvolution.Algorithm.Winograd4 && rows >= 4 && columns >= 4;
        int fourByFour = plan.Where(t => t.Algorithm == GroupedConvolution.Algorithm.Winograd4).Sum(t => t.Rows * t.Columns);
        Assert.AreEqual(large ? rows / 4 * (columns / 4) : 0, fourByFour, "F(4×4) tiles wherever they fit");
    }

    [TestMethod]
    public void TheThreadCountDoesNotChangeABit()
    {
        using var _ = no_grad();
        // Direct (10 input channels); F(4×4, 3×3) and F(2×2, 3×3) (14×14: a pooled 6×6 is 4×4 + the rest); F(4×4, 3×3).
        foreach (var (inPerGroup, side) in new[] { (10, 10), (16, 14), (16, 10) })
        {
            var x = ChannelsLast(randn(5, 4 * inPerGroup, side, side));
            var weight = randn(4 * 128, inPerGroup, 3, 3);
            var bias = randn(4 * 128);
            var packed = GroupedConvolution.Pack(weight, 4);
            set_num_threads(1);
            var one = GroupedConvolution.Apply(x, packed, bias, relu: true, pool: true);
            set_num_threads(2);
            var two = GroupedConvolution.Apply(x, packed, bias, relu: true, pool: true);
            AssertSameBits(one, two, $"1 against 2 threads, {inPerGroup} input channels per group, {side}×{side}");
        }
    }

    [TestMethod]
    public void ANanReachesEveryOutputThatReadsIt()
    {
        using var _ = no_grad();
        // Direct; F(2×2) (whose tiles are the pooling windows); F(4×4) over the whole 8×8 output.
        foreach (var (channels, side, largest) in new[] { (2, 8, GroupedConvolution.Algorithm.Winograd4), (16, 8, GroupedConvolution.Algorithm.Winograd2), (16, 10, GroupedConvolution.Algorithm.Winograd4) })
        {
            GroupedConvolution.Largest = largest;
            var plain = randn(1, channels, side, side);
            plain[0, 1, 3, 4].copy_(tensor(float.NaN));
            var x = ChannelsLast(plain);
            var weight = randn(64, channels, 3, 3);
            var bias = zeros(64);
            var packed = GroupedConvolution.Pack(weight, 1);
            var plan = GroupedConvolution.Plan(packed, side, side, pool: true);
            var expected = Reference(x, weight, bias, 1, relu: true, pool: true);
            var actual = GroupedConvolution.Apply(x, packed, bias, relu: true, pool: true);
            Assert.IsTrue(expected.isnan().any().item<bool>(), "the reference propagates it");
            if (plan.All(t => t.Algorithm != GroupedConvolution.Algorithm.Winograd4))
            {
                Assert.AreEqual(channels == 2, plan.Length == 0);
                // Direct, or F(2×2)'s tiles, which are the pooling windows: exactly the outputs that read it.
                Assert.IsTrue(expected.isnan().equal(actual.isnan()).all().item<bool>(), $"NaN where ATen's max-pool and ReLU put it ({channels} channels)");
                continue;
            }
            Assert.AreEqual(1, plan.Length);
            // F(4×4)'s 4×4 output tiles (2×2 pooling windows) each read a 6×6 input tile, and a NaN in it may reach
            // outputs of the tile that do not read it (through the transforms' sums): every output that reads it is NaN,
            // and no output of a tile whose input does not hold it. Row 3, column 4 of the 10×10 input is in the input
            // tiles of the two upper output tiles only: pooled rows 0 and 1.
            Assert.IsFalse(expected.isnan().logical_and(actual.isnan().logical_not()).any().item<bool>(), "NaN wherever ATen's max-pool and ReLU put it");
            Assert.IsFalse(actual.isnan()[.., .., TensorIndex.Slice(2, null), ..].any().item<bool>(), "no NaN in the tiles whose input does not hold it");
        }
    }

    [TestMethod]
    public void TheScratchOfEndedThreadsIsFreed()
    {
        // Winograd's transform buffers are kept per thread between calls; threads come and go (.NET's pool retires
        // idle ones), and what an ended thread held must not stay allocated.
        using var _ = no_grad();
        var x = ChannelsLast(randn(2, 16, 10, 10));
        var packed = GroupedConvolution.Pack(randn(64, 16, 3, 3), 1);
        var bias = zeros(64);
        set_num_threads(1);
        long before = ThreadScratch.LiveBuffers;
        var took = new bool[20];
        var threads = Enumerable.Range(0, 20).Select(i => new Thread(() =>
        {
            using var noGrad = no_grad();
            GroupedConvolution.Apply(x, packed, bias, relu: true, pool: true).Dispose();   // F(4×4): scratch on this thread
            took[i] = ThreadScratch.ThisThreadHasOne;
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        Assert.IsTrue(took.All(t => t), "each thread took a buffer");
        for (int i = 0; i < 3 && ThreadScratch.LiveBuffers > before; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.AreEqual(before, ThreadScratch.LiveBuffers, "the ended threads' buffers are freed");
    }

    [TestMethod]
    public void ItTakesOnlyWhatItComputes()
    {
        Assert.IsTrue(GroupedConvolution.Supports(zeros(128, 32, 3, 3), 2));
        Assert.IsFalse(GroupedConvolution.Supports(zeros(96, 32, 3, 3), 3), "32 output channels per group");
        Assert.IsFalse(GroupedConvolution.Supports(zeros(64, 32, 5, 5), 1), "5×5");
        Assert.IsFalse(GroupedConvolution.Supports(zeros(64, 32, 3, 3, ScalarType.BFloat16), 1), "bfloat16");
        GroupedConvolution.Enabled = false;
        try { Assert.IsFalse(GroupedConvolution.Supports(zeros(64, 32, 3, 3), 1), "switched off"); }
        finally { GroupedConvolution.Enabled = true; }
        // NOPROP_CONV_KERNEL=0 switches it off; unset or anything else leaves it on.
        Assert.IsFalse(GroupedConvolution.EnabledBy("0"));
        Assert.IsTrue(GroupedConvolution.EnabledBy(null) && GroupedConvolution.EnabledBy("1"));
        // NOPROP_KERNEL_THREADS=dotnet puts the kernels on .NET's pool.
        Assert.IsFalse(OpenMpTeam.WantedBy("dotnet"));
        Assert.IsTrue(OpenMpTeam.WantedBy(null) && OpenMpTeam.WantedBy("openmp"));
    }

    [TestMethod]
    public void BadOperandsAreRefusedByName()
    {
        using var _ = no_grad();
        var packed = GroupedConvolution.Pack(randn(64, 4, 3, 3), 1);
        var bias = zeros(64);
        var nchw = randn(2, 4, 6, 6);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedConvolution.Apply(nchw, packed, bias, false)).Message, "channels-last");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedConvolution.Apply(ChannelsLast(randn(2, 3, 6, 6)), packed, bias, false)).Message, "3 channels");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedConvolution.Apply(ChannelsLast(randn(2, 4, 3, 3)), packed, bias, false, pool: true)).Message, "at least 4×4");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => GroupedConvolution.Apply(ChannelsLast(randn(2, 4, 6, 6)), packed, zeros(32), false)).Message, "bias");
    }

    [TestMethod]
    public void TheKernelsRunOnLibtorchsOpenMpTeam()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("libgomp is the Linux libtorch's OpenMP");
        Assert.IsTrue(OpenMpTeam.Available, OpenMpTeam.Status);
        // Every thread of the team calls once with its own index; the caller is thread 0.
        var seen = new int[4];
        int callerThread = Environment.CurrentManagedThreadId, callerIndex = -1, size = 0;
        OpenMpTeam.Run(2, (index, team) =>
        {
            Interlocked.Increment(ref seen[index]);
            size = team;
            if (Environment.CurrentManagedThreadId == callerThread) callerIndex = index;
        });
        Assert.IsTrue(size is 1 or 2, $"team of {size}");
        CollectionAssert.AreEqual(Enumerable.Range(0, 4).Select(i => i < size ? 1 : 0).ToArray(), seen);
        Assert.AreEqual(0, callerIndex);
        // An exception on any thread comes back to the caller, after the team has finished.
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => OpenMpTeam.Run(2, (index, team) =>
        {
            if (index == team - 1) throw new InvalidOperationException($"thrown by thread {index}");
        }));
        StringAssert.StartsWith(error.Message, "thrown by thread");
        // CpuKernels.For hands every item to exactly one call, on the team or on .NET's pool, with the same results.
        using var _ = no_grad();
        var x = ChannelsLast(randn(6, 64, 10, 10));
        var packed = GroupedConvolution.Pack(randn(256, 32, 3, 3), 2);
        var bias = randn(256);
        var outputs = new List<Tensor>();
        foreach (bool team in new[] { true, false })
        {
            CpuKernels.UseOpenMpTeam = team;
            try
            {
                var items = new int[1000];
                CpuKernels.For(items.Length, 1 << 20, (start, count) => { for (long i = start; i < start + count; i++) items[i]++; });
                Assert.IsTrue(items.All(c => c == 1), $"every item once (team {team})");
                outputs.Add(GroupedConvolution.Apply(x, packed, bias, relu: true, pool: true));
            }
            finally { CpuKernels.UseOpenMpTeam = true; }
        }
        AssertSameBits(outputs[0], outputs[1], "the team against .NET's pool");
    }
}
