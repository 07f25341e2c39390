using System.Diagnostics;
using System.Runtime.InteropServices;

namespace NoProp.Tests.Cli;

/// <summary>
/// <c>noprop train</c> as a separate process: SIGTERM (kill, docker stop, a scheduler's time limit) stops it like
/// Ctrl+C, after the current step, with a checkpoint to resume from and exit code 130.
/// </summary>
[TestClass]
public sealed class SignalTests
{
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private const int SIGTERM = 15;

    [TestMethod]
    public void SigtermStopsTrainingWithACheckpoint()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("POSIX signals");
        var dir = Path.Combine(TestSupport.TempDirectory(), "sigterm");
        var cli = Path.Combine(AppContext.BaseDirectory, "NoProp.Cli.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        };
        foreach (var a in new[] { cli, "train", "--method", "dt", "--blocks", "2", "--epochs", "50", "--train-size", "2000",
                     "--validation-size", "100", "--test-size", "100", "--batch-size", "16", "--threads", "1", "--output", dir })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = new System.Text.StringBuilder();
        var stepping = new ManualResetEventSlim();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr) stderr.AppendLine(e.Data);
            if (e.Data.Contains("step ")) stepping.Set();
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            Assert.IsTrue(stepping.Wait(TimeSpan.FromMinutes(2)), $"no training progress within 2 minutes:\n{stderr}");
            Assert.AreEqual(0, kill(process.Id, SIGTERM), "kill(SIGTERM) failed");
            Assert.IsTrue(process.WaitForExit(TimeSpan.FromMinutes(1)), $"the process did not stop after SIGTERM:\n{stderr}");
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        process.WaitForExit();
        string err;
        lock (stderr) err = stderr.ToString();
        Assert.AreEqual(130, process.ExitCode, err);
        StringAssert.Contains(err, "terminated: stopping after the current step");
        StringAssert.Contains(err, $"continue with: noprop train --resume {dir}");
        Assert.IsTrue(NoProp.Training.Checkpoint.Exists(dir), $"no checkpoint in {dir}");
    }
}
