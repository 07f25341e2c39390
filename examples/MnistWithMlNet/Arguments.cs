namespace NoProp.Examples;

/// <summary>Reads "--name value" pairs over defaults; an unknown name is an error (a typo must not be ignored).</summary>
internal static class Arguments
{
    public static Dictionary<string, string> Parse(string[] args, Dictionary<string, string> defaults)
    {
        var values = new Dictionary<string, string>(defaults);
        for (int i = 0; i < args.Length; i += 2)
        {
            string name = args[i].StartsWith("--", StringComparison.Ordinal) ? args[i][2..] : throw new ArgumentException($"unexpected argument '{args[i]}'");
            if (!defaults.ContainsKey(name)) throw new ArgumentException($"unknown option --{name} (expected --{string.Join(", --", defaults.Keys)})");
            if (i + 1 >= args.Length) throw new ArgumentException($"--{name} needs a value");
            values[name] = args[i + 1];
        }
        return values;
    }
}
