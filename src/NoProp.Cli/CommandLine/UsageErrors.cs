using System.CommandLine;
using System.CommandLine.Parsing;

namespace NoProp.Cli.CommandLine;

/// <summary>
/// Turns System.CommandLine's parse errors into the tool's one-line usage messages (exit code 2): an option given
/// twice, a value the option's parser refused (those messages are the options' own), an option without its value,
/// an unknown option or command, a switch given a value that is not true or false.
/// </summary>
internal static class UsageErrors
{
    public static string Describe(ParseResult result, IReadOnlyList<string> args)
    {
        var command = result.CommandResult.Command;
        var options = command.Options.Concat(result.RootCommandResult.Command.Options.Where(o => o.Recursive)).ToList();

        foreach (var option in options)
            if (args.Count(a => a == option.Name || a.StartsWith(option.Name + "=", StringComparison.Ordinal)) > 1)
                return $"{option.Name} is given twice";

        // The options' own parsers word their errors as "--name: ..." or "--name needs ...".
        var own = result.Errors.FirstOrDefault(e => e.Message.StartsWith("--", StringComparison.Ordinal));
        if (own is not null) return own.Message;

        foreach (var error in result.Errors)
            if (error.SymbolResult is OptionResult { Tokens.Count: 0 } missing && missing.Option.Arity.MinimumNumberOfValues > 0)
                return $"{missing.Option.Name} needs a value";

        foreach (var token in result.UnmatchedTokens)
        {
            if (command is RootCommand)
                return token.StartsWith('-')
                    ? $"unknown option {token} (see noprop --help)"
                    : $"unknown command '{token}' (expected {string.Join(", ", command.Subcommands.Select(c => c.Name).SkipLast(1))} or {command.Subcommands[^1].Name})";
            // --switch=VALUE: System.CommandLine leaves a value that is not a truth value unmatched.
            foreach (var option in options.Where(o => o.Arity.MaximumNumberOfValues == 1 && o.Arity.MinimumNumberOfValues == 0))
                if (args.Contains($"{option.Name}={token}") || args.Contains($"{option.Name}:{token}"))
                    return $"{option.Name}: expected true or false, got '{token}'";
            if (token.StartsWith('-'))
                return $"unknown option {token.Split('=', ':')[0]} for '{command.Name}' (see noprop {command.Name} --help)";
            return $"unexpected argument '{token}' (options start with --)";
        }
        return result.Errors.Count > 0 ? result.Errors[0].Message : "invalid command line";
    }
}
