using System.CommandLine;
using NoProp.Methods;

namespace NoProp.Cli.CommandLine;

/// <summary>
/// The CLI's view of the method registry's options (<see cref="MethodRegistry"/>, <see cref="MethodOption"/>): the
/// help text of an option that only some methods take, the methods it applies to, and the usage error for an option
/// given to a method that does not take it. Nothing here lists methods: adding a method or an option is a registry edit.
/// </summary>
internal static class MethodOptions
{
    /// <summary>The methods (CLI names) an option applies to; null for an option of every method.</summary>
    public static IReadOnlyList<string>? MethodsOf(string option) =>
        MethodRegistry.FindOption(option) is { } methodOption ? MethodRegistry.Accepting(methodOption).Select(d => d.CliName).ToList() : null;

    public static bool AppliesTo(string option, string method) =>
        MethodRegistry.FindOption(option) is not { } methodOption || MethodRegistry.Parse(method).Accepts(methodOption);

    /// <summary>The usage error for <paramref name="option"/> given to <paramref name="method"/>, or null when it applies.</summary>
    public static string? Misapplied(string option, string method) =>
        MethodRegistry.FindOption(option) is { } methodOption ? MethodRegistry.NotApplicable(methodOption, MethodRegistry.Parse(method)) : null;

    /// <summary>Help of a method option across methods: its text, the methods that take it, each one's default.</summary>
    public static string Describe(MethodOption option) => MethodRegistry.HelpForAll(option);

    /// <summary>Help of a method option for one method: its text, that method's default and what is particular to it.</summary>
    public static string Describe(MethodOption option, IMethodDefinition method) => method.Options.First(u => u.Option == option).HelpText;

    /// <summary>A command-line option's method option, if it is one.</summary>
    public static MethodOption? Of(Option option) => MethodRegistry.FindOption(option.Name);
}
