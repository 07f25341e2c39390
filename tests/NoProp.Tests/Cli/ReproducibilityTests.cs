using System.Text.Json;
using System.Text.Json.Nodes;
using NoProp.ML.Tests;

namespace NoProp.Tests.Cli;

/// <summary>
/// Reproducibility across processes (issue 10): the CLI runs as child processes, so any process-dependent
/// randomness (HashCode, an unseeded generator, a generator state that is not restored) shows up as a difference.
/// </summary>
[TestClass]
public sealed class ReproducibilityTests
{
    private static readonly string[] Tiny =
    [
        "train", "--method", "dt", "--train-size", "512", "--validation-size", "256", "--test-size", "256",
        "--blocks", "2", "--batch-size", "64", "--threads", "1",
    ];

    private static JsonObject Train(string output, params string[] extra)
    {
        var (code, _, err) = CliProcess.Run([.. Tiny, "--output", output, .. extra]);
        Assert.AreEqual(0, code, err);
        return Metrics(output);
    }

    private static JsonObject Metrics(string output) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")))!.AsObject();

    /// <summary>What must not depend on the process: every loss and accuracy, per epoch and final, and the chosen epoch.</summary>
    private static string Outcome(JsonObject m)
    {
        var history = m["history"]!.AsArray().Select(e => new JsonObject
        {
            ["epoch"] = e!["epoch"]!.DeepClone(),
            ["losses"] = e["losses"]!.DeepClone(),
            ["validation_accuracy"] = e["validation_accuracy"]!.DeepClone(),
        });
        var outcome = new JsonObject
        {
            ["best_epoch"] = m["best_epoch"]!.DeepClone(),
            ["validation_accuracy"] = m["validation_accuracy"]!.DeepClone(),
            ["test_accuracy"] = m["test_accuracy"]!.DeepClone(),
            ["history"] = new JsonArray([.. history]),
        };
        return outcome.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    [TestMethod]
    public void TheSameCommandInTwoProcessesAndAResumeInAThirdGiveIdenticalMetrics()
    {
        var root = TestSupport.TempDirectory();
        var first = Outcome(Train(Path.Combine(root, "a"), "--epochs", "2", "--seed", "7"));
        var second = Outcome(Train(Path.Combine(root, "b"), "--epochs", "2", "--seed", "7"));
        Assert.AreEqual(first, second, "the same command in two processes must give the same losses and accuracies");

        // One epoch, then --resume --epochs 2 in a new process, equals the two uninterrupted epochs.
        var resumed = Path.Combine(root, "c");
        Train(resumed, "--epochs", "1", "--seed", "7");
        var (code, _, err) = CliProcess.Run("train", "--resume", resumed, "--epochs", "2");
        Assert.AreEqual(0, code, err);
        Assert.AreEqual(first, Outcome(Metrics(resumed)), "1 epoch + --resume --epochs 2 must equal 2 epochs in one go");

        // And the seed matters (the comparison above is not between two constant outputs).
        var other = Metrics(Path.Combine(root, "a"));
        var otherSeed = Train(Path.Combine(root, "d"), "--epochs", "1", "--seed", "8");
        Assert.AreNotEqual(
            other["history"]![0]!["losses"]!["total"]!.GetValue<double>(),
            otherSeed["history"]![0]!["losses"]!["total"]!.GetValue<double>(),
            "another seed must give another run");
    }
}
