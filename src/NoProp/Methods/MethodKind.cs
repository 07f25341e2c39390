using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace NoProp.Methods;

/// <summary>
/// A training method's identity: the name model.json stores (<c>"method": "discrete_time"</c>), snake_case. It is an
/// open set: the five built-in methods have their instances here, and a new method declares its own in its folder
/// (<c>public static readonly MethodKind Kind = new("euler_chain");</c>) beside its <see cref="IMethodDefinition"/>, which
/// <see cref="MethodRegistry.All"/> lists. Two kinds are equal when their names are. Nothing switches on a kind: what a
/// method is and does is asked of its definition (<see cref="MethodRegistry.Get(MethodKind)"/>).
/// </summary>
[JsonConverter(typeof(MethodKindJsonConverter))]
public sealed partial record MethodKind
{
    /// <summary>A method's identity; <paramref name="name"/> is what model.json stores: lower-case snake_case ("euler_chain").</summary>
    /// <exception cref="ArgumentException">The name is not lower-case snake_case.</exception>
    public MethodKind(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!NamePattern().IsMatch(name))
            throw new ArgumentException($"a method's name is lower-case snake_case (as model.json stores it, e.g. \"discrete_time\"), got '{name}'", nameof(name));
        Name = name;
    }

    /// <summary>The name in model.json and in ML.NET zips ("discrete_time").</summary>
    public string Name { get; }

    /// <summary>NoProp-DT: T blocks, each trained alone to denoise a noisy label embedding (§2.3, Algorithm 1).</summary>
    public static MethodKind DiscreteTime { get; } = new("discrete_time");

    /// <summary>NoProp-CT: one network û(z_t, x, t), learnable noise schedule, ODE inference (Eq. 9, Algorithm 2).</summary>
    public static MethodKind ContinuousTime { get; } = new("continuous_time");

    /// <summary>NoProp-FM: flow matching of the label embedding (Eqs. 10–13, Algorithm 3).</summary>
    public static MethodKind FlowMatching { get; } = new("flow_matching");

    /// <summary>The back-propagation baseline (§4, Eqs. 17–19): the DT blocks chained and trained end to end.</summary>
    public static MethodKind Backprop { get; } = new("backprop");

    /// <summary>The adjoint baseline: the CT network as a neural ODE trained by the adjoint method (Chen et al. 2018).</summary>
    public static MethodKind Adjoint { get; } = new("adjoint");

    public override string ToString() => Name;

    [GeneratedRegex("^[a-z][a-z0-9]*(_[a-z0-9]+)*$")]
    private static partial Regex NamePattern();
}

/// <summary>
/// Writes a <see cref="MethodKind"/> as its name and reads a name of a registered method back (any case, as the enum
/// converter that wrote the files before read them); another name is an error naming it and the known ones.
/// </summary>
internal sealed class MethodKindJsonConverter : JsonConverter<MethodKind>
{
    public override bool HandleNull => true;

    public override MethodKind Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
            throw new JsonException($"the method is a name ({MethodRegistry.KnownNames}), got {reader.TokenType}");
        var name = reader.GetString()!;
        return MethodRegistry.TryGetByName(name, out var definition)
            ? definition.Kind
            : throw new JsonException($"unknown method '{name}' (known: {MethodRegistry.KnownNames})");
    }

    public override void Write(Utf8JsonWriter writer, MethodKind value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(value);
        writer.WriteStringValue(value.Name);
    }
}
