using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>A CUDA stream (non-blocking by default: it does not synchronise with the legacy stream 0).</summary>
public sealed class CudaStream : IDisposable
{
    private readonly CUcontext _context;
    private int _released;
    private readonly CUstream _handle;

    internal CUstream Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _released) != 0, this);
            return _handle;
        }
    }

    private CudaStream(CUcontext context, CUstream handle)
    {
        _context = context;
        _handle = handle;
    }

    /// <summary>Creates a stream in <paramref name="context"/> (made current on this thread).</summary>
    public static CudaStream Create(CudaContext context, bool nonBlocking = true)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.MakeCurrent();
        CuDriver.Check(CuDriver.cuStreamCreate(out var stream, nonBlocking ? CuFlags.CU_STREAM_NON_BLOCKING : CuFlags.CU_STREAM_DEFAULT));
        return new CudaStream(context.Handle, stream);
    }

    /// <summary>Blocks until all work queued on the stream is done; surfaces asynchronous errors.</summary>
    public void Synchronize() => CuDriver.Check(CuDriver.cuStreamSynchronize(Handle));

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~CudaStream() => Release();

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        try
        {
            CudaContext.BindQuietly(_context);
            CuDriver.cuStreamDestroy(_handle);
        }
        catch (Exception)
        {
            // Release paths (Dispose and finalizers) never throw.
        }
    }
}

/// <summary>A CUDA event, with timing by default (for <see cref="ElapsedMilliseconds"/>).</summary>
public sealed class CudaEvent : IDisposable
{
    private readonly CUcontext _context;
    private int _released;
    private readonly CUevent _handle;

    internal CUevent Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _released) != 0, this);
            return _handle;
        }
    }

    private CudaEvent(CUcontext context, CUevent handle)
    {
        _context = context;
        _handle = handle;
    }

    /// <summary>Creates an event in <paramref name="context"/>; <paramref name="timing"/> false makes it a cheaper sync-only event.</summary>
    public static CudaEvent Create(CudaContext context, bool timing = true)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.MakeCurrent();
        CuDriver.Check(CuDriver.cuEventCreate(out var ev, timing ? CuFlags.CU_EVENT_DEFAULT : CuFlags.CU_EVENT_DISABLE_TIMING));
        return new CudaEvent(context.Handle, ev);
    }

    /// <summary>Records the event at the current end of <paramref name="stream"/>.</summary>
    public void Record(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        CuDriver.Check(CuDriver.cuEventRecord(Handle, stream.Handle));
    }

    /// <summary>Blocks until the recorded work is done.</summary>
    public void Synchronize() => CuDriver.Check(CuDriver.cuEventSynchronize(Handle));

    /// <summary>Milliseconds between two recorded, completed events (resolution about 0.5 µs).</summary>
    public static float ElapsedMilliseconds(CudaEvent start, CudaEvent end)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(end);
        CuDriver.Check(CuDriver.cuEventElapsedTime(out var ms, start.Handle, end.Handle));
        return ms;
    }

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~CudaEvent() => Release();

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        try
        {
            CudaContext.BindQuietly(_context);
            CuDriver.cuEventDestroy(_handle);
        }
        catch (Exception)
        {
            // Release paths (Dispose and finalizers) never throw.
        }
    }
}
