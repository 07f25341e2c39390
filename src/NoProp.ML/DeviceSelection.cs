using Microsoft.ML;
using Microsoft.ML.Runtime;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.ML;

/// <summary>
/// Where training and scoring run, from the context's public <c>MLContext.GpuDeviceId</c> and <c>FallbackToCpu</c>
/// (read through the internal interface every ML.NET environment implements), as ML.NET's own TorchSharp trainers do:
/// no id → CPU; a valid id of an available CUDA device → that device; otherwise CPU when <c>FallbackToCpu</c> is set,
/// else an error naming the cause. Whether CUDA exists at all is the application's choice of libtorch package.
/// </summary>
internal static class DeviceSelection
{
    public static Device For(IHostEnvironment environment)
    {
        if (environment is not IHostEnvironmentInternal settings || settings.GpuDeviceId is not int id) return CPU;
        int count = cuda.is_available() ? cuda.device_count() : 0;
        if (id >= 0 && id < count) return new Device(TorchSharp.DeviceType.CUDA, id);
        if (settings.FallbackToCpu) return CPU;
        throw new InvalidOperationException(count == 0
            ? $"MLContext.GpuDeviceId is {id}, but no CUDA device is available: the application references the CPU libtorch " +
              "(libtorch-cpu-linux-x64) or the machine has no NVIDIA GPU. Reference libtorch-cuda-12.8-linux-x64 instead " +
              "(in this repository: build with -p:NoPropBackend=cuda), or set MLContext.FallbackToCpu = true"
            : $"MLContext.GpuDeviceId is {id}, but this machine has {count} CUDA device(s) (ids 0 to {count - 1}); " +
              "use one of those ids or set MLContext.FallbackToCpu = true");
    }
}
