using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Runtime;

/// <summary>
/// The uniform draws of libtorch's default CPU generator, computed here: the same numbers <c>torch.rand</c> would give,
/// from the generator's state, which then advances exactly as <c>rand</c> would have advanced it.
/// <para>
/// libtorch's CPU generator is a 32-bit Mersenne Twister (mt19937), and its float <c>uniform_</c> runs on one thread,
/// element by element: one draw, tempered, its low 24 bits times 2⁻²⁴ (~2.8 ns per element here). A dropout mask needs
/// only whether the draw is below 1 − p, which this class computes eight lanes at a time (the twist, the tempering and
/// the comparison are all lane-wise), writing the final mask (1/(1 − p) or 0) in the same pass, where <c>rand</c>
/// followed by <c>lt_</c> and <c>div_</c> made three passes. The masks, and so every trained model, are bit for bit
/// those of <c>rand</c> (tests compare the two, and the generator's state after them).
/// </para>
/// </summary>
public static class CpuGeneratorDraws
{
    private const int N = 624, M = 397;
    private const uint MatrixA = 0x9908b0df, UpperMask = 0x80000000, LowerMask = 0x7fffffff;

    // The layout of ATen's CPUGeneratorImplState (torch.get_rng_state(), 5056 bytes): the_initial_seed (uint64),
    // left (int32), seeded (int32), next (uint64), state[624] (uint64, each a 32-bit word), then the normal
    // distribution's cached samples, which a uniform draw leaves alone.
    private const int StateBytes = 5056, LeftOffset = 8, NextOffset = 16, WordsOffset = 24;

    private static readonly Lock Gate = new();

    /// <summary>Whether the lane-wise loops run (where 256-bit vectors are accelerated); tests turn it off to check the scalar ones.</summary>
    internal static bool Vectorized { get; set; } = Vector256.IsHardwareAccelerated;

    /// <summary>
    /// Whether this libtorch's CPU generator state has the layout read here (libtorch 2.x's 5,056 bytes); callers fall
    /// back to <c>rand</c> where it has not.
    /// </summary>
    public static bool Supported => supported.Value;

    private static readonly Lazy<bool> supported = new(() =>
    {
        using var state = random.get_rng_state();
        return state.dtype == ScalarType.Byte && state.numel() == StateBytes;
    });

    /// <summary>
    /// Reads and writes the generator's state around the computation: callers serialise with each other here, but a
    /// <c>rand</c> on another thread at the same moment would be drawn again (NoProp draws on one thread per process;
    /// runs drawing on several threads at once were never reproducible).
    /// <para>
    /// A dropout scale mask of the given shape: <paramref name="scale"/> where the uniform draw u of
    /// <c>torch.rand(shape)</c> (in memory order) satisfies u &lt; <paramref name="keep"/>, 0 elsewhere; the default CPU
    /// generator is left as that <c>rand</c> call would leave it. <paramref name="crop"/> (h, w): only the top-left
    /// h × w of every plane of the last two dimensions is returned, [.., h, w], as <c>narrow</c> would cut it (the
    /// generator still advances over the whole shape). At most <see cref="CpuKernels.MaxElements"/> draws.
    /// </para>
    /// </summary>
    public static Tensor KeepMask(ReadOnlySpan<long> shape, float keep, float scale, (long Height, long Width)? crop = null)
    {
        var outputShape = shape.ToArray();
        var plane = new Plane(1, 1, 1, 1);
        if (crop is (long h, long w))
        {
            if (shape.Length < 2) throw new ArgumentException("a cropped mask needs at least two dimensions", nameof(shape));
            long height = shape[^2], width = shape[^1];
            if (h < 0 || w < 0 || h > height || w > width)
                throw new ArgumentOutOfRangeException(nameof(crop), $"cannot crop {h}×{w} from planes of {height}×{width}");
            outputShape[^2] = h;
            outputShape[^1] = w;
            plane = new Plane((int)height, (int)width, (int)h, (int)w);
        }
        long draws = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(shape), $"negative dimension {d}");
            draws *= d;
        }
        var mask = empty(outputShape, ScalarType.Float32, CPU);
        if (draws == 0) return mask;
        if (draws > CpuKernels.MaxElements)
        {
            mask.Dispose();
            throw new ArgumentOutOfRangeException(nameof(shape), $"a mask of {draws} draws is too large to draw at once");
        }
        var output = MemoryMarshal.Cast<byte, float>(mask.bytes);
        lock (Gate)
        {
            using var state = random.get_rng_state();
            var bytes = state.bytes;
            if (bytes.Length != StateBytes)
                throw new NoPropException($"libtorch's CPU generator state has {bytes.Length} bytes, not the {StateBytes} of the mt19937 state this build reads");
            var twister = MersenneTwister.Read(bytes);
            if (plane.Whole) twister.FillKeepMask(output, keep, scale);
            else twister.FillKeepMask(output, (int)draws, plane, keep, scale);
            twister.Write(bytes);
            state.bytes = bytes;
            random.set_rng_state(state);
        }
        return mask;
    }

    /// <summary>Planes of Height × Width draws of which the top-left KeptHeight × KeptWidth are kept.</summary>
    private readonly record struct Plane(int Height, int Width, int KeptHeight, int KeptWidth)
    {
        public bool Whole => Height == KeptHeight && Width == KeptWidth;
    }

    /// <summary>ATen's mt19937 (at::mt19937): the 624 state words, and how many of them are left to read.</summary>
    private sealed class MersenneTwister
    {
        private readonly uint[] words = new uint[N];
        private int next;   // the next word to temper and return
        private int left;   // ATen's counter: the draws left in this block plus one (a twist when it reaches 0)

        public static MersenneTwister Read(ReadOnlySpan<byte> bytes)
        {
            var twister = new MersenneTwister
            {
                left = BinaryPrimitives.ReadInt32LittleEndian(bytes[LeftOffset..]),
                next = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes[NextOffset..])),
            };
            for (int i = 0; i < N; i++)
                twister.words[i] = (uint)BinaryPrimitives.ReadUInt64LittleEndian(bytes[(WordsOffset + 8 * i)..]);
            if (twister.left < 1 || twister.left > N || twister.next < 0 || twister.next + twister.left - 1 > N)
                throw new NoPropException($"unexpected mt19937 state in libtorch's CPU generator (left {twister.left}, next {twister.next})");
            return twister;
        }

        public void Write(Span<byte> bytes)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes[LeftOffset..], left);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes[NextOffset..], (ulong)next);
            for (int i = 0; i < N; i++) BinaryPrimitives.WriteUInt64LittleEndian(bytes[(WordsOffset + 8 * i)..], words[i]);
        }

        /// <summary>output[i] = scale if the i-th uniform draw (low 24 bits of the tempered word, times 2⁻²⁴) is below keep, else 0.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void FillKeepMask(Span<float> output, float keep, float scale)
        {
            int done = 0;
            while (done < output.Length)
            {
                if (left == 1) Twist();   // ATen: if (--left == 0) next_state(), before the draw
                int n = Math.Min(left - 1, output.Length - done);
                Temper(words.AsSpan(next, n), output.Slice(done, n), keep, scale);
                next += n;
                left -= n;
                done += n;
            }
        }

        /// <summary>
        /// As <see cref="FillKeepMask(Span{float}, float, float)"/> over <paramref name="draws"/> draws, keeping in
        /// <paramref name="output"/> only those in the kept part of each plane.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void FillKeepMask(Span<float> output, int draws, Plane plane, float keep, float scale)
        {
            Span<float> block = stackalloc float[N];
            int done = 0, written = 0, row = 0, column = 0;
            while (done < draws)
            {
                if (left == 1) Twist();
                int n = Math.Min(left - 1, draws - done);
                Temper(words.AsSpan(next, n), block[..n], keep, scale);
                next += n;
                left -= n;
                done += n;
                for (int k = 0; k < n;)
                {
                    int run = Math.Min(plane.Width - column, n - k);   // this row's draws in the block
                    if (row < plane.KeptHeight && column < plane.KeptWidth)
                    {
                        int kept = Math.Min(run, plane.KeptWidth - column);
                        block.Slice(k, kept).CopyTo(output.Slice(written, kept));
                        written += kept;
                    }
                    k += run;
                    column += run;
                    if (column == plane.Width)
                    {
                        column = 0;
                        if (++row == plane.Height) row = 0;
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Temper(ReadOnlySpan<uint> source, Span<float> destination, float keep, float scale)
        {
            const float unit = 1f / (1 << 24);
            int i = 0;
            if (Vectorized)
            {
                var keepV = Vector256.Create(keep);
                var scaleV = Vector256.Create(scale);
                var low24 = Vector256.Create(0xFFFFFFu);
                var unitV = Vector256.Create(unit);
                var b = Vector256.Create(0x9d2c5680u);
                var c = Vector256.Create(0xefc60000u);
                ref uint s = ref MemoryMarshal.GetReference(source);
                ref float d = ref MemoryMarshal.GetReference(destination);
                for (; i + Vector256<uint>.Count <= source.Length; i += Vector256<uint>.Count)
                {
                    var y = Vector256.LoadUnsafe(ref s, (nuint)i);
                    y ^= y >>> 11;
                    y ^= (y << 7) & b;
                    y ^= (y << 15) & c;
                    y ^= y >>> 18;
                    var u = Vector256.ConvertToSingle((y & low24).AsInt32()) * unitV;
                    Vector256.ConditionalSelect(Vector256.LessThan(u, keepV), scaleV, Vector256<float>.Zero).StoreUnsafe(ref d, (nuint)i);
                }
            }
            for (; i < source.Length; i++)
            {
                uint y = source[i];
                y ^= y >> 11;
                y ^= (y << 7) & 0x9d2c5680;
                y ^= (y << 15) & 0xefc60000;
                y ^= y >> 18;
                destination[i] = (y & 0xFFFFFF) * unit < keep ? scale : 0f;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint TwistWord(uint u, uint v) => (((u & UpperMask) | (v & LowerMask)) >> 1) ^ ((v & 1) != 0 ? MatrixA : 0);

        private static Vector256<uint> TwistWord(Vector256<uint> u, Vector256<uint> v) =>
            (((u & Vector256.Create(UpperMask)) | (v & Vector256.Create(LowerMask))) >>> 1)
            ^ ((Vector256<uint>.Zero - (v & Vector256<uint>.One)) & Vector256.Create(MatrixA));

        /// <summary>ATen's next_state: the next 624 words; word i reads words i + 1 and i + M (wrapping, new once passed).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Twist()
        {
            var p = words.AsSpan();
            // Without 256-bit vectors (or with Vectorized off) the lane-wise loops do nothing: a width past both bounds.
            int width = Vectorized ? Vector256<uint>.Count : N;
            int i = 0;
            // Words 0 .. N − M − 1 read only words after them, not yet rewritten: lane-wise.
            for (; i + width <= N - M; i += width)
                (Vector256.Create<uint>(p.Slice(i + M, width)) ^ TwistWord(Vector256.Create<uint>(p.Slice(i, width)), Vector256.Create<uint>(p.Slice(i + 1, width))))
                    .CopyTo(p.Slice(i, width));
            for (; i < N - M; i++) p[i] = p[i + M] ^ TwistWord(p[i], p[i + 1]);
            // Words N − M .. N − 2 read word i + M − N, rewritten above (at least N − M = 227 words back), and word i + 1, not yet.
            for (; i + width <= N - 1; i += width)
                (Vector256.Create<uint>(p.Slice(i + M - N, width)) ^ TwistWord(Vector256.Create<uint>(p.Slice(i, width)), Vector256.Create<uint>(p.Slice(i + 1, width))))
                    .CopyTo(p.Slice(i, width));
            for (; i < N - 1; i++) p[i] = p[i + M - N] ^ TwistWord(p[i], p[i + 1]);
            p[N - 1] = p[M - 1] ^ TwistWord(p[N - 1], p[0]);
            left = N + 1;   // ATen sets left = N and then counts this draw
            next = 0;
        }
    }
}
