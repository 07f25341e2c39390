using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Runtime;

namespace NoProp.Cli.Experiments;

/// <summary>
/// Options of <c>noprop train</c> that a grid may set (JSON names are the option names with '_' for '-').
/// Options that apply to some methods only are passed to the methods that take them (the method registry says which:
/// <c>blocks</c> to dt and backprop; <c>steps</c>, <c>solver</c>, <c>backbone</c> and <c>prediction</c> to ct, fm and
/// adjoint; <c>eta</c> to dt and ct; <c>weighting</c> and the schedule options to ct); <c>embedding_dim</c> to learned
/// embeddings. <c>early_stopping_patience</c> and <c>early_stopping_min_delta</c> stop a model after that many
/// validations without a gain (the model keeps its best epoch).
/// </summary>
public record TrainSettings
{
    public int? Epochs { get; init; }
    public int? BatchSize { get; init; }
    public int? TrainSize { get; init; }
    public int? ValidationSize { get; init; }
    public int? TestSize { get; init; }
    public int? EvalEvery { get; init; }
    public int? EarlyStoppingPatience { get; init; }
    public double? EarlyStoppingMinDelta { get; init; }
    public double? Lr { get; init; }
    public double? WeightDecay { get; init; }
    public double? Eta { get; init; }
    public int? Blocks { get; init; }
    public int? Steps { get; init; }
    public string? Solver { get; init; }
    public string? Backbone { get; init; }
    public string? Prediction { get; init; }
    public string? Weighting { get; init; }
    public string? ScheduleTraining { get; init; }
    public double? ScheduleWeightDecay { get; init; }
    public int? EmbeddingDim { get; init; }
    public int? Threads { get; init; }
    public string? Device { get; init; }
    public string? DataDir { get; init; }

    /// <summary>This record's values where set, <paramref name="fallback"/>'s elsewhere.</summary>
    public TrainSettings Over(TrainSettings fallback) => new()
    {
        Epochs = Epochs ?? fallback.Epochs, BatchSize = BatchSize ?? fallback.BatchSize, TrainSize = TrainSize ?? fallback.TrainSize,
        ValidationSize = ValidationSize ?? fallback.ValidationSize, TestSize = TestSize ?? fallback.TestSize,
        EvalEvery = EvalEvery ?? fallback.EvalEvery,
        EarlyStoppingPatience = EarlyStoppingPatience ?? fallback.EarlyStoppingPatience, EarlyStoppingMinDelta = EarlyStoppingMinDelta ?? fallback.EarlyStoppingMinDelta,
        Lr = Lr ?? fallback.Lr, WeightDecay = WeightDecay ?? fallback.WeightDecay,
        Eta = Eta ?? fallback.Eta, Blocks = Blocks ?? fallback.Blocks, Steps = Steps ?? fallback.Steps, Solver = Solver ?? fallback.Solver,
        Backbone = Backbone ?? fallback.Backbone, Prediction = Prediction ?? fallback.Prediction, Weighting = Weighting ?? fallback.Weighting,
        ScheduleTraining = ScheduleTraining ?? fallback.ScheduleTraining, ScheduleWeightDecay = ScheduleWeightDecay ?? fallback.ScheduleWeightDecay,
        EmbeddingDim = EmbeddingDim ?? fallback.EmbeddingDim, Threads = Threads ?? fallback.Threads, Device = Device ?? fallback.Device,
        DataDir = DataDir ?? fallback.DataDir,
    };

    /// <summary>The <c>noprop train</c> arguments for one method and embedding.</summary>
    public List<string> ToArguments(MethodKind method, string embedding)
    {
        var args = new List<string>();
        var c = CultureInfo.InvariantCulture;
        void Add(string name, object? value, bool applies = true)
        {
            if (value is null || !applies) return;
            args.Add("--" + name);
            args.Add(value switch { double d => d.ToString("R", c), int i => i.ToString(c), _ => value.ToString()! });
        }
        Add("epochs", Epochs); Add("batch-size", BatchSize); Add("train-size", TrainSize); Add("validation-size", ValidationSize);
        Add("test-size", TestSize); Add("eval-every", EvalEvery);
        Add("early-stopping-patience", EarlyStoppingPatience); Add("early-stopping-min-delta", EarlyStoppingMinDelta);
        Add("lr", Lr); Add("weight-decay", WeightDecay);
        var definition = MethodRegistry.Get(method);
        AddFor(MethodOption.Eta, Eta); AddFor(MethodOption.Blocks, Blocks);
        AddFor(MethodOption.Steps, Steps); AddFor(MethodOption.Solver, Solver); AddFor(MethodOption.Backbone, Backbone); AddFor(MethodOption.Prediction, Prediction);
        AddFor(MethodOption.Weighting, Weighting); AddFor(MethodOption.ScheduleTraining, ScheduleTraining); AddFor(MethodOption.ScheduleWeightDecay, ScheduleWeightDecay);
        Add("embedding-dim", EmbeddingDim, embedding == LabelEmbeddingKind.Learned.ToCliName());
        Add("threads", Threads); Add("device", Device); Add("data-dir", DataDir);
        return args;

        // A method option goes to the methods that take it (the grid's train block is shared by all its methods).
        void AddFor(MethodOption option, object? value) => Add(option.CliName, value, definition.Accepts(option));
    }
}

/// <summary>Settings of one method in the grid: train options over the grid's, and optionally its own embeddings.</summary>
public record MethodSettings : TrainSettings
{
    /// <summary>The embeddings this method is run with (the grid's when null), e.g. the paper runs the adjoint with one-hot only.</summary>
    public string[]? Embeddings { get; init; }
}

/// <summary>
/// An extra set of rows for a method already in the grid, trained with other options over the method's own, e.g. the
/// paper's grid runs NoProp-CT with the paper's objective and adds the project's default as a variant. Its cells are
/// named <c>DATASET-METHOD-NAME-EMBEDDING-seedS</c>; the table labels its rows by what the models were trained with.
/// </summary>
public sealed record MethodVariant : MethodSettings
{
    /// <summary>Lower-case letters, digits and '-': part of the cells' folder names.</summary>
    public string Name { get; init; } = "";
    /// <summary>The method (one of the grid's <c>methods</c>) whose settings this variant overrides.</summary>
    public string Method { get; init; } = "";
}

/// <summary>The eval diagnostics added to the table.</summary>
public sealed record DiagnosticSettings
{
    /// <summary>A "deterministic" row per model: DT with ε = 0, the others from z_0 = 0.</summary>
    public bool Deterministic { get; init; }
    /// <summary>An "image only" row per model that has one (not the adjoint).</summary>
    public bool ImageOnly { get; init; }
    /// <summary>A per-block table for dt and backprop models.</summary>
    public bool PerBlock { get; init; }
}

/// <summary>One trained model of the grid: a data set, method, embedding and seed.</summary>
public sealed record ExperimentCell(string Dataset, MethodKind Method, string Embedding, long Seed, IReadOnlyList<string> TrainArguments, string MethodVariant = "")
{
    public string Name => $"{Dataset}-{Method.ToCliName()}{(MethodVariant.Length > 0 ? "-" + MethodVariant : "")}-{Embedding}-seed{Seed.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>
/// An experiment grid, read from JSON (see configs/ and the README): methods × embeddings × data sets × seeds,
/// each model evaluated with R stochastic inference runs on its training and test images.
/// </summary>
public sealed record ExperimentConfig
{
    public string Name { get; init; } = "";
    public string? Description { get; init; }
    /// <summary>Where the grid's cells and results go, relative to the working directory (overridable with --output).</summary>
    public string? Output { get; init; }
    public string[] Datasets { get; init; } = ["mnist"];
    public string[] Methods { get; init; } = [];
    public string[] Embeddings { get; init; } = [LabelEmbeddingKind.OneHot.ToCliName()];
    public long[] Seeds { get; init; } = [1];
    /// <summary>R, stochastic inference runs per model (the paper: 5).</summary>
    public int InferenceRuns { get; init; } = 5;
    /// <summary>How many of the training images are evaluated for the train column (all when null).</summary>
    public int? TrainEvalSize { get; init; }
    public DiagnosticSettings Diagnostics { get; init; } = new();
    public TrainSettings Train { get; init; } = new();
    public Dictionary<string, MethodSettings> PerMethod { get; init; } = new();
    /// <summary>Extra rows: a method trained again with other options (see <see cref="MethodVariant"/>).</summary>
    public MethodVariant[] MethodVariants { get; init; } = [];

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static ExperimentConfig Load(string path)
    {
        if (!File.Exists(path)) throw new NoPropException($"--config {path}: file not found");
        ExperimentConfig config;
        try
        {
            config = JsonSerializer.Deserialize<ExperimentConfig>(File.ReadAllText(path), Json) ?? throw new NoPropException($"{path}: empty configuration");
        }
        catch (JsonException e)
        {
            throw new NoPropException($"{path}: invalid experiment configuration ({e.Message.Split('\n')[0]})");
        }
        config.Validate(path);
        return config;
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public void Validate(string source)
    {
        void Fail(string message) => throw new NoPropException($"{source}: {message}");
        if (Name.Length == 0) Fail("'name' is required");
        if (Methods.Length == 0) Fail("'methods' must name at least one method (dt, ct, fm, backprop, adjoint)");
        if (Datasets.Length == 0) Fail("'datasets' must name at least one data set");
        if (Seeds.Length == 0) Fail("'seeds' must hold at least one seed");
        if (Seeds.Distinct().Count() != Seeds.Length) Fail("'seeds' repeats a seed");
        if (InferenceRuns < 1) Fail($"'inference_runs' must be at least 1, got {InferenceRuns}");
        if (TrainEvalSize is < 1) Fail($"'train_eval_size' must be at least 1, got {TrainEvalSize}");
        foreach (var m in Methods)
            if (!MethodKinds.CliNames.Contains(m)) Fail($"unknown method '{m}' in 'methods' (expected {string.Join(", ", MethodKinds.CliNames)})");
        if (Methods.Distinct().Count() != Methods.Length) Fail("'methods' repeats a method");
        foreach (var d in Datasets)
            if (!NoProp.Data.Datasets.Names.Contains(d)) Fail($"unknown data set '{d}' in 'datasets' (expected {string.Join(", ", NoProp.Data.Datasets.Names)})");
        foreach (var e in Embeddings.Concat(PerMethod.Values.Concat(MethodVariants).SelectMany(p => p.Embeddings ?? [])))
            if (!EnumNames<LabelEmbeddingKind>.Names.Contains(e)) Fail($"unknown embedding '{e}' (expected {EnumNames.Join(EnumNames<LabelEmbeddingKind>.Names, "or")})");
        foreach (var m in PerMethod.Keys)
            if (!Methods.Contains(m)) Fail($"'per_method' names '{m}', which is not in 'methods'");
        foreach (var v in MethodVariants)
        {
            if (!System.Text.RegularExpressions.Regex.IsMatch(v.Name, "^[a-z0-9][a-z0-9-]*$"))
                Fail($"'method_variants': name '{v.Name}' must be lower-case letters, digits and '-' (it names the cells' folders)");
            if (!Methods.Contains(v.Method)) Fail($"'method_variants': '{v.Name}' is a variant of '{v.Method}', which is not in 'methods'");
        }
        if (MethodVariants.Select(v => (v.Method, v.Name)).Distinct().Count() != MethodVariants.Length) Fail("'method_variants' repeats a name");
    }

    /// <summary>Every cell of the grid, in table order: data set, then method (as listed), embedding, seed.</summary>
    public IReadOnlyList<ExperimentCell> Cells()
    {
        var cells = new List<ExperimentCell>();
        foreach (var dataset in Datasets)
            foreach (var methodName in Methods)
            {
                var method = MethodKinds.Parse(methodName);
                var own = PerMethod.GetValueOrDefault(methodName);
                var settings = own is null ? Train : own.Over(Train);
                AddCells(dataset, methodName, method, settings, own?.Embeddings ?? Embeddings, "");
                // A method's variants follow it, so their rows sit under its rows.
                foreach (var variant in MethodVariants.Where(v => v.Method == methodName))
                    AddCells(dataset, methodName, method, variant.Over(settings), variant.Embeddings ?? own?.Embeddings ?? Embeddings, variant.Name);
            }
        return cells;

        void AddCells(string dataset, string methodName, MethodKind method, TrainSettings settings, string[] embeddings, string variant)
        {
            foreach (var embedding in embeddings)
                foreach (var seed in Seeds)
                {
                    var args = new List<string> { "--method", methodName, "--dataset", dataset, "--embedding", embedding, "--seed", seed.ToString(CultureInfo.InvariantCulture) };
                    args.AddRange(settings.ToArguments(method, embedding));
                    args.Add("--track-test");
                    cells.Add(new ExperimentCell(dataset, method, embedding, seed, args, variant));
                }
        }
    }
}
