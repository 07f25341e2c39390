using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using NoProp.Cli.CommandLine;
using NoProp.Cli.Commands;
using NoProp.Runtime;

namespace NoProp.Cli;

/// <summary>
/// The <c>noprop</c> command-line tool, on System.CommandLine: every command's options, their parsing and their help
/// come from one definition (the command classes under Commands/). Exit codes: 0 success, 1 the work failed (bad data,
/// I/O, diverged training), 2 bad usage (System.CommandLine's own parse errors included), 130 interrupted (a
/// checkpoint was saved). Results go to stdout, progress and errors to stderr. Tab completion: the
/// <c>[suggest]</c> directive, for dotnet-suggest (see the README).
/// </summary>
public static class Program
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>The command tree; built per call, since tailored help changes what it shows.</summary>
    internal static RootCommand CreateRoot()
    {
        var root = new RootCommand("noprop: train and evaluate NoProp models (Li, Teh & Pascanu, arXiv 2503.24322)")
        {
            new TrainCommand(),
            new EvalCommand(),
            new SweepCommand(),
            new PlotCommand(),
            new ExperimentCommand(),
            new DownloadCommand(),
            new ExportImagesCommand(),
        };
        root.Options.Add(new Option<bool>("--verbose") { Description = "stack traces on errors", Recursive = true });
        var help = root.Options.OfType<HelpOption>().Single();
        help.Action = new TailoredHelpAction((HelpAction)help.Action!);
        return root;
    }

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        bool verbose = args.Contains("--verbose");
        var invocation = new InvocationConfiguration
        {
            Output = stdout,
            Error = stderr,
            EnableDefaultExceptionHandler = false,   // errors are reported below, with the tool's exit codes
            ProcessTerminationTimeout = null,        // Ctrl+C is the commands' own (train saves a checkpoint)
        };
        try
        {
            var root = CreateRoot();
            if (args.Length == 0 || args is ["help"])
            {
                root.Parse(["--help"]).Invoke(invocation);
                return args.Length == 0 ? 2 : 0;
            }
            var result = root.Parse(args);
            if (result.Errors.Count > 0 && result.Action is ParseErrorAction)
                throw new UsageException(UsageErrors.Describe(result, args));
            return result.Invoke(invocation);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"noprop: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("noprop: interrupted");
            return 130;
        }
        catch (NoPropException e)
        {
            stderr.WriteLine($"noprop: {e.Message}");
            if (verbose) stderr.WriteLine(e);
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"noprop: {e.Message}");
            if (verbose) stderr.WriteLine(e);
            return 1;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"noprop: internal error: {e.GetType().Name}: {e.Message.Split('\n')[0]} (run with --verbose for details)");
            if (verbose) stderr.WriteLine(e);
            return 1;
        }
    }
}
