using NoProp.Training;

namespace NoProp.ML;

/// <summary>Progress reporters for <see cref="NoPropOptions.Progress"/>, reachable with <c>using NoProp.ML;</c> alone.</summary>
public static class NoPropProgress
{
    /// <summary>
    /// The CLI's progress display: a live bar on a terminal, a plain line every 15 s when redirected, and one line per
    /// epoch. Writes to standard error unless <paramref name="writer"/> is given.
    /// </summary>
    public static ITrainingProgress Console(TextWriter? writer = null) => new ConsoleProgress(writer);
}
