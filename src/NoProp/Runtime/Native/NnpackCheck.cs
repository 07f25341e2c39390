using System.Runtime.InteropServices;

namespace NoProp.Runtime.Native;

/// <summary>
/// Turns off libtorch's use of NNPACK where NNPACK cannot run on this CPU, so that libtorch stops asking.
/// <para>
/// Before some CPU convolutions libtorch checks whether NNPACK is usable. It does so for small batches (scoring one
/// image, say) that it does not send to oneDNN. Where NNPACK does not support the CPU (this project's AMD EPYC Zen 5
/// machines), every such check logs "Could not initialize NNPACK! Reason: Unsupported hardware." to stderr: 10 to 30
/// lines for one image scored through `noprop eval` or an ML.NET prediction engine. NNPACK cannot run there anyway.
/// </para>
/// <para>
/// This initialises NNPACK once, through its own <c>nnp_initialize</c>, which logs nothing. Where that fails, it sets
/// libtorch's <c>at::globalContext().setUserEnabledNNPACK(false)</c>, which libtorch tests before its own check: the
/// warnings go, and the convolutions run as they did (without NNPACK, as before). Where NNPACK initialises, or a symbol
/// is missing (another libtorch build, another OS), nothing is changed.
/// </para>
/// </summary>
internal static unsafe class NnpackCheck
{
    /// <summary>What <see cref="Apply"/> did, for diagnostics and tests.</summary>
    public static string Status { get; private set; } = "not attempted";

    /// <summary>Runs once, after libtorch is loaded (<see cref="TorchRuntime.Initialize"/>).</summary>
    internal static void Apply()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libtorch_cpu.so", out var library))
        {
            Status = "left alone: libtorch_cpu.so not found";
            return;
        }
        if (!NativeLibrary.TryGetExport(library, "nnp_initialize", out var initialize)
            || !NativeLibrary.TryGetExport(library, "_ZN2at13globalContextEv", out var context)
            || !NativeLibrary.TryGetExport(library, "_ZN2at7Context20setUserEnabledNNPACKEb", out var setEnabled))
        {
            Status = "left alone: this libtorch has no NNPACK or no switch for it";
            return;
        }
        int status = ((delegate* unmanaged<int>)initialize)();   // nnp_status_success = 0
        if (status == 0)
        {
            Status = "NNPACK initialised: left on";
            return;
        }
        nint globalContext = ((delegate* unmanaged<nint>)context)();
        ((delegate* unmanaged<nint, byte, void>)setEnabled)(globalContext, 0);
        Status = $"NNPACK cannot run on this CPU (nnp_initialize: status {status}): libtorch's use of it turned off";
    }

    /// <summary>libtorch's <c>at::globalContext().userEnabledNNPACK()</c>, or null where it cannot be read.</summary>
    internal static bool? LibtorchUsesNnpack()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libtorch_cpu.so", out var library)
            || !NativeLibrary.TryGetExport(library, "_ZN2at13globalContextEv", out var context)
            || !NativeLibrary.TryGetExport(library, "_ZNK2at7Context17userEnabledNNPACKEv", out var enabled))
            return null;
        return ((delegate* unmanaged<nint, byte>)enabled)(((delegate* unmanaged<nint>)context)()) != 0;
    }
}
