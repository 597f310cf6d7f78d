using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// A device's primary context (the one the runtime API and cuDNN/cuBLAS share), retained for the
/// life of this object and made current on the creating thread. Every other wrapper remembers the
/// context it was made in and makes it current again before releasing, so that disposal (or a
/// finalizer) on another thread releases in the right context.
/// </summary>
public sealed class CudaContext : IDisposable
{
    private readonly CUdevice _device;
    private int _released;

    internal CUcontext Handle { get; }
    public CudaDevice Device { get; }

    private CudaContext(CudaDevice device, CUcontext handle)
    {
        Device = device;
        _device = device.Handle;
        Handle = handle;
    }

    /// <summary>Retains <paramref name="device"/>'s primary context and makes it current on this thread.</summary>
    public static CudaContext RetainPrimary(CudaDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        CuDriver.Check(CuDriver.cuDevicePrimaryCtxRetain(out var ctx, device.Handle));
        var context = new CudaContext(device, ctx);
        try
        {
            context.MakeCurrent();
        }
        catch
        {
            context.Dispose();
            throw;
        }
        return context;
    }

    /// <summary>Makes this context current on the calling thread (needed once per thread that calls CUDA).</summary>
    public void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _released) != 0, this);
        CuDriver.Check(CuDriver.cuCtxSetCurrent(Handle));
    }

    /// <summary>Waits for all work of the context (cuCtxSynchronize); surfaces asynchronous kernel errors.</summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _released) != 0, this);
        CuDriver.Check(CuDriver.cuCtxSynchronize());
    }

    /// <summary>Free and total device memory in bytes (cuMemGetInfo).</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        CuDriver.Check(CuDriver.cuMemGetInfo(out var free, out var total));
        return (checked((long)free), checked((long)total));
    }

    /// <summary>Makes <paramref name="ctx"/> current on this thread if it is not; never throws (release paths).</summary>
    internal static void BindQuietly(CUcontext ctx)
    {
        try
        {
            if (CuDriver.cuCtxGetCurrent(out var current) == CuResult.CUDA_SUCCESS && current != ctx)
                CuDriver.cuCtxSetCurrent(ctx);
        }
        catch (Exception)
        {
            // Release paths (Dispose and finalizers) never throw.
        }
    }

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~CudaContext() => Release();

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        try
        {
            // Status ignored: at process teardown the driver may already be deinitialised.
            CuDriver.cuDevicePrimaryCtxRelease(_device);
        }
        catch (Exception)
        {
            // Release paths (Dispose and finalizers) never throw.
        }
    }
}
