using NoProp.Runtime;

namespace NoProp.Tests;

/// <summary>
/// Before any test: the TorchSharp set-up every NoProp application does first. Tests that call TorchSharp directly
/// would otherwise load its native library before NoProp's Debian 12 fix (docs/torchsharp-on-debian12.md) could run.
/// </summary>
[TestClass]
public static class AssemblySetup
{
    [AssemblyInitialize]
    public static void Initialize(TestContext _) => TorchRuntime.Initialize();
}
