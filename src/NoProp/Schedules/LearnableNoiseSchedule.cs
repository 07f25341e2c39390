using NoProp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NoProp.Schedules;

/// <summary>
/// The learnable noise schedule of NoProp-CT (paper Appendix B), continuous in t ∈ [0, 1] (noise at 0, label at 1).
/// <code>
/// γ̃(t)  = w₂ᵀ·sigmoid(w₁·t + b₁) + b₂      with w₁, w₂ &gt; 0 (softplus of free parameters), so γ̃ increases
/// γ̄(t)  = (γ̃(t) − γ̃(0)) / (γ̃(1) − γ̃(0))  ∈ [0, 1], increasing
/// γ(t)  = γ_min + (γ_max − γ_min)·(1 − γ̄(t))  decreasing from γ_max at t = 0 to γ_min at t = 1
/// ᾱ(t)  = sigmoid(−γ(t)),   SNR(t) = exp(−γ(t)),   SNR'(t) = −γ'(t)·exp(−γ(t)) &gt; 0
/// </code>
/// γ_min and γ_max are trainable; γ_max = γ_min + softplus(δ) keeps them ordered, so the schedule is monotone
/// for every parameter value. Derivatives are in closed form (no double back-propagation).
/// </summary>
public sealed class LearnableNoiseSchedule : Module
{
    private readonly Parameter w1Raw, b1, w2Raw, b2, gammaMin, gapRaw;

    public LearnableNoiseSchedule(double initialGammaMax = 5.0, double initialGammaMin = -5.0, int hidden = 32)
        : base(nameof(LearnableNoiseSchedule))
    {
        if (!(initialGammaMax > initialGammaMin)) throw new ArgumentOutOfRangeException(nameof(initialGammaMax), "γ_max must exceed γ_min");
        using (no_grad())
        {
            // Spread the sigmoid units over [0, 1] so the initial γ̄ is close to linear.
            var centres = linspace(0.05, 0.95, hidden);
            using (var w1 = HeldScalars.Hold(InverseSoftplus(6.0))) w1Raw = new Parameter(full(hidden, w1));
            b1 = new Parameter(centres.Times(-6.0));
            using (var w2 = HeldScalars.Hold(InverseSoftplus(1.0))) w2Raw = new Parameter(full(hidden, w2));
            b2 = new Parameter(zeros(1));
            gammaMin = new Parameter(tensor(new[] { (float)initialGammaMin }));
            gapRaw = new Parameter(tensor(new[] { (float)InverseSoftplus(initialGammaMax - initialGammaMin) }));
        }
        register_parameter("w1", w1Raw);
        register_parameter("b1", b1);
        register_parameter("w2", w2Raw);
        register_parameter("b2", b2);
        register_parameter("gamma_min", gammaMin);
        register_parameter("gamma_gap", gapRaw);
    }

    private static double InverseSoftplus(double y) => y > 20 ? y : Math.Log(Math.Exp(y) - 1);

    /// <summary>γ̃(t) and dγ̃/dt for t of any shape.</summary>
    private (Tensor Value, Tensor Derivative) Raw(Tensor t)
    {
        var w1 = functional.softplus(w1Raw);
        var w2 = functional.softplus(w2Raw);
        var s = functional.sigmoid((t.unsqueeze(-1) * w1).Plus(b1));          // [..., H]
        var value = (s * w2).sum(-1).Plus(b2);
        var derivative = (s * s.SubtractedFrom(1) * w1 * w2).sum(-1);
        return (value, derivative);
    }

    /// <summary>γ(t) and γ'(t) (γ' &lt; 0).</summary>
    public (Tensor Gamma, Tensor GammaDerivative) Gamma(Tensor t)
    {
        using var scope = NewDisposeScope();
        var (raw, rawDerivative) = Raw(t);
        var ends = Raw(tensor(new float[] { 0f, 1f }, device: t.device)).Value;
        var span = ends[1] - ends[0];
        var gammaBar = (raw - ends[0]) / span;
        var gap = functional.softplus(gapRaw);
        var gamma = gammaMin.Plus(gap * gammaBar.SubtractedFrom(1));
        var gammaDerivative = -gap * rawDerivative / span;
        return (gamma.MoveToOuterDisposeScope(), gammaDerivative.MoveToOuterDisposeScope());
    }

    /// <summary>ᾱ(t) = sigmoid(−γ(t)).</summary>
    public Tensor AlphaBar(Tensor t)
    {
        var (gamma, derivative) = Gamma(t);
        derivative.Dispose();
        using (gamma) return functional.sigmoid(-gamma);
    }

    /// <summary>SNR'(t) = −γ'(t)·exp(−γ(t)), positive for every parameter value.</summary>
    public Tensor SnrDerivative(Tensor t)
    {
        var (gamma, derivative) = Gamma(t);
        using (gamma) using (derivative) return -derivative * (-gamma).exp();
    }

    /// <summary>The current endpoints γ(0) = γ_max and γ(1) = γ_min.</summary>
    public (double GammaMax, double GammaMin) Endpoints()
    {
        using var _ = no_grad();
        double min = gammaMin.item<float>();
        return (min + functional.softplus(gapRaw).item<float>(), min);
    }
}
