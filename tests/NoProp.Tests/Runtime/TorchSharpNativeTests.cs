using NoProp.Runtime;
using NoProp.Runtime.Native;
using TorchSharp;

namespace NoProp.Tests.Runtime;

/// <summary>
/// The run-time Debian 12 fix (docs/torchsharp-on-debian12.md): the ELF reading it rests on, checked against the real
/// libLibTorchSharp.so and libstdc++ of this machine, and what it did in this very test process.
/// </summary>
[TestClass]
public sealed class TorchSharpNativeTests
{
    private static readonly Lazy<ElfImage> Original = new(() =>
    {
        TorchRuntime.Initialize();
        Assert.IsNotNull(TorchSharpNative.OriginalLibrary, "the test output ships libLibTorchSharp.so");
        return ElfImage.Read(TorchSharpNative.OriginalLibrary);
    });

    [TestMethod]
    public void ReadsTheLibrariesAndVersionsLibTorchSharpNeeds()
    {
        var image = Original.Value;
        CollectionAssert.AreEqual(new[] { "libtorch.so", "libc10.so", "libtorch_cpu.so", "libstdc++.so.6" },
            image.NeededLibraries().Take(4).ToArray());
        var needs = image.VersionNeeds();
        var newest = needs.Single(n => n.Version == "GLIBCXX_3.4.32");
        Assert.AreEqual("libstdc++.so.6", newest.File);
        Assert.IsFalse(newest.IsWeak, "the shipped file marks the version mandatory");
        Assert.IsTrue(needs.Any(n => n.File == "libc.so.6" && n.Version.StartsWith("GLIBC_2.", StringComparison.Ordinal)));
        // Distinct version indexes: they are what .gnu.version refers to.
        Assert.AreEqual(needs.Count, needs.Select(n => n.Index).Distinct().Count());
    }

    [TestMethod]
    public void AnApplicationWithoutLibtorchIsToldWhichPackageToAdd()
    {
        var image = Original.Value;
        var folder = TestSupport.TempDirectory();
        CollectionAssert.AreEqual(new[] { "libtorch.so", "libc10.so", "libtorch_cpu.so" }, TorchSharpNative.AbsentLibtorch(image, folder).ToArray());
        foreach (var file in new[] { "libtorch.so", "libc10.so" }) File.WriteAllBytes(Path.Combine(folder, file), []);
        CollectionAssert.AreEqual(new[] { "libtorch_cpu.so" }, TorchSharpNative.AbsentLibtorch(image, folder).ToArray());
        Assert.AreEqual(0, TorchSharpNative.AbsentLibtorch(image, Path.GetDirectoryName(TorchSharpNative.OriginalLibrary)!).Count, "the test output has its libtorch");
        var message = TorchSharpNative.MissingLibtorchMessage("/app/libLibTorchSharp.so", ["libtorch.so"]);
        StringAssert.Contains(message, "not libtorch beside it (libtorch.so): add a libtorch package to the application, " +
                                       "<PackageReference Include=\"libtorch-cpu-linux-x64\" Version=\"2.10.0\" />");
    }

    [TestMethod]
    public void OnlyTheUnboundVersionIsSafeToWeaken()
    {
        var image = Original.Value;
        var needs = image.VersionNeeds();
        var newest = needs.Single(n => n.Version == "GLIBCXX_3.4.32");
        Assert.AreEqual(0, image.SymbolsBoundTo(newest.Index).Count, "std::ios_base_library_init() is never bound");
        // The base version is used all over (operator new, std::runtime_error, ...): the check is not vacuous.
        var baseVersion = needs.Single(n => n.File == "libstdc++.so.6" && n.Version == "GLIBCXX_3.4");
        var bound = image.SymbolsBoundTo(baseVersion.Index);
        CollectionAssert.Contains(bound.ToList(), "_Znwm");   // operator new
    }

    [TestMethod]
    public void WeakeningSetsOneFlagAndNothingElse()
    {
        var image = Original.Value;
        var bytes = File.ReadAllBytes(image.Path);
        var need = image.VersionNeeds().Single(n => n.Version == "GLIBCXX_3.4.32");
        var patched = image.WithWeakVersions([need]);
        var differing = Enumerable.Range(0, bytes.Length).Where(i => bytes[i] != patched[i]).ToArray();
        CollectionAssert.AreEqual(new[] { need.FlagsOffset }, differing);
        Assert.AreEqual(bytes[need.FlagsOffset] | ElfImage.WeakFlag, patched[need.FlagsOffset]);
        var reread = new ElfImage(patched, "patched").VersionNeeds();
        Assert.IsTrue(reread.Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
        Assert.AreEqual(1, reread.Count(n => n.IsWeak));
    }

    [TestMethod]
    public void FindsWhatTheSystemLibstdcxxLacks()
    {
        var image = Original.Value;
        // A libstdc++ like Debian 12's (up to GLIBCXX_3.4.30 and CXXABI_1.3.13): 3.4.32 is missing, and unbound.
        var debian12 = new HashSet<string>(Enumerable.Range(0, 31).Select(i => i == 0 ? "GLIBCXX_3.4" : $"GLIBCXX_3.4.{i}")
            .Concat(Enumerable.Range(0, 14).Select(i => i == 0 ? "CXXABI_1.3" : $"CXXABI_1.3.{i}")));
        var missing = TorchSharpNative.MissingVersions(image, file => file == "libstdc++.so.6" ? ("/debian12/libstdc++.so.6", debian12) : null);
        CollectionAssert.AreEqual(new[] { "GLIBCXX_3.4.32" }, missing.Select(n => n.Version).ToArray());
        Assert.AreEqual("libstdc++.so.6", missing[0].File);
        // A current libstdc++ (every version it asks for): nothing to do.
        var all = image.VersionNeeds().Select(n => n.Version).ToHashSet();
        Assert.AreEqual(0, TorchSharpNative.MissingVersions(image, _ => ("/new/lib", all)).Count);
    }

    [TestMethod]
    public void AMissingVersionThatIsCalledFailsWithCauseAndRemedy()
    {
        var image = Original.Value;
        // A libstdc++ older still (no GLIBCXX_3.4.21, the C++11 std::string ABI that LibTorchSharp calls).
        var old = new HashSet<string> { "GLIBCXX_3.4", "GLIBCXX_3.4.9", "CXXABI_1.3" };
        var e = Assert.ThrowsExactly<NoPropException>(() =>
            TorchSharpNative.MissingVersions(image, file => file == "libstdc++.so.6" ? ("/old/libstdc++.so.6", old) : null));
        StringAssert.Contains(e.Message, "/old/libstdc++.so.6");
        StringAssert.Contains(e.Message, "GLIBCXX_3.4.21");
        StringAssert.Contains(e.Message, "GCC 13 or newer");
    }

    [TestMethod]
    public void ThisProcessLoadedTorchSharpThroughTheFixWhereTheSystemNeedsIt()
    {
        var image = Original.Value;
        var systemHasIt = TorchSharpNative.WeakenedVersions.Count == 0;
        if (systemHasIt)
        {
            Assert.IsNull(TorchSharpNative.PatchedLibrary, "a current libstdc++ needs no copy");
        }
        else
        {
            CollectionAssert.Contains(TorchSharpNative.WeakenedVersions.ToList(), "GLIBCXX_3.4.32");
            var copy = ElfImage.Read(TorchSharpNative.PatchedLibrary!);
            Assert.IsTrue(copy.VersionNeeds().Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak);
            Assert.IsFalse(image.VersionNeeds().Single(n => n.Version == "GLIBCXX_3.4.32").IsWeak, "the application's file is untouched");
            var maps = File.ReadAllText("/proc/self/maps");
            StringAssert.Contains(maps, TorchSharpNative.PatchedLibrary);
        }
        using var x = torch.arange(6, dtype: torch.float32);
        using var sum = x.sum();
        Assert.AreEqual(15f, sum.item<float>());
    }
}
