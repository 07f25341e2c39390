using System.Globalization;

namespace NoProp.Cli;

/// <summary>Bad usage: an unknown option, a missing or malformed value, a number out of range. Exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Reads <c>--name value</c>, <c>--name=value</c> and <c>--flag</c> options. Every option a command accepts must be
/// declared by reading it; <see cref="EnsureAllConsumed"/> then rejects anything left over, naming it.
/// </summary>
public sealed class ArgumentReader
{
    private readonly Dictionary<string, string?> values = new(StringComparer.Ordinal);
    private readonly HashSet<string> consumed = new(StringComparer.Ordinal);
    private readonly HashSet<string> given = new(StringComparer.Ordinal);

    public ArgumentReader(IEnumerable<string> args, IReadOnlySet<string> flags)
    {
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            var arg = list[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
                throw new UsageException($"unexpected argument '{arg}' (options start with --)");
            string name = arg[2..];
            string? value = null;
            int eq = name.IndexOf('=');
            if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
            else if (!flags.Contains(name))
            {
                if (i + 1 >= list.Count || (list[i + 1].StartsWith("--", StringComparison.Ordinal) && !IsNumber(list[i + 1])))
                    throw new UsageException($"--{name} needs a value");
                value = list[++i];
            }
            if (!values.TryAdd(name, value)) throw new UsageException($"--{name} is given twice");
            given.Add(name);
        }
    }

    private static bool IsNumber(string s) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    public bool Has(string name) { consumed.Add(name); return given.Contains(name); }

    public bool Flag(string name)
    {
        consumed.Add(name);
        if (!values.TryGetValue(name, out var v)) return false;
        return v is null || v.Equals("true", StringComparison.OrdinalIgnoreCase) || v == "1"
            ? true
            : v.Equals("false", StringComparison.OrdinalIgnoreCase) || v == "0"
                ? false
                : throw new UsageException($"--{name}: expected true or false, got '{v}'");
    }

    public string? String(string name)
    {
        consumed.Add(name);
        return values.TryGetValue(name, out var v) ? v : null;
    }

    public string String(string name, string fallback) => String(name) ?? fallback;

    public string Choice(string name, string fallback, params string[] allowed)
    {
        var v = String(name) ?? fallback;
        if (!allowed.Contains(v, StringComparer.OrdinalIgnoreCase))
            throw new UsageException($"--{name}: unknown value '{v}' (expected {string.Join(", ", allowed)})");
        return v.ToLowerInvariant();
    }

    public int? Int(string name, int min, int max = int.MaxValue)
    {
        var v = String(name);
        if (v is null) return null;
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x))
            throw new UsageException($"--{name}: '{v}' is not a whole number");
        if (x < min || x > max)
            throw new UsageException(max == int.MaxValue ? $"--{name}: must be at least {min}, got {x}" : $"--{name}: must lie in {min}..{max}, got {x}");
        return x;
    }

    public long? Long(string name)
    {
        var v = String(name);
        if (v is null) return null;
        return long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long x)
            ? x : throw new UsageException($"--{name}: '{v}' is not a whole number");
    }

    public double? Double(string name, double minExclusive = double.NegativeInfinity)
    {
        var v = String(name);
        if (v is null) return null;
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) || !double.IsFinite(x))
            throw new UsageException($"--{name}: '{v}' is not a number");
        if (!(x > minExclusive)) throw new UsageException($"--{name}: must be greater than {minExclusive.ToString(CultureInfo.InvariantCulture)}, got {v}");
        return x;
    }

    public void EnsureAllConsumed(string command)
    {
        var unknown = values.Keys.FirstOrDefault(k => !consumed.Contains(k));
        if (unknown is not null) throw new UsageException($"unknown option --{unknown} for '{command}' (see noprop {command} --help)");
    }
}
