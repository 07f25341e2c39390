using System.Reflection;
using Microsoft.ML;

namespace NoProp.ML.Tests;

/// <summary>
/// NoProp.ML compiles against publicized copies of Microsoft.ML.Core/Data and calls their internals at run time
/// (src/NoProp.ML/Publicize.targets). These tests fail if the ML.NET that is loaded is not the one the adapter was
/// written for, or if any member the adapter binds to has moved, before a user would meet a MissingMethodException.
/// </summary>
[TestClass]
public sealed class MlNetInternalsTests
{
    [TestMethod]
    public void TheLoadedMlNetIsThePinnedVersion()
    {
        foreach (var assembly in new[] { typeof(MLContext).Assembly, typeof(ModelSaveContext).Assembly })
        {
            var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
            Assert.IsTrue(version.StartsWith("5.0.1", StringComparison.Ordinal), $"{assembly.GetName().Name} is {version}; NoProp.ML is written against 5.0.1");
        }
    }

    [TestMethod]
    public void EveryMlNetMemberTheAdapterUsesResolves()
    {
        // Walk the adapter's metadata: every type and member reference (tables 0x01 and 0x0A) must bind in the
        // assemblies loaded now. A renamed or removed internal makes ResolveType/ResolveMember throw.
        var module = typeof(NoPropTransformer).Module;
        int types = 0, members = 0, intoMlNet = 0;
        for (int row = 1; ; row++)
        {
            Type resolved;
            try { resolved = module.ResolveType(0x01000000 | row); }
            catch (ArgumentOutOfRangeException) { break; }
            types++;
        }
        for (int row = 1; ; row++)
        {
            MemberInfo? member;
            try { member = module.ResolveMember(0x0A000000 | row); }
            catch (ArgumentOutOfRangeException) { break; }
            catch (ArgumentException) { continue; }   // a member of a generic type instantiated over a method's type parameter
            members++;
            if (member?.DeclaringType?.Assembly.GetName().Name?.StartsWith("Microsoft.ML", StringComparison.Ordinal) == true) intoMlNet++;
        }
        Assert.IsTrue(types > 50 && members > 100, $"walked {types} type and {members} member references");
        Assert.IsTrue(intoMlNet > 30, $"{intoMlNet} of them into ML.NET");
    }

    [TestMethod]
    public void TheInternalsThatSaveAndLoadNeedAreStillInternal()
    {
        // If ML.NET ever makes these public, the publicizer and IgnoresAccessChecksTo can go (approach B's reason to exist).
        var core = typeof(ModelSaveContext).Assembly;
        Assert.IsFalse(core.GetType("Microsoft.ML.ModelLoadContext", throwOnError: true)!.IsPublic);
        Assert.IsFalse(core.GetType("Microsoft.ML.VersionInfo", throwOnError: true)!.IsPublic);
        Assert.IsFalse(core.GetType("Microsoft.ML.LoadableClassAttribute", throwOnError: true)!.IsPublic);
        Assert.IsFalse(typeof(ModelSaveContext).GetMethod("SaveBinaryStream", BindingFlags.Instance | BindingFlags.NonPublic)!.IsPublic);
    }
}
