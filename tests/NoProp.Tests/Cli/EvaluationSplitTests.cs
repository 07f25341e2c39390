using System.Globalization;
using System.Text.Json;

namespace NoProp.Tests.Cli;

/// <summary><c>eval</c> and <c>sweep</c> on the validation split the training run held out (<c>--split validation</c>).</summary>
[TestClass]
public sealed class EvaluationSplitTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    private static string TrainCt(string name, int epochs)
    {
        var dir = Path.Combine(TestSupport.TempDirectory(), name);
        var (code, _, err) = Run([.. new[] { "train", "--method", "ct", "--epochs", epochs.ToString(CultureInfo.InvariantCulture), "--train-size", "256", "--validation-size", "150",
            "--test-size", "40", "--batch-size", "64", "--steps", "4", "--seed", "5", "--output", dir }]);
        Assert.AreEqual(0, code, err);
        return dir;
    }

    private static double Recorded(string dir, string key)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        return json.RootElement.GetProperty(key).GetDouble();
    }

    [TestMethod]
    public void EvalAndSweepOnTheValidationSplitReproduceWhatTrainingRecorded()
    {
        var dir = TrainCt("ct", 2);
        double recorded = Recorded(dir, "validation_accuracy");
        string expected = (recorded * 100).ToString("F2", CultureInfo.InvariantCulture);

        // eval: same 150 images, same noise seed as the kept epoch's validation, hence the same accuracy to the image.
        var (code, output, err) = Run("eval", "--model", dir, "--split", "validation");
        Assert.AreEqual(0, code, err);
        StringAssert.Contains(output, $"validation accuracy: {expected} % (150 images, stochastic inference");
        StringAssert.Contains(output, $"noprop train recorded {expected} % for the kept epoch");

        // The test split stays the default and keeps its wording.
        var (testCode, testOut, testErr) = Run("eval", "--model", dir, "--test-size", "40");
        Assert.AreEqual(0, testCode, testErr);
        StringAssert.Contains(testOut, "test accuracy: ");
        StringAssert.Contains(testOut, "(40 images");

        // sweep at the model's own solver and steps reproduces it too, into files named for the split.
        var (sweepCode, sweepOut, sweepErr) = Run("sweep", "--model", dir, "--split", "validation", "--steps", "4,2");
        Assert.AreEqual(0, sweepCode, sweepErr);
        StringAssert.Contains(sweepOut, "150 validation images");
        var csv = File.ReadAllLines(Path.Combine(dir, "sweep-heun-validation.csv"));
        Assert.AreEqual(recorded, double.Parse(csv[1].Split(',')[1], CultureInfo.InvariantCulture), 1e-12);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "sweep-heun-validation.json")));
        Assert.AreEqual("validation", json.RootElement.GetProperty("split").GetString());
        Assert.AreEqual(150, json.RootElement.GetProperty("validation_size").GetInt32());
        Assert.IsFalse(File.Exists(Path.Combine(dir, "sweep-heun.csv")), "a validation sweep must not take the test sweep's name");

        var (testSweep, _, testSweepErr) = Run("sweep", "--model", dir, "--steps", "2", "--test-size", "40");
        Assert.AreEqual(0, testSweep, testSweepErr);
        using var testJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "sweep-heun.json")));
        Assert.AreEqual("test", testJson.RootElement.GetProperty("split").GetString());
        Assert.AreEqual(40, testJson.RootElement.GetProperty("test_size").GetInt32());
    }

    [TestMethod]
    public void BadSplitRequestsFailClearly()
    {
        var dir = TrainCt("ct-errors", 1);
        var (code, _, err) = Run("eval", "--model", dir, "--split", "train");
        Assert.AreEqual(2, code);
        StringAssert.Contains(err, "--split: unknown value 'train'");
        (code, _, err) = Run("eval", "--model", dir, "--split", "validation", "--test-size", "10");
        Assert.AreEqual(2, code);
        StringAssert.Contains(err, "--test-size applies to --split test");
        (code, _, err) = Run("sweep", "--model", dir, "--split", "validation", "--test-size", "10");
        Assert.AreEqual(2, code);

        File.Delete(Path.Combine(dir, "run.json"));
        (code, _, err) = Run("eval", "--model", dir, "--split", "validation");
        Assert.AreEqual(1, code);
        StringAssert.Contains(err, "run.json not found");
        var (testCode, _, testErr) = Run("eval", "--model", dir, "--test-size", "16");
        Assert.AreEqual(0, testCode, testErr);

        var none = Path.Combine(TestSupport.TempDirectory(), "no-validation");
        var (trainCode, _, trainErr) = Run("train", "--method", "ct", "--epochs", "1", "--train-size", "128", "--validation-size", "0",
            "--test-size", "16", "--batch-size", "64", "--steps", "2", "--output", none);
        Assert.AreEqual(0, trainCode, trainErr);
        (code, _, err) = Run("eval", "--model", none, "--split", "validation");
        Assert.AreEqual(1, code);
        StringAssert.Contains(err, "held out no validation images (--validation-size 0");
    }
}
