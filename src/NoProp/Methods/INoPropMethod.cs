using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>
/// What the shared training loop needs from a method: a training step on one minibatch and class
/// probabilities for a batch of images. Methods that train their parts one after another (NoProp-DT
/// trains block 1 on every minibatch, then block 2, ... as in Algorithm 1) expose each part as a stage;
/// the loop runs every stage over the whole (shuffled) training split in each epoch.
/// </summary>
public interface INoPropMethod : IDisposable
{
    ModelConfig Config { get; }

    /// <summary>The module holding every parameter and buffer of the model (saved and loaded as one).</summary>
    nn.Module Network { get; }

    /// <summary>The optimizers whose state a checkpoint must keep, in a fixed order.</summary>
    IReadOnlyList<OptimizerHelper> Optimizers { get; }

    int StagesPerEpoch { get; }

    string DescribeStage(int stage);

    /// <summary>Names of the components returned by <see cref="TrainStep"/>, the total last.</summary>
    IReadOnlyList<string> LossNames { get; }

    /// <summary>
    /// One optimisation step of stage <paramref name="stage"/> on images x [B, C, H, W] and labels y [B].
    /// Returns the detached loss components [LossNames.Count] (kept on the device: reading them is the caller's choice).
    /// </summary>
    Tensor TrainStep(int stage, Tensor x, Tensor y);

    /// <summary>Class probabilities [B, m] for images x. Called under no_grad with the network in eval mode.</summary>
    Tensor PredictProbabilities(Tensor x, InferenceOptions options);
}

/// <summary>How inference draws its noise.</summary>
public sealed class InferenceOptions
{
    /// <summary>Set ε = 0 in Eq. 3 (the initial z_0 is still drawn from N(0, I) unless <see cref="ZeroInitialState"/>).</summary>
    public bool Deterministic { get; init; }

    /// <summary>Start from z_0 = 0 instead of a draw from N(0, I).</summary>
    public bool ZeroInitialState { get; init; }

    /// <summary>The generator for every draw; a fixed seed makes a run repeatable. Null uses the global generator.</summary>
    public Generator? Generator { get; init; }

    /// <summary>Draws standard normal noise of the given shape from <see cref="Generator"/>.</summary>
    public Tensor Noise(long[] shape, Device device) =>
        randn(shape, ScalarType.Float32, device: device, generator: Generator);
}
