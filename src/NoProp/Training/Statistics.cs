namespace NoProp.Training;

/// <summary>Summary statistics for repeated runs (the paper reports mean ± standard error).</summary>
public static class Statistics
{
    /// <summary>Mean and standard error of the mean (sample standard deviation / √n; 0 for a single value).</summary>
    public static (double Mean, double StandardError) MeanAndStandardError(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("no values", nameof(values));
        double mean = values.Average();
        if (values.Count == 1) return (mean, 0);
        double variance = values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1);
        return (mean, Math.Sqrt(variance / values.Count));
    }
}
