using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML;

/// <summary>
/// The two columns NoProp adds, shaped as ML.NET's multiclass scorers shape theirs, so that
/// <c>MulticlassClassification.Evaluate</c>, <c>MapKeyToValue</c> and <c>CreatePredictionEngine</c> work unchanged:
/// <list type="bullet">
/// <item><c>Score</c>: Vector&lt;Single, K&gt;, softmax probabilities; slot i is the class of label key i + 1; SlotNames = class names.</item>
/// <item><c>PredictedLabel</c>: Key&lt;UInt32, K&gt;, argmax + 1 (0 = missing); KeyValues = class names.</item>
/// </list>
/// Both carry ScoreColumnKind = MulticlassClassification and ScoreValueKind, as the built-in scorers do.
/// </summary>
internal static class OutputColumns
{
    public static DataViewSchema Build(DataViewSchema input, string scoreColumn, string predictedLabelColumn, IReadOnlyList<string> classNames)
    {
        int classes = classNames.Count;
        var builder = new DataViewSchema.Builder();
        // Every input column keeps its index (hidden ones included); an output that reuses an input's name hides it.
        builder.AddColumns(input);
        builder.AddColumn(scoreColumn, new VectorDataViewType(NumberDataViewType.Single, classes),
            Annotations(AnnotationUtils.Kinds.SlotNames, AnnotationUtils.Const.ScoreValueKind.Score, classNames));
        builder.AddColumn(predictedLabelColumn, new KeyDataViewType(typeof(uint), classes),
            Annotations(AnnotationUtils.Kinds.KeyValues, AnnotationUtils.Const.ScoreValueKind.PredictedLabel, classNames));
        return builder.ToSchema();
    }

    /// <summary>What the estimator promises before fitting (EstimatorChain.Fit checks it).</summary>
    public static SchemaShape Shape(SchemaShape input, string scoreColumn, string predictedLabelColumn, bool labelHasKeyValues)
    {
        var text = TextDataViewType.Instance;
        var scalar = SchemaShape.Column.VectorKind.Scalar;
        var vector = SchemaShape.Column.VectorKind.Vector;
        var kinds = new[]
        {
            new SchemaShape.Column(AnnotationUtils.Kinds.ScoreColumnKind, scalar, text, false),
            new SchemaShape.Column(AnnotationUtils.Kinds.ScoreValueKind, scalar, text, false),
        };
        var scoreAnnotations = new SchemaShape(kinds.Append(new SchemaShape.Column(AnnotationUtils.Kinds.SlotNames, vector, text, false)));
        var labelAnnotations = new SchemaShape(labelHasKeyValues
            ? kinds.Append(new SchemaShape.Column(AnnotationUtils.Kinds.KeyValues, vector, text, false))
            : kinds);
        var columns = input.ToDictionary(c => c.Name);
        columns[scoreColumn] = new SchemaShape.Column(scoreColumn, vector, NumberDataViewType.Single, false, scoreAnnotations);
        columns[predictedLabelColumn] = new SchemaShape.Column(predictedLabelColumn, scalar, NumberDataViewType.UInt32, true, labelAnnotations);
        return new SchemaShape(columns.Values);
    }

    private static DataViewSchema.Annotations Annotations(string namesKind, string valueKind, IReadOnlyList<string> classNames)
    {
        var names = classNames.Select(n => n.AsMemory()).ToArray();
        var builder = new DataViewSchema.Annotations.Builder();
        builder.Add(namesKind, new VectorDataViewType(TextDataViewType.Instance, names.Length),
            (ref VBuffer<ReadOnlyMemory<char>> value) => value = new VBuffer<ReadOnlyMemory<char>>(names.Length, (ReadOnlyMemory<char>[])names.Clone()));
        builder.Add(AnnotationUtils.Kinds.ScoreColumnKind, TextDataViewType.Instance,
            (ref ReadOnlyMemory<char> value) => value = AnnotationUtils.Const.ScoreColumnKind.MulticlassClassification.AsMemory());
        builder.Add(AnnotationUtils.Kinds.ScoreValueKind, TextDataViewType.Instance,
            (ref ReadOnlyMemory<char> value) => value = valueKind.AsMemory());
        return builder.ToAnnotations();
    }
}
