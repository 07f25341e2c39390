using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace NoProp.Cli.CommandLine;

/// <summary>A command whose help depends on what else is on the command line (<c>noprop train --method ct --help</c>).</summary>
internal interface ITailoredHelp
{
    /// <summary>Called before the help is written: hide what does not apply.</summary>
    void BeforeHelp(ParseResult result);
}

/// <summary>System.CommandLine's help, after the command asking for it had its say (<see cref="ITailoredHelp"/>).</summary>
internal sealed class TailoredHelpAction(HelpAction inner) : SynchronousCommandLineAction
{
    public override bool ClearsParseErrors => true;

    public override int Invoke(ParseResult parseResult)
    {
        if (parseResult.CommandResult.Command is ITailoredHelp tailored) tailored.BeforeHelp(parseResult);
        // The usage line names the program by its file ("NoProp.Cli" under `dotnet NoProp.Cli.dll` and the tool's shim);
        // users type `noprop`.
        var configuration = parseResult.InvocationConfiguration;
        var output = configuration.Output;
        var help = new StringWriter();
        configuration.Output = help;
        int code;
        try { code = inner.Invoke(parseResult); }
        finally { configuration.Output = output; }
        output.Write(help.ToString().Replace($"  {RootCommand.ExecutableName} ", "  noprop "));
        return code;
    }
}
