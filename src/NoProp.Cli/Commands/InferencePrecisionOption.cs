using System.CommandLine;
using NoProp.Cli.CommandLine;
using NoProp.Runtime;

namespace NoProp.Cli.Commands;

/// <summary><c>--inference-precision fp32|bf16</c> of <c>noprop train</c> (validation, test) and <c>noprop eval</c>.</summary>
internal static class InferencePrecisionOption
{
    public static Option<string?> Create(string scope) => CliOptions.Choice("--inference-precision",
        $"the image paths' convolutions at inference ({scope}): bf16 about halves DT inference time on CPUs with " +
        "AVX-512 BF16 or AMX and moves accuracy by hundredths of a point; paper conv module only  [fp32]",
        EnumNames<InferencePrecision>.Names);

    /// <summary>The value given (fp32 when absent); warns on <paramref name="stderr"/> when this CPU only emulates bfloat16.</summary>
    public static InferencePrecision Read(ParseResult parse, Option<string?> option, string deviceName, TextWriter stderr)
    {
        var precision = parse.GetValue(option) is string name ? EnumNames<InferencePrecision>.Parse(name) : InferencePrecision.Float32;
        Warn(precision, deviceName, stderr);
        return precision;
    }

    /// <summary>Warns when bfloat16 convolutions would run emulated on this CPU.</summary>
    public static void Warn(InferencePrecision precision, string deviceName, TextWriter stderr)
    {
        if (precision == InferencePrecision.BFloat16 && deviceName == "cpu" && !ConvolutionPrecision.IsNative)
            stderr.WriteLine("noprop: warning: this CPU has no native bfloat16 (AVX-512 BF16 or AMX); --inference-precision bf16 " +
                             "is emulated and slower than fp32 here");
    }
}
