using static TorchSharp.torch;

namespace NoProp.Runtime;

/// <summary>The number format of the image paths' convolutions at inference (<c>--inference-precision</c>).</summary>
[NamedAs("inference precision")]
public enum InferencePrecision
{
    /// <summary>32-bit floats throughout, as trained (the default).</summary>
    [Name("fp32", "float32")] Float32,

    /// <summary>
    /// The convolutions, their ReLU and pooling in bfloat16 (8 bits of mantissa, float32's range), everything after
    /// them (the image paths' fully connected layer and BatchNorm, the label paths, heads, the chain or ODE and its
    /// noise) in float32. CPUs with native bfloat16 (AVX-512 BF16, AMX) convolve about twice as fast; elsewhere it
    /// is emulated and slower (<see cref="ConvolutionPrecision.IsNative"/>).
    /// </summary>
    [Name("bf16", "bfloat16")] BFloat16,
}

/// <summary>
/// The precision in which the conv image paths (the paper's conv module, per block and fused) run their convolutions
/// in eval mode without autograd, set for the current thread by inference (<see cref="Use"/>), like torch.autocast's region.
/// Training (autograd on) always convolves in float32: the region only changes inference.
/// </summary>
public static class ConvolutionPrecision
{
    [ThreadStatic] private static InferencePrecision current;

    /// <summary>The precision set on this thread (float32 outside any <see cref="Use"/>).</summary>
    public static InferencePrecision Current => current;

    /// <summary>Sets the precision on this thread until the result is disposed (regions nest).</summary>
    public static IDisposable Use(InferencePrecision precision)
    {
        if (!Enum.IsDefined(precision)) throw new ArgumentOutOfRangeException(nameof(precision), precision, "not an inference precision");
        var previous = current;
        current = precision;
        return new Restore(previous);
    }

    /// <summary>
    /// The element type a conv image path in <paramref name="training"/> mode convolves in now: bfloat16 inside a
    /// bfloat16 region for a module in eval mode with autograd off (inference), float32 otherwise.
    /// </summary>
    internal static ScalarType For(bool training) =>
        current == InferencePrecision.BFloat16 && !training && !is_grad_enabled() ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary>
    /// Whether this CPU computes bfloat16 natively (x86 with AVX-512 BF16 or AMX-BF16, read from /proc/cpuinfo; false
    /// where that cannot be read). Elsewhere oneDNN emulates bfloat16 and <see cref="InferencePrecision.BFloat16"/>
    /// is slower than float32.
    /// </summary>
    public static bool IsNative => native.Value;

    private static readonly Lazy<bool> native = new(() =>
    {
        try
        {
            if (!File.Exists("/proc/cpuinfo")) return false;
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal)) continue;
                var flags = line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return flags.Contains("avx512_bf16") || flags.Contains("amx_bf16");
            }
            return false;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    });

    private sealed class Restore(InferencePrecision previous) : IDisposable
    {
        private bool disposed;

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            current = previous;
        }
    }
}
