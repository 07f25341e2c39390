using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using NoProp.Data;
using NoProp.Embeddings;
using NoProp.Methods;
using NoProp.ML.Features;
using NoProp.ML.Training;
using NoProp.Models;
using NoProp.Runtime;
using NoProp.Solvers;
using NoProp.Training;

namespace NoProp.ML;

/// <summary>
/// Trains a NoProp model (Li, Teh &amp; Pascanu, arXiv 2503.24322) in an ML.NET pipeline. The label must be a key
/// column (<c>MapValueToKey</c>), the features a known-size vector of Single holding one image per row (C × H × W,
/// channel-major, as <c>ExtractPixels</c> writes it). Fit reads the rows once, into a chunked buffer (no array size limit), holds out
/// <see cref="NoPropOptions.ValidationFraction"/> of them to pick the best epoch, and trains with the library's own
/// training loop; the result scores with <see cref="NoPropTransformer"/>. Put <c>AppendCacheCheckpoint</c> before it
/// only when other trainers share the data: NoProp materialises its rows itself.
/// </summary>
public sealed class NoPropEstimator : ITrainerEstimator<NoPropTransformer, NoPropModelParameters>
{
    private readonly IHostEnvironment environment;
    private readonly IHost host;
    private readonly NoPropOptions options;
    private readonly int seed;

    public NoPropEstimator(IHostEnvironment environment, NoPropOptions options)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(options);
        this.environment = environment;
        host = environment.Register(nameof(NoPropEstimator));
        this.options = options.Clone();   // later edits of the caller's object must not change this estimator
        Validate(this.options);
        // As LightGbm: no seed of its own → one drawn from the MLContext's random source (seeded by new MLContext(seed: S)).
        // Drawn once, here, so that fitting this estimator twice gives the same model.
        seed = this.options.Seed ?? host.Rand.Next();
    }

    /// <summary>Images per chunk of the buffer the rows are read into (null: 64 MiB chunks); small values let tests cross chunk boundaries.</summary>
    internal int? ImagesPerChunk { get; init; }

    /// <summary>The MLContext's cancellation flag (MLContext.CancelExecution reaches every host registered on it).</summary>
    private bool IsCanceled => host is ICancelable { IsCanceled: true };

    /// <summary>NoProp normalises its features itself, reads its rows into memory once (no cache needed) and uses validation data.</summary>
    public TrainerInfo Info { get; } = new(normalization: false, calibration: false, caching: false, supportValid: true);

    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        ColumnChecks.CheckLabel(inputSchema, options.LabelColumnName);
        ColumnChecks.CheckFeatures(inputSchema, options.FeatureColumnName);
        inputSchema.TryFindColumn(options.LabelColumnName, out var label);
        return OutputColumns.Shape(inputSchema, label, options.ScoreColumnName, options.PredictedLabelColumnName);
    }

    /// <summary>Trains on <paramref name="input"/>; the validation rows are <see cref="NoPropOptions.ValidationSet"/> or, without it, a held-out share.</summary>
    public NoPropTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>
    /// Trains on <paramref name="trainData"/> and picks the best epoch (and stops early, when asked) on
    /// <paramref name="validationData"/>, which takes precedence over <see cref="NoPropOptions.ValidationSet"/> and
    /// <see cref="NoPropOptions.ValidationFraction"/>. Both need the same columns, the label keyed with the same key values
    /// (transform the validation data with the training pipeline's fitted transforms).
    /// </summary>
    public NoPropTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        ArgumentNullException.ThrowIfNull(trainData);
        var input = trainData;
        var schema = input.Schema;
        var labelType = ColumnChecks.CheckLabel(schema, options.LabelColumnName);
        var featureType = ColumnChecks.CheckFeatures(schema, options.FeatureColumnName);
        bool imageInput = FeatureReaders.IsImage(featureType);
        var image = imageInput
            ? ColumnChecks.ImageInputShape(options.FeatureColumnName, options.Channels, options.Height, options.Width, () => FirstImageSize(input))
            : ColumnChecks.InferImageShape((VectorDataViewType)featureType, options.FeatureColumnName, options.Channels, options.Height, options.Width);
        var labelColumn = schema[options.LabelColumnName];
        var labelValues = LabelValues.Of(labelColumn, (int)labelType.Count);
        var classNames = labelValues?.Names ?? ClassNames((int)labelType.Count);

        using var channel = host.Start("Training");
        host.CheckAlive();
        var rows = TrainingRows.Read(input, schema[options.FeatureColumnName], labelColumn, image, ImagesPerChunk);
        if (rows.Count == 0)
            throw new InvalidOperationException(rows.SkippedRows == 0
                ? "NoProp: the training set is empty (no rows)"
                : $"NoProp: the training set is empty: all {rows.SkippedRows} rows have a missing label (key 0) in column '{options.LabelColumnName}'");
        if (rows.SkippedRows > 0)
            channel.Warning($"{rows.SkippedRows} rows with a missing label (key 0) in column '{options.LabelColumnName}' were skipped");

        validationData ??= options.ValidationSet;
        var validationRows = validationData is null ? null : ReadValidation(validationData, labelType, labelValues, image, imageInput);
        if (options.EarlyStoppingPatience is not null && validationRows is null && options.ValidationFraction == 0)
            throw new ArgumentOutOfRangeException(nameof(options),
                "NoPropOptions.EarlyStoppingPatience needs validation rows: give validation data or a ValidationFraction above 0");
        var (train, validation) = Split(rows, validationRows, image, classNames);   // views over the rows' buffer, not copies
        var config = BuildConfig(image, classNames, train.Normalization);
        TorchRuntime.Initialize();
        var device = DeviceSelection.For(environment);
        TorchRuntime.Seed(seed);   // initialisation is part of the seeded run, as in the CLI
        var method = MethodRegistry.Create(config, device);
        // Cancelled by the caller's token or by the MLContext (CancelExecution, as AutoML's time budget does): the trainer
        // checks the token before every minibatch, and the progress callback, which runs after every minibatch, turns the
        // MLContext's flag into that token.
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken);
        try
        {
            if (config.Embedding == LabelEmbeddingKind.Prototype) PrototypeInitialisation.Apply(method, train, seed);
            var progress = new ChannelProgress(channel, options.Progress, () =>
            {
                if (IsCanceled) cancellation.Cancel();
            }, options.MetricsCallback);
            progress.Message(string.Create(CultureInfo.InvariantCulture,
                $"training {config.Method.DisplayName()} on {train.Count} rows ({validation.Count} {(validationRows is null ? "held out for validation" : "validation rows given")}), " +
                $"{classNames.Length} classes, images {image}, {config.Embedding.ToCliName()} embedding (d = {config.EmbeddingDimension}), " +
                $"{options.Epochs} epochs, batch {options.BatchSize}, device {device.type}"));
            var splits = new DataSplits(train, validation, validation.Take(0), Notice: null);
            var trainingOptions = new TrainingOptions
            {
                Epochs = options.Epochs,
                BatchSize = options.BatchSize,
                Seed = seed,
                InferenceBatchSize = options.InferenceBatchSize,
                InferencePrecision = (NoProp.Runtime.InferencePrecision)options.InferencePrecision,
                EarlyStopping = options.EarlyStoppingPatience is int patience ? new EarlyStopping(patience, options.EarlyStoppingMinDelta) : null,
            };
            if (IsCanceled) cancellation.Cancel();
            var result = new Trainer(method, splits, trainingOptions, progress).Run(cancellation: cancellation.Token);
            if (result.BestValidationAccuracy is double best)
                progress.Message(string.Create(CultureInfo.InvariantCulture, $"kept epoch {result.BestEpoch} (validation accuracy {best:P2}); {result.TrainSeconds:F1} s training"));
            var model = new NoPropModelParameters(config, seed, result.History.Select(NoPropEpochMetrics.From).ToList(),
                result.BestEpoch, result.BestValidationAccuracy, result.StoppedEarly);
            return new NoPropTransformer(environment, method, model, labelValues, options.FeatureColumnName, imageInput, options.ScoreColumnName,
                options.PredictedLabelColumnName, seed, options.InferenceBatchSize, options.InferencePrecision);
        }
        catch (OperationCanceledException) when (IsCanceled)
        {
            method.Dispose();
            host.CheckAlive();   // ML.NET's own cancellation exception, as its trainers throw
            throw;
        }
        catch (NoPropException e)
        {
            method.Dispose();
            throw new InvalidOperationException($"NoProp: {e.Message}", e);
        }
        catch
        {
            method.Dispose();
            throw;
        }
        finally
        {
            // The steps' freed native heap, not kept for the application's lifetime; also after a cancelled or failed
            // run (AutoML cancels trials routinely), once the model's weights are disposed.
            TorchRuntime.ReturnFreeMemory(collectManaged: false);
        }
    }

    /// <summary>Class names of a label without key values: "0".."K−1", as ML.NET's evaluator names unnamed classes.</summary>
    private static string[] ClassNames(int count) =>
        Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();

    /// <summary>
    /// A seeded split into training and validation rows (the training side keeps at least two rows, for BatchNorm),
    /// normalised with statistics of the training rows only. Both sides are index views over the one buffer the rows
    /// were read into: the split copies no image (the trainer copies each side once, into its tensor).
    /// </summary>
    internal (ImageDataset Train, ImageDataset Validation) Split(TrainingRows rows, TrainingRows? validationRows, ImageShape image, string[] classNames)
    {
        if (validationRows is not null)
        {
            if (rows.Count < 2) throw new InvalidOperationException($"NoProp: the training set has {rows.Count} labelled row; training needs at least 2");
            var all = Enumerable.Range(0, rows.Count).ToArray();
            var statistics = ChooseNormalization(rows.Images, all, image);
            return (rows.View("training rows", all, image, classNames, statistics), validationRows.All("validation rows", image, classNames, statistics));
        }
        int validationCount = Math.Clamp((int)Math.Floor(rows.Count * options.ValidationFraction), 0, Math.Max(0, rows.Count - 2));
        if (rows.Count - validationCount < 2)
            throw new InvalidOperationException($"NoProp: the training set has {rows.Count} labelled row; training needs at least 2");
        var order = Enumerable.Range(0, rows.Count).ToArray();
        SeedStreams.Random(seed, SeedPurpose.EstimatorSplit).Shuffle(order);
        var trainIndices = order[validationCount..];
        var normalization = ChooseNormalization(rows.Images, trainIndices, image);
        return (rows.View("training rows", trainIndices, image, classNames, normalization),
            rows.View("validation rows", order[..validationCount], image, classNames, normalization));
    }

    /// <summary>The validation rows: the training data's columns, a label with the same keys (and key values).</summary>
    private TrainingRows ReadValidation(IDataView data, KeyDataViewType trainLabel, LabelValues? trainValues, ImageShape image, bool imageInput)
    {
        var schema = data.Schema;
        var label = ColumnChecks.CheckLabel(schema, options.LabelColumnName);
        try
        {
            ColumnChecks.CheckFeaturesMatchModel(schema, options.FeatureColumnName, image, imageInput);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentOutOfRangeException(nameof(data), $"validation data: {e.Message}");
        }
        var values = LabelValues.Of(schema[options.LabelColumnName], (int)label.Count);
        if (label.Count != trainLabel.Count || (trainValues is null) != (values is null) || (values is not null && !values.SameAs(trainValues!)))
            throw new ArgumentOutOfRangeException(nameof(data),
                $"validation data: label column '{options.LabelColumnName}' must have the training label's keys ({trainLabel.Count} keys" +
                $"{(trainValues is null ? "" : ": " + string.Join(", ", trainValues.Names.Take(10)))}), got {label.Count}" +
                $"{(values is null ? "" : ": " + string.Join(", ", values.Names.Take(10)))}; map it with the MapValueToKey fitted on the training data");
        var rows = TrainingRows.Read(data, schema[options.FeatureColumnName], schema[options.LabelColumnName], image, ImagesPerChunk);
        if (rows.Count == 0) throw new InvalidOperationException($"NoProp: the validation data has no labelled rows");
        return rows;
    }

    /// <summary>The size of the first image of an image column (the default network input size).</summary>
    private (int Height, int Width) FirstImageSize(IDataView data)
    {
        var column = data.Schema[options.FeatureColumnName];
        using var cursor = data.GetRowCursor([column]);
        var getImage = cursor.GetGetter<MLImage>(column);
        MLImage image = null!;   // the getter fills it (null: no image in the row, checked below)
        try
        {
            if (!cursor.MoveNext()) throw new InvalidOperationException("NoProp: the training set is empty (no rows)");
            getImage(ref image);
            if (image is null) throw new InvalidOperationException($"image column '{column.Name}' has no image in its first row (an empty path?)");
            return (image.Height, image.Width);
        }
        finally
        {
            image?.Dispose();
        }
    }

    private Normalization ChooseNormalization(ChunkedImages images, int[] trainIndices, ImageShape image)
    {
        switch (options.Normalization)
        {
            case FeatureNormalization.TrainingStatistics:
                return Normalization.Estimate(images, trainIndices, image.Channels, image.Height * image.Width);
            case FeatureNormalization.Explicit:
                var (mean, std) = (options.NormalizationMean!, options.NormalizationStd!);
                if (mean.Length != image.Channels || std.Length != image.Channels)
                    throw new ArgumentOutOfRangeException(nameof(options),
                        $"NoPropOptions.NormalizationMean and NormalizationStd need one value per channel ({image.Channels}), got {mean.Length} and {std.Length}");
                return new Normalization(mean, std);
            default:
                return Normalization.Identity(image.Channels);
        }
    }

    private ModelConfig BuildConfig(ImageShape image, string[] classNames, Normalization normalization)
    {
        var method = options.Method.ToMethodKind();
        var definition = MethodRegistry.Get(method);
        var embedding = (LabelEmbeddingKind)options.Embedding;
        var config = new ModelConfig
        {
            Method = method,
            Dataset = $"ML.NET column '{options.FeatureColumnName}'",
            Image = image,
            ClassNames = classNames,
            NormalizationMean = normalization.Mean,
            NormalizationStd = normalization.Std,
            Embedding = embedding,
            EmbeddingDimension = ModelConfig.DefaultEmbeddingDimension(embedding, classNames.Length, image, options.EmbeddingDimension),
            Blocks = options.Blocks,
            Eta = options.Eta ?? definition.Defaults.Eta,
            LearningRate = options.LearningRate,
            WeightDecay = options.WeightDecay,
            Solver = (OdeSolverKind)options.Solver,
            InferenceSteps = options.InferenceSteps,
            Prediction = definition.Defaults.Prediction,
            DtInference = options.DeterministicInference ? DtInference.Deterministic : DtInference.Stochastic,
        };
        try
        {
            config.Validate();
        }
        catch (NoPropException e)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"NoProp: {e.Message}");
        }
        return config;
    }

    /// <summary>Checks what can be checked before seeing data, naming the option at fault.</summary>
    private static void Validate(NoPropOptions o)
    {
        void Require(bool ok, string option, string rule)
        {
            if (!ok) throw new ArgumentOutOfRangeException(nameof(options), $"NoPropOptions.{option} {rule}");
        }
        foreach (var (name, value) in new[] { ("LabelColumnName", o.LabelColumnName), ("FeatureColumnName", o.FeatureColumnName),
                     ("ScoreColumnName", o.ScoreColumnName), ("PredictedLabelColumnName", o.PredictedLabelColumnName) })
            Require(!string.IsNullOrWhiteSpace(value), name, "must name a column");
        Require(o.ScoreColumnName != o.PredictedLabelColumnName, "PredictedLabelColumnName", "must differ from ScoreColumnName");
        Require(o.Epochs >= 1, "Epochs", $"must be at least 1, got {o.Epochs}");
        Require(o.BatchSize >= 2, "BatchSize", $"must be at least 2 (BatchNorm needs two images), got {o.BatchSize}");
        Require(o.Blocks >= 1, "Blocks", $"must be at least 1, got {o.Blocks}");
        Require(o.InferenceSteps >= 1, "InferenceSteps", $"must be at least 1, got {o.InferenceSteps}");
        Require(o.InferenceBatchSize >= 1, "InferenceBatchSize", $"must be at least 1, got {o.InferenceBatchSize}");
        Require(o.LearningRate > 0, "LearningRate", $"must be positive, got {o.LearningRate}");
        Require(o.WeightDecay >= 0, "WeightDecay", $"must be 0 or more, got {o.WeightDecay}");
        Require(o.Eta is null || o.Eta > 0, "Eta", $"must be positive, got {o.Eta}");
        Require(o.ValidationFraction is >= 0 and < 1, "ValidationFraction", $"must lie in [0, 1), got {o.ValidationFraction}");
        Require(o.EarlyStoppingPatience is null or >= 1, "EarlyStoppingPatience", $"must be at least 1, got {o.EarlyStoppingPatience}");
        Require(o.EarlyStoppingMinDelta is >= 0 and < 1, "EarlyStoppingMinDelta", $"must lie in [0, 1) (an accuracy gain), got {o.EarlyStoppingMinDelta}");
        Require(o.EarlyStoppingMinDelta == 0 || o.EarlyStoppingPatience is not null, "EarlyStoppingMinDelta", "applies with EarlyStoppingPatience");
        Require(Enum.IsDefined(o.Method), "Method", $"is not a NoPropMethod: {o.Method}");
        Require(Enum.IsDefined(o.InferencePrecision), "InferencePrecision", $"is not a NoPropInferencePrecision: {o.InferencePrecision}");
        Require(o.Eta is null || MethodRegistry.Get(o.Method.ToMethodKind()).Accepts(MethodOption.Eta), "Eta", $"does not apply to NoPropMethod.{o.Method} (its loss has no η)");
        Require(!o.DeterministicInference || MethodRegistry.Get(o.Method.ToMethodKind()).Accepts(MethodOption.Inference), "DeterministicInference",
            $"applies to NoPropMethod.DiscreteTime only (NoPropMethod.{o.Method} has no Eq. 3 noise)");
        Require(Enum.IsDefined(o.Embedding), "Embedding", $"is not a NoPropLabelEmbedding: {o.Embedding}");
        Require(Enum.IsDefined(o.Solver), "Solver", $"is not a NoPropOdeSolver: {o.Solver}");
        Require(o.EmbeddingDimension is null || o.Embedding == NoPropLabelEmbedding.Learned, "EmbeddingDimension",
            $"applies to NoPropLabelEmbedding.Learned only (a {o.Embedding} embedding's dimension is fixed)");
        Require(o.EmbeddingDimension is null or >= 1, "EmbeddingDimension", $"must be at least 1, got {o.EmbeddingDimension}");
        bool explicitStatistics = o.NormalizationMean is not null || o.NormalizationStd is not null;
        Require(o.Normalization == FeatureNormalization.Explicit || !explicitStatistics, "NormalizationMean",
            "and NormalizationStd apply to FeatureNormalization.Explicit only");
        Require(o.Normalization != FeatureNormalization.Explicit || (o.NormalizationMean is not null && o.NormalizationStd is not null),
            "Normalization", "= Explicit needs NormalizationMean and NormalizationStd");
        Require(o.NormalizationStd is null || o.NormalizationStd.All(s => s > 0), "NormalizationStd", "must be positive");
    }
}
