namespace NoProp.Solvers;

/// <summary>Time grids for <see cref="IOdeSolver.Integrate"/>.</summary>
public static class TimeGrid
{
    /// <summary>
    /// <paramref name="steps"/> + 1 equally spaced points from <paramref name="t0"/> to <paramref name="t1"/>,
    /// both endpoints exact. t1 &lt; t0 gives a decreasing grid (integration backwards in time).
    /// </summary>
    public static double[] Uniform(double t0, double t1, int steps)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), "a time grid needs at least one step");
        if (!double.IsFinite(t0) || !double.IsFinite(t1) || t0 == t1)
            throw new ArgumentException($"a time grid needs two distinct finite endpoints, got {t0} and {t1}");
        var times = new double[steps + 1];
        // t0 + i·(t1 − t0)/steps, written so that the last point is exactly t1.
        for (int i = 0; i <= steps; i++) times[i] = i == steps ? t1 : t0 + (t1 - t0) * i / steps;
        return times;
    }

    /// <summary>Checks that a grid has at least two finite points and is strictly increasing or strictly decreasing.</summary>
    internal static void Check(IReadOnlyList<double> times, string paramName = "times")
    {
        ArgumentNullException.ThrowIfNull(times, paramName);
        if (times.Count < 2) throw new ArgumentException($"a time grid needs at least two points, got {times.Count}", paramName);
        double direction = Math.Sign(times[^1] - times[0]);
        for (int i = 0; i < times.Count; i++)
        {
            if (!double.IsFinite(times[i])) throw new ArgumentException($"time {i} is {times[i]}; every time must be finite", paramName);
            if (i > 0 && !(direction * (times[i] - times[i - 1]) > 0))
                throw new ArgumentException(
                    $"the time grid must be strictly increasing or strictly decreasing; times {i - 1} and {i} are {times[i - 1]} and {times[i]}",
                    paramName);
        }
    }
}
