using NoProp.Models;
using NoProp.Runtime;
using NoProp.Solvers;
using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>How a method's network is laid out, which decides the options and diagnostics that make sense for it.</summary>
public enum MethodStructure
{
    /// <summary>A chain of T blocks (<c>--blocks</c>): NoProp-DT and the backprop baseline.</summary>
    BlockChain,
    /// <summary>One network integrated by an ODE solver over t ∈ [0, 1] (<c>--solver</c>, <c>--steps</c>): NoProp-CT, NoProp-FM, adjoint.</summary>
    Continuous,
}

/// <summary>The optimiser a method trains with (the paper's Table 3).</summary>
public enum OptimizerKind
{
    /// <summary>Adam, weight decay as an L2 term of the gradient.</summary>
    Adam,
    /// <summary>AdamW, decoupled weight decay.</summary>
    AdamW,
}

/// <summary>A method's defaults: what a run takes for every setting the user leaves unset.</summary>
public sealed record MethodDefaults
{
    /// <summary>η, the weight of the denoising term (where <see cref="MethodOption.Eta"/> applies; 1 elsewhere, unused).</summary>
    public double Eta { get; init; } = 1.0;

    /// <summary>How the final z becomes a class.</summary>
    public PredictionRule Prediction { get; init; } = PredictionRule.OutputHead;

    /// <summary>The optimiser of every parameter group.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;

    /// <summary>T, the number of blocks of a block chain (the paper: 10).</summary>
    public int Blocks { get; init; } = 10;

    /// <summary>The ODE solver of a continuous method.</summary>
    public OdeSolverKind Solver { get; init; } = OdeSolverKind.Heun;

    /// <summary>Solver steps over t ∈ [0, 1] (the paper simulates 1000; 40 Heun steps are within noise of that).</summary>
    public int InferenceSteps { get; init; } = 40;

    /// <summary>The image path of a continuous method.</summary>
    public BackboneKind Backbone { get; init; } = BackboneKind.Paper;

    /// <summary>NoProp-CT's denoising weight (see <see cref="ModelConfig.Weighting"/> for why constant).</summary>
    public CtWeighting Weighting { get; init; } = CtWeighting.Constant;

    /// <summary>NoProp-DT's block order.</summary>
    public BlockSchedule BlockSchedule { get; init; } = BlockSchedule.Sequential;

    /// <summary>What trains NoProp-CT's schedule under a given weighting (<see cref="ModelConfig.DefaultScheduleTraining"/>).</summary>
    public CtScheduleTraining ScheduleTraining(CtWeighting weighting) => ModelConfig.DefaultScheduleTraining(weighting);
}

/// <summary>
/// Everything the library, the CLI, the experiment grid and the ML.NET adapter know about one training method,
/// declared once in that method's folder: its names, defaults, the options it takes, the checks a configuration must
/// pass for it, and how to build it. <see cref="MethodRegistry"/> lists every definition.
/// </summary>
public interface IMethodDefinition
{
    /// <summary>The method's identity in model.json and the API.</summary>
    MethodKind Kind { get; }

    /// <summary>The CLI's name ("dt"): <c>--method dt</c>, run-folder names, the experiment grid's "methods".</summary>
    string CliName { get; }

    /// <summary>Other names <see cref="MethodRegistry.Parse"/> accepts ("noprop-dt").</summary>
    IReadOnlyList<string> Aliases { get; }

    /// <summary>The name in the paper's tables ("NoProp-DT", "Backprop").</summary>
    string DisplayName { get; }

    /// <summary>One line for help: what the method is and where the paper defines it.</summary>
    string Summary { get; }

    MethodStructure Structure { get; }

    MethodDefaults Defaults { get; }

    /// <summary>The method options it takes, with its defaults, in the order help lists them.</summary>
    IReadOnlyList<MethodOptionUse> Options { get; }

    /// <summary>Whether the method takes <paramref name="option"/>.</summary>
    bool Accepts(MethodOption option);

    /// <summary>
    /// The checks that depend on the method (the checks every model needs are in <see cref="ModelConfig.Validate"/>,
    /// which calls this). Throws <see cref="NoPropException"/> naming the option at fault.
    /// </summary>
    void Validate(ModelConfig config);

    /// <summary>Checks a prediction rule for a model of this method (the configured one, or an inference override).</summary>
    void ValidatePrediction(ModelConfig config, PredictionRule rule);

    /// <summary>Builds the method (fresh parameters, seeded by the global generator) on <paramref name="device"/> (null: the CPU).</summary>
    INoPropMethod Create(ModelConfig config, Device? device = null);

    /// <summary>
    /// Whether deterministic inference (<see cref="InferenceOptions.Deterministic"/>) still draws noise: NoProp-DT draws
    /// z_0 ~ N(0, I) and only drops Eq. 3's ε, so repeated deterministic runs differ; the others start from z_0 = 0 and
    /// repeat exactly (one run is enough).
    /// </summary>
    bool DeterministicInferenceDrawsNoise { get; }
}

/// <summary>
/// The shared part of the method definitions: option lookup and the checks that follow from the options a method
/// does not take (a non-default <c>--schedule</c> or <c>--backbone</c> for a method without one is a usage error).
/// </summary>
public abstract class MethodDefinition(
    MethodKind kind, string cliName, string displayName, MethodStructure structure, string summary,
    MethodDefaults defaults, IReadOnlyList<MethodOptionUse> options, IReadOnlyList<string>? aliases = null) : IMethodDefinition
{
    private readonly HashSet<MethodOption> accepted = options.Select(o => o.Option).ToHashSet();

    public MethodKind Kind => kind;
    public string CliName => cliName;
    public IReadOnlyList<string> Aliases { get; } = aliases ?? [];
    public string DisplayName => displayName;
    public string Summary => summary;
    public MethodStructure Structure => structure;
    public MethodDefaults Defaults => defaults;
    public IReadOnlyList<MethodOptionUse> Options => options;

    public bool Accepts(MethodOption option) => accepted.Contains(option);

    public virtual void Validate(ModelConfig config)
    {
        if (config.BlockSchedule != BlockSchedule.Sequential && !Accepts(MethodOption.Schedule))
            throw new NoPropException($"--schedule {config.BlockSchedule.ToString().ToLowerInvariant()} applies to {MethodRegistry.AppliesTo(MethodOption.Schedule)} (the other methods have no independent blocks)");
        if (config.DtInference != DtInference.Stochastic && !Accepts(MethodOption.Inference))
            throw new NoPropException($"--inference {config.DtInference.ToCliName()} applies to {MethodRegistry.AppliesTo(MethodOption.Inference)} (use eval --deterministic for the other methods)");
        if (config.Backbone != BackboneKind.Paper && !Accepts(MethodOption.Backbone))
            throw new NoPropException($"--backbone applies to {MethodRegistry.AppliesTo(MethodOption.Backbone)} ({DisplayName} is built from the paper's DT blocks)");
        ValidatePrediction(config, config.Prediction);
    }

    public virtual void ValidatePrediction(ModelConfig config, PredictionRule rule) { }

    public abstract INoPropMethod Create(ModelConfig config, Device? device = null);

    public virtual bool DeterministicInferenceDrawsNoise => false;

    public override string ToString() => CliName;
}

/// <summary>The options of the methods integrated by an ODE solver (CT, FM, adjoint), with a method's defaults.</summary>
public static class ContinuousOptions
{
    public static MethodOptionUse[] For(MethodDefaults defaults, string? stepsNote = null) =>
    [
        new(MethodOption.Backbone, defaults.Backbone.ToCliName()),
        new(MethodOption.Solver, OdeSolvers.ToCliName(defaults.Solver)),
        new(MethodOption.Steps, defaults.InferenceSteps.ToString(System.Globalization.CultureInfo.InvariantCulture), stepsNote),
        new(MethodOption.Prediction, defaults.Prediction.ToCliName()),
    ];
}
