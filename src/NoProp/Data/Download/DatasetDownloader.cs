using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using NoProp.Runtime;

namespace NoProp.Data.Download;

/// <summary>Byte progress of one file: bytes so far and the total when the server says it.</summary>
public delegate void DownloadProgress(string fileName, long bytes, long? totalBytes);

/// <summary>
/// Downloads a data set into <c>DATA_DIR/&lt;folder&gt;</c>:
/// <list type="bullet">
/// <item>each file is fetched into <c>DATA_DIR/.&lt;folder&gt;.partial/</c>; an interrupted transfer is resumed with an
/// HTTP range request on the next run (a server that ignores ranges makes it start over);</item>
/// <item>each file's MD5 must equal the published checksum, else it is deleted and the run fails;</item>
/// <item>tar.gz archives are extracted (entries that would escape the folder are refused);</item>
/// <item>the finished data set is assembled beside the target and renamed into place, so a half-written data
/// set is never visible under the name the readers use.</item>
/// </list>
/// </summary>
public sealed class DatasetDownloader(HttpClient? client = null, DownloadProgress? progress = null)
{
    private readonly HttpClient http = client ?? new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
    public const string CompleteMarker = ".noprop-complete";

    /// <summary>True when the data set was already placed by an earlier download.</summary>
    public static bool IsComplete(DatasetSource source, string dataDirectory) =>
        File.Exists(Path.Combine(dataDirectory, source.FolderName, CompleteMarker));

    /// <summary>Fetches, verifies, extracts and places the data set; returns its folder.</summary>
    public async Task<string> DownloadAsync(DatasetSource source, string dataDirectory, CancellationToken cancellation = default)
    {
        var target = Path.Combine(dataDirectory, source.FolderName);
        if (IsComplete(source, dataDirectory)) return target;
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            throw new NoPropException($"{target} already exists but was not written by 'noprop download'; move it away or point --data-dir at it directly");
        Directory.CreateDirectory(dataDirectory);
        var staging = Path.Combine(dataDirectory, "." + source.FolderName + ".partial");
        Directory.CreateDirectory(staging);

        var downloaded = new List<string>();
        foreach (var file in source.Files)
            downloaded.Add(await FetchVerifiedAsync(file, staging, source, dataDirectory, cancellation));

        var assembled = Path.Combine(dataDirectory, "." + source.FolderName + ".assembling");
        if (Directory.Exists(assembled)) Directory.Delete(assembled, true);
        Directory.CreateDirectory(assembled);
        foreach (var path in downloaded)
        {
            if (source.ExtractTarGz) ExtractTarGz(path, assembled);
            else File.Copy(path, Path.Combine(assembled, Path.GetFileName(path)));
        }
        File.WriteAllText(Path.Combine(assembled, CompleteMarker),
            string.Join("\n", source.Files.Select(f => $"{f.FileName} {f.Md5} {f.Url}")) + "\n");
        if (Directory.Exists(target)) Directory.Delete(target, true);   // empty, checked above
        Directory.Move(assembled, target);
        Directory.Delete(staging, true);
        return target;
    }

    private async Task<string> FetchVerifiedAsync(DownloadFile file, string staging, DatasetSource source, string dataDirectory, CancellationToken cancellation)
    {
        var final = Path.Combine(staging, file.FileName);
        if (File.Exists(final) && Md5Of(final) == file.Md5) return final;
        var partial = final + ".part";
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, file.Url);
            if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellation);
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                have = 0;   // the partial file is not a prefix of this file: start over
                File.Delete(partial);
                return await FetchVerifiedAsync(file, staging, source, dataDirectory, cancellation);
            }
            if (!response.IsSuccessStatusCode)
                throw new NoPropException($"{file.Url}: the server answered {(int)response.StatusCode} {response.ReasonPhrase}. {ManualSteps(source, dataDirectory)}");
            bool resumed = response.StatusCode == HttpStatusCode.PartialContent;
            if (!resumed) have = 0;
            long? total = response.Content.Headers.ContentLength is long length ? length + have : null;
            await using (var output = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write))
            await using (var input = await response.Content.ReadAsStreamAsync(cancellation))
            {
                var buffer = new byte[1 << 16];
                long done = have;
                int read;
                while ((read = await input.ReadAsync(buffer, cancellation)) > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellation);
                    done += read;
                    progress?.Invoke(file.FileName, done, total);
                }
                if (total is long t && done < t)
                    throw new IOException($"the connection closed after {done} of {t} bytes");
            }
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or IOException or TaskCanceledException && !cancellation.IsCancellationRequested)
        {
            long kept = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            string resume = kept > 0 ? $" {kept} bytes are kept in {partial}; run the command again to resume." : "";
            throw new NoPropException($"{file.Url}: download failed ({e.Message}).{resume} {ManualSteps(source, dataDirectory)}", e);
        }
        var md5 = Md5Of(partial);
        if (md5 != file.Md5)
        {
            File.Delete(partial);
            throw new NoPropException($"{file.Url}: checksum mismatch (MD5 {md5}, expected {file.Md5}); the corrupt download was deleted, run the command again");
        }
        File.Move(partial, final, overwrite: true);
        return final;
    }

    private static string Md5Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(stream));
    }

    /// <summary>Extracts regular files and folders of a .tar.gz, refusing entries that would land outside <paramref name="destination"/>.</summary>
    public static void ExtractTarGz(string archive, string destination)
    {
        var root = Path.GetFullPath(destination) + Path.DirectorySeparatorChar;
        try
        {
            using var file = File.OpenRead(archive);
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            TarEntry? entry;
            while ((entry = tar.GetNextEntry()) is not null)
            {
                var path = Path.GetFullPath(Path.Combine(destination, entry.Name));
                if (!path.StartsWith(root, StringComparison.Ordinal) && path + Path.DirectorySeparatorChar != root)
                    throw new NoPropException($"{archive}: entry '{entry.Name}' would be written outside {destination}; refusing to extract");
                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        Directory.CreateDirectory(path);
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        entry.ExtractToFile(path, overwrite: true);
                        break;
                    default:
                        break;   // links and devices are not part of these data sets
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new NoPropException($"{archive}: not a valid .tar.gz archive ({e.Message})", e);
        }
    }

    /// <summary>What to do by hand when the network is unreachable.</summary>
    public static string ManualSteps(DatasetSource source, string dataDirectory)
    {
        var target = Path.Combine(dataDirectory, source.FolderName);
        var files = string.Join("; ", source.Files.Select(f => $"{f.Url} (MD5 {f.Md5})"));
        return source.ExtractTarGz
            ? $"To install it by hand: download {files}, extract it into {target} (tar xzf ARCHIVE -C {target}), then use --data-dir {dataDirectory}."
            : $"To install it by hand: download {files} into {target}, then use --data-dir {dataDirectory}.";
    }
}
