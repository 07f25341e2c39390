using static TorchSharp.torch;

namespace NoProp.Runtime;

/// <summary>
/// Releasing intermediate tensors as soon as the next layer has consumed them. Inside a dispose scope every
/// intermediate of a forward pass otherwise lives until the scope ends (Python frees each one when its last
/// reference goes): a chunk of fused DT convolutions kept ~200 MB alive at once, which stayed in glibc's heap
/// and raised the process's peak RSS. Autograd keeps what the backward pass needs whatever the handles do.
/// </summary>
internal static class TensorLifetime
{
    /// <summary>
    /// <paramref name="next"/>(<paramref name="input"/>), then disposes the input unless the result is the same
    /// object. Only for intermediates this code owns, never for a caller's tensor.
    /// </summary>
    public static Tensor Then(this Tensor input, Func<Tensor, Tensor> next)
    {
        var output = next(input);
        if (!ReferenceEquals(output, input)) input.Dispose();
        return output;
    }
}
