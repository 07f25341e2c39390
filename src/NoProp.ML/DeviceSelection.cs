using Microsoft.ML;
using Microsoft.ML.Runtime;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.ML;

/// <summary>
/// Where training and scoring run, from the context's public <c>MLContext.GpuDeviceId</c> and <c>FallbackToCpu</c>
/// (read through the internal interface every ML.NET environment implements), as ML.NET's own TorchSharp trainers do.
/// </summary>
internal static class DeviceSelection
{
    public static Device For(IHostEnvironment environment)
    {
        if (environment is not IHostEnvironmentInternal settings || settings.GpuDeviceId is not int id) return CPU;
        if (cuda.is_available()) return new Device(TorchSharp.DeviceType.CUDA, id);
        if (settings.FallbackToCpu) return CPU;
        throw new InvalidOperationException(
            $"MLContext.GpuDeviceId is {id}, but no CUDA device is available to this build (build with -p:NoPropBackend=cuda on a machine with an NVIDIA GPU, or set MLContext.FallbackToCpu)");
    }
}
