using System.Text.Json;
using NoProp.Plots;
using NoProp.Training.Runs;

namespace NoProp.Tests.Cli;

/// <summary>
/// Run folders written before the typed run API (Fixtures/run-folders-0.1: the text files of a dt run with
/// --track-test and an fm run with a sweep, written by the noprop of main at 28eff7a) keep loading: metrics.json,
/// run.json and sweep-*.json read into the typed records and write back byte for byte; eval, plot and --resume use them.
/// </summary>
[TestClass]
public sealed class RunFolderFormatTests
{
    private static string Fixture(string run, string file = "") => Path.Combine(AppContext.BaseDirectory, "Fixtures", "run-folders-0.1", run, file);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    [TestMethod]
    [DataRow("dt")]
    [DataRow("fm")]
    public void MetricsJsonRoundTripsByteForByte(string run)
    {
        var text = File.ReadAllText(Fixture(run, "metrics.json"));
        var metrics = RunMetrics.FromJson(text, "fixture");
        Assert.AreEqual(run, metrics.Method);
        Assert.AreEqual("mnist", metrics.Dataset);
        Assert.AreEqual(32, metrics.TestSize);
        Assert.IsNotNull(metrics.ValidationAccuracy);
        Assert.IsTrue(metrics.TestAccuracy is >= 0 and <= 1);
        Assert.IsTrue(metrics.History.Count > 0 && metrics.History[0].Losses.ContainsKey("total"));
        Assert.IsNull(metrics.Extra, "every field of today's format is typed");
        Assert.AreEqual(text, metrics.ToJson(), "names, order, nulls and numbers are the format");
    }

    [TestMethod]
    public void MetricsKeepFieldsTheyDoNotKnowAndMethodExtrasFollowTheFixedFields()
    {
        var text = File.ReadAllText(Fixture("dt", "metrics.json"));
        var withNew = text.TrimEnd()[..^1].TrimEnd() + ",\n  \"some_future_field\": [1, 2]\n}";
        var metrics = RunMetrics.FromJson(withNew, "fixture");
        Assert.AreEqual(JsonValueKind.Array, metrics.Extra!["some_future_field"].ValueKind);
        StringAssert.Contains(metrics.ToJson(), "\"some_future_field\"");

        var extended = RunMetrics.FromJson(text, "fixture").With(new Dictionary<string, object?>
        {
            ["alphas"] = new[] { 0.5, 0.25 }, ["gamma_max"] = 4.5, ["peak_cuda_memory_mb"] = 12.5, ["learned_thing"] = "x",
        });
        using var json = JsonDocument.Parse(extended.ToJson());
        var names = json.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.AreEqual(0.25, json.RootElement.GetProperty("alphas")[1].GetDouble());
        Assert.AreEqual(12.5, json.RootElement.GetProperty("peak_cuda_memory_mb").GetDouble());
        Assert.AreEqual("x", json.RootElement.GetProperty("learned_thing").GetString());
        Assert.IsTrue(names.IndexOf("history") < names.IndexOf("alphas") && names.IndexOf("alphas") < names.IndexOf("learned_thing"));
        Assert.IsFalse(names.Contains("gamma_min"), "method extras that are not set are not written");
    }

    [TestMethod]
    public void RunJsonLoadsIntoARequestAndWritesTheSameFile()
    {
        var text = File.ReadAllText(Fixture("dt", "run.json"));
        var request = RunFile.FromJson(text, "fixture");
        Assert.AreEqual("dt", request.Method);
        Assert.AreEqual(1, request.Model.Blocks);
        Assert.AreEqual(2, request.Training.Epochs);
        Assert.AreEqual(2L, request.Training.Seed);
        Assert.AreEqual(32, request.Splits.ValidationSize);
        Assert.AreEqual(64, request.Splits.TrainSize);
        Assert.IsTrue(request.Training.TrackTest);
        Assert.AreEqual(1, request.Threads);
        Assert.AreEqual(text, RunFile.ToJson(request));
        Assert.AreEqual(File.ReadAllText(Fixture("fm", "run.json")), RunFile.ToJson(RunFile.FromJson(File.ReadAllText(Fixture("fm", "run.json")), "fixture")));
    }

    [TestMethod]
    public void RunJsonKeepsTheDtInferenceWhenSetAndOmitsItOtherwise()
    {
        var request = RunFile.FromJson(File.ReadAllText(Fixture("dt", "run.json")), "fixture");
        Assert.IsNull(request.Model.Inference, "a run folder from before --inference has none");
        var deterministic = request with { Model = request.Model with { Inference = "deterministic" } };
        var json = RunFile.ToJson(deterministic);
        StringAssert.Contains(json, "\"inference\": \"deterministic\"");
        Assert.AreEqual("deterministic", RunFile.FromJson(json, "written").Model.Inference);
        Assert.IsFalse(RunFile.ToJson(request).Contains("\"inference\""));
    }

    [TestMethod]
    public void SweepJsonRoundTripsByteForByte()
    {
        var text = File.ReadAllText(Fixture("fm", "sweep-heun.json"));
        var sweep = SweepResult.FromJson(text, "fixture");
        Assert.AreEqual("heun", sweep.Solver);
        Assert.AreEqual(16, sweep.TestSize);
        CollectionAssert.AreEqual(new[] { 1, 2 }, sweep.Results.Select(r => r.Steps).ToArray());
        CollectionAssert.AreEqual(new[] { 2.0, 4.0 }, sweep.Results.Select(r => r.FunctionEvaluationsPerBatch).ToArray());
        Assert.AreEqual(text, sweep.ToJson());
        // Sweeps written before --split and --no-cache existed: the test split, cached features.
        var old = SweepResult.FromJson("""{"model": "m", "method": "ct", "solver": "rk4", "results": [{"steps": 3, "accuracy": 0.5, "inference_seconds": 1}]}""", "old");
        Assert.AreEqual("test", old.Split);
        Assert.IsTrue(old.CachedImageFeatures);
    }

    [TestMethod]
    public void PlotReadsOldRunFolders()
    {
        var dt = RunFolder.Load(Fixture("dt"));
        Assert.AreEqual("dt", dt.Method);
        Assert.AreEqual(2, dt.Epochs.Count);
        CollectionAssert.AreEqual(new[] { "cross_entropy", "kl", "denoise", "total" }, dt.LossNames.ToArray());
        Assert.AreEqual(2, dt.TestCurve.Count);
        Assert.AreEqual(0.15625, dt.TestCurve[1].TestAccuracy);
        var fm = RunFolder.Load(Fixture("fm"));
        Assert.AreEqual("fm", fm.Method);
        Assert.AreEqual(2, fm.Sweeps.Single().Results.Count);

        var charts = Path.Combine(TestSupport.TempDirectory(), "charts");
        var (code, output, err) = Run("plot", "--runs", Fixture("dt"), Fixture("fm"), "--output", charts);
        Assert.AreEqual(0, code, err);
        StringAssert.Contains(output, "sweep-accuracy.png");
        NoProp.Tests.Plots.ChartTests.AssertPng(Path.Combine(charts, "accuracy-vs-time.png"));
    }

    [TestMethod]
    public void OldRunJsonResumesAndRebuildsTheValidationSplit()
    {
        // The fixture's own command: the run.json it writes today is main's, byte for byte; the folder then resumes
        // and evaluates from main's run.json (copied over it) and metrics.json.
        var dir = Path.Combine(TestSupport.TempDirectory(), "dt");
        var (code, _, err) = Run("train", "--method", "dt", "--blocks", "1", "--train-size", "64", "--validation-size", "32", "--test-size", "32",
            "--epochs", "2", "--batch-size", "32", "--seed", "2", "--threads", "1", "--track-test", "--output", dir);
        Assert.AreEqual(0, code, err);
        Assert.AreEqual(File.ReadAllText(Fixture("dt", "run.json")), File.ReadAllText(Path.Combine(dir, "run.json")));
        File.Copy(Fixture("dt", "run.json"), Path.Combine(dir, "run.json"), overwrite: true);
        using (var trained = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json"))))
        using (var fixture = JsonDocument.Parse(File.ReadAllText(Fixture("dt", "metrics.json"))))
            CollectionAssert.AreEqual(fixture.RootElement.EnumerateObject().Select(p => p.Name).ToArray(),
                trained.RootElement.EnumerateObject().Select(p => p.Name).ToArray(), "metrics.json keeps main's fields in main's order");

        var (evalCode, evalOut, evalErr) = Run("eval", "--model", dir, "--split", "validation");
        Assert.AreEqual(0, evalCode, evalErr);
        StringAssert.Contains(evalOut, "validation accuracy: ");
        StringAssert.Contains(evalOut, "(32 images");
        StringAssert.Contains(evalOut, "noprop train recorded");

        var (resumeCode, _, resumeErr) = Run("train", "--resume", dir, "--epochs", "3");
        Assert.AreEqual(0, resumeCode, resumeErr);
        var metrics = RunMetrics.TryLoad(dir)!;
        Assert.AreEqual(3, metrics.EpochsTrained);
        Assert.AreEqual(1, metrics.Blocks, "run.json's options carry over");
        Assert.AreEqual(4, File.ReadAllLines(Path.Combine(dir, "test-curve.csv")).Length, "--track-test carries over: header and 3 epochs");
    }

    [TestMethod]
    public void CsvFieldsWithCommasQuotesAndLineBreaksRoundTrip()
    {
        var path = Path.Combine(TestSupport.TempDirectory(), "t.csv");
        string[] header = ["name", "value", "note"];
        string[][] rows = [["a,b", "1.5", "say \"hi\""], ["line\nbreak", "", " padded "], ["plain", "-2", "x"]];
        CsvTable.Write(path, header, rows);
        var text = File.ReadAllText(path);
        StringAssert.StartsWith(text, "name,value,note\n\"a,b\",1.5,\"say \"\"hi\"\"\"\n");
        var (readHeader, readRows) = CsvTable.Read(path);
        CollectionAssert.AreEqual(header, readHeader);
        Assert.AreEqual(rows.Length, readRows.Count);
        for (int i = 0; i < rows.Length; i++) CollectionAssert.AreEqual(rows[i], readRows[i], $"row {i}");

        File.WriteAllText(path, "a,b\n1,2\n3\n");
        var e = Assert.ThrowsExactly<CsvFormatException>(() => CsvTable.Read(path));
        StringAssert.Contains(e.Message, "has 1 columns, the header 2");
    }

    [TestMethod]
    public void RunFolderReadsAQuotedMetricsCsv()
    {
        var dir = TestSupport.TempDirectory();
        foreach (var file in Directory.GetFiles(Fixture("dt"))) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        // A loss named with a comma (a host's own method), quoted as RFC 4180 asks: a comma-splitting reader saw 9 columns.
        var lines = File.ReadAllLines(Path.Combine(dir, "metrics.csv"));
        lines[0] = lines[0].Replace("loss_kl", "\"loss_kl,prior\"");
        File.WriteAllLines(Path.Combine(dir, "metrics.csv"), lines);
        var run = RunFolder.Load(dir);
        CollectionAssert.Contains(run.LossNames.ToArray(), "kl,prior");
        Assert.AreEqual(2, run.Epochs.Count);
    }

    [TestMethod]
    public void MetricsCsvLinesQuoteWhatNeedsIt()
    {
        string[] losses = ["cross_entropy", "kl,prior", "total"];
        var record = new NoProp.Training.EpochRecord
        {
            Epoch = 3, TrainSeconds = 12.3456, EpochTrainSeconds = 4.1, ValidationAccuracy = 0.5, ImagesPerSecond = 100,
            Losses = new() { ["cross_entropy"] = 2.5, ["kl,prior"] = 0.25, ["total"] = 2.75 },
        };
        Assert.AreEqual("3,12.346,4.100,2.5,0.25,2.75,0.500000,,100.0", record.ToCsv(losses), "today's numbers, unchanged");
        var dir = TestSupport.TempDirectory();
        File.WriteAllText(Path.Combine(dir, "metrics.csv"), NoProp.Training.EpochRecord.CsvHeader(losses) + "\n" + record.ToCsv(losses) + "\n");
        var run = RunFolder.Load(dir);
        CollectionAssert.AreEqual(new[] { "cross_entropy", "kl,prior", "total" }, run.LossNames.ToArray());
        Assert.AreEqual(0.25, run.Epochs[0].Losses["kl,prior"]);
        Assert.AreEqual(12.346, run.Epochs[0].TrainSeconds);
    }
}
