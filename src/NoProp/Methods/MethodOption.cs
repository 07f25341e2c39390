namespace NoProp.Methods;

/// <summary>
/// A training option that applies to some methods only (<c>--blocks</c>, <c>--solver</c>, <c>--eta</c>, ...): its CLI name,
/// the placeholder of its value and its help text. Which methods take it, and with which default, is declared by each
/// method's <see cref="IMethodDefinition.Options"/>; <see cref="MethodRegistry"/> answers "which methods accept
/// <c>--steps</c>" and words the "applies to --method ..." messages from those declarations.
/// <para>
/// Options every method takes (<c>--lr</c>, <c>--epochs</c>, <c>--embedding</c>, ...) are not method options. A new
/// method with an option of its own declares a <see cref="MethodOption"/> in its own folder.
/// </para>
/// </summary>
/// <param name="CliName">The option's name without the leading dashes ("blocks").</param>
/// <param name="ValueName">The placeholder of its value in help ("T"), or null for a flag.</param>
/// <param name="Help">One line of help text, without the default.</param>
public sealed record MethodOption(string CliName, string? ValueName, string Help)
{
    /// <summary>"--blocks".</summary>
    public string Flag => "--" + CliName;

    public override string ToString() => Flag;

    public static readonly MethodOption Blocks = new("blocks", "T", "DT blocks");
    public static readonly MethodOption Schedule = new("schedule", "ORDER",
        "sequential (Algorithm 1: block 1 on every minibatch, then block 2, ...) | parallel (every block steps on each minibatch, all T computed as one fused computation)");
    public static readonly MethodOption Eta = new("eta", "X", "weight η of the denoising loss");
    public static readonly MethodOption Inference = new("inference", "MODE",
        "stochastic (Eq. 3, the paper's: fresh noise √c_t·ε after every block) | deterministic (ε = 0: each step's mean; z_0 still drawn)");
    public static readonly MethodOption Backbone = new("backbone", "NAME", "paper | resnet18 | resnet50 | resnet152");
    public static readonly MethodOption Solver = new("solver", "NAME", "euler | heun | midpoint | rk4 | dopri5");
    public static readonly MethodOption Steps = new("steps", "N", "solver steps over t in [0, 1]");
    public static readonly MethodOption Prediction = new("prediction", "RULE", "head | nearest (class from the final z)");
    public static readonly MethodOption Weighting = new("weighting", "W", "constant | snr-derivative (Eq. 9)");
    public static readonly MethodOption GammaMax = new("gamma-max", "X", "initial γ(0) of the schedule");
    public static readonly MethodOption GammaMin = new("gamma-min", "X", "initial γ(1) of the schedule");
    public static readonly MethodOption ScheduleTraining = new("schedule-training", "MODE",
        "what trains the schedule: joint (the whole loss, the paper) | detached (the CE and KL terms only) | frozen");
    public static readonly MethodOption ScheduleWeightDecay = new("schedule-weight-decay", "X", "weight decay of the schedule's parameters");
    public static readonly MethodOption FlowSigma = new("flow-sigma", "X", "σ of the probability path (Eq. 10)");
}

/// <summary>A method's use of an option: the option and the default it takes for that method, as help shows it.</summary>
/// <param name="Option">The option.</param>
/// <param name="Default">The default as help prints it ("0.1", "heun", "constant: detached; snr-derivative: joint").</param>
/// <param name="Note">What is particular to this method, if anything ("training too").</param>
public sealed record MethodOptionUse(MethodOption Option, string Default, string? Note = null)
{
    /// <summary>The help line for this method: "weight η of the denoising loss [0.1]".</summary>
    public string HelpText => Note is null ? $"{Option.Help}  [{Default}]" : $"{Option.Help} ({Note})  [{Default}]";
}
