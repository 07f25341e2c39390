using System.Diagnostics;

namespace NoProp.ML.Tests;

/// <summary>
/// Runs the noprop CLI in a child process. The CLI uses SkiaSharp 3 (its charts need it) while ML.NET's
/// ImageAnalytics in this process needs SkiaSharp 2.88, and one process can load only one of them.
/// </summary>
internal static class CliProcess
{
    private static readonly Lazy<string> cliDll = new(() =>
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "NoProp.sln"))) continue;
            var dll = Path.Combine(dir.FullName, "src", "NoProp.Cli", "bin", configuration, "net10.0", "NoProp.Cli.dll");
            if (File.Exists(dll)) return dll;
            throw new FileNotFoundException($"the CLI is not built: {dll}");
        }
        throw new DirectoryNotFoundException("the repository root (NoProp.sln) was not found above " + AppContext.BaseDirectory);
    });

    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(cliDll.Value);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5))) { process.Kill(true); throw new TimeoutException("noprop " + string.Join(' ', args)); }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
