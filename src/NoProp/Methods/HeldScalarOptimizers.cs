using NoProp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>
/// TorchSharp's Adam and AdamW with the same update, operation for operation (byte-identical parameters and state,
/// the same checkpoint format), but with every Scalar held until libtorch has returned. TorchSharp's own step()
/// passes ~8 implicit Scalars per parameter, which the finalizer may free while the operation runs (see
/// <see cref="HeldScalars"/>); with ten blocks that is thousands per training step.
/// </summary>
public static class HeldScalarOptimizers
{
    public static TorchSharp.Modules.AdamW AdamW(IEnumerable<Parameter> parameters, double lr, double weightDecay) =>
        new Held.AdamW(parameters, lr, weightDecay);

    public static TorchSharp.Modules.Adam Adam(IEnumerable<Parameter> parameters, double lr, double weightDecay) =>
        new Held.Adam([new TorchSharp.Modules.Adam.ParamGroup { Parameters = parameters }], lr, weightDecay);

    public static TorchSharp.Modules.Adam Adam(IEnumerable<TorchSharp.Modules.Adam.ParamGroup> groups, double lr, double weightDecay) =>
        new Held.Adam(groups, lr, weightDecay);

    /// <summary>The group's constants, held for one step.</summary>
    private sealed class Moments(double beta1, double beta2, double eps) : IDisposable
    {
        public readonly Scalar Beta1 = beta1.ToScalar(), OneMinusBeta1 = (1 - beta1).ToScalar();
        public readonly Scalar Beta2 = beta2.ToScalar(), OneMinusBeta2 = (1 - beta2).ToScalar();
        public readonly Scalar Eps = eps.ToScalar();

        public void Dispose()
        {
            Beta1.Dispose(); OneMinusBeta1.Dispose(); Beta2.Dispose(); OneMinusBeta2.Dispose(); Eps.Dispose();
        }

        /// <summary>m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², then p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).</summary>
        public void Update(Parameter param, Tensor grad, Tensor expAvg, Tensor expAvgSq, long step, double beta1, double beta2, double lr)
        {
            var biasCorrection1 = 1 - Math.Pow(beta1, step);
            var biasCorrection2 = 1 - Math.Pow(beta2, step);
            expAvg.mul_(Beta1).add_(grad, alpha: OneMinusBeta1);
            expAvgSq.mul_(Beta2).addcmul_(grad, grad, value: OneMinusBeta2);
            using var correction = Math.Sqrt(biasCorrection2).ToScalar();
            var denom = expAvgSq.sqrt().div(correction).add_(Eps, HeldScalars.One);
            using var stepSize = (-(lr / biasCorrection1)).ToScalar();
            param.addcdiv_(expAvg, denom, value: stepSize);
        }
    }

    /// <summary>The subclasses keep TorchSharp's type names: a saved optimizer state names its type, and loading checks it.</summary>
    private static class Held
    {
        public sealed class AdamW(IEnumerable<Parameter> parameters, double lr, double weightDecay)
            : TorchSharp.Modules.AdamW(parameters, lr, weight_decay: weightDecay)
        {
            public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
            {
                var options = (Options)group.Options;
                if (options.amsgrad == true || options.maximize == true)
                    throw new NotSupportedException("AMSGrad and maximize are not implemented by the held-Scalar optimizers");
                double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, lr = options.LearningRate!.Value;
                using var moments = new Moments(beta1, beta2, options.eps!.Value);
                using var decay = (1 - lr * options.weight_decay!.Value).ToScalar();
                foreach (var param in group.Parameters)
                {
                    var grad = param.grad;
                    if (grad is null) continue;
                    var state = (State)_state[param.Handle];
                    state.step += 1;
                    param.mul_(decay);
                    moments.Update(param, grad, state.exp_avg, state.exp_avg_sq, state.step, beta1, beta2, lr);
                }
            }, closure);
        }

        public sealed class Adam(IEnumerable<TorchSharp.Modules.Adam.ParamGroup> groups, double lr, double weightDecay)
            : TorchSharp.Modules.Adam(groups, lr, weight_decay: weightDecay)
        {
            public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
            {
                var options = (Options)group.Options;
                if (options.amsgrad == true || options.maximize == true)
                    throw new NotSupportedException("AMSGrad and maximize are not implemented by the held-Scalar optimizers");
                double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, lr = options.LearningRate!.Value;
                double weightDecay = options.weight_decay!.Value;
                using var moments = new Moments(beta1, beta2, options.eps!.Value);
                using var decay = weightDecay.ToScalar();
                foreach (var param in group.Parameters)
                {
                    var grad = param.grad;
                    if (grad is null) continue;
                    var state = (State)_state[param.Handle];
                    state.step += 1;
                    if (weightDecay != 0) grad = grad.add(param, alpha: decay);   // L2 on the gradient (Adam, not AdamW)
                    moments.Update(param, grad, state.exp_avg, state.exp_avg_sq, state.step, beta1, beta2, lr);
                }
            }, closure);
        }
    }
}
