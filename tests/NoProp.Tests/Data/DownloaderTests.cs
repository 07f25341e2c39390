using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using NoProp.Data;
using NoProp.Data.Download;
using NoProp.Runtime;

namespace NoProp.Tests.Data;

/// <summary>
/// The downloader against a real HTTP server on 127.0.0.1 serving small archives in the official formats:
/// success, a corrupt archive, an interrupted transfer that resumes with a range request, and no server at all.
/// </summary>
[TestClass]
public sealed class DownloaderTests
{
    private sealed class LocalServer : IDisposable
    {
        private readonly HttpListener listener = new();
        private readonly Dictionary<string, byte[]> files;
        private readonly CancellationTokenSource stop = new();
        private readonly Task loop;

        public LocalServer(Dictionary<string, byte[]> files)
        {
            this.files = files;
            Port = FreePort();
            listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            listener.Start();
            loop = Task.Run(Serve);
        }

        public int Port { get; }
        public string BaseUrl => $"http://127.0.0.1:{Port}/";
        /// <summary>When set, the next response sends only this many bytes and then drops the connection.</summary>
        public int? CutAfter { get; set; }
        public List<string?> RangeHeaders { get; } = new();

        private async Task Serve()
        {
            while (!stop.IsCancellationRequested)
            {
                HttpListenerContext context;
                try { context = await listener.GetContextAsync(); }
                catch (Exception) { return; }
                var name = context.Request.Url!.AbsolutePath.TrimStart('/');
                lock (RangeHeaders) RangeHeaders.Add(context.Request.Headers["Range"]);
                if (!files.TryGetValue(name, out var body)) { context.Response.StatusCode = 404; context.Response.Close(); continue; }
                long start = 0;
                var range = context.Request.Headers["Range"];
                if (range is not null && range.StartsWith("bytes=", StringComparison.Ordinal))
                {
                    start = long.Parse(range["bytes=".Length..].TrimEnd('-'));
                    context.Response.StatusCode = 206;
                    context.Response.AddHeader("Content-Range", $"bytes {start}-{body.Length - 1}/{body.Length}");
                }
                context.Response.ContentLength64 = body.Length - start;
                try
                {
                    if (CutAfter is int cut)
                    {
                        CutAfter = null;
                        await context.Response.OutputStream.WriteAsync(body.AsMemory((int)start, cut));
                        await context.Response.OutputStream.FlushAsync();
                        context.Response.Abort();
                        continue;
                    }
                    await context.Response.OutputStream.WriteAsync(body.AsMemory((int)start));
                    context.Response.Close();
                }
                catch (Exception) { /* the client went away */ }
            }
        }

        public void Dispose()
        {
            stop.Cancel();
            listener.Close();
            try { loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        }
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>A cifar-10-binary.tar.gz with the official folder name and files (few records each).</summary>
    private static byte[] CifarArchive(string? extraEntryName = null)
    {
        var folder = TestSupport.TempDirectory();
        CifarReaderTests.WriteCifar10(folder, perBatch: 2);
        using var memory = new MemoryStream();
        using (var gzip = new GZipStream(memory, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "cifar-10-batches-bin/"));
            foreach (var file in Directory.GetFiles(Path.Combine(folder, "cifar-10-batches-bin")).Order())
                tar.WriteEntry(file, "cifar-10-batches-bin/" + Path.GetFileName(file));
            if (extraEntryName is not null)
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, extraEntryName) { DataStream = new MemoryStream([1, 2, 3]) });
        }
        return memory.ToArray();
    }

    private static string Md5(byte[] bytes) => Convert.ToHexStringLower(MD5.HashData(bytes));

    private static DatasetSource Source(string baseUrl, string md5) =>
        DatasetSources.Cifar10.WithBaseUrl(baseUrl) with
        {
            Files = [new DownloadFile(baseUrl + "cifar-10-binary.tar.gz", "cifar-10-binary.tar.gz", md5)],
        };

    [TestMethod]
    public async Task DownloadsVerifiesExtractsAndPlacesTheDataSet()
    {
        var archive = CifarArchive();
        using var server = new LocalServer(new() { ["cifar-10-binary.tar.gz"] = archive });
        var dataDir = TestSupport.TempDirectory();
        var progress = new List<long>();
        var downloader = new DatasetDownloader(progress: (_, bytes, _) => progress.Add(bytes));
        var folder = await downloader.DownloadAsync(Source(server.BaseUrl, Md5(archive)), dataDir);

        Assert.AreEqual(Path.Combine(dataDir, "cifar10"), folder);
        Assert.AreEqual(archive.Length, progress[^1]);
        var data = Datasets.Load(DatasetSpec.Parse("cifar10", dataDir));
        Assert.AreEqual(10, data.Train.Count);
        Assert.IsFalse(Directory.Exists(Path.Combine(dataDir, ".cifar10.partial")), "the staging folder is removed");
        // A second download finds it complete and fetches nothing.
        int requests = server.RangeHeaders.Count;
        await downloader.DownloadAsync(Source(server.BaseUrl, Md5(archive)), dataDir);
        Assert.AreEqual(requests, server.RangeHeaders.Count);
    }

    [TestMethod]
    public async Task ACorruptArchiveIsRejectedAndNothingIsPlaced()
    {
        var archive = CifarArchive();
        var corrupt = (byte[])archive.Clone();
        corrupt[corrupt.Length / 2] ^= 0xFF;
        using var server = new LocalServer(new() { ["cifar-10-binary.tar.gz"] = corrupt });
        var dataDir = TestSupport.TempDirectory();
        var e = await Assert.ThrowsExactlyAsync<NoPropException>(() => new DatasetDownloader().DownloadAsync(Source(server.BaseUrl, Md5(archive)), dataDir));
        StringAssert.Contains(e.Message, "checksum mismatch");
        StringAssert.Contains(e.Message, Md5(archive));
        Assert.IsFalse(Directory.Exists(Path.Combine(dataDir, "cifar10")), "no half-verified data set may appear");
        Assert.IsFalse(File.Exists(Path.Combine(dataDir, ".cifar10.partial", "cifar-10-binary.tar.gz.part")), "the corrupt file is deleted");
    }

    [TestMethod]
    public async Task AnInterruptedTransferResumesWithARangeRequest()
    {
        var archive = CifarArchive();
        using var server = new LocalServer(new() { ["cifar-10-binary.tar.gz"] = archive }) { CutAfter = archive.Length / 3 };
        var dataDir = TestSupport.TempDirectory();
        var downloader = new DatasetDownloader();
        var e = await Assert.ThrowsExactlyAsync<NoPropException>(() => downloader.DownloadAsync(Source(server.BaseUrl, Md5(archive)), dataDir));
        StringAssert.Contains(e.Message, "run the command again to resume");
        Assert.IsFalse(Directory.Exists(Path.Combine(dataDir, "cifar10")));
        var part = Path.Combine(dataDir, ".cifar10.partial", "cifar-10-binary.tar.gz.part");
        Assert.AreEqual(archive.Length / 3, new FileInfo(part).Length);

        await downloader.DownloadAsync(Source(server.BaseUrl, Md5(archive)), dataDir);
        Assert.AreEqual($"bytes={archive.Length / 3}-", server.RangeHeaders[^1], "the second request asks only for the rest");
        Assert.AreEqual(10, Datasets.Load(DatasetSpec.Parse("cifar10", dataDir)).Train.Count);
    }

    [TestMethod]
    public async Task AnUnreachableServerGivesTheManualSteps()
    {
        var dataDir = TestSupport.TempDirectory();
        var source = Source($"http://127.0.0.1:{FreePort()}/", "00000000000000000000000000000000");
        var e = await Assert.ThrowsExactlyAsync<NoPropException>(() => new DatasetDownloader().DownloadAsync(source, dataDir));
        StringAssert.Contains(e.Message, "download failed");
        StringAssert.Contains(e.Message, "To install it by hand");
        StringAssert.Contains(e.Message, Path.Combine(dataDir, "cifar10"));
    }

    [TestMethod]
    public void ArchivesThatEscapeTheFolderAreRefused()
    {
        var archive = CifarArchive(extraEntryName: "../escaped.bin");
        var path = Path.Combine(TestSupport.TempDirectory(), "evil.tar.gz");
        File.WriteAllBytes(path, archive);
        var destination = Path.Combine(TestSupport.TempDirectory(), "out");
        Directory.CreateDirectory(destination);
        var e = Assert.ThrowsExactly<NoPropException>(() => DatasetDownloader.ExtractTarGz(path, destination));
        StringAssert.Contains(e.Message, "outside");
        Assert.IsFalse(File.Exists(Path.Combine(destination, "..", "escaped.bin")));
    }

    [TestMethod]
    public void OfficialSourcesCarryThePublishedChecksums()
    {
        Assert.AreEqual("c32a1d4ab5d03f1284b67883e8d87530", DatasetSources.Cifar10.Files[0].Md5);
        Assert.AreEqual("03b5dce01913d631647c71ecec9e9cb8", DatasetSources.Cifar100.Files[0].Md5);
        Assert.AreEqual(4, DatasetSources.FashionMnist.Files.Count);
        StringAssert.StartsWith(DatasetSources.Cifar10.Files[0].Url, "https://www.cs.toronto.edu/~kriz/");
        StringAssert.Contains(Assert.ThrowsExactly<NoPropException>(() => DatasetSources.For("mnist")).Message, "nothing to download");
    }
}
