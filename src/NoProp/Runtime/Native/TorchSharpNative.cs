using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace NoProp.Runtime.Native;

/// <summary>
/// Makes TorchSharp's native library loadable on systems whose libstdc++ is older than the one it was built against
/// (Debian 12: GCC 12's libstdc++ stops at GLIBCXX_3.4.30; TorchSharp 0.107's <c>libLibTorchSharp.so</c> asks for
/// GLIBCXX_3.4.32 for one symbol that no relocation binds, so the loader refuses it for nothing).
/// <para>
/// Runs once, before TorchSharp loads its native code: when this assembly is first used (a module initializer) and
/// again from <see cref="TorchRuntime.Initialize"/>. Where every version <c>libLibTorchSharp.so</c> needs from the
/// system's libraries is present, it does nothing. Otherwise, when none of the missing versions' symbols is bound by a
/// relocation, it writes a copy with those versions marked weak (ELF <c>VER_FLG_WEAK</c>; nothing else changes) into
/// a per-user cache (<c>$XDG_CACHE_HOME/noprop/native</c> or <c>~/.cache/noprop/native</c>; <c>NOPROP_NATIVE_CACHE</c>
/// overrides it), loads libtorch from the application's own folder and then that copy. TorchSharp's own lookup of
/// <c>LibTorchSharp</c> then resolves to the copy already in the process (the loader matches it by its soname), so
/// nothing is copied into, or changed in, the application's folder or the NuGet cache.
/// </para>
/// <para>
/// When the fix cannot apply (a missing version that the code really uses, a cache that cannot be written) the
/// first NoProp call that needs TorchSharp throws one <see cref="NoPropException"/> naming the cause and the remedy.
/// See docs/torchsharp-on-debian12.md.
/// </para>
/// </summary>
public static class TorchSharpNative
{
    private const string LibraryFile = "libLibTorchSharp.so";
    private static readonly object Gate = new();
    private static bool prepared;
    private static Exception? failure;

    /// <summary>The <c>libLibTorchSharp.so</c> the application ships (null before <see cref="Prepare"/>, off Linux,
    /// or where the application has none: TorchSharp then reports the missing libtorch package itself).</summary>
    public static string? OriginalLibrary { get; private set; }

    /// <summary>The patched copy that was loaded, or null where none was needed.</summary>
    public static string? PatchedLibrary { get; private set; }

    /// <summary>The versions that were missing from the system and were marked weak in the copy (empty: none).</summary>
    public static IReadOnlyList<string> WeakenedVersions { get; private set; } = [];

#pragma warning disable CA2255 // a library module initializer on purpose: it must run before TorchSharp loads native code
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void OnModuleLoad()
    {
        // Never throw from a module initializer (that would surface as an opaque TypeInitializationException for
        // every type of this assembly); a failure is kept and reported by Prepare / TorchRuntime.Initialize.
        try { Prepare(); }
        catch (NoPropException) { }
    }

    /// <summary>
    /// Applies the fix if this system needs it; idempotent and thread-safe. Throws a <see cref="NoPropException"/>
    /// naming the cause and the remedy if the native library cannot be made loadable.
    /// </summary>
    public static void Prepare()
    {
        lock (Gate)
        {
            if (!prepared)
            {
                try { PrepareOnce(); }
                catch (Exception e) when (e is not NoPropException)
                {
                    failure = new NoPropException(
                        $"TorchSharp's native library could not be prepared for this system's libstdc++: {e.Message}. " + Remedy, e);
                }
                catch (NoPropException e) { failure = e; }
                prepared = true;
            }
        }
        if (failure is not null) throw new NoPropException(failure.Message, failure);
    }

    private const string Remedy =
        "Remedy: run on a system whose libstdc++ comes from GCC 13 or newer (Debian 13, Ubuntu 24.04, Fedora 39, ...); " +
        "see docs/torchsharp-on-debian12.md in the NoProp.NET repository";

    private static void PrepareOnce()
    {
        if (!OperatingSystem.IsLinux()) return;
        var original = FindOriginal();
        if (original is null) return;
        OriginalLibrary = original;
        var folder = Path.GetDirectoryName(original)!;
        var image = ElfImage.Read(original);
        if (AbsentLibtorch(image, folder) is { Count: > 0 } absent) throw new NoPropException(MissingLibtorchMessage(original, absent));

        var missing = MissingVersions(image, file =>
        {
            if (File.Exists(Path.Combine(folder, file))) return null;   // shipped beside it (libtorch): matches by construction
            var path = LoadedPath(file);                                 // null: not on this system, the loader names it itself
            return path is null ? null : (path, ElfImage.Read(path).DefinedVersions());
        });
        if (missing.Count == 0) return;   // a current system: nothing to do

        var patched = image.WithWeakVersions(missing);
        var copy = WriteCached(patched);

        // The copy lives outside the application's folder, so its RUNPATH ($ORIGIN) cannot find libtorch: load
        // libtorch from the application's folder first; the copy's DT_NEEDED entries then match those by soname.
        foreach (var needed in image.NeededLibraries())
        {
            var beside = Path.Combine(folder, needed);
            if (File.Exists(beside)) Load(beside, original);
        }
        Load(copy, original);
        PatchedLibrary = copy;
        WeakenedVersions = missing.Select(n => n.Version).ToArray();
    }

    /// <summary>
    /// The libtorch libraries (libtorch*, libc10*) <paramref name="image"/> needs that are not in <paramref name="folder"/>:
    /// the application references TorchSharp but no libtorch package. The loader would then look for them on the
    /// system, where it finds nothing (a "cannot open shared object file" error) or another libtorch (a Debian
    /// python3-torch's 1.13: an "undefined symbol" error); neither names the missing package, so this check does.
    /// </summary>
    internal static IReadOnlyList<string> AbsentLibtorch(ElfImage image, string folder) =>
        image.NeededLibraries()
            .Where(n => (n.StartsWith("libtorch", StringComparison.Ordinal) || n.StartsWith("libc10", StringComparison.Ordinal)) && !File.Exists(Path.Combine(folder, n)))
            .ToArray();

    internal static string MissingLibtorchMessage(string original, IReadOnlyList<string> absent)
    {
        string version = typeof(TorchSharpNative).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .Cast<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "LibTorchVersion")?.Value ?? "the version TorchSharp names";
        return $"the application has TorchSharp's native library ({original}) but not libtorch beside it ({string.Join(", ", absent)}): " +
               $"add a libtorch package to the application, <PackageReference Include=\"libtorch-cpu-linux-x64\" Version=\"{version}\" /> " +
               $"for the CPU or libtorch-cuda-12.8-linux-x64 {version} for CUDA (NoProp references TorchSharp without one, so that the application chooses)";
    }

    /// <summary>
    /// The versions <paramref name="image"/> needs that the system's libraries lack (empty: it loads as it is).
    /// Throws when a missing version's symbols are bound by a relocation: weakening it would only move the failure
    /// to the first call. <paramref name="systemLibrary"/> gives a needed library's path and defined versions, or null
    /// for a library not to check.
    /// </summary>
    internal static IReadOnlyList<ElfImage.VersionNeed> MissingVersions(
        ElfImage image, Func<string, (string Path, IReadOnlySet<string> Defined)?> systemLibrary)
    {
        var missing = new List<(ElfImage.VersionNeed Need, string Library)>();
        foreach (var group in image.VersionNeeds().Where(n => !n.IsWeak).GroupBy(n => n.File))
        {
            if (systemLibrary(group.Key) is not var (path, defined)) continue;
            missing.AddRange(group.Where(n => !defined.Contains(n.Version)).Select(n => (n, path)));
        }
        var used = missing.SelectMany(m => image.SymbolsBoundTo(m.Need.Index).Select(s => $"{s} ({m.Need.Version})")).ToList();
        if (used.Count > 0)
            throw new NoPropException(
                $"TorchSharp's native library {image.Path} needs " +
                string.Join(", ", missing.Select(m => $"{m.Need.Version} of {m.Need.File}")) +
                $", which this system's {string.Join(", ", missing.Select(m => m.Library).Distinct())} lacks, and it calls " +
                $"{string.Join(", ", used.Take(5))}{(used.Count > 5 ? $" and {used.Count - 5} more" : "")}; it cannot run here. {Remedy}");
        return missing.Select(m => m.Need).ToList();
    }

    private static void Load(string path, string original)
    {
        try { NativeLibrary.Load(path); }
        catch (DllNotFoundException e)
        {
            throw new NoPropException(
                $"loading {path} (for TorchSharp's {original}, patched for this system's older libstdc++) failed: {e.Message}. {Remedy}", e);
        }
    }

    /// <summary>Where the runtime will look for <c>LibTorchSharp</c>: the application's native search folders.</summary>
    private static string? FindOriginal()
    {
        var folders = new List<string>();
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searchPath)
            folders.AddRange(searchPath.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        folders.Add(AppContext.BaseDirectory);
        folders.Add(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"));
        var torchSharp = typeof(TorchSharp.torch).Assembly.Location;   // loads the assembly; runs no TorchSharp code
        if (!string.IsNullOrEmpty(torchSharp)) folders.Add(Path.GetDirectoryName(torchSharp)!);
        return folders.Select(f => Path.Combine(f, LibraryFile)).FirstOrDefault(File.Exists);
    }

    /// <summary>The file the process uses for a system library such as libstdc++.so.6 (loading it if need be).</summary>
    private static string? LoadedPath(string soname)
    {
        if (!NativeLibrary.TryLoad(soname, out _)) return null;
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int slash = line.IndexOf('/');
            if (slash < 0) continue;
            var path = line[slash..];
            var name = Path.GetFileName(path);
            if (name == soname || name.StartsWith(soname + ".", StringComparison.Ordinal)) return path;
        }
        return null;
    }

    /// <summary>Writes the patched bytes into the cache (atomically; reused while the content matches).</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static string WriteCached(byte[] patched)
    {
        var key = Convert.ToHexStringLower(SHA256.HashData(patched))[..16];
        var errors = new List<string>();
        foreach (var root in CacheRoots())
        {
            try
            {
                var folder = Path.Combine(root, key);
                Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                var path = Path.Combine(folder, LibraryFile);
                if (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(patched)) return path;
                var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
                File.WriteAllBytes(temporary, patched);
                File.Move(temporary, path, overwrite: true);   // atomic: a concurrent process sees the old or the new file
                return path;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                errors.Add($"{root}: {e.Message}");
            }
        }
        try
        {
            // Last resort: a private folder of this process (created 0700), never shared with other users.
            var folder = Directory.CreateTempSubdirectory("noprop-native-").FullName;
            var path = Path.Combine(folder, LibraryFile);
            File.WriteAllBytes(path, patched);
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add($"{Path.GetTempPath()}: {e.Message}");
        }
        throw new NoPropException(
            $"TorchSharp's native library needs a patched copy for this system's older libstdc++, but no folder could be " +
            $"written ({string.Join("; ", errors)}). Remedy: set NOPROP_NATIVE_CACHE to a writable folder");
    }

    private static IEnumerable<string> CacheRoots()
    {
        var overridden = Environment.GetEnvironmentVariable("NOPROP_NATIVE_CACHE");
        if (!string.IsNullOrEmpty(overridden))
        {
            yield return overridden;
            yield break;
        }
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(xdg)) yield return Path.Combine(xdg, "noprop", "native");
        else if (!string.IsNullOrEmpty(home)) yield return Path.Combine(home, ".cache", "noprop", "native");
    }
}
