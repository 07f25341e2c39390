using System.Text.Json;
using NoProp.Cli;

namespace NoProp.Tests.Cli;

[TestClass]
public sealed class CliTests
{
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [TestMethod]
    [DataRow(new[] { "train", "--method", "dt", "--epochs", "-3" }, "--epochs: must be at least 1, got -3")]
    [DataRow(new[] { "train", "--method", "bogus" }, "--method: unknown value 'bogus'")]
    [DataRow(new[] { "train", "--method", "dt", "--frobnicate", "1" }, "unknown option --frobnicate")]
    [DataRow(new[] { "train", "--epochs", "2" }, "--method is required")]
    [DataRow(new[] { "train", "--method", "dt", "--embedding", "wavelet" }, "--embedding: unknown value 'wavelet'")]
    [DataRow(new[] { "train", "--method", "dt", "--batch-size", "many" }, "--batch-size: 'many' is not a whole number")]
    [DataRow(new[] { "train", "--method", "dt", "--embedding-dim", "5" }, "--embedding-dim applies to --embedding learned only")]
    [DataRow(new[] { "train", "--method", "dt", "--lr" }, "--lr needs a value")]
    [DataRow(new[] { "eval" }, "--model is required")]
    [DataRow(new[] { "train", "--method", "dt", "--dataset", "imagenet" }, "--dataset: unknown dataset 'imagenet'")]
    [DataRow(new[] { "train", "--method", "dt", "--label", "coarse" }, "--label applies to --dataset cifar100")]
    [DataRow(new[] { "train", "--method", "dt", "--image-size", "32" }, "--image-size and --channels apply to --dataset folder:PATH")]
    [DataRow(new[] { "train", "--method", "dt", "--dataset", "folder:/x", "--image-size", "3x" }, "--image-size: '3x' is not N or HxW")]
    [DataRow(new[] { "train", "--method", "dt", "--crop-padding", "2" }, "--crop-padding applies with --augment")]
    [DataRow(new[] { "train", "--method", "dt", "--download" }, "--download applies to fashion-mnist, cifar10 and cifar100, not mnist")]
    [DataRow(new[] { "download", "--dataset", "mnist" }, "nothing to download")]
    [DataRow(new[] { "download", "--dataset", "cifar10", "--mirror", "not a url" }, "--mirror: 'not a url' is not an absolute URL")]
    [DataRow(new[] { "train", "--method", "ct", "--blocks", "4" }, "--blocks applies to --method dt and backprop, not --method ct")]
    [DataRow(new[] { "train", "--method", "dt", "--solver", "rk4" }, "--solver applies to --method ct, fm and adjoint, not --method dt")]
    [DataRow(new[] { "train", "--method", "fm", "--eta", "2" }, "--eta applies to --method dt and ct, not --method fm")]
    [DataRow(new[] { "train", "--method", "fm", "--weighting", "constant" }, "--weighting applies to --method ct, not --method fm")]
    [DataRow(new[] { "train", "--method", "ct", "--solver", "leapfrog" }, "--solver: unknown value 'leapfrog'")]
    [DataRow(new[] { "train", "--method", "ct", "--backbone", "vgg" }, "--backbone: unknown value 'vgg'")]
    [DataRow(new[] { "sweep", "--model", "x", "--steps", "2,zero" }, "--steps: 'zero' is not a positive whole number")]
    [DataRow(new[] { "frobnicate" }, "unknown command 'frobnicate'")]
    [DataRow(new[] { "train", "--method", "backprop", "--solver", "rk4" }, "--solver applies to --method ct, fm and adjoint, not --method backprop")]
    [DataRow(new[] { "train", "--method", "adjoint", "--blocks", "4" }, "--blocks applies to --method dt and backprop, not --method adjoint")]
    [DataRow(new[] { "train", "--method", "backprop", "--eta", "0.1" }, "--eta applies to --method dt and ct, not --method backprop")]
    [DataRow(new[] { "train", "--method", "dt", "--track-test=maybe" }, "--track-test: expected true or false, got 'maybe'")]
    [DataRow(new[] { "experiment" }, "--config is required")]
    [DataRow(new[] { "experiment", "--config", "x.json", "--list", "--cell", "a" }, "--list and --cell cannot be combined")]
    [DataRow(new[] { "plot", "--output", "charts" }, "--runs is required")]
    [DataRow(new[] { "plot", "--runs", "--output", "charts" }, "--runs needs at least one run folder")]
    [DataRow(new[] { "plot", "--runs", "a" }, "--output is required")]
    [DataRow(new[] { "plot", "--runs", "a", "--output", "c", "--colour", "red" }, "unknown option --colour for 'plot'")]
    [DataRow(new[] { "eval", "--model", "m", "--per-block=often" }, "--per-block: expected true or false, got 'often'")]
    [DataRow(new[] { "train", "--method", "backprop", "--schedule", "parallel" }, "--schedule applies to --method dt, not --method backprop")]
    [DataRow(new[] { "train", "--method", "dt", "--schedule", "random" }, "--schedule: unknown value 'random'")]
    [DataRow(new[] { "train", "--method", "ct", "--inference", "deterministic" }, "--inference applies to --method dt, not --method ct")]
    [DataRow(new[] { "train", "--method", "dt", "--inference", "mean" }, "--inference: unknown value 'mean'")]
    [DataRow(new[] { "eval", "--model", "m", "--deterministic", "--stochastic" }, "--deterministic and --stochastic exclude each other")]
    [DataRow(new[] { "train", "--method", "dt", "--epochs", "2", "--warmup-epochs", "2" }, "--warmup-epochs 2: must be shorter than the run (--epochs 2)")]
    [DataRow(new[] { "train", "--method", "dt", "--lr-schedule", "step" }, "--lr-schedule: unknown value 'step'")]
    [DataRow(new[] { "eval", "--model", "m", "--inference-batch-size", "0" }, "--inference-batch-size: must be at least 1, got 0")]
    [DataRow(new[] { "eval", "--model", "m", "--inference-precision", "fp16" }, "--inference-precision: unknown value 'fp16' (expected fp32, bf16)")]
    [DataRow(new[] { "train", "--method", "dt", "--inference-precision", "int8" }, "--inference-precision: unknown value 'int8' (expected fp32, bf16)")]
    public void BadUsageExitsWithCode2AndOneLine(string[] args, string message)
    {
        var (code, _, err) = Run(args);
        Assert.AreEqual(2, code, err);
        StringAssert.Contains(err, message);
        Assert.AreEqual(1, err.TrimEnd().Split('\n').Length, "one line on stderr: " + err);
    }

    [TestMethod]
    public void AResumedRunKeepsItsInferenceRule()
    {
        var dir = TestSupport.TempDirectory();
        NoProp.Training.Runs.RunFile.Save(new NoProp.Training.Runs.TrainRequest { Method = "dt" }, dir);
        var (code, _, err) = Run("train", "--resume", dir, "--inference", "deterministic");
        Assert.AreEqual(2, code, err);
        StringAssert.Contains(err, "--inference deterministic: a resumed run keeps the inference rule it was trained with (stochastic)");
    }

    [TestMethod]
    public void MissingModelFolderExitsWithCode1()
    {
        var (code, _, err) = Run("eval", "--model", "/nonexistent/model-dir");
        Assert.AreEqual(1, code);
        StringAssert.Contains(err, "--model /nonexistent/model-dir: folder not found");
    }

    [TestMethod]
    public void CudaOnACpuBuildFailsClearly()
    {
        var dir = TestSupport.TempDirectory();
        var (code, _, err) = Run("train", "--method", "dt", "--device", "cuda", "--output", dir);
        Assert.AreEqual(1, code);
        StringAssert.Contains(err, "--device cuda: no CUDA device is available");
    }

    [TestMethod]
    public void TrainThenEvalWritesTheAgreedMetrics()
    {
        var dir = Path.Combine(TestSupport.TempDirectory(), "run");
        var (code, output, err) = Run("train", "--method", "dt", "--epochs", "1", "--blocks", "2", "--train-size", "128",
            "--validation-size", "64", "--test-size", "64", "--batch-size", "32", "--embedding", "learned", "--embedding-dim", "12",
            "--output", dir, "--seed", "3");
        Assert.AreEqual(0, code, err);
        StringAssert.Contains(output, "test accuracy:");
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        var root = json.RootElement;
        Assert.AreEqual("dt", root.GetProperty("method").GetString());
        Assert.AreEqual("mnist", root.GetProperty("dataset").GetString());
        Assert.AreEqual(1, root.GetProperty("epochs").GetInt32());
        Assert.AreEqual(12, root.GetProperty("embedding_dim").GetInt32());
        Assert.AreEqual(128, root.GetProperty("train_size").GetInt32());
        foreach (var key in new[] { "test_accuracy", "validation_accuracy" })
        {
            double v = root.GetProperty(key).GetDouble();
            Assert.IsTrue(v >= 0 && v <= 1, $"{key} = {v} must be a fraction");
        }
        Assert.IsTrue(root.GetProperty("train_seconds").GetDouble() > 0);
        Assert.IsTrue(root.GetProperty("test_inference_seconds").GetDouble() > 0);
        Assert.IsTrue(root.GetProperty("peak_memory_mb").GetDouble() > 50);
        Assert.AreEqual(2, File.ReadAllLines(Path.Combine(dir, "metrics.csv")).Length);

        var (evalCode, evalOut, evalErr) = Run("eval", "--model", dir, "--test-size", "64", "--runs", "3");
        Assert.AreEqual(0, evalCode, evalErr);
        StringAssert.Matches(evalOut, new System.Text.RegularExpressions.Regex(@"test accuracy: \d+\.\d\d ± \d+\.\d\d % \(mean ± standard error over 3 stochastic runs"));

        // A second train into the same folder must not overwrite the run.
        var (again, _, againErr) = Run("train", "--method", "dt", "--epochs", "1", "--output", dir);
        Assert.AreEqual(1, again);
        StringAssert.Contains(againErr, "already holds a run");

        // Resuming a finished run with more epochs continues it.
        var (resumeCode, _, resumeErr) = Run("train", "--resume", dir, "--epochs", "2");
        Assert.AreEqual(0, resumeCode, resumeErr);
        Assert.AreEqual(3, File.ReadAllLines(Path.Combine(dir, "metrics.csv")).Length);
        using var json2 = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        Assert.AreEqual(2, json2.RootElement.GetProperty("epochs").GetInt32());
    }

    [TestMethod]
    public void SweepWritesOneRowPerStepCount()
    {
        var dir = Path.Combine(TestSupport.TempDirectory(), "fm");
        var (code, _, err) = Run("train", "--method", "fm", "--epochs", "1", "--train-size", "64", "--validation-size", "32",
            "--test-size", "32", "--batch-size", "32", "--steps", "4", "--output", dir);
        Assert.AreEqual(0, code, err);
        var (sweepCode, output, sweepErr) = Run("sweep", "--model", dir, "--solver", "midpoint", "--steps", "2,3,5", "--test-size", "16");
        Assert.AreEqual(0, sweepCode, sweepErr);
        StringAssert.Contains(output, "midpoint");
        var csv = File.ReadAllLines(Path.Combine(dir, "sweep-midpoint.csv"));
        Assert.AreEqual("steps,accuracy,inference_seconds,function_evaluations_per_batch", csv[0]);
        CollectionAssert.AreEqual(new[] { "2", "3", "5" }, csv.Skip(1).Select(l => l.Split(',')[0]).ToArray());
        CollectionAssert.AreEqual(new[] { "4", "6", "10" }, csv.Skip(1).Select(l => l.Split(',')[3]).ToArray(), "midpoint: 2 evaluations per step");
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "sweep-midpoint.json")));
        Assert.AreEqual(3, json.RootElement.GetProperty("results").GetArrayLength());
        Assert.IsFalse(json.RootElement.TryGetProperty("inference_precision", out _), "fp32 sweeps keep the file's format");

        // With bf16 convolutions: files of their own, which say so; the same step counts, other timings.
        var (bf16Code, bf16Output, bf16Err) = Run("sweep", "--model", dir, "--solver", "midpoint", "--steps", "2,3", "--test-size", "16", "--inference-precision", "bf16");
        Assert.AreEqual(0, bf16Code, bf16Err);
        StringAssert.Contains(bf16Output, "cached, bf16 convolutions");
        using var bf16Json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "sweep-midpoint-bf16.json")));
        Assert.AreEqual("bf16", bf16Json.RootElement.GetProperty("inference_precision").GetString());
        Assert.AreEqual(2, bf16Json.RootElement.GetProperty("results").GetArrayLength());

        var (dtCode, _, dtErr) = Run("eval", "--model", dir, "--deterministic", "--solver", "rk4", "--steps", "3", "--test-size", "16");
        Assert.AreEqual(0, dtCode, dtErr);

        // Diagnostics: FM has no blocks (usage error); its image-only figure is defined.
        var (perBlockCode, _, perBlockErr) = Run("eval", "--model", dir, "--per-block", "--test-size", "16");
        Assert.AreEqual(2, perBlockCode);
        StringAssert.Contains(perBlockErr, "--per-block applies to models made of blocks (dt, backprop)");
        var (imageCode, imageOut, imageErr) = Run("eval", "--model", dir, "--image-only", "--test-size", "16");
        Assert.AreEqual(0, imageCode, imageErr);
        StringAssert.Contains(imageOut, "image-only test accuracy:");

        // noprop plot on a trained run and its sweep.
        var charts = Path.Combine(TestSupport.TempDirectory(), "charts");
        var (plotCode, _, plotErr) = Run("plot", "--runs", dir, "--output", charts);
        Assert.AreEqual(0, plotCode, plotErr);
        NoProp.Tests.Plots.ChartTests.AssertPng(Path.Combine(charts, "sweep-accuracy.png"));
        NoProp.Tests.Plots.ChartTests.AssertPng(Path.Combine(charts, "accuracy-vs-time.png"));
    }

    [TestMethod]
    public void BackpropTrainsWithChartsAndEvaluatesPerBlock()
    {
        var dir = Path.Combine(TestSupport.TempDirectory(), "bp");
        var (code, _, err) = Run("train", "--method", "backprop", "--epochs", "1", "--blocks", "3", "--train-size", "64", "--validation-size", "32",
            "--test-size", "32", "--batch-size", "32", "--track-test", "--output", dir);
        Assert.AreEqual(0, code, err);
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json"))))
        {
            var root = json.RootElement;
            Assert.AreEqual("backprop", root.GetProperty("method").GetString());
            Assert.AreEqual(3, root.GetProperty("blocks").GetInt32());
            Assert.AreEqual(3, root.GetProperty("alphas").GetArrayLength());
            Assert.AreEqual(JsonValueKind.Null, root.GetProperty("peak_cuda_memory_mb").ValueKind, "no CUDA memory on the CPU");
        }
        Assert.AreEqual(2, File.ReadAllLines(Path.Combine(dir, "test-curve.csv")).Length, "header and one epoch");
        NoProp.Tests.Plots.ChartTests.AssertPng(Path.Combine(dir, "losses.png"));
        NoProp.Tests.Plots.ChartTests.AssertPng(Path.Combine(dir, "accuracy.png"));

        var (evalCode, output, evalErr) = Run("eval", "--model", dir, "--test-size", "32", "--runs", "2", "--per-block", "--image-only");
        Assert.AreEqual(0, evalCode, evalErr);
        StringAssert.Contains(output, "per-block test accuracy");
        StringAssert.Contains(output, "block  3:");
        StringAssert.Contains(output, "image-only test accuracy:");
        var (sweepCode, _, sweepErr) = Run("sweep", "--model", dir);
        Assert.AreEqual(2, sweepCode);
        StringAssert.Contains(sweepErr, "Backprop has no ODE solver");
    }

    [TestMethod]
    public void AdjointTrainsAndRefusesTheImageOnlyAblation()
    {
        var dir = Path.Combine(TestSupport.TempDirectory(), "adjoint");
        var (code, _, err) = Run("train", "--method", "adjoint", "--epochs", "1", "--train-size", "64", "--validation-size", "32",
            "--test-size", "32", "--batch-size", "32", "--solver", "euler", "--steps", "3", "--output", dir);
        Assert.AreEqual(0, code, err);
        var (evalCode, _, evalErr) = Run("eval", "--model", dir, "--image-only", "--test-size", "16");
        Assert.AreEqual(2, evalCode);
        StringAssert.Contains(evalErr, "--image-only is not defined for an adjoint model");
        var (detCode, output, detErr) = Run("eval", "--model", dir, "--deterministic", "--runs", "2", "--test-size", "16");
        Assert.AreEqual(0, detCode, detErr);
        StringAssert.Contains(output, "± 0.00 %", "deterministic adjoint inference gives the same result every run");
    }

    [TestMethod]
    public void SweepRejectsADiscreteTimeModel()
    {
        var dir = Path.Combine(TestSupport.TempDirectory(), "dt");
        var (code, _, err) = Run("train", "--method", "dt", "--epochs", "1", "--blocks", "1", "--train-size", "32", "--validation-size", "16",
            "--test-size", "16", "--batch-size", "16", "--output", dir);
        Assert.AreEqual(0, code, err);
        var (sweepCode, _, sweepErr) = Run("sweep", "--model", dir);
        Assert.AreEqual(2, sweepCode);
        StringAssert.Contains(sweepErr, "sweep needs a CT, FM or adjoint model");
    }

    [TestMethod]
    public void TrainsOnFashionMnistFromADataDirectory()
    {
        // IDX files laid out as Debian's dataset-fashion-mnist package (or noprop download) leaves them: DIR/fashion-mnist/*.gz.
        var dataDir = TestSupport.TempDirectory();
        var folder = Path.Combine(dataDir, "fashion-mnist");
        Directory.CreateDirectory(folder);
        foreach (var f in Directory.GetFiles(NoProp.Data.Datasets.EmbeddedMnistDirectory(), "*.gz"))
            File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        var dir = Path.Combine(TestSupport.TempDirectory(), "fashion");
        var (code, output, err) = Run("train", "--method", "fm", "--dataset", "fashion-mnist", "--data-dir", dataDir, "--epochs", "1",
            "--train-size", "64", "--validation-size", "32", "--test-size", "32", "--batch-size", "32", "--steps", "2", "--output", dir);
        Assert.AreEqual(0, code, err);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        Assert.AreEqual("fashion-mnist", json.RootElement.GetProperty("dataset").GetString());
        var (evalCode, _, evalErr) = Run("eval", "--model", dir, "--data-dir", dataDir, "--test-size", "16");
        Assert.AreEqual(0, evalCode, evalErr);
        var (missing, _, missingErr) = Run("eval", "--model", dir, "--test-size", "16", "--data-dir", TestSupport.TempDirectory());
        Assert.AreEqual(1, missing);
        StringAssert.Contains(missingErr, "file not found");
    }

    [TestMethod]
    public void TrainsOnCifar10InTheOfficialBinaryLayoutWithAugmentation()
    {
        var dataDir = TestSupport.TempDirectory();
        NoProp.Tests.Data.CifarReaderTests.WriteCifar10(Path.Combine(dataDir, "cifar10"), perBatch: 4);
        var dir = Path.Combine(TestSupport.TempDirectory(), "cifar");
        var (code, _, err) = Run("train", "--method", "dt", "--dataset", "cifar10", "--data-dir", dataDir, "--blocks", "1", "--epochs", "1",
            "--train-size", "12", "--validation-size", "4", "--test-size", "2", "--batch-size", "4", "--augment", "--output", dir);
        Assert.AreEqual(0, code, err);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        Assert.AreEqual("cifar10", json.RootElement.GetProperty("dataset").GetString());
        StringAssert.Contains(json.RootElement.GetProperty("augmentation").GetString(), "horizontal flip");
        StringAssert.Contains(File.ReadAllText(Path.Combine(dir, "model.json")), "\"channels\": 3");
    }
}
