using System.Runtime.InteropServices;

namespace NoProp.Runtime;

/// <summary>
/// A native, 64-byte aligned scratch buffer per thread for the CPU kernels, kept between calls: a kernel's transform
/// buffers (hundreds of KB) would otherwise be allocated on every call, above glibc's mmap threshold, and faulted in
/// afresh each time. It grows to the largest request and lives as long as its thread (libtorch's OpenMP workers and
/// the threads that call the kernels: a few MB at most).
/// </summary>
internal static unsafe class ThreadScratch
{
    [ThreadStatic] private static void* buffer;
    [ThreadStatic] private static nuint size;

    /// <summary>
    /// At least <paramref name="floats"/> floats of this thread's buffer, uninitialised. Valid until the thread's next
    /// call: a kernel takes all it needs in one call, and does not call another kernel while it uses it.
    /// </summary>
    public static float* Floats(long floats)
    {
        nuint bytes = (nuint)(floats * sizeof(float));
        if (bytes > size)
        {
            if (buffer is not null) NativeMemory.AlignedFree(buffer);
            buffer = null;
            size = 0;
            buffer = NativeMemory.AlignedAlloc(bytes, 64);
            size = bytes;
        }
        return (float*)buffer;
    }
}
