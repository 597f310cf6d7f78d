using System.Runtime.InteropServices;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// A cuDNN handle (cudnnCreate/cudnnDestroy). cuDNN binds the handle to the device current at
/// creation, so create and dispose it with the engine's context current. Every call made through
/// it runs on the stream set by <see cref="SetStream"/> (the legacy default stream until then).
/// Not thread-safe: one handle per stream, as cuDNN asks.
/// </summary>
public sealed class CudnnHandle : IDisposable
{
    private readonly Owned _owned;

    private CudnnHandle(Owned owned) => _owned = owned;

    /// <summary>
    /// cudnnCreate in the context current on this thread. Throws <see cref="CudaException"/> when cuDNN
    /// cannot initialise (no device, driver too old).
    /// </summary>
    public static CudnnHandle Create() => CreateIn(default);

    /// <summary>
    /// cudnnCreate with <paramref name="context"/> made current first; the handle remembers it and
    /// makes it current again before cudnnDestroy, so that Dispose on another thread (or the
    /// finaliser) destroys it in the context it belongs to.
    /// </summary>
    public static CudnnHandle Create(CudaContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.MakeCurrent();
        return CreateIn(context.Handle);
    }

    private static CudnnHandle CreateIn(CUcontext context)
    {
        CudnnErrors.Check(CuDnn.cudnnCreate(out var handle));
        var owned = new Owned(context);
        owned.Set(handle.Handle);
        return new CudnnHandle(owned);
    }

    /// <summary>cudnnGetVersion of the loaded library: major·10000 + minor·100 + patch (90600 for 9.6.0).</summary>
    public static long LibraryVersion => (long)CuDnn.cudnnGetVersion();

    /// <summary>Runs subsequent calls on <paramref name="stream"/> (a CUstream; 0 is the legacy default stream).</summary>
    public void SetStream(nint stream) => CudnnErrors.Check(CuDnn.cudnnSetStream(Raw, stream));

    internal CudnnHandleT Raw
    {
        get
        {
            ObjectDisposedException.ThrowIf(_owned.IsClosed, this);
            return new CudnnHandleT(_owned.DangerousGetHandle());
        }
    }

    public void Dispose() => _owned.Dispose();

    /// <summary>
    /// Releases with cudnnDestroy, in the creating context when one was given; a failure is
    /// swallowed (a finaliser must not throw).
    /// </summary>
    private sealed class Owned(CUcontext context) : SafeHandle(0, ownsHandle: true)
    {
        public void Set(nint h) => SetHandle(h);
        public override bool IsInvalid => handle == 0;
        protected override bool ReleaseHandle()
        {
            if (!context.IsNull) CudaContext.BindQuietly(context);
            return CuDnn.cudnnDestroy(new CudnnHandleT(handle)) == CudnnStatus.CUDNN_STATUS_SUCCESS;
        }
    }
}

/// <summary>A cudnnTensorDescriptor_t, destroyed on dispose (or by the finaliser, never throwing).</summary>
internal sealed class CudnnTensorDescriptor() : SafeHandle(0, ownsHandle: true)
{
    public override bool IsInvalid => handle == 0;

    public CudnnTensorDescriptorT Value
    {
        get { ObjectDisposedException.ThrowIf(IsClosed, this); return new(handle); }
    }

    /// <summary>A packed NCHW float32 tensor descriptor.</summary>
    public static CudnnTensorDescriptor Nchw(int n, int c, int h, int w)
    {
        CudnnErrors.Check(CuDnn.cudnnCreateTensorDescriptor(out var raw));
        var d = new CudnnTensorDescriptor();
        d.SetHandle(raw.Handle);
        try
        {
            CudnnErrors.Check(CuDnn.cudnnSetTensor4dDescriptor(d.Value,
                CudnnTensorFormat.CUDNN_TENSOR_NCHW, CudnnDataType.CUDNN_DATA_FLOAT, n, c, h, w));
        }
        catch { d.Dispose(); throw; }
        return d;
    }

    protected override bool ReleaseHandle() =>
        CuDnn.cudnnDestroyTensorDescriptor(new(handle)) == CudnnStatus.CUDNN_STATUS_SUCCESS;
}

/// <summary>A cudnnFilterDescriptor_t (float32, KCRS layout).</summary>
internal sealed class CudnnFilterDescriptor() : SafeHandle(0, ownsHandle: true)
{
    public override bool IsInvalid => handle == 0;

    public CudnnFilterDescriptorT Value
    {
        get { ObjectDisposedException.ThrowIf(IsClosed, this); return new(handle); }
    }

    /// <summary>k output channels, c input channels per group, r×s kernel.</summary>
    public static CudnnFilterDescriptor Kcrs(int k, int c, int r, int s)
    {
        CudnnErrors.Check(CuDnn.cudnnCreateFilterDescriptor(out var raw));
        var d = new CudnnFilterDescriptor();
        d.SetHandle(raw.Handle);
        try
        {
            CudnnErrors.Check(CuDnn.cudnnSetFilter4dDescriptor(d.Value,
                CudnnDataType.CUDNN_DATA_FLOAT, CudnnTensorFormat.CUDNN_TENSOR_NCHW, k, c, r, s));
        }
        catch { d.Dispose(); throw; }
        return d;
    }

    protected override bool ReleaseHandle() =>
        CuDnn.cudnnDestroyFilterDescriptor(new(handle)) == CudnnStatus.CUDNN_STATUS_SUCCESS;
}

/// <summary>A cudnnConvolutionDescriptor_t: 2-D cross-correlation (the deep-learning convolution), float32 accumulation.</summary>
internal sealed class CudnnConvolutionDescriptor() : SafeHandle(0, ownsHandle: true)
{
    public override bool IsInvalid => handle == 0;

    public CudnnConvolutionDescriptorT Value
    {
        get { ObjectDisposedException.ThrowIf(IsClosed, this); return new(handle); }
    }

    public static CudnnConvolutionDescriptor Create(ConvShape s, CudnnMathType math)
    {
        CudnnErrors.Check(CuDnn.cudnnCreateConvolutionDescriptor(out var raw));
        var d = new CudnnConvolutionDescriptor();
        d.SetHandle(raw.Handle);
        try
        {
            CudnnErrors.Check(CuDnn.cudnnSetConvolution2dDescriptor(d.Value, s.PadH, s.PadW, s.StrideH, s.StrideW,
                s.DilationH, s.DilationW, CudnnConvolutionMode.CUDNN_CROSS_CORRELATION, CudnnDataType.CUDNN_DATA_FLOAT));
            if (s.Groups != 1) CudnnErrors.Check(CuDnn.cudnnSetConvolutionGroupCount(d.Value, s.Groups));
            CudnnErrors.Check(CuDnn.cudnnSetConvolutionMathType(d.Value, math));
        }
        catch { d.Dispose(); throw; }
        return d;
    }

    protected override bool ReleaseHandle() =>
        CuDnn.cudnnDestroyConvolutionDescriptor(new(handle)) == CudnnStatus.CUDNN_STATUS_SUCCESS;
}
