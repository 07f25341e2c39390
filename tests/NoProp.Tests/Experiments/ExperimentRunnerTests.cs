using NoProp.Cli;
using NoProp.Cli.Experiments;
using NoProp.Tests.Plots;

namespace NoProp.Tests.Experiments;

[TestClass]
public sealed class ExperimentRunnerTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string Config(string dir, int epochs = 1)
    {
        var path = Path.Combine(dir, "grid.json");
        File.WriteAllText(path, $$"""
            {
              "name": "tiny",
              "methods": ["dt"],
              "embeddings": ["onehot"],
              "seeds": [1, 2],
              "inference_runs": 2,
              "train_eval_size": 32,
              "diagnostics": { "deterministic": true, "image_only": true, "per_block": true },
              "train": { "epochs": {{epochs}}, "train_size": 64, "validation_size": 16, "test_size": 32, "batch_size": 32, "blocks": 2 }
            }
            """);
        return path;
    }

    /// <summary>
    /// The grid runs every cell in a child process; a second run skips the finished cells, and a cell left with a
    /// checkpoint but no result (an interrupted run) continues from its checkpoint instead of starting over.
    /// </summary>
    [TestMethod]
    public void ASecondRunSkipsFinishedCellsAndResumesInterruptedOnes()
    {
        var root = TestSupport.TempDirectory();
        var config = Config(root);
        var output = Path.Combine(root, "out");
        var (code, stdout, stderr) = Run("experiment", "--config", config, "--output", output);
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "2 of 2 models finished");
        var cell1 = Path.Combine(output, "cells", "mnist-dt-onehot-seed1");
        var cell2 = Path.Combine(output, "cells", "mnist-dt-onehot-seed2");
        foreach (var file in new[] { "results.md", "results.csv", "cells.csv", "runs.csv", "accuracy-vs-time-mnist.png" })
            Assert.IsTrue(File.Exists(Path.Combine(output, file)), file);
        ChartTests.AssertPng(Path.Combine(output, "accuracy-vs-time-mnist.png"));
        ChartTests.AssertPng(Path.Combine(cell1, "losses.png"));
        var result = CellResult.Load(cell1);
        Assert.AreEqual(2, result.Stochastic.Test.Length);
        Assert.AreEqual(2, result.Deterministic!.Test.Length, "NoProp-DT keeps z_0 noise when deterministic: R runs");
        Assert.AreEqual(2, result.PerBlockTest![0].Length, "two blocks");
        Assert.AreEqual(result.Stochastic.Test[1], result.PerBlockTest[1][^1], "the last block's accuracy is the model's");
        var markdown = File.ReadAllText(Path.Combine(output, "results.md"));
        StringAssert.Contains(markdown, "| NoProp-DT (one-hot) |");
        StringAssert.Contains(markdown, "| NoProp-DT (one-hot), image only |");
        StringAssert.Contains(markdown, "t = 2");
        // Per cell: 2 stochastic + 2 deterministic runs on each split, and the image-only figure on each split.
        Assert.AreEqual(1 + 2 * (4 + 4 + 2), File.ReadAllLines(Path.Combine(output, "runs.csv")).Length);

        // Interrupt cell 2 after training: its checkpoint stays, its result and final metrics go.
        var cell1Result = File.GetLastWriteTimeUtc(Path.Combine(cell1, CellResult.FileName));
        var cell1Model = File.GetLastWriteTimeUtc(Path.Combine(cell1, "model.bin"));
        File.Delete(Path.Combine(cell2, CellResult.FileName));
        File.Delete(Path.Combine(cell2, "metrics.json"));
        File.Delete(Path.Combine(output, "results.md"));

        var (again, stdout2, stderr2) = Run("experiment", "--config", config, "--output", output);
        Assert.AreEqual(0, again, stderr2);
        StringAssert.Contains(stderr2, "mnist-dt-onehot-seed1: done, skipped");
        StringAssert.Contains(stderr2, "mnist-dt-onehot-seed2: interrupted (resumes from its checkpoint)");
        StringAssert.Contains(stderr2, "resuming from");
        Assert.AreEqual(cell1Result, File.GetLastWriteTimeUtc(Path.Combine(cell1, CellResult.FileName)), "a finished cell is not evaluated again");
        Assert.AreEqual(cell1Model, File.GetLastWriteTimeUtc(Path.Combine(cell1, "model.bin")), "a finished cell is not trained again");
        Assert.AreEqual(2, File.ReadAllLines(Path.Combine(cell2, "metrics.csv")).Length, "the resumed cell did not train its epoch again");
        Assert.IsTrue(File.Exists(Path.Combine(cell2, CellResult.FileName)));
        Assert.IsTrue(File.Exists(Path.Combine(output, "results.md")));
        StringAssert.Contains(stdout2, "2 of 2 models finished");

        // The same folder with other settings is refused rather than mixed.
        var otherDir = Directory.CreateDirectory(Path.Combine(root, "other")).FullName;
        var (changed, _, changedErr) = Run("experiment", "--config", Config(otherDir, epochs: 2), "--output", output);
        Assert.AreEqual(1, changed);
        StringAssert.Contains(changedErr, "was trained with other settings");

        var (listCode, listOut, _) = Run("experiment", "--config", config, "--output", output, "--list");
        Assert.AreEqual(0, listCode);
        StringAssert.Contains(listOut, "mnist-dt-onehot-seed2  done");
    }
}
