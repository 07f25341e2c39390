using System.Buffers.Binary;
using NoProp.Cli;
using NoProp.Plots;

namespace NoProp.Tests.Plots;

[TestClass]
public sealed class ChartTests
{
    /// <summary>A run folder as noprop train and noprop sweep write it (two epochs, a test curve, a sweep and a CT schedule).</summary>
    internal static string FakeRun(string name, bool schedule = true)
    {
        var dir = Path.Combine(TestSupport.TempDirectory(), name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "metrics.csv"),
            "epoch,train_seconds,epoch_train_seconds,loss_cross_entropy,loss_kl,loss_denoise,loss_total,validation_accuracy,validation_seconds,images_per_second\n" +
            "1,10.000,10.000,2.1,0.001,40,42.1,0.900000,1.000,100.0\n" +
            "2,20.000,10.000,0.9,0.001,12,12.9,0.950000,1.000,100.0\n" +
            "3,30.000,10.000,0.5,0.001,7,7.5,0.960000,1.000,100.0\n");
        File.WriteAllText(Path.Combine(dir, "test-curve.csv"), "epoch,train_seconds,test_accuracy,test_seconds\n1,10.000,0.89,1\n2,20.000,0.94,1\n3,30.000,0.955,1\n");
        File.WriteAllText(Path.Combine(dir, "metrics.json"), """{ "method": "ct" }""");
        File.WriteAllText(Path.Combine(dir, "sweep-heun.json"), """
            { "solver": "heun", "cached_image_features": true, "results": [
              { "steps": 2, "accuracy": 0.9, "inference_seconds": 0.5, "function_evaluations_per_batch": 4 },
              { "steps": 10, "accuracy": 0.95, "inference_seconds": 2.0, "function_evaluations_per_batch": 20 },
              { "steps": 40, "accuracy": 0.951, "inference_seconds": 7.5, "function_evaluations_per_batch": 80 } ] }
            """);
        if (schedule)
        {
            var lines = new List<string> { "t,alpha_bar,snr,gamma" };
            for (int i = 0; i <= 20; i++)
            {
                double t = i / 20.0, gamma = 5 - 10 * t, alphaBar = 1 / (1 + Math.Exp(gamma));
                lines.Add(FormattableString.Invariant($"{t},{alphaBar},{Math.Exp(-gamma)},{gamma}"));
            }
            File.WriteAllLines(Path.Combine(dir, "schedule.csv"), lines);
        }
        return dir;
    }

    /// <summary>A valid PNG: the 8-byte signature, then an IHDR chunk first whose width and height are the chart's.</summary>
    internal static void AssertPng(string path, int width = Charts.Width, int height = Charts.Height)
    {
        Assert.IsTrue(File.Exists(path), $"{path} was not written");
        var bytes = File.ReadAllBytes(path);
        Assert.IsTrue(bytes.Length > 2000, $"{path}: {bytes.Length} bytes is too small for a chart");
        CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8], $"{path}: not a PNG signature");
        Assert.AreEqual(13u, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(8, 4)), "IHDR length");
        Assert.AreEqual("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        Assert.AreEqual((uint)width, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(16, 4)), $"{path}: width");
        Assert.AreEqual((uint)height, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(20, 4)), $"{path}: height");
    }

    [TestMethod]
    public void EveryChartIsAValidNonEmptyPng()
    {
        var run = RunFolder.Load(FakeRun("ct-run"));
        Assert.AreEqual("ct", run.Method);
        Assert.AreEqual(3, run.Epochs.Count);
        CollectionAssert.AreEqual(new[] { "cross_entropy", "kl", "denoise", "total" }, run.LossNames.ToArray());
        var other = RunFolder.Load(FakeRun("other", schedule: false));
        var output = TestSupport.TempDirectory();
        AssertPng(Charts.AccuracyAgainstTime([run, other], Path.Combine(output, "time.png")));
        AssertPng(Charts.AccuracyPerEpoch(run, Path.Combine(output, "epochs.png")));
        AssertPng(Charts.LossComponents(run, Path.Combine(output, "losses.png")));
        AssertPng(Charts.SweepAccuracy([run], Path.Combine(output, "sweep-accuracy.png")));
        AssertPng(Charts.SweepSeconds([run], Path.Combine(output, "sweep-seconds.png")));
        AssertPng(Charts.NoiseSchedule([run, other], Path.Combine(output, "schedule.png")));
    }

    [TestMethod]
    public void MissingDataFailsWithTheFileNamed()
    {
        var empty = TestSupport.TempDirectory();
        var e = Assert.ThrowsExactly<PlotException>(() => RunFolder.Load(empty));
        StringAssert.Contains(e.Message, Path.Combine(empty, "metrics.csv"));
        var run = RunFolder.Load(FakeRun("no-schedule", schedule: false));
        var e2 = Assert.ThrowsExactly<PlotException>(() => Charts.NoiseSchedule([run], Path.Combine(empty, "s.png")));
        StringAssert.Contains(e2.Message, "schedule.csv");
    }

    [TestMethod]
    public void PlotCommandWritesTheChartsOfSeveralRuns()
    {
        var a = FakeRun("dt");
        var b = FakeRun("fm", schedule: false);
        var output = Path.Combine(TestSupport.TempDirectory(), "charts");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(["plot", "--runs", a, b, "--output", output], stdout, stderr);
        Assert.AreEqual(0, code, stderr.ToString());
        foreach (var file in new[] { "accuracy-vs-time.png", "losses-dt.png", "losses-fm.png", "sweep-accuracy.png", "sweep-seconds.png", "schedule.png" })
            AssertPng(Path.Combine(output, file));
        StringAssert.Contains(stdout.ToString(), "written: ");
    }
}
