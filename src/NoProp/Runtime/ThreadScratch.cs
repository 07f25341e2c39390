using System.Runtime.InteropServices;

namespace NoProp.Runtime;

/// <summary>
/// A native, 64-byte aligned scratch buffer per thread for the CPU kernels, kept between calls: a kernel's transform
/// buffers (hundreds of KB) would otherwise be allocated on every call, above glibc's mmap threshold, and faulted in
/// afresh each time. It grows to the largest request; when its thread has ended, the finalizer of its holder frees it
/// (threads come and go: .NET's pool retires idle ones, libgomp's team ends with its master thread).
/// </summary>
internal static unsafe class ThreadScratch
{
    [ThreadStatic] private static Buffer? buffer;

    private static long live;

    /// <summary>Whether this thread has a buffer (tests).</summary>
    internal static bool ThisThreadHasOne => buffer?.Address is not null;

    /// <summary>How many threads' buffers are allocated now (tests: those of ended threads are freed).</summary>
    internal static long LiveBuffers => Interlocked.Read(ref live);

    /// <summary>
    /// At least <paramref name="floats"/> floats of this thread's buffer, uninitialised. Valid until the thread's next
    /// call: a kernel takes all it needs in one call, and does not call another kernel while it uses it.
    /// </summary>
    public static float* Floats(long floats)
    {
        nuint bytes = (nuint)(floats * sizeof(float));
        var held = buffer ??= new Buffer();
        if (bytes > held.Size) held.Grow(bytes);
        return (float*)held.Address;
    }

    private sealed class Buffer
    {
        public void* Address { get; private set; }
        public nuint Size { get; private set; }

        public void Grow(nuint bytes)
        {
            Free();
            Address = NativeMemory.AlignedAlloc(bytes, 64);
            Size = bytes;
            Interlocked.Increment(ref live);
        }

        private void Free()
        {
            if (Address is null) return;
            NativeMemory.AlignedFree(Address);
            Interlocked.Decrement(ref live);
            Address = null;
            Size = 0;
        }

        // Only the thread's static field refers to it: once the thread has ended, nothing can use the memory.
        ~Buffer() => Free();
    }
}
