using System.CommandLine;
using System.Diagnostics;
using NoProp.Cli.CommandLine;
using NoProp.Data;
using NoProp.Data.Download;
using NoProp.Runtime;

namespace NoProp.Cli.Commands;

/// <summary><c>noprop download</c>: fetches a data set from its official source into the data directory.</summary>
internal sealed class DownloadCommand : Command
{
    private readonly Option<string?> dataset = CliOptions.Text("--dataset", "fashion-mnist | cifar10 | cifar100 (MNIST ships with NoProp.NET and needs no download)  [required]", "NAME");
    private readonly Option<string?> dataDir = CliOptions.Text("--data-dir", "where it goes (as DIR/NAME)  [per-user cache]", "DIR");
    private readonly Option<string?> mirror = CliOptions.Text("--mirror", "fetch the same files from another base URL (checksums still apply)", "URL");

    public DownloadCommand() : base("download", "fetch a data set from its official source (checksums verified, resumable)")
    {
        dataset.CompletionSources.Add("fashion-mnist", "cifar10", "cifar100");
        Options.Add(dataset);
        Options.Add(dataDir);
        Options.Add(mirror);
        SetAction(r => Run(r, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
    }

    private int Run(ParseResult r, TextWriter stdout, TextWriter stderr)
    {
        var dataset = r.GetValue(this.dataset) ?? throw new UsageException("--dataset is required (fashion-mnist, cifar10 or cifar100)");
        var dataDir = r.GetValue(this.dataDir) ?? DatasetSpec.DefaultCacheDirectory();
        var mirror = r.GetValue(this.mirror);
        if (mirror is not null && !Uri.TryCreate(mirror, UriKind.Absolute, out _)) throw new UsageException($"--mirror: '{mirror}' is not an absolute URL");
        DatasetSource source;
        try { source = DatasetSources.For(DatasetSpec.Parse(dataset).Kind); }
        catch (NoPropException e) { throw new UsageException("--dataset: " + e.Message); }
        if (mirror is not null) source = source.WithBaseUrl(mirror);
        bool already = DatasetDownloader.IsComplete(source, dataDir);
        var folder = Fetch(source, dataDir, stderr);
        stdout.WriteLine(already ? $"{source.Dataset} is already in {folder}" : $"{source.Dataset} downloaded and verified: {folder}");
        return 0;
    }

    /// <summary>Downloads with a progress display on stderr.</summary>
    public static string Fetch(DatasetSource source, string dataDir, TextWriter stderr)
    {
        bool interactive = !Console.IsErrorRedirected && ReferenceEquals(stderr, Console.Error);
        var lastLine = Stopwatch.StartNew();
        var downloader = new DatasetDownloader(progress: (file, bytes, total) =>
        {
            if (lastLine.ElapsedMilliseconds < (interactive ? 200 : 10_000) && bytes != total) return;
            lastLine.Restart();
            string amount = total is long t ? $"{bytes / 1048576.0:F1} / {t / 1048576.0:F1} MB ({100.0 * bytes / Math.Max(1, t):F0} %)" : $"{bytes / 1048576.0:F1} MB";
            if (interactive) stderr.Write($"\r\x1b[2Kdownloading {file}: {amount}");
            else stderr.WriteLine($"downloading {file}: {amount}");
        });
        using var cancellation = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancellation.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            var folder = downloader.DownloadAsync(source, dataDir, cancellation.Token).GetAwaiter().GetResult();
            if (interactive) stderr.WriteLine();
            return folder;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>Loads a data set; with <paramref name="download"/>, fetches it first when its files are missing.</summary>
    public static DatasetPair LoadOrDownload(DatasetSpec spec, bool download, long seed, TextWriter stderr)
    {
        if (!download) return SkiaImageCodec.Load(spec);
        if (spec.Kind is "mnist" or "folder") throw new UsageException($"--download applies to fashion-mnist, cifar10 and cifar100, not {spec.Kind}");
        var dataDir = spec.DataDirectory ?? DatasetSpec.DefaultCacheDirectory();
        var source = DatasetSources.For(spec.Kind);
        if (!DatasetDownloader.IsComplete(source, dataDir))
        {
            try { return SkiaImageCodec.Load(spec); }
            catch (NoPropException) { Fetch(source, dataDir, stderr); }
        }
        return SkiaImageCodec.Load(spec with { DataDirectory = dataDir });
    }
}
