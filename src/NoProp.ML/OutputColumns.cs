using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML;

/// <summary>
/// The two columns NoProp adds, annotated as ML.NET's multiclass scorers annotate theirs (MulticlassClassificationScorer,
/// PredictedLabelScorerBase), so that Evaluate, PFI, <c>MapKeyToValue</c>, <c>CreatePredictionEngine</c> and AutoML read
/// them as they read LightGbm's:
/// <list type="bullet">
/// <item><c>Score</c>: Vector&lt;Single, K&gt;, softmax probabilities; slot i is the class of label key i + 1.
/// TrainingLabelValues = the label's key values in their own type; SlotNames = the same values when they are text.</item>
/// <item><c>PredictedLabel</c>: Key&lt;UInt32, K&gt;, argmax + 1 (0 = missing); KeyValues = the label's key values, in their type.</item>
/// </list>
/// Both carry ScoreColumnSetId (one more than any score set already in the input), ScoreColumnKind =
/// MulticlassClassification and ScoreValueKind. A label without key values gives neither KeyValues nor slot names,
/// as with ML.NET's trainers.
/// </summary>
internal static class OutputColumns
{
    public static DataViewSchema Build(DataViewSchema input, string scoreColumn, string predictedLabelColumn, int classes, LabelValues? labels)
    {
        uint scoreSet = input.GetMaxAnnotationKind(out _, AnnotationUtils.Kinds.ScoreColumnSetId) + 1;
        var builder = new DataViewSchema.Builder();
        // Every input column keeps its index (hidden ones included); an output that reuses an input's name hides it.
        builder.AddColumns(input);

        var score = Common(scoreSet, AnnotationUtils.Const.ScoreValueKind.Score);
        if (labels is not null)
        {
            labels.AddTo(score, AnnotationUtils.Kinds.TrainingLabelValues);
            if (labels.IsText) labels.AddTo(score, AnnotationUtils.Kinds.SlotNames);
        }
        builder.AddColumn(scoreColumn, new VectorDataViewType(NumberDataViewType.Single, classes), score.ToAnnotations());

        var predicted = Common(scoreSet, AnnotationUtils.Const.ScoreValueKind.PredictedLabel);
        labels?.AddTo(predicted, AnnotationUtils.Kinds.KeyValues);
        builder.AddColumn(predictedLabelColumn, new KeyDataViewType(typeof(uint), classes), predicted.ToAnnotations());
        return builder.ToSchema();
    }

    /// <summary>What the estimator promises before fitting (EstimatorChain.Fit checks it), as ML.NET's multiclass trainers shape it.</summary>
    public static SchemaShape Shape(SchemaShape input, SchemaShape.Column label, string scoreColumn, string predictedLabelColumn)
    {
        var scoreAnnotations = new SchemaShape(AnnotationUtils.AnnotationsForMulticlassScoreColumn(label));
        var keyValues = label.Annotations.Where(c => c.Name == AnnotationUtils.Kinds.KeyValues && c.Kind == SchemaShape.Column.VectorKind.Vector);
        var labelAnnotations = new SchemaShape(keyValues.Concat(AnnotationUtils.GetTrainerOutputAnnotation()));
        var columns = input.ToDictionary(c => c.Name);
        columns[scoreColumn] = new SchemaShape.Column(scoreColumn, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, scoreAnnotations);
        columns[predictedLabelColumn] = new SchemaShape.Column(predictedLabelColumn, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true, labelAnnotations);
        return new SchemaShape(columns.Values);
    }

    private static DataViewSchema.Annotations.Builder Common(uint scoreSet, string valueKind)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        builder.Add(AnnotationUtils.Kinds.ScoreColumnSetId, AnnotationUtils.ScoreColumnSetIdType, (ref uint value) => value = scoreSet);
        builder.Add(AnnotationUtils.Kinds.ScoreColumnKind, TextDataViewType.Instance,
            (ref ReadOnlyMemory<char> value) => value = AnnotationUtils.Const.ScoreColumnKind.MulticlassClassification.AsMemory());
        builder.Add(AnnotationUtils.Kinds.ScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> value) => value = valueKind.AsMemory());
        return builder;
    }
}
