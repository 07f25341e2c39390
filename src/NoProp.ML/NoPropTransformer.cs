using Microsoft.ML;
using Microsoft.ML.Runtime;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.Transforms;
using NoProp.Methods;
using NoProp.ML.Scoring;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Training;

namespace NoProp.ML;

/// <summary>
/// A trained NoProp model as an ML.NET transformer: adds <c>Score</c> (Vector&lt;Single, K&gt;, softmax probabilities,
/// SlotNames = class names) and <c>PredictedLabel</c> (Key&lt;UInt32, K&gt;, KeyValues = class names). Scoring is lazy,
/// batched and deterministic: each row's inference noise comes from a generator seeded by the model's seed and the
/// row's features, so a row gets the same Score in any batch, in a PredictionEngine and after save/load.
/// Saved by <c>mlContext.Model.Save</c> (options, class names and TorchSharp weights in the zip) and restored by a
/// plain <c>mlContext.Model.Load</c>. Dispose it (or the chain holding it) to free the native weights.
/// </summary>
public sealed class NoPropTransformer : ISingleFeaturePredictionTransformer<NoPropModelParameters>, IDisposable
{
    internal const string LoaderSignature = "NoPropTransformer";
    private const string ConfigurationEntry = "NoPropModel.json";
    private const string WeightsEntry = "TorchModel";
    private const string LabelValuesEntry = "LabelValues";
    private const string HistoryEntry = "TrainingHistory.json";

    private readonly IHost host;
    private readonly INoPropMethod method;
    private readonly BatchScorer scorer;
    private readonly LabelValues? labelValues;
    private bool disposed;

    internal NoPropTransformer(IHostEnvironment environment, INoPropMethod method, NoPropModelParameters model, LabelValues? labelValues,
        string featureColumnName, bool imageInput, string scoreColumnName, string predictedLabelColumnName, long scoringSeed, int inferenceBatchSize,
        NoPropInferencePrecision inferencePrecision)
    {
        host = environment.Register(nameof(NoPropTransformer));
        if (inferenceBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(inferenceBatchSize), "the inference batch size must be at least 1");
        try
        {
            InferenceOptions.CheckPrecision((NoProp.Runtime.InferencePrecision)inferencePrecision, method.Config);
        }
        catch (NoPropException e)
        {
            throw new ArgumentException(e.Message, nameof(inferencePrecision), e);
        }
        if (labelValues is not null && labelValues.Count != method.Config.ClassCount)
            throw new InvalidDataException($"the model has {method.Config.ClassCount} classes but {labelValues.Count} label values");
        this.method = method;
        this.labelValues = labelValues;
        Model = model;
        FeatureColumnName = featureColumnName;
        ImageInput = imageInput;
        ScoreColumnName = scoreColumnName;
        PredictedLabelColumnName = predictedLabelColumnName;
        ScoringSeed = scoringSeed;
        InferenceBatchSize = inferenceBatchSize;
        InferencePrecision = inferencePrecision;
        method.Network.eval();
        scorer = new BatchScorer(method, scoringSeed, (NoProp.Runtime.InferencePrecision)inferencePrecision);
    }

    /// <summary>The trained model: configuration, class names, image shape, per-epoch history, best epoch (as ML.NET's <c>LastTransformer.Model</c>).</summary>
    public NoPropModelParameters Model { get; }

    /// <summary>Everything that defines the model: method, image shape, class names, normalisation, hyper-parameters.</summary>
    public ModelConfig Configuration => method.Config;

    /// <summary>The classes, in the order of the Score slots and of the PredictedLabel keys (key i + 1 = class i).</summary>
    public IReadOnlyList<string> ClassNames => method.Config.ClassNames;

    /// <summary>The image shape the feature vector is read as (C × H × W values, channel-major).</summary>
    public ImageShape ImageShape => method.Config.Image;

    public string FeatureColumnName { get; }

    /// <summary>
    /// True when the model reads an image column (MLImage, LoadImages' output) and resizes and extracts its pixels itself;
    /// false when it reads a vector of C × H × W intensities.
    /// </summary>
    public bool ImageInput { get; }

    /// <summary>The feature column's type the model reads: an image, or Vector&lt;Single, C, H, W&gt;.</summary>
    public DataViewType FeatureColumnType => ImageInput
        ? new ImageDataViewType()
        : new VectorDataViewType(NumberDataViewType.Single, ImageShape.Channels, ImageShape.Height, ImageShape.Width);

    public string ScoreColumnName { get; }
    public string PredictedLabelColumnName { get; }

    /// <summary>Seeds every row's inference noise (with the row's features).</summary>
    public long ScoringSeed { get; }

    public int InferenceBatchSize { get; }

    /// <summary>The number format of the image path's convolutions when scoring (saved with the model).</summary>
    public NoPropInferencePrecision InferencePrecision { get; }

    /// <summary>The trained method (for the library's own evaluation tools).</summary>
    internal INoPropMethod Method => method;

    internal BatchScorer Scorer => scorer;

    /// <summary>
    /// Wraps a model trained by the <c>noprop</c> CLI (a folder holding model.json and model.bin) as a transformer.
    /// Its features must be pixel intensities in [0, 1] (<c>ExtractPixels(..., scaleImage: 1f / 255)</c>), C × H × W as
    /// the model was trained on; the model's own normalisation is applied. For Evaluate, map the label to keys with
    /// <see cref="MapLabelToKey"/>, so that key i + 1 means the model's class i.
    /// </summary>
    public static NoPropTransformer LoadFromModelDirectory(MLContext mlContext, string modelDirectory, string featureColumnName = "Features",
        long scoringSeed = 1, int inferenceBatchSize = 256, string scoreColumnName = "Score", string predictedLabelColumnName = "PredictedLabel",
        NoPropInferencePrecision inferencePrecision = NoPropInferencePrecision.Float32)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        if (!Directory.Exists(modelDirectory)) throw new DirectoryNotFoundException($"NoProp model folder '{modelDirectory}' not found");
        TorchRuntime.Initialize();
        INoPropMethod loaded;
        try
        {
            loaded = ModelStore.Load(modelDirectory, DeviceSelection.For(mlContext));
        }
        catch (NoPropException e)
        {
            throw new InvalidOperationException(e.Message, e);
        }
        return new NoPropTransformer(mlContext, loaded, NoPropModelParameters.FromHistoryJson(loaded.Config, scoringSeed, null),
            LabelValues.FromNames(loaded.Config.ClassNames), featureColumnName, imageInput: false, scoreColumnName, predictedLabelColumnName, scoringSeed, inferenceBatchSize,
            inferencePrecision);
    }

    /// <summary>
    /// <c>MapValueToKey</c> with this model's class order: text label <paramref name="inputColumnName"/> becomes a key
    /// whose value i + 1 is class i, as the Score slots are. Needed for models from <see cref="LoadFromModelDirectory"/>
    /// (a pipeline that trained the model already holds its own mapping). Unknown labels become key 0, which Evaluate skips.
    /// </summary>
    public ValueToKeyMappingEstimator MapLabelToKey(MLContext mlContext, string outputColumnName = "Label", string? inputColumnName = null)
    {
        var keyData = mlContext.Data.LoadFromEnumerable(ClassNames.Select(name => new ClassNameRow { Name = name }).ToList());
        return mlContext.Transforms.Conversion.MapValueToKey(outputColumnName, inputColumnName ?? outputColumnName, keyData: keyData);
    }

    /// <summary>One row of the key data for <see cref="MapLabelToKey"/>.</summary>
    private sealed class ClassNameRow
    {
        public string Name { get; set; } = "";
    }

    public bool IsRowToRowMapper => true;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        ColumnChecks.CheckFeaturesMatchModel(inputSchema, FeatureColumnName, ImageShape, ImageInput);
        return OutputColumns.Build(inputSchema, ScoreColumnName, PredictedLabelColumnName, ClassNames.Count, labelValues);
    }

    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ObjectDisposedException.ThrowIf(disposed, this);
        var schema = GetOutputSchema(input.Schema);
        return new ScoredDataView(input, schema, scorer, input.Schema[FeatureColumnName].Index, InferenceBatchSize);
    }

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var schema = GetOutputSchema(inputSchema);
        return new ScoringRowMapper(inputSchema, schema, scorer, inputSchema[FeatureColumnName].Index);
    }

    // ---- persistence (ML.NET's internal model format; see Publicize.targets) ----

    // 0x00010001: columns, seed, batch size, NoPropModel.json, TorchModel (class names as text only).
    // 0x00010002: + the label's key values in their own type (LabelValues), the training history (TrainingHistory.json)
    //             and whether the input is an image column (resized and read by Features/ImagePixels).
    // 0x00010003: + the inference precision (an int: 0 float32, 1 bfloat16).
    private const uint VersionTypedLabelsAndHistory = 0x00010002;
    private const uint VersionInferencePrecision = 0x00010003;

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "NOPROPTF",
        verWrittenCur: VersionInferencePrecision,
        verReadableCur: VersionInferencePrecision,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(NoPropTransformer).Assembly.FullName);

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.SaveNonEmptyString(FeatureColumnName);
        ctx.SaveNonEmptyString(ScoreColumnName);
        ctx.SaveNonEmptyString(PredictedLabelColumnName);
        ctx.Writer.Write(ScoringSeed);
        ctx.Writer.Write(InferenceBatchSize);
        ctx.Writer.Write(labelValues is not null);
        if (labelValues is not null) ctx.SaveBinaryStream(LabelValuesEntry, writer => labelValues.Write(host, writer.BaseStream));
        ctx.SaveTextStream(HistoryEntry, writer => writer.Write(Model.HistoryJson()));
        ctx.Writer.Write(ImageInput);
        ctx.Writer.Write((int)InferencePrecision);
        // The model configuration (method, image shape, class names, normalisation, hyper-parameters) as the CLI's
        // model.json, readable in the zip; the weights as the CLI's model.bin.
        ctx.SaveTextStream(ConfigurationEntry, writer => writer.Write(Configuration.ToJson()));
        ctx.SaveBinaryStream(WeightsEntry, writer => method.Network.save(writer));
    }

    // Called by ML.NET through the LoadableClass attribute (AssemblyAttributes.cs).
    private static NoPropTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ctx.CheckAtModel(GetVersionInfo());
        string featureColumn = ctx.LoadNonEmptyString();
        string scoreColumn = ctx.LoadNonEmptyString();
        string predictedLabelColumn = ctx.LoadNonEmptyString();
        long scoringSeed = ctx.Reader.ReadInt64();
        int inferenceBatchSize = ctx.Reader.ReadInt32();
        string? json = null;
        if (!ctx.TryLoadTextStream(ConfigurationEntry, reader => json = reader.ReadToEnd()) || json is null)
            throw new InvalidDataException($"the NoProp model has no {ConfigurationEntry} entry");
        var config = ModelConfig.FromJson(json, ConfigurationEntry);
        LabelValues? labels;
        string? history = null;
        bool imageInput = false;
        var precision = NoPropInferencePrecision.Float32;
        if (ctx.Header.ModelVerWritten >= VersionTypedLabelsAndHistory)
        {
            labels = null;
            if (ctx.Reader.ReadBoolean()
                && !ctx.TryLoadBinaryStream(LabelValuesEntry, reader => labels = LabelValues.Load(env, reader.BaseStream)))
                throw new InvalidDataException($"the NoProp model has no {LabelValuesEntry} entry");
            if (!ctx.TryLoadTextStream(HistoryEntry, reader => history = reader.ReadToEnd()))
                throw new InvalidDataException($"the NoProp model has no {HistoryEntry} entry");
            imageInput = ctx.Reader.ReadBoolean();
            if (ctx.Header.ModelVerWritten >= VersionInferencePrecision)
            {
                int value = ctx.Reader.ReadInt32();
                precision = Enum.IsDefined((NoPropInferencePrecision)value) ? (NoPropInferencePrecision)value
                    : throw new InvalidDataException($"the NoProp model names an unknown inference precision ({value})");
            }
        }
        else
        {
            labels = LabelValues.FromNames(config.ClassNames);   // version 1 always published its class names as text key values
        }
        var model = NoPropModelParameters.FromHistoryJson(config, scoringSeed, history);

        TorchRuntime.Initialize();
        var loaded = MethodRegistry.Create(config, DeviceSelection.For(env));
        try
        {
            if (!ctx.TryLoadBinaryStream(WeightsEntry, reader => loaded.Network.load(reader, strict: true)))
                throw new InvalidDataException($"the NoProp model has no {WeightsEntry} entry");
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
        return new NoPropTransformer(env, loaded, model, labels, featureColumn, imageInput, scoreColumn, predictedLabelColumn, scoringSeed, inferenceBatchSize, precision);
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        scorer.Dispose();   // its cached inference weights
        method.Dispose();
    }
}
