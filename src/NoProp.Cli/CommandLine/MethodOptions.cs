using NoProp.Methods;

namespace NoProp.Cli.CommandLine;

/// <summary>
/// Which <c>noprop train</c> options belong to which methods: the source of both the usage error for an option given
/// to a method it does not apply to and of <c>noprop train --method M --help</c>, which lists only M's options.
/// </summary>
internal static class MethodOptions
{
    // Until the method registry answers this, the lists the CLI has always enforced.
    private static readonly Dictionary<string, string[]> Scopes = new(StringComparer.Ordinal)
    {
        ["--blocks"] = ["dt", "backprop"],
        ["--schedule"] = ["dt"],
        ["--backbone"] = ["ct", "fm", "adjoint"],
        ["--solver"] = ["ct", "fm", "adjoint"],
        ["--steps"] = ["ct", "fm", "adjoint"],
        ["--prediction"] = ["ct", "fm", "adjoint"],
        ["--weighting"] = ["ct"],
        ["--gamma-max"] = ["ct"],
        ["--gamma-min"] = ["ct"],
        ["--schedule-training"] = ["ct"],
        ["--schedule-weight-decay"] = ["ct"],
        ["--flow-sigma"] = ["fm"],
        ["--eta"] = ["dt", "ct"],
    };

    /// <summary>The methods (CLI names) an option applies to; null for an option of every method.</summary>
    public static IReadOnlyList<string>? MethodsOf(string option) => Scopes.GetValueOrDefault(option);

    public static bool AppliesTo(string option, string method) => MethodsOf(option) is not { } methods || methods.Contains(method);

    /// <summary>"--method dt and backprop", "--method ct, fm and adjoint".</summary>
    public static string Describe(IReadOnlyList<string> methods) =>
        "--method " + (methods.Count == 1 ? methods[0] : string.Join(", ", methods.SkipLast(1)) + " and " + methods[^1]);

    /// <summary>The usage error for <paramref name="option"/> given to <paramref name="method"/>, or null when it applies.</summary>
    public static string? Misapplied(string option, string method) =>
        AppliesTo(option, method) ? null : $"{option} applies to {Describe(MethodsOf(option)!)}, not --method {method}";

    public static IReadOnlyList<string> Methods => MethodKinds.CliNames;
}
