using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// Raw device-memory operations for the layers above the bindings (the caching allocator, the
/// backend): allocation, stream-ordered copies and fills, each checked. Sizes are bytes unless the
/// name says elements. Copies from or to managed memory pin it for the call only; the driver
/// treats it as pageable memory, so the call returns once the source has been staged (host → device)
/// or the data has arrived (device → host): the span is free again when the call returns. Only
/// <see cref="PinnedHostBuffer{T}"/> copies are truly asynchronous.
/// </summary>
public static class DeviceMemory
{
    /// <summary>cuMemAlloc in the current context; the memory is 256-byte aligned.</summary>
    public static CUdeviceptr Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        CuDriver.Check(CuDriver.cuMemAlloc(out var ptr, (nuint)bytes));
        return ptr;
    }

    /// <summary>cuMemFree. A null pointer is ignored.</summary>
    public static void Free(CUdeviceptr ptr)
    {
        if (!ptr.IsNull) CuDriver.Check(CuDriver.cuMemFree(ptr));
    }

    /// <summary>Stream-ordered allocation from the device's default pool (cuMemAllocAsync).</summary>
    public static CUdeviceptr AllocateAsync(long bytes, CudaStream stream)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        ArgumentNullException.ThrowIfNull(stream);
        CuDriver.Check(CuDriver.cuMemAllocAsync(out var ptr, (nuint)bytes, stream.Handle));
        return ptr;
    }

    /// <summary>Stream-ordered free (cuMemFreeAsync).</summary>
    public static void FreeAsync(CUdeviceptr ptr, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!ptr.IsNull) CuDriver.Check(CuDriver.cuMemFreeAsync(ptr, stream.Handle));
    }

    /// <summary>Host → device: <paramref name="source"/> to <paramref name="destination"/>.</summary>
    public static unsafe void CopyToDevice<T>(CUdeviceptr destination, ReadOnlySpan<T> source, CudaStream stream) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (source.IsEmpty) return;
        fixed (T* src = source)
            CuDriver.Check(CuDriver.cuMemcpyHtoDAsync(destination, src, (nuint)((long)source.Length * sizeof(T)), stream.Handle));
    }

    /// <summary>Device → host: <paramref name="destination"/>.Length elements from <paramref name="source"/>.</summary>
    public static unsafe void CopyToHost<T>(Span<T> destination, CUdeviceptr source, CudaStream stream) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (destination.IsEmpty) return;
        fixed (T* dst = destination)
            CuDriver.Check(CuDriver.cuMemcpyDtoHAsync(dst, source, (nuint)((long)destination.Length * sizeof(T)), stream.Handle));
    }

    /// <summary>Host (page-locked) → device, asynchronous: the host buffer must stay alive until the stream reaches the copy.</summary>
    public static unsafe void CopyToDeviceAsync<T>(CUdeviceptr destination, PinnedHostBuffer<T> source, long offset, long count, CudaStream stream) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(stream);
        CheckRange(offset, count, source.Length);
        if (count == 0) return;
        CuDriver.Check(CuDriver.cuMemcpyHtoDAsync(destination, source.Pointer + offset, (nuint)(count * sizeof(T)), stream.Handle));
    }

    /// <summary>Device → host (page-locked), asynchronous: read the buffer only after synchronising the stream.</summary>
    public static unsafe void CopyToHostAsync<T>(PinnedHostBuffer<T> destination, long offset, long count, CUdeviceptr source, CudaStream stream) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(stream);
        CheckRange(offset, count, destination.Length);
        if (count == 0) return;
        CuDriver.Check(CuDriver.cuMemcpyDtoHAsync(destination.Pointer + offset, source, (nuint)(count * sizeof(T)), stream.Handle));
    }

    /// <summary>Device → device, <paramref name="bytes"/> bytes, stream-ordered.</summary>
    public static void CopyDeviceToDevice(CUdeviceptr destination, CUdeviceptr source, long bytes, CudaStream stream)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        ArgumentNullException.ThrowIfNull(stream);
        if (bytes == 0) return;
        CuDriver.Check(CuDriver.cuMemcpyDtoDAsync(destination, source, (nuint)bytes, stream.Handle));
    }

    /// <summary>Sets <paramref name="words"/> 32-bit words to <paramref name="value"/> (the bits of a float or int), stream-ordered.</summary>
    public static void Fill32(CUdeviceptr destination, uint value, long words, CudaStream stream)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(words);
        ArgumentNullException.ThrowIfNull(stream);
        if (words == 0) return;
        CuDriver.Check(CuDriver.cuMemsetD32Async(destination, value, (nuint)words, stream.Handle));
    }

    /// <summary>Fills <paramref name="count"/> floats with <paramref name="value"/>.</summary>
    public static void Fill(CUdeviceptr destination, float value, long count, CudaStream stream) =>
        Fill32(destination, BitConverter.SingleToUInt32Bits(value), count, stream);

    internal static void CheckRange(long offset, long count, long length)
    {
        if (offset < 0 || count < 0 || offset > length || count > length - offset)
            throw new ArgumentOutOfRangeException(nameof(count), $"range [{offset}, {offset}+{count}) is outside a buffer of {length} elements");
    }
}

/// <summary>
/// An owned device allocation of <see cref="Length"/> elements of <typeparamref name="T"/>; freed on
/// Dispose (or by the finalizer, in the context it was made in).
/// </summary>
public sealed unsafe class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    private readonly CUcontext _context;
    private readonly CUdeviceptr _pointer;
    private int _released;

    public long Length { get; }
    public long Bytes => Length * sizeof(T);

    /// <summary>The device address (valid until Dispose).</summary>
    public CUdeviceptr Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _released) != 0, this);
            return _pointer;
        }
    }

    /// <summary>Allocates <paramref name="length"/> elements in <paramref name="context"/> (contents undefined).</summary>
    public DeviceBuffer(CudaContext context, long length)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        context.MakeCurrent();
        _context = context.Handle;
        Length = length;
        _pointer = DeviceMemory.Allocate(checked(length * sizeof(T)));
    }

    /// <summary>Copies <paramref name="source"/> to the start of the buffer (see <see cref="DeviceMemory"/> for when it returns).</summary>
    public void CopyFrom(ReadOnlySpan<T> source, CudaStream stream)
    {
        DeviceMemory.CheckRange(0, source.Length, Length);
        DeviceMemory.CopyToDevice(Pointer, source, stream);
    }

    /// <summary>Copies the first <paramref name="destination"/>.Length elements to the host.</summary>
    public void CopyTo(Span<T> destination, CudaStream stream)
    {
        DeviceMemory.CheckRange(0, destination.Length, Length);
        DeviceMemory.CopyToHost(destination, Pointer, stream);
    }

    /// <summary>Reads the whole buffer back (synchronises <paramref name="stream"/>).</summary>
    public T[] ToArray(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var result = new T[checked((int)Length)];
        CopyTo(result, stream);
        stream.Synchronize();
        return result;
    }

    /// <summary>Zeroes the buffer (stream-ordered).</summary>
    public void Clear(CudaStream stream)
    {
        if (Bytes % 4 != 0) throw new InvalidOperationException($"Clear needs a multiple of 4 bytes, the buffer has {Bytes}");
        DeviceMemory.Fill32(Pointer, 0, Bytes / 4, stream);
    }

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~DeviceBuffer() => Release();

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        try
        {
            CudaContext.BindQuietly(_context);
            CuDriver.cuMemFree(_pointer);
        }
        catch (Exception)
        {
            // Release paths (Dispose and finalizers) never throw.
        }
    }
}

/// <summary>
/// Page-locked host memory (cuMemHostAlloc, portable): the source or destination of truly
/// asynchronous copies. Valid until Dispose; the span must not be used after it.
/// </summary>
public sealed unsafe class PinnedHostBuffer<T> : IDisposable where T : unmanaged
{
    private T* _pointer;

    public long Length { get; }

    internal T* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_pointer == null, this);
            return _pointer;
        }
    }

    /// <summary>Allocates <paramref name="length"/> elements (contents undefined); needs a current context.</summary>
    public PinnedHostBuffer(CudaContext context, long length)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        context.MakeCurrent();
        CuDriver.Check(CuDriver.cuMemHostAlloc(out var p, (nuint)checked(length * sizeof(T)), CuFlags.CU_MEMHOSTALLOC_PORTABLE));
        _pointer = (T*)p;
        Length = length;
    }

    /// <summary>The whole buffer (at most int.MaxValue elements).</summary>
    public Span<T> Span => new(Pointer, checked((int)Length));

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~PinnedHostBuffer() => Release();

    private void Release()
    {
        var p = _pointer;
        _pointer = null;
        if (p == null) return;
        try
        {
            // Page-locked memory belongs to no context in particular (PORTABLE); no binding needed.
            CuDriver.cuMemFreeHost(p);
        }
        catch (Exception)
        {
            // Release paths (Dispose and finalizers) never throw.
        }
    }
}
