using System.Text.Json;
using System.Text.Json.Serialization;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Solvers;

namespace NoProp.Training.Runs;

/// <summary>
/// run.json: a <see cref="TrainRequest"/> as a run folder keeps it, one flat object with snake_case names — the format
/// every run folder has held since the first release, so folders written by earlier versions resume and evaluate as
/// before. (Written without the output folder: a folder's run.json describes the folder it is in.)
/// </summary>
public static class RunFile
{
    public const string FileName = "run.json";

    public static void Save(TrainRequest request, string directory) =>
        File.WriteAllText(Path.Combine(directory, FileName), ToJson(request));

    public static string ToJson(TrainRequest request) => JsonSerializer.Serialize(Flat.From(request), RunFileJson.Default.Flat);

    /// <summary>Reads DIR/run.json; the request's <see cref="TrainRequest.Output"/> is <paramref name="directory"/>.</summary>
    public static TrainRequest Load(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new NoPropException($"--resume {directory}: {path} not found (not a folder written by 'noprop train')");
        return FromJson(File.ReadAllText(path), path) with { Output = directory };
    }

    public static TrainRequest FromJson(string json, string source)
    {
        try { return (JsonSerializer.Deserialize(json, RunFileJson.Default.Flat) ?? throw new JsonException("empty file")).ToRequest(); }
        catch (JsonException e) { throw new NoPropException($"{source}: invalid run settings ({e.Message})", e); }
    }

    /// <summary>The file's shape: property names and order are the format.</summary>
    internal sealed class Flat
    {
        public string Method { get; set; } = "dt";
        public string Dataset { get; set; } = "mnist";
        public string? DataDir { get; set; }
        public string Label { get; set; } = "fine";
        public int ImageHeight { get; set; } = 28;
        public int ImageWidth { get; set; } = 28;
        public int Channels { get; set; } = 1;
        public bool Download { get; set; }
        public bool Augment { get; set; }
        public int CropPadding { get; set; } = 4;
        public string Embedding { get; set; } = LabelEmbeddingKind.OneHot.ToCliName();
        public int? EmbeddingDim { get; set; }
        public int Blocks { get; set; } = 10;
        public int Epochs { get; set; } = 100;
        public int BatchSize { get; set; } = 128;
        public int? TrainSize { get; set; }
        public int? ValidationSize { get; set; }
        public int? TestSize { get; set; }
        public long Seed { get; set; } = 1;
        public int? Threads { get; set; }
        public string Device { get; set; } = "cpu";
        public double LearningRate { get; set; } = 1e-3;
        public double WeightDecay { get; set; } = 1e-3;
        public double? Eta { get; set; }
        public int EvalEvery { get; set; } = 1;
        public int? EarlyStoppingPatience { get; set; }
        public double EarlyStoppingMinDelta { get; set; }
        public string Backbone { get; set; } = "paper";
        public string Solver { get; set; } = "heun";
        public int Steps { get; set; } = 40;
        public string? Weighting { get; set; }
        public string? Prediction { get; set; }
        public string? ScheduleTraining { get; set; }
        public double? ScheduleWeightDecay { get; set; }
        public double? GammaMax { get; set; }
        public double? GammaMin { get; set; }
        public double FlowSigma { get; set; }
        public string Schedule { get; set; } = BlockSchedule.Sequential.ToCliName();
        public string LrSchedule { get; set; } = "constant";
        public double? WarmupEpochs { get; set; }
        public int InferenceBatchSize { get; set; } = NoProp.Methods.InferenceOptions.DefaultBatchSize;
        /// <summary>Written only when set: run folders from before the option stay byte-identical.</summary>
        [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public string? InferencePrecision { get; set; }
        public bool TrackTest { get; set; }
        /// <summary>Written only when set: run folders from before the option stay byte-identical.</summary>
        [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public string? Inference { get; set; }

        /// <summary>The file keeps every method option resolved (the method's default where the request has none), as it always has.</summary>
        public static Flat From(TrainRequest r)
        {
            var defaults = MethodRegistry.TryParse(r.Method, out var method) ? method.Defaults : new MethodDefaults();
            return new Flat
            {
            Method = r.Method, Dataset = r.Data.Dataset, DataDir = r.Data.DataDir, Label = r.Data.Label, ImageHeight = r.Data.ImageHeight,
            ImageWidth = r.Data.ImageWidth, Channels = r.Data.Channels, Download = r.Data.Download, Augment = r.Data.Augment,
            CropPadding = r.Data.CropPadding, Embedding = r.Model.Embedding, EmbeddingDim = r.Model.EmbeddingDim, Blocks = r.Model.Blocks ?? defaults.Blocks,
            Epochs = r.Training.Epochs, BatchSize = r.Training.BatchSize, TrainSize = r.Splits.TrainSize, ValidationSize = r.Splits.ValidationSize,
            TestSize = r.Splits.TestSize, Seed = r.Training.Seed, Threads = r.Threads, Device = r.Device, LearningRate = r.Model.LearningRate,
            WeightDecay = r.Model.WeightDecay, Eta = r.Model.Eta, EvalEvery = r.Training.EvalEvery,
            EarlyStoppingPatience = r.Training.EarlyStoppingPatience, EarlyStoppingMinDelta = r.Training.EarlyStoppingMinDelta,
            Backbone = r.Model.Backbone ?? defaults.Backbone.ToCliName(), Solver = r.Model.Solver ?? OdeSolvers.ToCliName(defaults.Solver),
            Steps = r.Model.Steps ?? defaults.InferenceSteps, Weighting = r.Model.Weighting,
            Prediction = r.Model.Prediction, ScheduleTraining = r.Model.ScheduleTraining, ScheduleWeightDecay = r.Model.ScheduleWeightDecay,
            GammaMax = r.Model.GammaMax, GammaMin = r.Model.GammaMin, FlowSigma = r.Model.FlowSigma, Schedule = r.Model.Schedule ?? defaults.BlockSchedule.ToString().ToLowerInvariant(),
            LrSchedule = r.Training.LrSchedule, WarmupEpochs = r.Training.WarmupEpochs, InferenceBatchSize = r.Training.InferenceBatchSize,
            InferencePrecision = r.Training.InferencePrecision, TrackTest = r.Training.TrackTest, Inference = r.Model.Inference,
            };
        }

        public TrainRequest ToRequest() => new()
        {
            Method = Method,
            Data = new DataRequest
            {
                Dataset = Dataset, DataDir = DataDir, Label = Label, ImageHeight = ImageHeight, ImageWidth = ImageWidth, Channels = Channels,
                Download = Download, Augment = Augment, CropPadding = CropPadding,
            },
            Splits = new SplitRequest { TrainSize = TrainSize, ValidationSize = ValidationSize, TestSize = TestSize },
            Model = new ModelRequest
            {
                Embedding = Embedding, EmbeddingDim = EmbeddingDim, Blocks = Blocks, Eta = Eta, LearningRate = LearningRate, WeightDecay = WeightDecay,
                Backbone = Backbone, Solver = Solver, Steps = Steps, Weighting = Weighting, Prediction = Prediction, ScheduleTraining = ScheduleTraining,
                ScheduleWeightDecay = ScheduleWeightDecay, GammaMax = GammaMax, GammaMin = GammaMin, FlowSigma = FlowSigma, Schedule = Schedule,
                Inference = Inference,
            },
            Training = new TrainingSettings
            {
                Epochs = Epochs, BatchSize = BatchSize, Seed = Seed, EvalEvery = EvalEvery, EarlyStoppingPatience = EarlyStoppingPatience,
                EarlyStoppingMinDelta = EarlyStoppingMinDelta, LrSchedule = LrSchedule, WarmupEpochs = WarmupEpochs,
                InferenceBatchSize = InferenceBatchSize, InferencePrecision = InferencePrecision, TrackTest = TrackTest,
            },
            Threads = Threads,
            Device = Device,
        };
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(RunFile.Flat))]
internal sealed partial class RunFileJson : JsonSerializerContext;
