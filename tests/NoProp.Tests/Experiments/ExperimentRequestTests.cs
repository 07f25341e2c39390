using NoProp.Cli.Experiments;
using NoProp.Methods;
using NoProp.Training.Runs;

namespace NoProp.Tests.Experiments;

/// <summary>The grid hands each cell's child process a serialised <see cref="TrainRequest"/>; early stopping in the grid's config.</summary>
[TestClass]
public sealed class ExperimentRequestTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => NoProp.Tests.Cli.CliTests.Run(args);

    [TestMethod]
    public void EarlyStoppingOptionsReachTheCellsThroughTheirRequests()
    {
        var root = TestSupport.TempDirectory();
        var path = Path.Combine(root, "grid.json");
        File.WriteAllText(path, """
            {
              "name": "stopping",
              "methods": ["dt", "fm"],
              "seeds": [1],
              "inference_runs": 1,
              "train_eval_size": 16,
              "train": { "epochs": 5, "train_size": 64, "validation_size": 32, "test_size": 16, "batch_size": 32, "blocks": 1, "steps": 2,
                         "early_stopping_patience": 1, "early_stopping_min_delta": 0.99 },
              "per_method": { "fm": { "early_stopping_patience": 2 } }
            }
            """);
        var config = ExperimentConfig.Load(path);
        var cells = config.Cells();
        var dt = cells.Single(c => c.Method == MethodKind.DiscreteTime);
        StringAssert.Contains(string.Join(' ', dt.TrainArguments), "--early-stopping-patience 1 --early-stopping-min-delta 0.99");
        StringAssert.Contains(string.Join(' ', cells.Single(c => c.Method == MethodKind.FlowMatching).TrainArguments), "--early-stopping-patience 2");
        Assert.IsFalse(string.Join(' ', dt.TrainArguments).Contains("--steps"), "steps go to the continuous methods only");

        var output = Path.Combine(root, "out");
        var (code, stdout, stderr) = Run("experiment", "--config", path, "--output", output);
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "2 of 2 models finished");
        var cell = Path.Combine(output, "cells", dt.Name);
        // The request the grid handed to the child process, and what the child trained with.
        var request = TrainRequest.FromJson(File.ReadAllText(Path.Combine(cell, "request.json")), "request.json");
        Assert.AreEqual("dt", request.Method);
        Assert.AreEqual(1, request.Training.EarlyStoppingPatience);
        Assert.AreEqual(0.99, request.Training.EarlyStoppingMinDelta);
        Assert.AreEqual(1, request.Model.Blocks);
        Assert.IsNull(request.Model.Steps);
        Assert.IsTrue(request.Training.TrackTest);
        Assert.AreEqual(Path.GetFullPath(cell), Path.GetFullPath(request.Output!));
        Assert.AreEqual(1, RunFile.Load(cell).Training.EarlyStoppingPatience);
        var metrics = RunMetrics.TryLoad(cell)!;
        Assert.IsTrue(metrics.StoppedEarly);
        Assert.AreEqual(2, metrics.EpochsTrained, "no gain of 0.99 after the first validation: stopped after the second");
        Assert.AreEqual(3, RunMetrics.TryLoad(Path.Combine(output, "cells", cells[1].Name))!.EpochsTrained, "fm: patience 2");

    }

    [TestMethod]
    public void ARequestRoundTripsThroughJson()
    {
        var request = new TrainRequest
        {
            Method = "ct",
            Data = new DataRequest { Dataset = "cifar100", Label = "coarse", Augment = true, CropPadding = 2 },
            Splits = new SplitRequest { TrainSize = 100, ValidationSize = null, TestSize = 7 },
            Model = new ModelRequest { Embedding = "learned", EmbeddingDim = 12, Steps = 3, Weighting = "snr-derivative", GammaMax = 4 },
            Training = new TrainingSettings { Epochs = 3, EarlyStoppingPatience = 2, LrSchedule = "cosine", WarmupEpochs = 0.5 },
            Threads = 2,
            Output = "somewhere",
        };
        var back = TrainRequest.FromJson(request.ToJson(), "test");
        Assert.AreEqual(request.Data, back.Data);
        Assert.AreEqual(request.Splits, back.Splits);
        Assert.AreEqual(request.Model, back.Model);
        Assert.AreEqual(request.Training, back.Training);
        Assert.AreEqual(request, back);
        StringAssert.Contains(request.ToJson(), "\"early_stopping_patience\": 2");
    }
}
