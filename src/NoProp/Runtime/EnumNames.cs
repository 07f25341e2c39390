using System.Reflection;

namespace NoProp.Runtime;

/// <summary>
/// The spelling of an enum value on the command line and in the files a run writes (run.json, model.json, experiment
/// configurations), declared on the value itself; <see cref="EnumNames{T}"/> reads it. Aliases are accepted when
/// parsing and never written.
/// </summary>
[AttributeUsage(AttributeTargets.Field)]
public sealed class NameAttribute(string name, params string[] aliases) : Attribute
{
    public string Name { get; } = name;
    public IReadOnlyList<string> Aliases { get; } = aliases;
}

/// <summary>What an enum's values are called in an error message: "unknown <c>backbone</c> 'x' (expected ...)".</summary>
[AttributeUsage(AttributeTargets.Enum)]
public sealed class NamedAsAttribute(string noun) : Attribute
{
    public string Noun { get; } = noun;
}

/// <summary>
/// The names of an option's values, one table per enum built from its <see cref="NameAttribute"/>s: the list a
/// command-line option offers, the name written for a value, and the parse (case-insensitive, surrounding spaces
/// ignored) that rejects an unknown name with the allowed ones.
/// </summary>
public static class EnumNames<T> where T : struct, Enum
{
    private static readonly (T Value, string Name, string[] Aliases)[] Table = Build();

    /// <summary>The names, in the enum's declaration order.</summary>
    public static IReadOnlyList<string> Names { get; } = Table.Select(e => e.Name).ToArray();

    /// <summary>What the values are called in messages (<see cref="NamedAsAttribute"/>).</summary>
    public static string Noun { get; } = typeof(T).GetCustomAttribute<NamedAsAttribute>()?.Noun ?? typeof(T).Name;

    public static string NameOf(T value)
    {
        foreach (var entry in Table)
            if (EqualityComparer<T>.Default.Equals(entry.Value, value)) return entry.Name;
        throw new ArgumentOutOfRangeException(nameof(value), value, $"not a {Noun}");
    }

    public static bool TryParse(string? name, out T value)
    {
        var key = name?.Trim();
        foreach (var entry in Table)
            if (string.Equals(entry.Name, key, StringComparison.OrdinalIgnoreCase)
                || entry.Aliases.Any(a => string.Equals(a, key, StringComparison.OrdinalIgnoreCase)))
            {
                value = entry.Value;
                return true;
            }
        value = default;
        return false;
    }

    /// <summary>The value named <paramref name="name"/>; a <see cref="NoPropException"/> naming the allowed names otherwise.</summary>
    public static T Parse(string? name) => TryParse(name, out var value)
        ? value
        : throw new NoPropException($"unknown {Noun} '{name}' (expected {EnumNames.Join(Names, "or")})");

    private static (T, string, string[])[] Build()
    {
        var table = new List<(T, string, string[])>();
        foreach (var field in typeof(T).GetFields(BindingFlags.Public | BindingFlags.Static).OrderBy(f => f.MetadataToken))
        {
            var attribute = field.GetCustomAttribute<NameAttribute>()
                ?? throw new InvalidOperationException($"{typeof(T).Name}.{field.Name} has no [Name] attribute");
            table.Add(((T)field.GetValue(null)!, attribute.Name, attribute.Aliases.ToArray()));
        }
        return table.ToArray();
    }
}

public static class EnumNames
{
    /// <summary>The name of <paramref name="value"/> on the command line and in run files.</summary>
    public static string ToCliName<T>(this T value) where T : struct, Enum => EnumNames<T>.NameOf(value);

    /// <summary>"a", "a or b", "a, b or c" (with "and" for a list of things that all apply).</summary>
    public static string Join(IReadOnlyList<string> names, string conjunction) => names.Count switch
    {
        0 => "nothing",
        1 => names[0],
        _ => $"{string.Join(", ", names.Take(names.Count - 1))} {conjunction} {names[^1]}",
    };
}
