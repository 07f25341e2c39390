using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>
/// One step of an inference chain, handed to a <see cref="ChainCallback"/> (the k-diffusion callback's
/// {i, sigma, x, denoised}): step <see cref="Step"/> of <see cref="Steps"/> (1-based) has produced
/// <see cref="Z"/> at time <see cref="Time"/> from the prediction <see cref="Denoised"/>.
/// The tensors belong to the chain and are disposed after the callback returns: a callback that keeps one detaches it
/// from the dispose scope (<c>DetachFromDisposeScope()</c>) or reads what it needs.
/// </summary>
/// <param name="Step">1..Steps (NoProp-DT: the block t that just ran).</param>
/// <param name="Steps">The chain's length (NoProp-DT: T).</param>
/// <param name="Time">The step's time in [0, 1] (t/T for a chain of T blocks).</param>
/// <param name="Z">z after the step [B, d].</param>
/// <param name="Denoised">The step's prediction û [B, d] that z moved towards.</param>
public readonly record struct ChainStep(int Step, int Steps, double Time, Tensor Z, Tensor Denoised);

/// <summary>Called after every step of an inference chain (see <see cref="ChainStep"/>).</summary>
public delegate void ChainCallback(ChainStep step);

/// <summary>A method whose inference is a chain of steps a caller can watch (NoProp-DT and the backprop baseline: one step per block).</summary>
public interface IChainInference
{
    /// <summary>
    /// Runs the inference chain on images x and returns the final z [B, d]; <paramref name="callback"/>, when given, sees
    /// every step. Called under no_grad with the network in eval mode.
    /// </summary>
    Tensor RunChain(Tensor x, InferenceOptions options, ChainCallback? callback = null);

    /// <summary>The output head's class probabilities p̂_θout(y | z) [B, m] for any z [B, d] of the chain.</summary>
    Tensor HeadProbabilities(Tensor z);
}

/// <summary>
/// A method whose image path can classify alone (the <c>--image-only</c> ablation of <see cref="ChainDiagnostics"/>):
/// the class probabilities of the network's first evaluation, with the noisy label at the prior mean z = 0 (t = 0).
/// </summary>
public interface IImageOnlyReadout
{
    /// <summary>Class probabilities [B, m] from the image path alone. Under no_grad, eval mode.</summary>
    Tensor ImageOnlyProbabilities(Tensor x);
}

/// <summary>A method that learns values worth reporting beside its accuracy (metrics.json).</summary>
public interface ILearnedExtras
{
    /// <summary>
    /// Name → value (a number or an array of numbers), snake_case names as metrics.json writes them: the backprop
    /// baseline's α_t ("alphas"), NoProp-CT's schedule endpoints ("gamma_max", "gamma_min").
    /// </summary>
    IReadOnlyDictionary<string, object> LearnedExtras();
}

/// <summary>The noise schedule of a model on a grid of times: t, ᾱ(t), SNR(t) = ᾱ/(1 − ᾱ) and γ(t) (ᾱ = sigmoid(−γ)).</summary>
public sealed record NoiseScheduleTable(double[] T, float[] AlphaBar, double[] Snr, float[] Gamma);

/// <summary>A method with a noise schedule over t ∈ [0, 1] that can be tabulated (NoProp-CT's learnable schedule).</summary>
public interface INoiseScheduleMethod
{
    /// <summary>The schedule at <paramref name="points"/> equally spaced times from 0 to 1.</summary>
    NoiseScheduleTable TabulateSchedule(int points = 201);
}
