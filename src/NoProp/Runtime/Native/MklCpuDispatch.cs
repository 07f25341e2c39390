using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace NoProp.Runtime.Native;

/// <summary>
/// Lets the MKL inside libtorch use its AVX-512 kernels on AMD CPUs that have AVX-512 (Zen 4 and later).
/// <para>
/// oneMKL picks its code path by CPU vendor: on any non-Intel CPU it runs its AVX2 "zen" sgemm kernel, even where the
/// CPU has AVX-512. On this project's AMD EPYC machines that made libtorch's linear layers run at 75–83 GFLOP/s on one
/// thread, against 148–178 for the OpenBLAS inside Debian's PyTorch on the same machine, and 152–172 for MKL itself once
/// it takes the Intel path (<c>NoProp.Bench gemm</c>; BENCHMARKS.md). MKL caches its vendor check in a static variable of
/// <c>mkl_serv_intel_cpu_true</c>; before MKL's first use this sets that cache to "Intel", so MKL then chooses among its
/// kernels by the CPU's actual instruction sets, as it does on Intel CPUs.
/// </para>
/// <para>
/// Nothing else is touched: no code is modified, and the variable is found through the exported function's own first
/// instruction (<c>mov cached(%rip), %eax</c>), checked byte for byte, and written only when the mapping holding it is
/// writable and MKL has not decided yet. Any mismatch (another libtorch build, a CPU without AVX-512, an Intel CPU, not
/// Linux x64) leaves everything as it was. <c>NOPROP_MKL_AVX512=0</c> turns it off.
/// </para>
/// </summary>
public static class MklCpuDispatch
{
    /// <summary>What <see cref="Apply"/> did, for diagnostics (<c>noprop --version</c>-style reports, tests, benchmarks).</summary>
    public static string Status { get; private set; } = "not attempted";

    /// <summary>True when MKL was set to take its Intel code path (AVX-512 kernels) on this AMD CPU.</summary>
    public static bool Applied { get; private set; }

    /// <summary>Whether the change applies: on by default, off with <c>NOPROP_MKL_AVX512=0</c>; only for AMD CPUs with AVX-512 F/BW/DQ/VL.</summary>
    internal static bool ShouldApply(string? setting, bool amd, bool avx512) => setting != "0" && amd && avx512;

    /// <summary>Runs once, after libtorch is loaded and before its first matrix product (<see cref="TorchRuntime.Initialize"/>).</summary>
    internal static void Apply()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) { Status = "not Linux x64"; return; }
        bool avx512 = Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported;
        if (!ShouldApply(Environment.GetEnvironmentVariable("NOPROP_MKL_AVX512"), IsAmd(), avx512))
        {
            Status = Environment.GetEnvironmentVariable("NOPROP_MKL_AVX512") == "0" ? "off (NOPROP_MKL_AVX512=0)" : "not needed (not an AMD CPU with AVX-512)";
            return;
        }
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", out var library) || !NativeLibrary.TryGetExport(library, "mkl_serv_intel_cpu_true", out var function))
        {
            Status = "left alone: libtorch_cpu.so has no MKL vendor check";
            return;
        }
        // mov disp32(%rip), %eax ; test %eax, %eax ; js +1 ; ret  — the cached answer, returned when already known.
        var code = new byte[11];
        Marshal.Copy(function, code, 0, code.Length);
        if (code[0] != 0x8B || code[1] != 0x05 || !code.AsSpan(6).SequenceEqual(new byte[] { 0x85, 0xC0, 0x78, 0x01, 0xC3 }))
        {
            Status = "left alone: MKL's vendor check is not the code this was written for";
            return;
        }
        nint cached = function + 6 + BinaryPrimitives.ReadInt32LittleEndian(code.AsSpan(2, 4));
        if (!IsWritable(cached, sizeof(int)))
        {
            Status = "left alone: MKL's vendor cache is not in a writable mapping";
            return;
        }
        int current = Marshal.ReadInt32(cached);
        if (current >= 0)
        {
            Status = $"left alone: MKL had already checked the vendor ({current})";
            return;
        }
        Marshal.WriteInt32(cached, 1);
        Applied = true;
        Status = "MKL uses its AVX-512 kernels on this AMD CPU";
    }

    private static bool IsAmd()
    {
        if (!X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<byte> vendor = stackalloc byte[12];
        BinaryPrimitives.WriteInt32LittleEndian(vendor, ebx);
        BinaryPrimitives.WriteInt32LittleEndian(vendor[4..], edx);
        BinaryPrimitives.WriteInt32LittleEndian(vendor[8..], ecx);
        return vendor.SequenceEqual("AuthenticAMD"u8);
    }

    /// <summary>Whether [address, address + length) lies in one writable mapping of this process (/proc/self/maps).</summary>
    private static bool IsWritable(nint address, int length)
    {
        ulong start = (ulong)address, end = start + (ulong)length;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                // 7f12a4000000-7f12a4021000 rw-p 00000000 00:00 0   [path]
                int dash = line.IndexOf('-'), space = line.IndexOf(' ');
                if (dash < 0 || space < dash) continue;
                ulong from = ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                ulong to = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (start >= from && end <= to) return line.Length > space + 2 && line[space + 2] == 'w';
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return false;
    }
}
