using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// A captured and instantiated CUDA graph: the work queued on a stream between
/// <see cref="BeginCapture"/> and <see cref="EndCapture"/> (kernels, copies, memsets, cuBLAS calls)
/// recorded once and replayed by <see cref="Launch"/> with one driver call. Arguments are
/// captured by value, so a replay reads and writes the same device addresses as the capture.
/// </summary>
public sealed class CudaGraph : IDisposable
{
    private readonly CUcontext _context;
    private readonly CUgraph _graph;
    private readonly CUgraphExec _exec;
    private int _released;

    private CudaGraph(CUcontext context, CUgraph graph, CUgraphExec exec)
    {
        _context = context;
        _graph = graph;
        _exec = exec;
    }

    /// <summary>
    /// Starts recording <paramref name="stream"/>. Global mode (the default) makes a capture fail
    /// when any thread calls an unsafe API (a synchronous allocation, a synchronisation) meanwhile.
    /// </summary>
    public static void BeginCapture(CudaStream stream, CuStreamCaptureMode mode = CuStreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL)
    {
        ArgumentNullException.ThrowIfNull(stream);
        CuDriver.Check(CuDriver.cuStreamBeginCapture(stream.Handle, mode));
    }

    /// <summary>Ends the recording of <paramref name="stream"/> and instantiates it.</summary>
    public static CudaGraph EndCapture(CudaContext context, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(stream);
        var r = CuDriver.cuStreamEndCapture(stream.Handle, out var graph);
        if (r != CuResult.CUDA_SUCCESS)
        {
            if (!graph.IsNull) CuDriver.cuGraphDestroy(graph);
            throw CuDriver.Error(r, "cuStreamEndCapture");
        }
        r = CuDriver.cuGraphInstantiateWithFlags(out var exec, graph, 0);
        if (r != CuResult.CUDA_SUCCESS)
        {
            CuDriver.cuGraphDestroy(graph);
            throw CuDriver.Error(r, "cuGraphInstantiateWithFlags");
        }
        return new CudaGraph(context.Handle, graph, exec);
    }

    /// <summary>
    /// Records what <paramref name="record"/> queues on <paramref name="stream"/> and instantiates
    /// it. If <paramref name="record"/> throws, the capture is ended and discarded, and the
    /// exception propagates.
    /// </summary>
    public static CudaGraph Capture(CudaContext context, CudaStream stream, Action record,
        CuStreamCaptureMode mode = CuStreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL)
    {
        ArgumentNullException.ThrowIfNull(record);
        BeginCapture(stream, mode);
        try
        {
            record();
        }
        catch
        {
            if (CuDriver.cuStreamEndCapture(stream.Handle, out var partial) == CuResult.CUDA_SUCCESS && !partial.IsNull)
                CuDriver.cuGraphDestroy(partial);
            throw;
        }
        return EndCapture(context, stream);
    }

    /// <summary>Replays the graph on <paramref name="stream"/>.</summary>
    public void Launch(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _released) != 0, this);
        CuDriver.Check(CuDriver.cuGraphLaunch(_exec, stream.Handle));
    }

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~CudaGraph() => Release();

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        try
        {
            CudaContext.BindQuietly(_context);
            CuDriver.cuGraphExecDestroy(_exec);
            CuDriver.cuGraphDestroy(_graph);
        }
        catch (Exception)
        {
            // Release paths (Dispose and finalizers) never throw.
        }
    }
}
