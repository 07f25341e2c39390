using System.CommandLine;
using NoProp.Cli.CommandLine;
using NoProp.Data;
using NoProp.Methods;
using NoProp.Runtime;
using NoProp.Training;
using NoProp.Training.Runs;

namespace NoProp.Cli.Commands;

/// <summary>
/// The images <c>noprop eval</c> and <c>noprop sweep</c> measure: the test split (the default, for final figures) or
/// the validation split the training run held out (<c>--split validation</c>, for choices made before the test set is
/// looked at). The validation split is carved again from the run's own settings (run.json: data set, --train-size,
/// --validation-size, --seed) by the same <see cref="DataSplits.Create"/> that <c>noprop train</c> used, so it holds
/// exactly the images training validated on.
/// </summary>
internal sealed record EvaluationSplit(string Name, ImageDataset Images, long DefaultSeed, string? Recorded)
{
    public const string Test = "test", Validation = "validation";
    public static readonly string[] Names = [Test, Validation];

    /// <summary>"sweep-heun" for the test split (the names existing folders hold), "sweep-heun-validation" otherwise.</summary>
    public string FileSuffix => Name == Test ? "" : "-" + Name;

    public static Option<string?> CreateOption() => CliOptions.Choice("--split",
        "the test set, for final figures, or the validation split the training run held out (rebuilt from its run.json), " +
        "for choosing settings without looking at the test set  [test]", Names);

    /// <summary>Reads <c>--split</c> and refuses <c>--test-size</c> with the validation split.</summary>
    public static string ReadName(ParseResult result, Option<string?> split, Option<int?> testSize)
    {
        string name = result.GetValue(split) ?? Test;
        if (name != Test && result.Given(testSize))
            throw new UsageException("--test-size applies to --split test (the validation split is the one the run held out, whole)");
        return name;
    }

    public static EvaluationSplit Load(string name, string modelDir, ModelConfig config, string? dataDir, int? testSize)
    {
        if (name == Test)
            return new EvaluationSplit(Test, SkiaImageCodec.Load(config.DatasetSpec(dataDir)).Test.Take(testSize), 1, null);

        if (!File.Exists(Path.Combine(modelDir, RunFile.FileName)))
            throw new NoPropException($"--split validation: {Path.Combine(modelDir, RunFile.FileName)} not found; the validation split is rebuilt " +
                                      "from the settings 'noprop train' saves there (a model folder without them can only be evaluated on the test split)");
        var run = RunFile.Load(modelDir);
        var data = SkiaImageCodec.Load(config.DatasetSpec(dataDir ?? run.Data.DataDir));
        var splits = (run.Splits with { TestSize = null }).Create(data, run.Training.Seed);
        if (splits.Validation.Count == 0)
            throw new NoPropException($"--split validation: the run in {modelDir} held out no validation images (--validation-size {run.Splits.ValidationSize?.ToString() ?? "default"}" +
                                      (run.Splits.TrainSize is int t ? $", --train-size {t} of {data.Train.Count}" : "") + ")");

        // Default noise: the seed with which training validated the kept epoch, so one run reproduces its figure.
        long seed = 1;
        string? recorded = null;
        if (RunMetrics.TryLoad(modelDir) is { BestEpoch: > 0 and int epoch, ValidationAccuracy: double v })
        {
            seed = Evaluator.ValidationNoiseSeed(run.Training.Seed, epoch);
            recorded = $"noprop train recorded {v * 100:F2} % for the kept epoch {epoch} (inference with the model's settings, noise seed {seed})";
        }
        return new EvaluationSplit(Validation, splits.Validation, seed, recorded);
    }
}
