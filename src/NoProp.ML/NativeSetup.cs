using System.Runtime.CompilerServices;
using NoProp.Runtime;
using NoProp.Runtime.Native;

namespace NoProp.ML;

/// <summary>Prepares TorchSharp's native library (the Debian 12 libstdc++ fix, see <see cref="TorchSharpNative"/>)
/// as soon as this assembly is used, before any code of it can reach TorchSharp.</summary>
internal static class NativeSetup
{
#pragma warning disable CA2255 // a library module initializer on purpose: it must run before TorchSharp loads native code
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Run()
    {
        try { TorchSharpNative.Prepare(); }
        catch (NoPropException) { }   // kept and thrown again by TorchRuntime.Initialize, which every entry point calls first
    }
}
