using NoProp.Methods.Adjoint;
using NoProp.Methods.Backprop;
using NoProp.Methods.ContinuousTime;
using NoProp.Methods.DiscreteTime;
using NoProp.Methods.FlowMatching;
using NoProp.Runtime;

namespace NoProp.Methods;

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

    private static readonly Dictionary<string, IMethodDefinition> ByKindName = All.ToDictionary(d => d.Kind.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>The model.json names of the registered methods, for messages ("discrete_time, continuous_time, ...").</summary>
    public static string KnownNames { get; } = string.Join(", ", All.Select(d => d.Kind.Name));

    private static readonly Dictionary<string, IMethodDefinition> ByName = All
        .SelectMany(d => d.Aliases.Prepend(d.CliName).Select(name => (name, d)))
        .ToDictionary(p => p.name, p => p.d, StringComparer.OrdinalIgnoreCase);

    /// <summary>The CLI names ("dt", "ct", "fm", "backprop", "adjoint").</summary>
    public static IReadOnlyList<string> CliNames { get; } = [.. All.Select(d => d.CliName)];

    /// <summary>Every method option some method takes, each once, in the order the methods declare them.</summary>
    public static IReadOnlyList<MethodOption> Options { get; } = [.. All.SelectMany(d => d.Options.Select(o => o.Option)).Distinct()];

    public static IMethodDefinition Get(MethodKind kind) => ByKind.TryGetValue(kind, out var definition)
        ? definition
        : throw new NoPropException($"method '{kind}' is not registered (known: {KnownNames})");

    /// <summary>The method whose <see cref="MethodKind.Name"/> (model.json's "method") is <paramref name="name"/>, in any case.</summary>
    public static bool TryGetByName(string? name, out IMethodDefinition definition)
    {
        definition = null!;
        return name is not null && ByKindName.TryGetValue(name, out definition!);
    }

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
    internal static string JoinNames(IReadOnlyList<string> names, string conjunction) =>
        names.Count == 0 ? "no method" : EnumNames.Join(names, conjunction);
}
