namespace NoProp.Tests.Cli;

/// <summary>The System.CommandLine front end: help from the option definitions, per-method help, exit codes, completion.</summary>
[TestClass]
public sealed class CommandLineTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    private static string[] HelpOptions(string help) =>
        help.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("--", StringComparison.Ordinal)).Select(l => l.Split(' ', 2)[0]).ToArray();

    [TestMethod]
    public void TrainHelpForAMethodListsOnlyItsOptions()
    {
        var (code, all, _) = Run("train", "--help");
        Assert.AreEqual(0, code);
        var every = HelpOptions(all);
        foreach (var option in new[] { "--blocks", "--schedule", "--solver", "--weighting", "--flow-sigma", "--eta", "--epochs", "--resume" })
            CollectionAssert.Contains(every, option, "train --help lists every method's options");

        var (ctCode, ct, _) = Run("train", "--method", "ct", "--help");
        Assert.AreEqual(0, ctCode);
        var ctOptions = HelpOptions(ct);
        foreach (var option in new[] { "--solver", "--steps", "--weighting", "--gamma-max", "--eta", "--epochs", "--output" })
            CollectionAssert.Contains(ctOptions, option);
        foreach (var option in new[] { "--blocks", "--schedule", "--flow-sigma" })
            CollectionAssert.DoesNotContain(ctOptions, option, "ct's help must not list " + option);
        StringAssert.Contains(ct, "NoProp-CT");

        var fmOptions = HelpOptions(Run("train", "--method", "fm", "--help").Out);
        CollectionAssert.Contains(fmOptions, "--flow-sigma");
        CollectionAssert.DoesNotContain(fmOptions, "--eta");
        CollectionAssert.DoesNotContain(fmOptions, "--weighting");

        var dtOptions = HelpOptions(Run("train", "--method", "dt", "--help").Out);
        CollectionAssert.Contains(dtOptions, "--blocks");
        CollectionAssert.Contains(dtOptions, "--schedule");
        CollectionAssert.DoesNotContain(dtOptions, "--solver");
        var backpropOptions = HelpOptions(Run("train", "--method", "backprop", "--help").Out);
        CollectionAssert.Contains(backpropOptions, "--blocks");
        CollectionAssert.DoesNotContain(backpropOptions, "--schedule");
    }

    [TestMethod]
    [DataRow("eval", "--model", "--split", "--runs", "--no-cache")]
    [DataRow("sweep", "--model", "--steps", "--split", "--output")]
    [DataRow("plot", "--runs", "--output", "--title", "--verbose")]
    [DataRow("experiment", "--config", "--cell", "--list", "--output")]
    [DataRow("download", "--dataset", "--mirror", "--data-dir", "--verbose")]
    [DataRow("export-images", "--dataset", "--split", "--limit", "--output")]
    public void EveryCommandHasGeneratedHelp(string command, string a, string b, string c, string d)
    {
        var (code, output, err) = Run(command, "--help");
        Assert.AreEqual(0, code, err);
        var options = HelpOptions(output);
        foreach (var option in new[] { a, b, c, d }) CollectionAssert.Contains(options, option, $"{command} --help");
        StringAssert.Contains(output, $"\n  noprop {command} [options]", "the usage line names the program as users type it");
    }

    [TestMethod]
    public void NoArgumentsPrintsTheCommandsAndExitsWith2()
    {
        var (code, output, _) = Run();
        Assert.AreEqual(2, code);
        foreach (var command in new[] { "train", "eval", "sweep", "plot", "experiment", "download", "export-images" })
            StringAssert.Contains(output, command);
        Assert.AreEqual(0, Run("--help").Code);
        Assert.AreEqual(0, Run("help").Code);
    }

    [TestMethod]
    [DataRow(new[] { "train", "--method", "dt", "--epochs", "1", "--epochs", "2" }, "--epochs is given twice")]
    [DataRow(new[] { "train", "--method", "dt", "stray" }, "unexpected argument 'stray'")]
    [DataRow(new[] { "train", "--method", "dt", "-x" }, "unknown option -x for 'train'")]
    [DataRow(new[] { "train", "--method", "dt", "--lr", "--epochs", "2" }, "--lr needs a value")]
    [DataRow(new[] { "train", "--method", "dt", "--seed", "1.5" }, "--seed: '1.5' is not a whole number")]
    [DataRow(new[] { "train", "--method", "dt", "--lr", "0" }, "--lr: must be greater than 0, got 0")]
    [DataRow(new[] { "train", "--method", "dt", "--threads", "5000" }, "--threads: must lie in 1..1024, got 5000")]
    [DataRow(new[] { "train", "--method", "fm", "--flow-sigma", "0.1", "--gamma-max", "3" }, "--gamma-max applies to --method ct, not --method fm")]
    [DataRow(new[] { "train", "--method", "ct", "--flow-sigma", "0.1" }, "--flow-sigma applies to --method fm, not --method ct")]
    [DataRow(new[] { "--frobnicate" }, "unknown option --frobnicate")]
    [DataRow(new[] { "eval", "--model", "m", "--verbose", "--no-cache=perhaps" }, "--no-cache: expected true or false, got 'perhaps'")]
    public void ParseErrorsAreUsageErrors(string[] args, string message)
    {
        var (code, output, err) = Run(args);
        Assert.AreEqual(2, code, err);
        StringAssert.Contains(err, message);
        Assert.AreEqual("", output, "usage errors go to stderr only");
        Assert.AreEqual(1, err.TrimEnd().Split('\n').Length, "one line on stderr: " + err);
    }

    [TestMethod]
    public void OptionsCompleteOnTab()
    {
        // dotnet-suggest asks the tool itself through the [suggest] directive.
        var (code, output, _) = Run("[suggest:12]", "train --solv");
        Assert.AreEqual(0, code);
        StringAssert.Contains(output, "--solver");
        var (_, values, _) = Run("[suggest:16]", "train --method f");
        CollectionAssert.Contains(values.Split('\n').Select(l => l.Trim()).ToArray(), "fm");
    }
}
