using System.Globalization;
using System.Text;
using NoProp.Training.Runs;
using NoProp.Methods;
using NoProp.Training;

namespace NoProp.Cli.Experiments;

/// <summary>
/// One row × data set of the results: accuracies pooled over seeds × runs (the paper's error bars), the spread between
/// seeds (mean ± standard error of the per-seed means; no standard error for one seed), memory and time averaged
/// over seeds. <see cref="Departure"/> says how the models differ from the paper's objective ("" when they do not).
/// </summary>
public sealed record TableEntry(
    string Dataset, string Method, string Embedding, int EmbeddingDim, string Variant, int Seeds, int Values,
    double? TrainMean, double? TrainStandardError, double? TestMean, double? TestStandardError,
    double PeakMemoryMb, double? PeakCudaMemoryMb, double TrainSeconds)
{
    public string MethodVariant { get; init; } = "";
    public string Departure { get; init; } = "";
    public double? TrainSeedsMean { get; init; }
    public double? TrainSeedsStandardError { get; init; }
    public double? TestSeedsMean { get; init; }
    public double? TestSeedsStandardError { get; init; }

    public string Label => ResultsTable.RowLabel(Method, Embedding, EmbeddingDim, Variant, Departure);
}

/// <summary>
/// The grid's results laid out like the paper's Table 1: one row per method (and method variant) and embedding, for
/// every data set a train and a test column with mean ± standard error over seeds × inference runs (the paper: 3 × 5
/// = 15 values), beside each the spread between seeds, and — like Table 2 — the peak memory. A row whose models were
/// not trained and read as the paper's says so in its label. Diagnostics (deterministic inference, image only) add
/// rows, per-block accuracy a table of its own.
/// </summary>
public static class ResultsTable
{
    public const string Stochastic = "", Deterministic = "deterministic", ImageOnly = "image only";

    private static readonly string[] MethodOrder = ["backprop", "dt", "adjoint", "ct", "fm"];
    private static readonly string[] EmbeddingOrder = ["onehot", "learned", "prototype"];

    public static string RowLabel(string method, string embedding, int dim, string variant, string departure = "")
    {
        string name = MethodKinds.Parse(method).DisplayName();
        string e = embedding switch { "onehot" => "one-hot", "learned" => $"dim={dim}", _ => embedding };
        string label = departure.Length == 0 ? $"{name} ({e})" : $"{name} ({e}), {departure}";
        return variant.Length == 0 ? label : $"{label}, {variant}";
    }

    /// <summary>
    /// How a model departs from the paper's objective and readout, for its row label; "" when it does not. NoProp-CT:
    /// Eq. 9's SNR'(t) weighting, the schedule trained by the whole loss, the output head on z_1 (§2.4); NoProp-FM: the
    /// nearest class embedding (§2.3.1). A CT cell that recorded neither weighting nor prediction says so.
    /// </summary>
    public static string DepartureFromPaper(string method, string? weighting, string? schedule, string? prediction)
    {
        var parts = new List<string>();
        if (method == "ct")
        {
            if (weighting is null && prediction is null) return "objective not recorded";
            if (weighting != "snr-derivative") parts.Add($"{weighting ?? "unrecorded"} weighting");
            if (schedule is not null && schedule != "joint") parts.Add($"{schedule} schedule");
            if (prediction != "head") parts.Add(prediction == "nearest" ? "nearest-embedding readout" : $"{prediction ?? "unrecorded"} readout");
        }
        else if (method == "fm" && prediction == "head")
        {
            parts.Add("output-head readout");
        }
        return parts.Count == 0 ? "" : $"not the paper's objective ({string.Join(", ", parts)})";
    }

    private static string Departure(IEnumerable<CellResult> cells) =>
        string.Join("; ", cells.Select(c => DepartureFromPaper(c.Method, c.Weighting, c.ScheduleTraining, c.Prediction)).Distinct());

    /// <summary>Mean and standard error of the per-seed means (each cell is one seed); no standard error for one seed.</summary>
    private static (double? Mean, double? StandardError) BetweenSeeds(IReadOnlyList<double[]> perSeed)
    {
        var means = perSeed.Where(v => v.Length > 0).Select(v => v.Average()).ToList();
        if (means.Count == 0) return (null, null);
        var (mean, se) = Statistics.MeanAndStandardError(means);
        return (mean, means.Count > 1 ? se : null);
    }

    /// <summary>Pools the cells' runs into table entries: one per data set, method, embedding and variant.</summary>
    public static List<TableEntry> Aggregate(IEnumerable<CellResult> cells)
    {
        var entries = new List<TableEntry>();
        var groups = cells.GroupBy(c => (c.Dataset, c.Method, c.MethodVariant, c.Embedding, c.EmbeddingDim))
            .OrderBy(g => g.Key.Dataset, StringComparer.Ordinal)
            .ThenBy(g => Order(MethodOrder, g.Key.Method)).ThenBy(g => g.Key.MethodVariant.Length > 0).ThenBy(g => g.Key.MethodVariant, StringComparer.Ordinal)
            .ThenBy(g => Order(EmbeddingOrder, g.Key.Embedding)).ThenBy(g => g.Key.EmbeddingDim);
        foreach (var g in groups)
        {
            var list = g.ToList();
            string departure = Departure(list);
            void Add(string variant, Func<CellResult, SplitAccuracies?> select)
            {
                var splits = list.Select(select).Where(s => s is not null).Select(s => s!).ToList();
                if (splits.Count == 0) return;
                var train = splits.SelectMany(s => s.Train).ToList();
                var test = splits.SelectMany(s => s.Test).ToList();
                var (trainMean, trainSe) = train.Count > 0 ? Statistics.MeanAndStandardError(train) : (double.NaN, double.NaN);
                var (testMean, testSe) = test.Count > 0 ? Statistics.MeanAndStandardError(test) : (double.NaN, double.NaN);
                var cuda = list.Where(c => c.PeakCudaMemoryMb is not null).Select(c => c.PeakCudaMemoryMb!.Value).ToList();
                var trainSeeds = BetweenSeeds(splits.Select(s => s.Train).ToList());
                var testSeeds = BetweenSeeds(splits.Select(s => s.Test).ToList());
                entries.Add(new TableEntry(g.Key.Dataset, g.Key.Method, g.Key.Embedding, g.Key.EmbeddingDim, variant, list.Count, test.Count,
                    train.Count > 0 ? trainMean : null, train.Count > 0 ? trainSe : null, test.Count > 0 ? testMean : null, test.Count > 0 ? testSe : null,
                    list.Average(c => c.PeakMemoryMb), cuda.Count > 0 ? cuda.Average() : null, list.Average(c => c.TrainSeconds))
                {
                    MethodVariant = g.Key.MethodVariant, Departure = departure,
                    TrainSeedsMean = trainSeeds.Mean, TrainSeedsStandardError = trainSeeds.StandardError,
                    TestSeedsMean = testSeeds.Mean, TestSeedsStandardError = testSeeds.StandardError,
                });
            }
            Add(Stochastic, c => c.Stochastic);
            Add(Deterministic, c => c.Deterministic);
            Add(ImageOnly, c => c.ImageOnly);
        }
        return entries;
    }

    private static int Order(string[] order, string value) { int i = Array.IndexOf(order, value); return i < 0 ? order.Length : i; }

    private static string Percent(double? mean, double? se) =>
        mean is double m ? $"{(m * 100).ToString("F2", CultureInfo.InvariantCulture)} ± {((se ?? 0) * 100).ToString("F2", CultureInfo.InvariantCulture)}" : "–";

    /// <summary>Between seeds: mean ± s.e. of the per-seed means, or the one seed's mean marked as such.</summary>
    private static string SeedsPercent(double? mean, double? se) =>
        mean is not double m ? "–" : se is null ? $"{(m * 100).ToString("F2", CultureInfo.InvariantCulture)} (1 seed)" : Percent(mean, se);

    private static string F(double? v, string format = "F1") => v is double d ? d.ToString(format, CultureInfo.InvariantCulture) : "";

    /// <summary>results.csv: one line per entry, accuracies as fractions.</summary>
    public static string ToCsv(IReadOnlyList<TableEntry> entries)
    {
        string[] header = ["dataset", "method", "embedding", "embedding_dim", "variant", "seeds", "values", "train_mean", "train_se", "test_mean", "test_se",
            "peak_memory_mb", "peak_cuda_memory_mb", "train_seconds", "method_variant", "departure_from_paper", "train_seeds_mean", "train_seeds_se",
            "test_seeds_mean", "test_seeds_se"];
        return CsvTable.Format(header, entries.Select(e => new[]
        {
            e.Dataset, e.Method, e.Embedding, e.EmbeddingDim.ToString(CultureInfo.InvariantCulture), e.Variant,
            e.Seeds.ToString(CultureInfo.InvariantCulture), e.Values.ToString(CultureInfo.InvariantCulture),
            F(e.TrainMean, "F6"), F(e.TrainStandardError, "F6"), F(e.TestMean, "F6"), F(e.TestStandardError, "F6"),
            F(e.PeakMemoryMb), F(e.PeakCudaMemoryMb), F(e.TrainSeconds), e.MethodVariant, e.Departure,
            F(e.TrainSeedsMean, "F6"), F(e.TrainSeedsStandardError, "F6"), F(e.TestSeedsMean, "F6"), F(e.TestSeedsStandardError, "F6"),
        }));
    }

    /// <summary>results.md: the Table 1 layout with a memory column per data set, the per-block table and a Table 2-like summary.</summary>
    public static string ToMarkdown(ExperimentConfig config, IReadOnlyList<TableEntry> entries, IReadOnlyList<CellResult> cells, string command, int totalCells)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("# Experiment: ").Append(config.Name).Append("\n\n");
        if (config.Description is not null) sb.Append(config.Description).Append("\n\n");
        sb.Append("Made by `").Append(command).Append("`. ");
        sb.Append($"Accuracy in %, mean ± standard error over {config.Seeds.Length} seed(s) × {config.InferenceRuns} inference run(s) per model, pooled ");
        sb.Append("(the paper's Table 1: 3 × 5 values); the *seeds* columns give the spread between seeds instead: mean ± standard error of the per-seed means ");
        sb.Append("(pooled runs of one model share its training, so the pooled error bar understates how much a new seed would move the figure). ");
        sb.Append("Peak memory is the training process's peak resident set (and peak CUDA memory on a GPU), averaged over seeds. ");
        sb.Append("A row labelled *not the paper's objective* was trained or read otherwise than the paper says (its departures in brackets).");
        if (cells.Count < totalCells) sb.Append($" **Incomplete: {cells.Count} of {totalCells} models finished.**");
        sb.Append("\n\n");

        var datasets = entries.Select(e => e.Dataset).Distinct().ToList();
        bool cuda = entries.Any(e => e.PeakCudaMemoryMb is not null);
        sb.Append("| Method |");
        foreach (var d in datasets) sb.Append($" {Title(d)} train | {Title(d)} train, seeds | {Title(d)} test | {Title(d)} test, seeds | {Title(d)} memory (MB) |");
        sb.Append('\n').Append("|---|").Append(string.Concat(Enumerable.Repeat("---|---|---|---|---|", datasets.Count))).Append('\n');
        foreach (var (heading, members) in new[] { ("Discrete-time", new[] { "backprop", "dt" }), ("Continuous-time", new[] { "adjoint", "ct", "fm" }) })
        {
            foreach (var variant in new[] { Stochastic, Deterministic, ImageOnly })
            {
                var rows = entries.Where(e => members.Contains(e.Method) && e.Variant == variant).Select(e => e.Label).Distinct().ToList();
                if (rows.Count == 0) continue;
                if (variant == Stochastic) sb.Append($"| ***{heading}*** |").Append(string.Concat(Enumerable.Repeat(" | | | | |", datasets.Count))).Append('\n');
                foreach (var label in rows)
                {
                    sb.Append("| ").Append(label).Append(" |");
                    foreach (var d in datasets)
                    {
                        var e = entries.FirstOrDefault(x => x.Dataset == d && x.Label == label);
                        string memory = e is null || variant != Stochastic ? "" : cuda && e.PeakCudaMemoryMb is double m ? $"{F(e.PeakMemoryMb, "F0")} (CUDA {F(m, "F0")})" : F(e.PeakMemoryMb, "F0");
                        sb.Append(' ').Append(e is null ? "" : Percent(e.TrainMean, e.TrainStandardError)).Append(" | ")
                          .Append(e is null ? "" : SeedsPercent(e.TrainSeedsMean, e.TrainSeedsStandardError)).Append(" | ")
                          .Append(e is null ? "" : Percent(e.TestMean, e.TestStandardError)).Append(" | ")
                          .Append(e is null ? "" : SeedsPercent(e.TestSeedsMean, e.TestSeedsStandardError)).Append(" | ").Append(memory).Append(" |");
                    }
                    sb.Append('\n');
                }
            }
        }
        sb.Append("\nRows marked *deterministic* use noise-free inference (NoProp-DT: ε = 0 in Eq. 3; the others start from z_0 = 0); ");
        sb.Append("*image only* is the first network evaluation at z = 0 with no chain (`noprop eval --image-only`).\n");

        var perBlock = cells.Where(x => x.PerBlockTest is { Length: > 0 }).GroupBy(x => (x.Dataset, x.Method, x.MethodVariant, x.Embedding, x.EmbeddingDim)).ToList();
        if (perBlock.Count > 0)
        {
            int blocks = perBlock.Max(g => g.Max(x => x.PerBlockTest![0].Length));
            sb.Append("\n## Test accuracy after each block (output head on z_t)\n\n| Model |");
            for (int b = 1; b <= blocks; b++) sb.Append($" t = {b} |");
            sb.Append('\n').Append("|---|").Append(string.Concat(Enumerable.Repeat("---|", blocks))).Append('\n');
            foreach (var g in perBlock.OrderBy(g => g.Key.Dataset, StringComparer.Ordinal).ThenBy(g => Order(MethodOrder, g.Key.Method)).ThenBy(g => Order(EmbeddingOrder, g.Key.Embedding)))
            {
                sb.Append($"| {RowLabel(g.Key.Method, g.Key.Embedding, g.Key.EmbeddingDim, "", Departure(g))}{(datasets.Count > 1 ? $", {Title(g.Key.Dataset)}" : "")} |");
                for (int b = 0; b < blocks; b++)
                {
                    var values = g.SelectMany(x => x.PerBlockTest!).Where(r => r.Length > b).Select(r => r[b]).ToList();
                    sb.Append(' ').Append(values.Count == 0 ? "" : Percent(Statistics.MeanAndStandardError(values).Mean, Statistics.MeanAndStandardError(values).StandardError)).Append(" |");
                }
                sb.Append('\n');
            }
        }

        sb.Append("\n## Memory and training time (like the paper's Table 2)\n\n| Method |");
        foreach (var d in datasets) sb.Append($" {Title(d)} peak RSS (MB) |{(cuda ? $" {Title(d)} peak CUDA (MB) |" : "")} {Title(d)} training seconds |");
        sb.Append('\n').Append("|---|").Append(string.Concat(Enumerable.Repeat(cuda ? "---|---|---|" : "---|---|", datasets.Count))).Append('\n');
        foreach (var label in entries.Where(e => e.Variant == Stochastic).Select(e => e.Label).Distinct())
        {
            sb.Append("| ").Append(label).Append(" |");
            foreach (var d in datasets)
            {
                var e = entries.FirstOrDefault(x => x.Dataset == d && x.Label == label && x.Variant == Stochastic);
                sb.Append(' ').Append(e is null ? "" : F(e.PeakMemoryMb, "F0")).Append(" |");
                if (cuda) sb.Append(' ').Append(e is null ? "" : F(e.PeakCudaMemoryMb, "F0")).Append(" |");
                sb.Append(' ').Append(e is null ? "" : F(e.TrainSeconds)).Append(" |");
            }
            sb.Append('\n');
        }
        sb.Append("\nPer-model figures: `cells.csv`; every inference run: `runs.csv`; each model's folder: `cells/<name>/`.\n");
        return sb.ToString();
    }

    private static string Title(string dataset) => dataset.ToLowerInvariant() switch
    {
        "mnist" => "MNIST", "cifar10" => "CIFAR-10", "cifar100" => "CIFAR-100", _ => dataset,
    };

    /// <summary>cells.csv: one line per trained model.</summary>
    public static string CellsCsv(IEnumerable<CellResult> cells)
    {
        var c = CultureInfo.InvariantCulture;
        string[] header = ["cell", "dataset", "method", "embedding", "embedding_dim", "seed", "epochs", "train_seconds", "validation_accuracy", "peak_memory_mb",
            "peak_cuda_memory_mb", "inference_seconds_per_run", "train_images", "test_images", "method_variant", "weighting", "schedule_training", "prediction"];
        return CsvTable.Format(header, cells.Select(x => new[]
        {
            x.Cell, x.Dataset, x.Method, x.Embedding, x.EmbeddingDim.ToString(c), x.Seed.ToString(c), x.Epochs.ToString(c),
            F(x.TrainSeconds, "F3"), F(x.ValidationAccuracy, "F6"), F(x.PeakMemoryMb), F(x.PeakCudaMemoryMb), F(x.InferenceSecondsPerRun, "F3"),
            x.TrainImages.ToString(c), x.TestImages.ToString(c), x.MethodVariant, x.Weighting ?? "", x.ScheduleTraining ?? "", x.Prediction ?? "",
        }));
    }

    /// <summary>runs.csv: every inference run's accuracy (variant, split, run index).</summary>
    public static string RunsCsv(IEnumerable<CellResult> cells)
    {
        var c = CultureInfo.InvariantCulture;
        var rows = new List<string[]>();
        foreach (var x in cells)
            foreach (var (variant, splits) in new[] { ("stochastic", x.Stochastic), ("deterministic", x.Deterministic), ("image-only", x.ImageOnly) })
            {
                if (splits is null) continue;
                foreach (var (split, values) in new[] { ("train", splits.Train), ("test", splits.Test) })
                    for (int r = 0; r < values.Length; r++)
                        rows.Add([x.Cell, x.Dataset, x.Method, x.Embedding, x.Seed.ToString(c), variant, split, r.ToString(c), values[r].ToString("F6", c)]);
            }
        return CsvTable.Format(["cell", "dataset", "method", "embedding", "seed", "variant", "split", "run", "accuracy"], rows);
    }
}
