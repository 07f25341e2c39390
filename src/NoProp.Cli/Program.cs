using NoProp.Cli.Commands;
using NoProp.Runtime;

namespace NoProp.Cli;

/// <summary>
/// The <c>noprop</c> command-line tool. Exit codes: 0 success, 1 the work failed (bad data, I/O, diverged
/// training), 2 bad usage, 130 interrupted (a checkpoint was saved). Results go to stdout, progress and
/// errors to stderr.
/// </summary>
public static class Program
{
    public const string Usage = """
        noprop: train and evaluate NoProp models (Li, Teh & Pascanu, arXiv 2503.24322)

        usage:
          noprop train --method dt [options]       train a model (see noprop train --help)
          noprop eval --model DIR [options]        evaluate a trained model (see noprop eval --help)
          noprop sweep --model DIR [options]       accuracy and time against ODE solver steps (CT, FM, adjoint)
          noprop plot --runs DIR... --output DIR   PNG charts of runs (accuracy against time, losses, sweeps, schedule)
          noprop experiment --config FILE.json     a grid of runs evaluated R times: results.md/.csv like the paper's Table 1
          noprop download --dataset NAME           fetch fashion-mnist, cifar10 or cifar100 (checksums verified)
          noprop export-images --output DIR        write a data set as PNG files, one folder per class

        global options: --verbose (stack traces on errors), --help
        """;

    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        SkiaImageCodec.Register();
        bool verbose = args.Contains("--verbose");
        args = args.Where(a => a != "--verbose").ToArray();
        try
        {
            if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
            {
                stdout.Write(Usage);
                return args.Length == 0 ? 2 : 0;
            }
            var rest = args[1..];
            return args[0] switch
            {
                "train" => TrainCommand.Run(rest, stdout, stderr),
                "eval" => EvalCommand.Run(rest, stdout, stderr),
                "sweep" => SweepCommand.Run(rest, stdout, stderr),
                "download" => DownloadCommand.Run(rest, stdout, stderr),
                "export-images" => ExportImagesCommand.Run(rest, stdout, stderr),
                "plot" => PlotCommand.Run(rest, stdout, stderr),
                "experiment" => ExperimentCommand.Run(rest, stdout, stderr),
                _ => throw new UsageException($"unknown command '{args[0]}' (expected train, eval, sweep, plot, experiment, download or export-images)"),
            };
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
