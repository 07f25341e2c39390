using System.Text.Json;
using System.Text.RegularExpressions;

namespace NoProp.Tests.Cli;

/// <summary><c>--inference-precision</c> of noprop train and noprop eval.</summary>
[TestClass]
public sealed class InferencePrecisionCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    [TestMethod]
    public void TrainValidatesAndTestsInBFloat16AndEvalFollows()
    {
        var dir = Path.Combine(TestSupport.TempDirectory(), "run");
        var (code, output, err) = Run("train", "--method", "dt", "--epochs", "1", "--blocks", "2", "--train-size", "128",
            "--validation-size", "64", "--test-size", "64", "--batch-size", "32", "--output", dir, "--seed", "3", "--inference-precision", "bf16");
        Assert.AreEqual(0, code, err);
        StringAssert.Contains(output, "test accuracy:");
        using (var run = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "run.json"))))
            Assert.AreEqual("bf16", run.RootElement.GetProperty("inference_precision").GetString());
        using (var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json"))))
            Assert.AreEqual("bf16", metrics.RootElement.GetProperty("inference_precision").GetString());

        // eval says which precision it used; fp32 (the default) says nothing.
        var (evalCode, evalOut, evalErr) = Run("eval", "--model", dir, "--test-size", "64", "--inference-precision", "bf16");
        Assert.AreEqual(0, evalCode, evalErr);
        StringAssert.Matches(evalOut, new Regex(@"test accuracy: \d+\.\d\d % \(64 images, stochastic inference, bf16 convolutions, noise seed 1"));
        var (fp32Code, fp32Out, fp32Err) = Run("eval", "--model", dir, "--test-size", "64");
        Assert.AreEqual(0, fp32Code, fp32Err);
        Assert.IsFalse(fp32Out.Contains("convolutions"), fp32Out);

        // A resumed run keeps the precision its validations used.
        var (resumeCode, _, resumeErr) = Run("train", "--resume", dir, "--epochs", "2", "--inference-precision", "fp32");
        Assert.AreEqual(2, resumeCode, resumeErr);
        StringAssert.Contains(resumeErr, "--inference-precision fp32: a resumed run keeps the precision it validated with (bf16)");
    }

    [TestMethod]
    public void AFloat32RunFolderDoesNotMentionThePrecision()
    {
        var request = new NoProp.Training.Runs.TrainRequest { Method = "dt" };
        var json = NoProp.Training.Runs.RunFile.ToJson(request);
        Assert.IsFalse(json.Contains("inference_precision"), "run folders from before the option stay byte-identical");
    }

    [TestMethod]
    public void BFloat16WithAResNetBackboneStopsBeforeTraining()
    {
        var dir = Path.Combine(TestSupport.TempDirectory(), "run");
        var (code, _, err) = Run("train", "--method", "fm", "--backbone", "resnet18", "--epochs", "1", "--train-size", "32",
            "--validation-size", "16", "--test-size", "16", "--output", dir, "--inference-precision", "bf16");
        Assert.AreEqual(1, code, err);
        StringAssert.Contains(err, "--inference-precision bf16: only the paper's conv module computes in bfloat16; this model's backbone is resnet18");
        Assert.IsFalse(File.Exists(Path.Combine(dir, "metrics.csv")), "no epoch may run");
    }
}
