using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Runtime;

/// <summary>
/// The autograd plumbing of an operation on an activation and its dropout mask computed by CPU kernels written here
/// (<c>PoolDropout</c>, <c>ReluDropout</c>): forward(input, mask, scale, relu) writes the float32 output and one byte
/// per output element, the only thing kept for the backward pass, which writes the input's gradient from the output's
/// gradient and those bytes. Tensors are contiguous and on the CPU (the callers check).
/// </summary>
internal abstract class CodedKernelFunction<T> : autograd.SingleTensorFunction<T> where T : CodedKernelFunction<T>, new()
{
    /// <summary>The output's shape for an input of the given shape.</summary>
    protected abstract long[] OutputShape(long[] inputShape);

    /// <summary>Writes <paramref name="output"/> and <paramref name="codes"/> (one byte per output element).</summary>
    protected abstract void Forward(Tensor input, Tensor mask, Tensor output, Tensor codes, bool relu);

    /// <summary>Writes every element of <paramref name="gradInput"/> from the output's gradient and the codes.</summary>
    protected abstract void Backward(Tensor gradOutput, Tensor codes, Tensor gradInput, float scale);

    public sealed override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        CpuKernels.ReleaseReturned();
        var input = (Tensor)vars[0];
        var output = empty(OutputShape(input.shape), ScalarType.Float32);
        var codes = empty(output.shape, ScalarType.Byte);
        Forward(input, (Tensor)vars[1], output, codes, (bool)vars[3]);
        ctx.save_for_backward([codes]);
        // No zero-filled gradient when none reaches the output (backward returns none then): TorchSharp would fill it
        // from a placeholder the caller's dispose scope has already released.
        ctx.set_materialize_grads(false);
        ctx.save_data("scale", (float)vars[2]);
        ctx.save_data("shape", input.shape);
        return output;
    }

    public sealed override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        // Called from libtorch's autograd engine: an exception here could not cross the native frames, so nothing here
        // throws. With create_graph the returned gradient has no graph of its own: a second derivative through these
        // operations would miss the gradient's dependence on the output's gradient (NoProp never asks for one).
        CpuKernels.ReleaseReturned();
        if (gradOutput is null || gradOutput.IsInvalid) return [null!, null!, null!, null!];   // no gradient reached the output
        var codes = ctx.get_saved_variables()[0];
        using var scope = NewDisposeScope();
        var gradInput = empty((long[])ctx.get_data("shape"), ScalarType.Float32);
        Backward(gradOutput.contiguous(), codes, gradInput, (float)ctx.get_data("scale"));
        codes.Dispose();
        // TorchSharp's handle to the incoming gradient sits in the caller's dispose scope: released now, so that
        // libtorch frees the gradient once it is done with it, as for its own nodes.
        gradOutput.Dispose();
        return [CpuKernels.Returned(gradInput), null!, null!, null!];   // input, mask, scale, relu
    }
}
