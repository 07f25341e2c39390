using NoProp.Runtime;
using NoProp.Embeddings;
using NoProp.Models;
using NoProp.Solvers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods.Adjoint;

/// <summary>
/// The adjoint-sensitivity baseline of the paper's continuous-time comparison (Table 1 "Adjoint", Fig. 3): the
/// continuous-time network (<see cref="CtDenoiser"/>, Fig. 6 right) defines a neural ODE
/// dz/dt = v_θ(z, x, t) = logits_θ(z, x, t)·W_Embed on t ∈ [0, 1] from z_0 ~ N(0, I), and a linear classifier
/// p̂_θout(y | z_1) reads the class off z_1. Training minimises the cross-entropy of p̂_θout(y | z_1) end to end:
/// the forward solve keeps nothing, and the gradient comes from a second solve backwards in time
/// (<see cref="AdjointSensitivity"/>, Chen et al. 2018). Both solves use the model's solver and step count
/// (the paper: 1000 steps for training and inference; here <c>--steps</c>, see <see cref="ModelConfig.InferenceSteps"/>).
/// <para>
/// The image path depends on x alone, so it runs once per minibatch: its features h enter the ODE as a constant
/// input, the adjoint accumulates ∂L/∂h like a parameter gradient, and h is back-propagated through the image
/// path once — the same gradient as treating the image path's weights as parameters of f, at the cost of one
/// image pass instead of one per function evaluation. The vector field reuses NoProp-FM's readout
/// (logits·W_Embed, no softmax), which lets it point in any direction; AdamW as in the paper's Table 3.
/// </para>
/// </summary>
public sealed class AdjointOde : NoPropMethod<ContinuousNetwork>
{
    private static readonly LossLayout Layout = new("cross_entropy");
    private readonly OptimizerHelper optimizer;
    private readonly Parameter[] fieldParameters;

    public AdjointOde(ModelConfig config, Device? device = null)
        : base(MethodKind.Adjoint, config, device, c => new ContinuousNetwork(c, "velocity", withSchedule: false, "AdjointNetwork"), Layout)
    {
        optimizer = NewOptimizer(TrainableParameters());
        SetOptimizers(optimizer);
        // θ of the vector field for the adjoint: everything of the network but the image path (whose gradient
        // flows through the cached features) and the output head (which acts after the ODE).
        var field = Net.Velocity.named_parameters()
            .Where(p => !p.name.StartsWith("imagePath.", StringComparison.Ordinal) && p.parameter.requires_grad)
            .Select(p => p.parameter).ToList();
        if (Net.Embedding.IsTrainable) field.Add((Parameter)Net.Embedding.Weight);
        fieldParameters = [.. field];
    }

    public ContinuousNetwork AdjointNetwork => Net;
    public override LabelEmbedding Embedding => Net.Embedding;

    /// <summary>The parameters θ of the vector field that the adjoint solve differentiates (image path and head excluded).</summary>
    public IReadOnlyList<Parameter> FieldParameters => fieldParameters;

    /// <summary>v_θ(z, x, t) = logits(h, z, t)·W_Embed for cached image features h and one time t for the whole batch.</summary>
    public Tensor Velocity(Tensor imageFeatures, Tensor z, double t)
    {
        using var scope = NewDisposeScope();
        var time = HeldScalars.Full(z.shape[0], t, z.device);
        return Net.Velocity.Logits(imageFeatures, z, time).matmul(Net.Embedding.Weight).MoveToOuterDisposeScope();
    }

    /// <summary>The time grid of the training solves (dopri5 chooses its own steps between 0 and 1).</summary>
    public double[] TrainingGrid() =>
        Config.Solver == OdeSolverKind.Dopri5 ? [0.0, 1.0] : TimeGrid.Uniform(0.0, 1.0, Config.InferenceSteps);

    public override StepLosses TrainStep(int stage, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var z0 = randn(x.shape[0], Config.EmbeddingDimension, device: x.device);
        var crossEntropy = AccumulateGradients(x, y, z0);
        optimizer.step();
        return Layout.Record(total: crossEntropy, crossEntropy);
    }

    /// <summary>
    /// Zeroes the gradients, then fills every parameter's gradient with ∂CE/∂θ for the minibatch, the ODE started
    /// at <paramref name="z0"/>, by the adjoint method. Returns the detached cross-entropy. (A training step is this
    /// followed by the optimiser step; tests compare it with back-propagation through the solver.)
    /// </summary>
    public Tensor AccumulateGradients(Tensor x, Tensor y, Tensor z0)
    {
        using var scope = NewDisposeScope();
        optimizer.zero_grad();
        var solver = OdeSolvers.Create(Config.Solver);
        var grid = TrainingGrid();

        var features = Net.Velocity.EncodeImage(x);                 // with its graph to the image path
        var h = features.detach().requires_grad_(true);                 // the ODE's constant input
        AdjointSensitivity.Dynamics f = (z, t) => Velocity(h, z, t);

        Tensor z1;
        using (no_grad()) z1 = solver.Integrate((z, t) => f(z, t), z0, grid).Z;
        var z1Leaf = z1.detach().requires_grad_(true);
        var crossEntropy = nn.functional.cross_entropy(Net.OutputHead.forward(z1Leaf), y);
        crossEntropy.backward();                                         // the head's gradients and a(1) = ∂L/∂z_1

        using var adjoint = AdjointSensitivity.Backward(solver, f, [h, .. fieldParameters], z1, z1Leaf.grad!, grid);
        // Hand the adjoint's gradients to autograd: ∂/∂θ of Σ θ·g is g, and features·∂L/∂h reaches the image path.
        var surrogate = (features * adjoint.Gradients[0]).sum();
        for (int i = 0; i < fieldParameters.Length; i++)
            surrogate = surrogate.Plus((fieldParameters[i] * adjoint.Gradients[i + 1]).sum());
        surrogate.backward();
        return crossEntropy.detach().MoveToOuterDisposeScope();
    }

    /// <summary>The vector field at one time for the shared inference loop.</summary>
    public Tensor Drift(ContinuousInference.LogitsAt logits, Tensor z, double t)
    {
        using var time = HeldScalars.Full(z.shape[0], t, z.device);
        using var l = logits(z, time);
        return l.matmul(Net.Embedding.Weight);
    }

    public override Tensor PredictProbabilities(Tensor x, InferenceOptions options)
    {
        if (options.Prediction is PredictionRule rule) Definition.ValidatePrediction(Config, rule);
        using var scope = NewDisposeScope();
        var z1 = ContinuousInference.Integrate(Net.Velocity, x, Config.EmbeddingDimension, Config, options, Drift);
        return nn.functional.softmax(Net.OutputHead.forward(z1), 1).MoveToOuterDisposeScope();
    }
}
