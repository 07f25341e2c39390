using NoProp.Methods.Adjoint;
using NoProp.Methods.Backprop;
using NoProp.Methods.ContinuousTime;
using NoProp.Methods.DiscreteTime;
using NoProp.Methods.FlowMatching;
using NoProp.Runtime;

namespace NoProp.Methods;

/// <summary>
/// The training method: its identity in model.json (written snake_case: "discrete_time"). Each member has one
/// <see cref="IMethodDefinition"/> in <see cref="MethodRegistry.All"/>.
/// </summary>
public enum MethodKind
{
    /// <summary>NoProp-DT: T blocks, each trained alone to denoise a noisy label embedding (§2.3, Algorithm 1).</summary>
    DiscreteTime,
    /// <summary>NoProp-CT: one network û(z_t, x, t), learnable noise schedule, ODE inference (Eq. 9, Algorithm 2).</summary>
    ContinuousTime,
    /// <summary>NoProp-FM: flow matching of the label embedding (Eqs. 10–13, Algorithm 3).</summary>
    FlowMatching,
    /// <summary>The back-propagation baseline (§4, Eqs. 17–19): the DT blocks chained and trained end to end.</summary>
    Backprop,
    /// <summary>The adjoint baseline: the CT network as a neural ODE trained by the adjoint method (Chen et al. 2018).</summary>
    Adjoint,
}

/// <summary>
/// Every training method, one <see cref="IMethodDefinition"/> each (declared in the method's own folder). The CLI,
/// the experiment grid and the ML.NET adapter ask the registry for names, defaults, the options a method takes and
/// how to build it; nothing else switches on <see cref="MethodKind"/>. docs/adding-a-method.md shows how a method is added.
/// </summary>
public static class MethodRegistry
{
    /// <summary>The methods in the order help and tables list them.</summary>
    public static IReadOnlyList<IMethodDefinition> All { get; } =
    [
        new NoPropDtDefinition(),
        new NoPropCtDefinition(),
        new NoPropFmDefinition(),
        new BackpropDefinition(),
        new AdjointDefinition(),
    ];

    private static readonly Dictionary<MethodKind, IMethodDefinition> ByKind = All.ToDictionary(d => d.Kind);

    private static readonly Dictionary<string, IMethodDefinition> ByName = All
        .SelectMany(d => d.Aliases.Prepend(d.CliName).Select(name => (name, d)))
        .ToDictionary(p => p.name, p => p.d, StringComparer.OrdinalIgnoreCase);

    /// <summary>The CLI names ("dt", "ct", "fm", "backprop", "adjoint").</summary>
    public static IReadOnlyList<string> CliNames { get; } = [.. All.Select(d => d.CliName)];

    /// <summary>Every method option some method takes, each once, in the order the methods declare them.</summary>
    public static IReadOnlyList<MethodOption> Options { get; } = [.. All.SelectMany(d => d.Options.Select(o => o.Option)).Distinct()];

    public static IMethodDefinition Get(MethodKind kind) => ByKind.TryGetValue(kind, out var definition)
        ? definition
        : throw new NoPropException($"method {kind} is not registered (known: {string.Join(", ", CliNames)})");

    /// <summary>The method a CLI name or alias names (any case); a <see cref="NoPropException"/> lists the valid names.</summary>
    public static IMethodDefinition Parse(string name) => TryParse(name, out var definition)
        ? definition
        : throw new NoPropException($"unknown method '{name}' (expected {JoinNames(CliNames, "or")})");

    public static bool TryParse(string? name, out IMethodDefinition definition)
    {
        definition = null!;
        return name is not null && ByName.TryGetValue(name.Trim(), out definition!);
    }

    /// <summary>The methods that take <paramref name="option"/>.</summary>
    public static IReadOnlyList<IMethodDefinition> Accepting(MethodOption option) => [.. All.Where(d => d.Accepts(option))];

    /// <summary>"--method dt and backprop": the methods that take <paramref name="option"/>, for messages.</summary>
    public static string AppliesTo(MethodOption option) => "--method " + JoinNames(Accepting(option).Select(d => d.CliName).ToList(), "and");

    /// <summary>"--blocks applies to --method dt and backprop, not --method ct", or null when <paramref name="method"/> takes the option.</summary>
    public static string? NotApplicable(MethodOption option, IMethodDefinition method) =>
        method.Accepts(option) ? null : $"{option.Flag} applies to {AppliesTo(option)}, not --method {method.CliName}";

    /// <summary>
    /// The help line of an option when no method is chosen: its help, the methods that take it and each one's default
    /// ("weight η of the denoising loss (dt, ct)  [dt 0.1, ct 1]").
    /// </summary>
    public static string HelpForAll(MethodOption option)
    {
        var uses = All.SelectMany(d => d.Options.Where(o => o.Option == option).Select(o => (d.CliName, o.Default))).ToList();
        var defaults = uses.Select(u => u.Default).Distinct().Count() == 1
            ? uses[0].Default
            : string.Join(", ", uses.Select(u => $"{u.CliName} {u.Default}"));
        return $"{option.Help} ({string.Join(", ", uses.Select(u => u.CliName))})  [{defaults}]";
    }

    /// <summary>The option of this CLI name ("blocks" or "--blocks"), if some method takes it.</summary>
    public static MethodOption? FindOption(string cliName)
    {
        var name = cliName.StartsWith("--", StringComparison.Ordinal) ? cliName[2..] : cliName;
        return Options.FirstOrDefault(o => o.CliName == name);
    }

    /// <summary>Builds the method <paramref name="config"/> names.</summary>
    public static INoPropMethod Create(ModelConfig config, TorchSharp.torch.Device? device = null) => Get(config.Method).Create(config, device);

    /// <summary>"a, b and c" (or "a or b").</summary>
    internal static string JoinNames(IReadOnlyList<string> names, string conjunction) => names.Count switch
    {
        0 => "no method",
        1 => names[0],
        _ => $"{string.Join(", ", names.Take(names.Count - 1))} {conjunction} {names[^1]}",
    };
}
