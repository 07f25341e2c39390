using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Models;

/// <summary>
/// The paper block's 2×2 max-pool (stride 2, floor), the ReLU after it (optional) and dropout, as one autograd
/// operation computed here on the CPU: one pass over the activation forward, one backward. The values and gradients
/// are those of <see cref="ConvImageEncoder.MaxPool"/> followed by <see cref="UniformDropout.AfterRelu"/> (or
/// <see cref="UniformDropout.Apply"/> without the ReLU), bit for bit: the window's first maximum in row-major order (a
/// NaN wins, as in ATen's kernels), times the mask, then ReLU as ATen's <c>clamp_min(0)</c>; backward, the gradient
/// times the mask at the maximum's position when ReLU passes it, zero elsewhere.
/// <para>
/// Where ATen made a channels-last copy of the activation for its pooling kernel, found the window maxima, converted
/// their positions, selected the values, multiplied them by the mask and applied ReLU (six passes and int32 positions
/// plus the float mask kept for the backward pass), this reads the activation once and keeps one byte per output: the
/// maximum's place in its window, whether the element was kept and whether ReLU passed it.
/// </para>
/// </summary>
internal static class PoolDropout
{
    /// <summary>
    /// ReLU (when <paramref name="relu"/>) of the 2×2 max-pool of h [N, C, H, W] times <paramref name="mask"/>
    /// [N, C, H/2, W/2] (a dropout mask: <paramref name="scale"/> where kept, 0 elsewhere). h: contiguous float32 on the CPU.
    /// </summary>
    public static Tensor Apply(Tensor h, Tensor mask, float scale, bool relu)
    {
        CpuKernels.CheckOperands("the fused pooling", h, 4, mask, h.dim() == 4 ? [h.shape[0], h.shape[1], h.shape[2] / 2, h.shape[3] / 2] : []);
        return Function.apply(h, mask, scale, relu);
    }

    // The byte kept per output: the maximum's place in its window (dy·2 + dx), whether the mask kept the element, and
    // whether the gradient passes (ReLU's output was positive or NaN; always without ReLU).
    private const byte Kept = 4, Passes = 8;

    private sealed class Function : CodedKernelFunction<Function>
    {
        public override string Name => "PoolDropout";

        protected override long[] OutputShape(long[] s) => [s[0], s[1], s[2] / 2, s[3] / 2];

        protected override void Forward(Tensor h, Tensor mask, Tensor output, Tensor codes, bool relu)
        {
            var geometry = new Geometry((int)h.shape[2], (int)h.shape[3]);
            nint input = CpuKernels.Address(h), maskAddress = CpuKernels.Address(mask), outputAddress = CpuKernels.Address(output), codeAddress = CpuKernels.Address(codes);
            CpuKernels.For(h.shape[0] * h.shape[1], geometry.Size, (start, count) =>
                PoolDropout.Forward(geometry, input, maskAddress, outputAddress, codeAddress, relu, start, count));
        }

        protected override void Backward(Tensor gradOutput, Tensor codes, Tensor gradInput, float scale)
        {
            var geometry = new Geometry((int)gradInput.shape[2], (int)gradInput.shape[3]);
            nint gradAddress = CpuKernels.Address(gradOutput), codeAddress = CpuKernels.Address(codes), inputAddress = CpuKernels.Address(gradInput);
            CpuKernels.For(gradInput.shape[0] * gradInput.shape[1], geometry.Size, (start, count) =>
                PoolDropout.Backward(geometry, gradAddress, codeAddress, inputAddress, scale, start, count));
        }
    }

    /// <summary>One plane's sides, in and out.</summary>
    private readonly record struct Geometry(int Height, int Width)
    {
        public int OutHeight => Height / 2;
        public int OutWidth => Width / 2;
        public int Size => Height * Width;
        public int OutSize => OutHeight * OutWidth;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Forward(Geometry g, nint inputAddress, nint maskAddress, nint outputAddress, nint codeAddress, bool relu, long start, long count)
    {
        // Four outputs at a time where SSE4.1 is there (x64): their windows' eight top and eight bottom values
        // de-interleaved into even and odd columns; the rest one at a time, branch-free as far as the JIT goes.
        int vectorWidth = Sse41.IsSupported ? g.OutWidth / 4 * 4 : 0;
        for (long plane = start; plane < start + count; plane++)
        {
            float* input = (float*)inputAddress + plane * g.Size;
            float* mask = (float*)maskAddress + plane * g.OutSize;
            float* output = (float*)outputAddress + plane * g.OutSize;
            byte* code = (byte*)codeAddress + plane * g.OutSize;
            for (int i = 0; i < g.OutHeight; i++)
            {
                float* top = input + 2 * i * g.Width, bottom = top + g.Width;
                int o = i * g.OutWidth, j = 0;
                for (; j < vectorWidth; j += 4, o += 4)
                {
                    var t0 = Sse.LoadVector128(top + 2 * j);
                    var t1 = Sse.LoadVector128(top + 2 * j + 4);
                    var b0 = Sse.LoadVector128(bottom + 2 * j);
                    var b1 = Sse.LoadVector128(bottom + 2 * j + 4);
                    var max = Sse.Shuffle(t0, t1, 0b10_00_10_00);          // (0, 0): the start
                    var place = Vector128<int>.Zero;
                    Replace(ref max, ref place, Sse.Shuffle(t0, t1, 0b11_01_11_01), 1);
                    Replace(ref max, ref place, Sse.Shuffle(b0, b1, 0b10_00_10_00), 2);
                    Replace(ref max, ref place, Sse.Shuffle(b0, b1, 0b11_01_11_01), 3);
                    var m = Sse.LoadVector128(mask + o);
                    var y = max * m;
                    var passes = Vector128<int>.AllBitsSet;
                    if (relu)
                    {
                        y = Vector128.ConditionalSelect(Vector128.LessThan(y, Vector128<float>.Zero), Vector128<float>.Zero, y);
                        passes = ~Vector128.LessThanOrEqual(y, Vector128<float>.Zero).AsInt32();
                    }
                    Sse.Store(output + o, y);
                    var c = place | (~Vector128.Equals(m, Vector128<float>.Zero).AsInt32() & Vector128.Create((int)Kept))
                        | (passes & Vector128.Create((int)Passes));
                    var bytes = Sse2.PackUnsignedSaturate(Sse2.PackSignedSaturate(c, c), Sse2.PackSignedSaturate(c, c));
                    *(uint*)(code + o) = bytes.AsUInt32().ToScalar();
                }
                for (; j < g.OutWidth; j++, o++)
                {
                    // ATen's order: (0, 0), (0, 1), (1, 0), (1, 1); a later value replaces the maximum when greater or NaN.
                    float max = top[2 * j];
                    int place = 0;
                    float v = top[2 * j + 1];
                    if (v > max || float.IsNaN(v)) { max = v; place = 1; }
                    v = bottom[2 * j];
                    if (v > max || float.IsNaN(v)) { max = v; place = 2; }
                    v = bottom[2 * j + 1];
                    if (v > max || float.IsNaN(v)) { max = v; place = 3; }
                    float m = mask[o];
                    float y = max * m;
                    bool passes = true;
                    if (relu)
                    {
                        if (y < 0) y = 0f;            // clamp_min(0): −0 and NaN stay
                        passes = !(y <= 0);            // threshold_backward: the gradient passes where the output is > 0 or NaN
                    }
                    output[o] = y;
                    code[o] = (byte)(place | (m != 0 ? Kept : 0) | (passes ? Passes : 0));
                }
            }
        }
    }

    /// <summary>Lanes where v is greater than max, or NaN, take v and the place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Replace(ref Vector128<float> max, ref Vector128<int> place, Vector128<float> v, int at)
    {
        var take = Vector128.GreaterThan(v, max) | ~Vector128.Equals(v, v);
        max = Vector128.ConditionalSelect(take, v, max);
        place = Vector128.ConditionalSelect(take.AsInt32(), Vector128.Create(at), place);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Backward(Geometry g, nint gradAddress, nint codeAddress, nint inputAddress, float scale, long start, long count)
    {
        int vectorWidth = Sse41.IsSupported ? g.OutWidth / 4 * 4 : 0;
        var scaleV = Vector128.Create(scale);
        for (long plane = start; plane < start + count; plane++)
        {
            float* grad = (float*)gradAddress + plane * g.OutSize;
            byte* code = (byte*)codeAddress + plane * g.OutSize;
            float* input = (float*)inputAddress + plane * g.Size;
            // The loops below write every element of the windows; the last row or column an odd side drops is zero.
            if (g.Height % 2 != 0 || g.Width % 2 != 0) new Span<float>(input, g.Size).Clear();
            for (int i = 0; i < g.OutHeight; i++)
            {
                float* top = input + 2 * i * g.Width, bottom = top + g.Width;
                int o = i * g.OutWidth, j = 0;
                for (; j < vectorWidth; j += 4, o += 4)
                {
                    var c = Sse41.ConvertToVector128Int32(code + o);
                    var kept = ~Vector128.Equals(c & Vector128.Create((int)Kept), Vector128<int>.Zero);
                    var passes = ~Vector128.Equals(c & Vector128.Create((int)Passes), Vector128<int>.Zero);
                    // The mask's factor, then the selection's backward: an add into zeros (−0 becomes +0, as there).
                    var value = Sse.LoadVector128(grad + o) * (scaleV & kept.AsSingle()) + Vector128<float>.Zero;
                    value &= passes.AsSingle();   // ReLU stopped it: zero
                    var place = c & Vector128.Create(3);
                    var topEven = value & Vector128.Equals(place, Vector128<int>.Zero).AsSingle();
                    var topOdd = value & Vector128.Equals(place, Vector128.Create(1)).AsSingle();
                    var bottomEven = value & Vector128.Equals(place, Vector128.Create(2)).AsSingle();
                    var bottomOdd = value & Vector128.Equals(place, Vector128.Create(3)).AsSingle();
                    Sse.Store(top + 2 * j, Sse.UnpackLow(topEven, topOdd));
                    Sse.Store(top + 2 * j + 4, Sse.UnpackHigh(topEven, topOdd));
                    Sse.Store(bottom + 2 * j, Sse.UnpackLow(bottomEven, bottomOdd));
                    Sse.Store(bottom + 2 * j + 4, Sse.UnpackHigh(bottomEven, bottomOdd));
                }
                for (; j < g.OutWidth; j++, o++)
                {
                    int c = code[o];
                    float value = (c & Passes) == 0 ? 0f : grad[o] * ((c & Kept) != 0 ? scale : 0f) + 0f;
                    top[2 * j] = (c & 3) == 0 ? value : 0f;
                    top[2 * j + 1] = (c & 3) == 1 ? value : 0f;
                    bottom[2 * j] = (c & 3) == 2 ? value : 0f;
                    bottom[2 * j + 1] = (c & 3) == 3 ? value : 0f;
                }
            }
        }
    }
}
