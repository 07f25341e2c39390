using System.Text.Json;

namespace NoProp.Tests.Cli;

[TestClass]
public sealed class EarlyStoppingCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    [TestMethod]
    [DataRow(new[] { "train", "--method", "dt", "--early-stopping-patience", "0" }, "--early-stopping-patience: must be at least 1, got 0")]
    [DataRow(new[] { "train", "--method", "dt", "--early-stopping-min-delta", "0.01" }, "--early-stopping-min-delta applies with --early-stopping-patience")]
    [DataRow(new[] { "train", "--method", "dt", "--early-stopping-patience", "2", "--early-stopping-min-delta", "1.5" }, "--early-stopping-min-delta: an accuracy gain below 1, got 1.5")]
    [DataRow(new[] { "train", "--method", "dt", "--early-stopping-patience", "2", "--validation-size", "0" }, "--early-stopping-patience needs a validation split")]
    public void BadEarlyStoppingOptionsExitWithCode2(string[] args, string message)
    {
        var (code, _, err) = Run(args);
        Assert.AreEqual(2, code, err);
        StringAssert.Contains(err, message);
    }

    [TestMethod]
    public void TrainingStopsEarlyAndSaysSoInMetricsJson()
    {
        var dir = TestSupport.TempDirectory();
        var (code, _, err) = Run("train", "--method", "dt", "--blocks", "1", "--epochs", "6", "--batch-size", "16",
            "--train-size", "64", "--validation-size", "32", "--test-size", "16",
            "--early-stopping-patience", "1", "--early-stopping-min-delta", "0.99", "--output", dir);
        Assert.AreEqual(0, code, err);
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        Assert.AreEqual(2, metrics.RootElement.GetProperty("epochs_trained").GetInt32());
        Assert.IsTrue(metrics.RootElement.GetProperty("stopped_early").GetBoolean());
        Assert.AreEqual(6, metrics.RootElement.GetProperty("epochs").GetInt32(), "the planned epochs");
    }
}
