using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace NoProp.Cli.CommandLine;

/// <summary>
/// Typed <c>--name value</c> options on System.CommandLine that keep the tool's one-line usage messages
/// ("--epochs: must be at least 1, got -3", "--method: unknown value 'x' (expected ...)"). Every option is nullable:
/// null means "not given", so <c>train --resume</c> can tell an option given again (it overrides run.json) from one
/// left out, and so defaults are applied in one place (the command, or the method registry), not in the parser.
/// </summary>
internal static class CliOptions
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>The single value of an option, or null after adding "needs a value" (an option name where a value belongs).</summary>
    private static string? Single(ArgumentResult r, string name)
    {
        if (r.Tokens.Count == 0) { r.AddError($"{name} needs a value"); return null; }
        var v = r.Tokens[0].Value;
        // System.CommandLine hands an option that needs a value the next token even when it is another option.
        if (v.StartsWith("--", StringComparison.Ordinal) && !double.TryParse(v, NumberStyles.Float, C, out _))
        {
            r.AddError($"{name} needs a value");
            return null;
        }
        return v;
    }

    private static T Described<T>(T option, string description, string? valueName) where T : Option
    {
        option.Description = description;
        if (valueName is not null) option.HelpName = valueName;
        return option;
    }

    public static Option<string?> Text(string name, string description, string valueName = "VALUE") =>
        Described(new Option<string?>(name) { CustomParser = r => Single(r, name) }, description, valueName);

    public static Option<int?> Int(string name, string description, int min, int max = int.MaxValue, string valueName = "N") =>
        Described(new Option<int?>(name)
        {
            CustomParser = r =>
            {
                if (Single(r, name) is not string v) return null;
                if (!int.TryParse(v, NumberStyles.Integer, C, out int x)) { r.AddError($"{name}: '{v}' is not a whole number"); return null; }
                if (x < min || x > max)
                {
                    r.AddError(max == int.MaxValue ? $"{name}: must be at least {min}, got {x}" : $"{name}: must lie in {min}..{max}, got {x}");
                    return null;
                }
                return x;
            },
        }, description, valueName);

    public static Option<long?> Long(string name, string description, string valueName = "N") =>
        Described(new Option<long?>(name)
        {
            CustomParser = r =>
            {
                if (Single(r, name) is not string v) return null;
                if (long.TryParse(v, NumberStyles.Integer, C, out long x)) return x;
                r.AddError($"{name}: '{v}' is not a whole number");
                return null;
            },
        }, description, valueName);

    /// <summary>A finite number greater than <paramref name="minExclusive"/>.</summary>
    public static Option<double?> Double(string name, string description, double minExclusive = double.NegativeInfinity, string valueName = "X") =>
        Described(new Option<double?>(name)
        {
            CustomParser = r =>
            {
                if (Single(r, name) is not string v) return null;
                if (!double.TryParse(v, NumberStyles.Float, C, out double x) || !double.IsFinite(x)) { r.AddError($"{name}: '{v}' is not a number"); return null; }
                if (!(x > minExclusive)) { r.AddError($"{name}: must be greater than {minExclusive.ToString(C)}, got {v}"); return null; }
                return x;
            },
        }, description, valueName);

    /// <summary>One of <paramref name="allowed"/> (case-insensitive, returned in lower case); the values complete on tab.</summary>
    public static Option<string?> Choice(string name, string description, IReadOnlyList<string> allowed)
    {
        var option = Described(new Option<string?>(name)
        {
            CustomParser = r =>
            {
                if (Single(r, name) is not string v) return null;
                if (allowed.Contains(v, StringComparer.OrdinalIgnoreCase)) return v.ToLowerInvariant();
                r.AddError($"{name}: unknown value '{v}' (expected {string.Join(", ", allowed)})");
                return null;
            },
        }, description, string.Join('|', allowed));
        option.CompletionSources.Add(allowed.ToArray());
        return option;
    }

    /// <summary>
    /// A switch: <c>--name</c> alone is true, <c>--name=true|false|1|0</c> sets it; null when not given. (A value that is
    /// not a truth value is reported by <see cref="UsageErrors"/>: System.CommandLine leaves it unmatched.)
    /// </summary>
    public static Option<bool?> Flag(string name, string description) =>
        Described(new Option<bool?>(name)
        {
            Arity = ArgumentArity.ZeroOrOne,
            CustomParser = r =>
            {
                if (r.Tokens.Count == 0) return true;
                var v = r.Tokens[0].Value;
                if (v.Equals("true", StringComparison.OrdinalIgnoreCase) || v == "1") return true;
                if (v.Equals("false", StringComparison.OrdinalIgnoreCase) || v == "0") return false;
                r.AddError($"{name}: expected true or false, got '{v}'");
                return null;
            },
        }, description, null);

    /// <summary>One or more values up to the next option (<c>--runs a b c</c>).</summary>
    public static Option<string[]?> List(string name, string description, string whatIsMissing, string valueName) =>
        Described(new Option<string[]?>(name)
        {
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = true,
            CustomParser = r =>
            {
                if (r.Tokens.Count == 0 || r.Tokens[0].Value.StartsWith("--", StringComparison.Ordinal)) { r.AddError($"{name} needs {whatIsMissing}"); return null; }
                return r.Tokens.Select(t => t.Value).ToArray();
            },
        }, description, valueName);

    /// <summary>Whether the option appeared on the command line (even with a value that failed to parse).</summary>
    public static bool Given(this ParseResult result, Option option) => result.GetResult(option) is { Implicit: false };
}
