using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>
/// Diagnostics of a trained model beyond its accuracy (the <c>eval</c> flags <c>--per-block</c> and <c>--image-only</c>):
/// <list type="bullet">
/// <item><b>Per block</b> (NoProp-DT and the backprop baseline): the output head p̂_θout applied to z_t after every
/// block t = 1..T of the same inference chain, so the last entry is the model's own prediction.</item>
/// <item><b>Image only</b>: the image path alone, with no denoising chain and no ODE — the class probabilities of the
/// network's first evaluation, with the noisy-label input held at the prior mean z = 0 (and t = 0 for CT/FM).
/// For NoProp-DT and backprop this is softmax(logits of block 1 at z_0 = 0); block 1 of NoProp-DT is trained on
/// pure noise (ᾱ_0 = 0), so it is exactly the classifier that predicts u_y from x alone. For NoProp-CT it is
/// softmax(logits of û_θ(0, x, 0)). For NoProp-FM it is the nearest class embedding to v_θ(0, x, 0), i.e. one
/// Euler step of size 1 from z = 0 (the anchor z̃_1 of Eq. 12). It measures how much of the accuracy the chain
/// adds on top of a single image classifier. The adjoint model has none: its network is a velocity field
/// that is only ever read through the ODE and its classifier.</item>
/// </list>
/// </summary>
public static class ChainDiagnostics
{
    public static bool HasBlocks(INoPropMethod method) => method is IChainInference;

    public static bool HasImageOnly(INoPropMethod method) => method is IImageOnlyReadout;

    /// <summary>Class probabilities [B, m] after each of the T blocks (the list's owner disposes them). Under no_grad, eval mode.</summary>
    public static List<Tensor> PerBlockProbabilities(INoPropMethod method, Tensor x, InferenceOptions options)
    {
        if (method is not IChainInference chain)
            throw new NoPropException($"--per-block applies to models made of blocks ({BlockMethods()}), not to a {method.Config.Method.ToCliName()} model");
        var probabilities = new List<Tensor>();
        try
        {
            using var scope = NewDisposeScope();
            chain.RunChain(x, options, step => probabilities.Add(chain.HeadProbabilities(step.Z).DetachFromDisposeScope())).Dispose();
            return probabilities;
        }
        catch
        {
            foreach (var p in probabilities) p.Dispose();
            throw;
        }
    }

    /// <summary>The image-only ablation's class probabilities [B, m] (see the class summary). Under no_grad, eval mode.</summary>
    public static Tensor ImageOnlyProbabilities(INoPropMethod method, Tensor x) => method is IImageOnlyReadout readout
        ? readout.ImageOnlyProbabilities(x)
        : throw new NoPropException($"--image-only is not defined for an {method.Config.Method.ToCliName()} model (its network is a velocity field read only through the ODE)");

    private static string BlockMethods() => string.Join(", ", MethodRegistry.All.Where(d => d.Structure == MethodStructure.BlockChain).Select(d => d.CliName));
}
