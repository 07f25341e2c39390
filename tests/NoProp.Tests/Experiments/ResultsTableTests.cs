using NoProp.Cli.Experiments;
using NoProp.Methods;
using NoProp.Runtime;

namespace NoProp.Tests.Experiments;

[TestClass]
public sealed class ResultsTableTests
{
    private static CellResult Cell(string method, long seed, double[] train, double[] test, double memory, double[]? deterministicTest = null) => new()
    {
        Cell = $"mnist-{method}-onehot-seed{seed}", Dataset = "mnist", Method = method, Embedding = "onehot", EmbeddingDim = 10, Seed = seed,
        Stochastic = new SplitAccuracies { Train = train, Test = test },
        Deterministic = deterministicTest is null ? null : new SplitAccuracies { Train = [1.0], Test = deterministicTest },
        Epochs = 1, TrainSeconds = 10 * seed, PeakMemoryMb = memory,
    };

    [TestMethod]
    public void PoolsSeedsTimesRunsIntoMeanAndStandardError()
    {
        // Test accuracies 0.9, 0.8 (seed 1) and 0.7, 0.6 (seed 2): mean 0.75, sample sd √(0.05/3), s.e. sd/√4 = 0.0645497.
        var cells = new[]
        {
            Cell("dt", 1, [1.0, 1.0], [0.9, 0.8], 400, deterministicTest: [0.5]),
            Cell("dt", 2, [0.98, 1.0], [0.7, 0.6], 600, deterministicTest: [0.7]),
            Cell("backprop", 1, [0.5], [0.25], 1000),
        };
        var entries = ResultsTable.Aggregate(cells);
        Assert.AreEqual(3, entries.Count, "dt, dt deterministic, backprop");
        Assert.AreEqual("backprop", entries[0].Method, "the paper's order: backprop before NoProp-DT");

        var dt = entries.Single(e => e.Method == "dt" && e.Variant == ResultsTable.Stochastic);
        Assert.AreEqual(4, dt.Values);
        Assert.AreEqual(2, dt.Seeds);
        Assert.AreEqual(0.75, dt.TestMean!.Value, 1e-12);
        Assert.AreEqual(Math.Sqrt(0.05 / 3) / 2, dt.TestStandardError!.Value, 1e-12);
        Assert.AreEqual(0.995, dt.TrainMean!.Value, 1e-12);
        Assert.AreEqual(0.005, dt.TrainStandardError!.Value, 1e-12);   // 1, 1, 0.98, 1: sd 0.01, s.e. 0.005
        Assert.AreEqual(500, dt.PeakMemoryMb, 1e-12, "memory is averaged over seeds");
        Assert.AreEqual(15, dt.TrainSeconds, 1e-12);

        var deterministic = entries.Single(e => e.Variant == ResultsTable.Deterministic);
        Assert.AreEqual(0.6, deterministic.TestMean!.Value, 1e-12);
        Assert.AreEqual(0.1, deterministic.TestStandardError!.Value, 1e-12);   // 0.5, 0.7: sd √0.02, s.e. 0.1

        var single = entries.Single(e => e.Method == "backprop");
        Assert.AreEqual(0.0, single.TestStandardError!.Value, "one value has no spread");

        var csv = ResultsTable.ToCsv(entries).Split('\n');
        Assert.AreEqual("dataset,method,embedding,embedding_dim,variant,seeds,values,train_mean,train_se,test_mean,test_se,peak_memory_mb,peak_cuda_memory_mb,train_seconds," +
                        "method_variant,departure_from_paper,train_seeds_mean,train_seeds_se,test_seeds_mean,test_seeds_se", csv[0]);
        // Between seeds: per-seed test means 0.85 and 0.65: mean 0.75, sd √0.02, s.e. 0.1 (pooled: 0.0645).
        StringAssert.Contains(csv[2], "mnist,dt,onehot,10,,2,4,0.995000,0.005000,0.750000,0.064550,500.0,,15.0,,,0.995000,0.005000,0.750000,0.100000");

        var config = new ExperimentConfig { Name = "t", Methods = ["dt", "backprop"], Seeds = [1, 2], InferenceRuns = 2 };
        var markdown = ResultsTable.ToMarkdown(config, entries, cells, "noprop experiment --config t.json", 3);
        StringAssert.Contains(markdown, "| Backprop (one-hot) | 50.00 ± 0.00 | 50.00 (1 seed) | 25.00 ± 0.00 | 25.00 (1 seed) | 1000 |");
        StringAssert.Contains(markdown, "| NoProp-DT (one-hot) | 99.50 ± 0.50 | 99.50 ± 0.50 | 75.00 ± 6.45 | 75.00 ± 10.00 | 500 |");
        StringAssert.Contains(markdown, "| NoProp-DT (one-hot), deterministic | 100.00 ± 0.00 | 100.00 ± 0.00 | 60.00 ± 10.00 | 60.00 ± 10.00 |  |");
        StringAssert.Contains(markdown, "`noprop experiment --config t.json`");
        Assert.IsTrue(markdown.IndexOf("***Discrete-time***", StringComparison.Ordinal) < markdown.IndexOf("Backprop (one-hot)", StringComparison.Ordinal));
    }

    [TestMethod]
    public void TheSpreadBetweenSeedsAveragesEachSeedFirst()
    {
        // Seed 1: three runs 0.9, 0.8, 0.7 (mean 0.8); seed 2: one run 0.5; seed 3: two runs 0.6, 0.8 (0.7).
        // Pooled: mean of six values 0.716667; between seeds: mean of 0.8, 0.5, 0.7 = 0.666667, sd 0.152753, s.e. 0.0881917.
        var cells = new[]
        {
            Cell("fm", 1, [1.0], [0.9, 0.8, 0.7], 100),
            Cell("fm", 2, [1.0], [0.5], 100),
            Cell("fm", 3, [0.9], [0.6, 0.8], 100),
        };
        var fm = ResultsTable.Aggregate(cells).Single();
        Assert.AreEqual(4.3 / 6, fm.TestMean!.Value, 1e-12);
        Assert.AreEqual(2.0 / 3, fm.TestSeedsMean!.Value, 1e-12);
        Assert.AreEqual(Math.Sqrt(0.07 / 3) / Math.Sqrt(3), fm.TestSeedsStandardError!.Value, 1e-12);
        Assert.AreEqual(Math.Sqrt(1.0 / 300) / Math.Sqrt(3), fm.TrainSeedsStandardError!.Value, 1e-12);   // 1, 1, 0.9
        Assert.AreEqual(3, fm.Seeds);
        Assert.AreEqual(6, fm.Values);
    }

    private static CellResult Ct(long seed, string? weighting, string? schedule, string? prediction, double test, string variant = "") =>
        Cell("ct", seed, [1.0], [test], 100) with { Weighting = weighting, ScheduleTraining = schedule, Prediction = prediction, MethodVariant = variant };

    [TestMethod]
    public void RowsThatAreNotThePapersObjectiveSaySo()
    {
        var cells = new[]
        {
            Ct(1, "snr-derivative", "joint", "head", 0.4),
            Ct(2, "snr-derivative", "joint", "head", 0.5),
            Ct(1, "constant", "detached", "nearest", 0.9, "project-default"),
            Ct(2, "constant", "detached", "nearest", 0.95, "project-default"),
            Cell("fm", 1, [1.0], [0.9], 100) with { Prediction = "nearest" },
            Cell("fm", 2, [1.0], [0.9], 100) with { Prediction = "head", Embedding = "learned", EmbeddingDim = 20 },
            Cell("dt", 1, [1.0], [0.9], 100),
        };
        var entries = ResultsTable.Aggregate(cells);
        var labels = entries.Select(e => e.Label).ToList();
        CollectionAssert.AreEqual(new[]
        {
            "NoProp-DT (one-hot)",
            "NoProp-CT (one-hot)",
            "NoProp-CT (one-hot), not the paper's objective (constant weighting, detached schedule, nearest-embedding readout)",
            "NoProp-FM (one-hot)",
            "NoProp-FM (dim=20), not the paper's objective (output-head readout)",
        }, labels);
        Assert.AreEqual(0.45, entries[1].TestMean!.Value, 1e-12, "the paper's CT row holds only the paper's models");
        Assert.AreEqual(0.925, entries[2].TestMean!.Value, 1e-12);

        // Each departure alone is named; a CT model trained before these were recorded is not passed off as the paper's.
        Assert.AreEqual("", ResultsTable.DepartureFromPaper("ct", "snr-derivative", null, "head"));
        Assert.AreEqual("not the paper's objective (constant weighting)", ResultsTable.DepartureFromPaper("ct", "constant", "joint", "head"));
        Assert.AreEqual("not the paper's objective (frozen schedule)", ResultsTable.DepartureFromPaper("ct", "snr-derivative", "frozen", "head"));
        Assert.AreEqual("not the paper's objective (nearest-embedding readout)", ResultsTable.DepartureFromPaper("ct", "snr-derivative", "joint", "nearest"));
        Assert.AreEqual("objective not recorded", ResultsTable.DepartureFromPaper("ct", null, null, null));

        var config = new ExperimentConfig { Name = "t", Methods = ["dt", "ct", "fm"], Seeds = [1, 2], InferenceRuns = 1 };
        var markdown = ResultsTable.ToMarkdown(config, entries, cells, "noprop experiment --config t.json", cells.Length);
        StringAssert.Contains(markdown, "| NoProp-CT (one-hot) | 100.00 ± 0.00 | 100.00 ± 0.00 | 45.00 ± 5.00 | 45.00 ± 5.00 | 100 |");
        StringAssert.Contains(markdown, "| NoProp-CT (one-hot), not the paper's objective (constant weighting, detached schedule, nearest-embedding readout) | 100.00 ± 0.00 | 100.00 ± 0.00 | 92.50 ± 2.50 | 92.50 ± 2.50 | 100 |");
        var csv = ResultsTable.ToCsv(entries).Split('\n');
        StringAssert.Contains(csv[3], ",project-default,\"not the paper's objective (constant weighting, detached schedule, nearest-embedding readout)\",");
    }

    [TestMethod]
    public void MethodVariantsAddCellsWithTheirOwnOptions()
    {
        var config = new ExperimentConfig
        {
            Name = "g", Methods = ["dt", "ct"], Seeds = [1, 2],
            Train = new TrainSettings { Epochs = 2, Steps = 5 },
            PerMethod = new() { ["ct"] = new MethodSettings { Weighting = "snr-derivative", Prediction = "head", Epochs = 3 } },
            MethodVariants = [new MethodVariant { Name = "project-default", Method = "ct", Weighting = "constant", Prediction = "nearest", ScheduleTraining = "detached" }],
        };
        config.Validate("g.json");
        var cells = config.Cells();
        CollectionAssert.AreEqual(new[]
        {
            "mnist-dt-onehot-seed1", "mnist-dt-onehot-seed2", "mnist-ct-onehot-seed1", "mnist-ct-onehot-seed2",
            "mnist-ct-project-default-onehot-seed1", "mnist-ct-project-default-onehot-seed2",
        }, cells.Select(c => c.Name).ToArray());
        string paper = string.Join(' ', cells[2].TrainArguments), variant = string.Join(' ', cells[4].TrainArguments);
        StringAssert.Contains(paper, "--weighting snr-derivative");
        StringAssert.Contains(paper, "--prediction head");
        Assert.IsFalse(paper.Contains("--schedule-training"), paper);
        StringAssert.Contains(variant, "--weighting constant");
        StringAssert.Contains(variant, "--prediction nearest");
        StringAssert.Contains(variant, "--schedule-training detached");
        StringAssert.Contains(variant, "--epochs 3", "a variant starts from its method's settings");
        StringAssert.Contains(variant, "--steps 5");
        Assert.AreEqual("project-default", cells[4].MethodVariant);
        Assert.IsFalse(string.Join(' ', cells[0].TrainArguments).Contains("--schedule-training"), "schedule options go to ct only");
    }

    [TestMethod]
    public void ThePaperGridRunsThePapersCtObjectiveAndTheProjectDefaultBeside()
    {
        var root = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(root, "configs"))) root = Path.GetDirectoryName(root) ?? throw new AssertFailedException("configs/ not found");
        var cells = ExperimentConfig.Load(Path.Combine(root, "configs", "paper-mnist.json")).Cells();
        var ct = cells.Where(c => c.Method == MethodKind.ContinuousTime).ToList();
        var paper = ct.Where(c => c.MethodVariant.Length == 0).ToList();
        var extra = ct.Where(c => c.MethodVariant.Length > 0).ToList();
        Assert.AreEqual(9, paper.Count, "3 embeddings × 3 seeds");
        Assert.AreEqual(9, extra.Count);
        foreach (var c in paper)
        {
            var args = string.Join(' ', c.TrainArguments);
            StringAssert.Contains(args, "--weighting snr-derivative");
            StringAssert.Contains(args, "--prediction head");
            Assert.IsFalse(args.Contains("--schedule-training ") && !args.Contains("--schedule-training joint"), args);
        }
        foreach (var c in extra)
        {
            var args = string.Join(' ', c.TrainArguments);
            StringAssert.Contains(args, "--weighting constant");
            StringAssert.Contains(args, "--prediction nearest");
        }
    }

    [TestMethod]
    public void PerRunFilesHoldEveryRun()
    {
        var cells = new[] { Cell("dt", 1, [1.0, 0.9], [0.8, 0.7], 400) };
        var runs = ResultsTable.RunsCsv(cells).Trim().Split('\n');
        Assert.AreEqual(5, runs.Length, "header and 2 runs × 2 splits");
        Assert.AreEqual("mnist-dt-onehot-seed1,mnist,dt,onehot,1,stochastic,test,1,0.700000", runs[4]);
        var perCell = ResultsTable.CellsCsv(cells).Trim().Split('\n');
        Assert.AreEqual(2, perCell.Length);
    }

    [TestMethod]
    public void CellsFollowTheGridAndPassOptionsOnlyWhereTheyApply()
    {
        var config = new ExperimentConfig
        {
            Name = "g", Methods = ["dt", "fm", "adjoint"], Embeddings = ["onehot", "learned"], Seeds = [1, 2],
            Train = new TrainSettings { Epochs = 2, Blocks = 3, Steps = 5, Eta = 0.2, EmbeddingDim = 8 },
            PerMethod = new() { ["adjoint"] = new MethodSettings { Embeddings = ["onehot"], Epochs = 1 } },
        };
        var cells = config.Cells();
        Assert.AreEqual(2 * 2 + 2 * 2 + 1 * 2, cells.Count);
        var dtLearned = cells.First(c => c.Method == MethodKind.DiscreteTime && c.Embedding == "learned");
        var args = string.Join(' ', dtLearned.TrainArguments);
        StringAssert.Contains(args, "--blocks 3");
        StringAssert.Contains(args, "--eta 0.2");
        StringAssert.Contains(args, "--embedding-dim 8");
        Assert.IsFalse(args.Contains("--steps"), args);
        var fm = string.Join(' ', cells.First(c => c.Method == MethodKind.FlowMatching && c.Embedding == "onehot").TrainArguments);
        Assert.IsFalse(fm.Contains("--eta") || fm.Contains("--blocks") || fm.Contains("--embedding-dim"), fm);
        StringAssert.Contains(fm, "--steps 5");
        var adjoint = cells.Where(c => c.Method == MethodKind.Adjoint).ToList();
        Assert.IsTrue(adjoint.All(c => c.Embedding == "onehot"));
        StringAssert.Contains(string.Join(' ', adjoint[0].TrainArguments), "--epochs 1");
        Assert.AreEqual("mnist-adjoint-onehot-seed2", adjoint[1].Name);
    }

    [TestMethod]
    [DataRow("""{ "name": "x", "methods": ["dt", "sgd"] }""", "unknown method 'sgd'")]
    [DataRow("""{ "name": "x", "methods": ["dt"], "epochz": 3 }""", "invalid experiment configuration")]
    [DataRow("""{ "name": "x", "methods": ["dt"], "train": { "epochz": 3 } }""", "invalid experiment configuration")]
    [DataRow("""{ "methods": ["dt"] }""", "'name' is required")]
    [DataRow("""{ "name": "x", "methods": ["dt"], "seeds": [1, 1] }""", "'seeds' repeats a seed")]
    [DataRow("""{ "name": "x", "methods": ["dt"], "inference_runs": 0 }""", "'inference_runs' must be at least 1")]
    [DataRow("""{ "name": "x", "methods": ["dt"], "embeddings": ["wavelet"] }""", "unknown embedding 'wavelet'")]
    [DataRow("""{ "name": "x", "methods": ["dt"], "per_method": { "ct": { "epochs": 1 } } }""", "'per_method' names 'ct'")]
    [DataRow("""{ "name": "x", "methods": ["dt"], "method_variants": [{ "name": "v", "method": "ct" }] }""", "'v' is a variant of 'ct', which is not in 'methods'")]
    [DataRow("""{ "name": "x", "methods": ["ct"], "method_variants": [{ "name": "My Variant", "method": "ct" }] }""", "name 'My Variant' must be lower-case")]
    [DataRow("""{ "name": "x", "methods": ["ct"], "method_variants": [{ "name": "v", "method": "ct" }, { "name": "v", "method": "ct" }] }""", "'method_variants' repeats a name")]
    public void BadConfigurationsFailWithOneLine(string json, string message)
    {
        var path = Path.Combine(TestSupport.TempDirectory(), "grid.json");
        File.WriteAllText(path, json);
        var e = Assert.ThrowsExactly<NoPropException>(() => ExperimentConfig.Load(path));
        StringAssert.Contains(e.Message, message);
        StringAssert.Contains(e.Message, path);
        Assert.IsFalse(e.Message.Contains('\n'), e.Message);
    }

    [TestMethod]
    public void ShippedConfigurationsAreValid()
    {
        var root = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(root, "configs"))) root = Path.GetDirectoryName(root) ?? throw new AssertFailedException("configs/ not found above the test binaries");
        var files = Directory.GetFiles(Path.Combine(root, "configs"), "*.json");
        Assert.IsTrue(files.Length >= 2, "the paper's MNIST grid and the quick CPU grid");
        foreach (var file in files) Assert.IsTrue(ExperimentConfig.Load(file).Cells().Count > 0, file);
    }
}
