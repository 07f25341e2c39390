using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Models;

/// <summary>
/// ReLU of x times a dropout mask, as one autograd operation computed here on the CPU (<see cref="UniformDropout.AfterRelu"/>
/// in training): the values and gradients of <c>relu_(x · mask)</c> bit for bit (ReLU as ATen's <c>clamp_min(0)</c>;
/// backward, the gradient times the mask where the output is positive or NaN, zero elsewhere). Where ATen multiplied,
/// applied ReLU and kept the float mask for the backward pass (two passes forward, two backward), this makes one pass
/// each way and keeps one byte per element: whether the mask kept it and whether the gradient passes.
/// </summary>
internal static class ReluDropout
{
    /// <summary>relu(x · mask) for a contiguous float32 CPU x and a mask of its shape (<paramref name="scale"/> where kept, 0 elsewhere).</summary>
    public static Tensor Apply(Tensor x, Tensor mask, float scale)
    {
        CpuKernels.CheckOperands("the fused ReLU and dropout", x, null, mask, x.shape);
        return Function.apply(x, mask, scale, true);
    }

    private const byte Kept = 1, Passes = 2;

    /// <summary>Elements per unit of work split between threads.</summary>
    private const long Block = 4096;

    private sealed class Function : CodedKernelFunction<Function>
    {
        public override string Name => "ReluDropout";

        protected override long[] OutputShape(long[] shape) => shape;

        protected override void Forward(Tensor x, Tensor mask, Tensor output, Tensor codes, bool relu)
        {
            long n = x.numel();
            nint input = CpuKernels.Address(x), maskAddress = CpuKernels.Address(mask), outputAddress = CpuKernels.Address(output), codeAddress = CpuKernels.Address(codes);
            CpuKernels.For((n + Block - 1) / Block, Block, (start, count) =>
                ReluDropout.Forward(input, maskAddress, outputAddress, codeAddress, start * Block, Math.Min(n, (start + count) * Block)));
        }

        protected override void Backward(Tensor gradOutput, Tensor codes, Tensor gradInput, float scale)
        {
            long n = codes.numel();
            nint gradAddress = CpuKernels.Address(gradOutput), codeAddress = CpuKernels.Address(codes), inputAddress = CpuKernels.Address(gradInput);
            CpuKernels.For((n + Block - 1) / Block, Block, (start, count) =>
                ReluDropout.Backward(gradAddress, codeAddress, inputAddress, scale, start * Block, Math.Min(n, (start + count) * Block)));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Forward(nint inputAddress, nint maskAddress, nint outputAddress, nint codeAddress, long from, long to)
    {
        float* x = (float*)inputAddress, mask = (float*)maskAddress, output = (float*)outputAddress;
        byte* code = (byte*)codeAddress;
        long i = from;
        if (Sse2.IsSupported)
            for (; i + 4 <= to; i += 4)
            {
                var m = Sse.LoadVector128(mask + i);
                var y = Sse.LoadVector128(x + i) * m;
                y = Vector128.ConditionalSelect(Vector128.LessThan(y, Vector128<float>.Zero), Vector128<float>.Zero, y);   // clamp_min(0)
                Sse.Store(output + i, y);
                var c = (~Vector128.Equals(m, Vector128<float>.Zero).AsInt32() & Vector128.Create((int)Kept))
                    | (~Vector128.LessThanOrEqual(y, Vector128<float>.Zero).AsInt32() & Vector128.Create((int)Passes));
                var packed = Sse2.PackSignedSaturate(c, c);
                *(uint*)(code + i) = Sse2.PackUnsignedSaturate(packed, packed).AsUInt32().ToScalar();
            }
        for (; i < to; i++)
        {
            float m = mask[i];
            float y = x[i] * m;
            if (y < 0) y = 0f;   // clamp_min(0): −0 and NaN stay
            output[i] = y;
            code[i] = (byte)((m != 0 ? Kept : 0) | (!(y <= 0) ? Passes : 0));   // threshold_backward passes > 0 and NaN
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Backward(nint gradAddress, nint codeAddress, nint inputAddress, float scale, long from, long to)
    {
        float* grad = (float*)gradAddress, gradInput = (float*)inputAddress;
        byte* code = (byte*)codeAddress;
        long i = from;
        if (Sse41.IsSupported)
        {
            var scaleV = Vector128.Create(scale);
            for (; i + 4 <= to; i += 4)
            {
                var c = Sse41.ConvertToVector128Int32(code + i);
                var kept = ~Vector128.Equals(c & Vector128.Create((int)Kept), Vector128<int>.Zero);
                var passes = ~Vector128.Equals(c & Vector128.Create((int)Passes), Vector128<int>.Zero);
                // ReLU's backward (zero where it stops the gradient), then the product's: times the mask's factor.
                var g = Sse.LoadVector128(grad + i) & passes.AsSingle();
                Sse.Store(gradInput + i, g * (scaleV & kept.AsSingle()));
            }
        }
        for (; i < to; i++)
        {
            int c = code[i];
            float g = (c & Passes) != 0 ? grad[i] : 0f;
            gradInput[i] = g * ((c & Kept) != 0 ? scale : 0f);
        }
    }
}
