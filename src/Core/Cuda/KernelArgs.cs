using System.Runtime.CompilerServices;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// The arguments of one kernel launch, packed for cuLaunchKernel's <c>void** kernelParams</c>:
/// each value is copied into one byte buffer at the next offset aligned to its own size (as C lays
/// out a struct, and as the PTX parameter space does), and at launch the buffer is pinned and an
/// array of pointers to each value is built on the stack. Packed tightly, a value added with the
/// wrong C type (an int where the kernel takes a size_t) makes the driver's read of the parameter
/// run into the next value's bytes, which the software device reports. The driver copies the
/// values during the call (graph capture included), so nothing needs to outlive the launch.
/// Arguments must be added in the order of the kernel's parameters with the exact C types
/// (int vs long, float vs double): the driver reads each parameter's size from the kernel, not
/// from here. Reusable: <see cref="Clear"/> and add again.
/// </summary>
public sealed class KernelArgs
{
    /// <summary>The largest alignment a value gets (that of a pointer or a size_t).</summary>
    internal const int MaxAlignment = 8;

    private byte[] _data = new byte[64];
    private int[] _offsets = new int[8];
    private int _used;

    /// <summary>The number of arguments added.</summary>
    public int Count { get; private set; }

    /// <summary>Appends a blittable value (int, float, a struct of them, a device pointer as ulong).</summary>
    public KernelArgs Add<T>(T value) where T : unmanaged
    {
        var size = Unsafe.SizeOf<T>();
        var align = Math.Min(MaxAlignment, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)size));
        var offset = (_used + align - 1) & ~(align - 1);
        if (offset + size > _data.Length) Array.Resize(ref _data, Math.Max(_data.Length * 2, offset + size));
        if (Count == _offsets.Length) Array.Resize(ref _offsets, _offsets.Length * 2);
        Unsafe.WriteUnaligned(ref _data[offset], value);
        _offsets[Count++] = offset;
        _used = offset + size;
        return this;
    }

    /// <summary>Appends a device address (a <c>T*</c> parameter).</summary>
    public KernelArgs Add(CUdeviceptr pointer) => Add(pointer.Value);

    /// <summary>Appends the address of a device buffer (a <c>T*</c> parameter).</summary>
    public KernelArgs Add<T>(DeviceBuffer<T> buffer) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(buffer);
        return Add(buffer.Pointer.Value);
    }

    /// <summary>Removes every argument (keeps the storage).</summary>
    public void Clear()
    {
        Count = 0;
        _used = 0;
    }

    /// <summary>The packed bytes (for tests and diagnostics).</summary>
    internal ReadOnlySpan<byte> Data => _data.AsSpan(0, _used);

    /// <summary>The byte offset of argument <paramref name="index"/> in <see cref="Data"/>.</summary>
    internal int OffsetOf(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return _offsets[index];
    }

    /// <summary>
    /// Pins the packed values and calls <paramref name="body"/> with the kernelParams array
    /// (null when there are no arguments); the pointers are valid only during the call.
    /// </summary>
    internal unsafe TResult WithPointers<TResult>(PointerBody<TResult> body)
    {
        var pointers = stackalloc void*[Math.Max(Count, 1)];
        fixed (byte* data = _data)
        {
            for (var i = 0; i < Count; i++) pointers[i] = data + _offsets[i];
            return body(Count == 0 ? null : pointers);
        }
    }

    internal unsafe delegate TResult PointerBody<out TResult>(void** kernelParams);
}
