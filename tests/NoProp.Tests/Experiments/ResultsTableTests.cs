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
        Assert.AreEqual("dataset,method,embedding,embedding_dim,variant,seeds,values,train_mean,train_se,test_mean,test_se,peak_memory_mb,peak_cuda_memory_mb,train_seconds", csv[0]);
        StringAssert.Contains(csv[2], "mnist,dt,onehot,10,,2,4,0.995000,0.005000,0.750000,0.064550,500.0,,15.0");

        var config = new ExperimentConfig { Name = "t", Methods = ["dt", "backprop"], Seeds = [1, 2], InferenceRuns = 2 };
        var markdown = ResultsTable.ToMarkdown(config, entries, cells, "noprop experiment --config t.json", 3);
        StringAssert.Contains(markdown, "| Backprop (one-hot) | 50.00 ± 0.00 | 25.00 ± 0.00 | 1000 |");
        StringAssert.Contains(markdown, "| NoProp-DT (one-hot) | 99.50 ± 0.50 | 75.00 ± 6.45 | 500 |");
        StringAssert.Contains(markdown, "| NoProp-DT (one-hot), deterministic | 100.00 ± 0.00 | 60.00 ± 10.00 |  |");
        StringAssert.Contains(markdown, "`noprop experiment --config t.json`");
        Assert.IsTrue(markdown.IndexOf("***Discrete-time***", StringComparison.Ordinal) < markdown.IndexOf("Backprop (one-hot)", StringComparison.Ordinal));
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
