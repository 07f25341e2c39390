using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML;

/// <summary>The front door: <c>mlContext.MulticlassClassification.Trainers.NoProp(options)</c>.</summary>
public static class NoPropCatalog
{
    /// <summary>A NoProp trainer (see <see cref="NoPropEstimator"/>): the label must be a key column, the features a known-size vector of Single.</summary>
    public static NoPropEstimator NoProp(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, NoPropOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new NoPropEstimator(catalog.GetEnvironment(), options);
    }

    /// <summary>Shorthand for the common case: label and feature column names, epochs and method.</summary>
    public static NoPropEstimator NoProp(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", int epochs = 10, NoPropMethod method = NoPropMethod.DiscreteTime) =>
        catalog.NoProp(new NoPropOptions { LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, Epochs = epochs, Method = method });
}
