using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>Device memory of the CUDA backend: a block of the caching allocator, returned to it on Dispose.</summary>
public sealed class CudaBuffer : DeviceBuffer
{
    private readonly CudaBackend _backend;

    internal CudaBuffer(CudaBackend owner, ulong pointer, long floats) : base(owner, floats)
    {
        _backend = owner;
        Pointer = pointer;
    }

    /// <summary>The device address of element 0; 0 once disposed.</summary>
    public ulong Pointer { get; private set; }

    public override void Dispose()
    {
        if (Pointer != 0)
        {
            _backend.Release(Pointer);
            Pointer = 0;
        }
        base.Dispose();
    }
}

/// <summary>
/// The CUDA backend: every <see cref="IBackend"/> op on one NVIDIA GPU. Convolutions and batch norm
/// run through cuDNN (<see cref="CudnnConvolutions"/>, <see cref="CudnnBatchNorm"/>), GEMMs through
/// cuBLAS (row-major, <see cref="CublasHandle.GemmRowMajor"/>), everything else through the
/// engine's PTX kernels (src/Kernels, launched with <see cref="KernelCatalog"/>'s geometry and
/// checked by <see cref="KernelLaunch"/>). All work is queued on ONE stream, in call order, so a
/// block freed to the <see cref="CachingAllocator"/> can be handed out again at once: any later
/// use is ordered after every earlier one. Ops return without waiting; <see cref="Download"/> and
/// <see cref="Synchronize"/> wait. Shape checks are the CPU backend's (<see cref="OpChecks"/>).
/// TF32 tensor-core math (cuBLAS and cuDNN) is on unless turned off; with it off, GEMMs and
/// convolutions are strict float32.
/// </summary>
public sealed partial class CudaBackend : IBackend
{
    private readonly CudaContext _context;
    private readonly CudaStream _stream;
    private readonly DriverAllocator _driverMemory;
    private readonly CachingAllocator _memory;
    private readonly CublasHandle _blas;
    private readonly CudnnHandle _dnn;
    private readonly GrowingDeviceWorkspace _convWorkspace, _bnScratch;
    private readonly CudnnConvolutions _conv;
    private readonly CudnnBatchNorm _bn;
    private readonly Dictionary<string, CudaModule> _modules = [];
    private readonly Dictionary<string, CudaFunction> _functions = [];
    private readonly KernelArgs _args = new();
    private bool _disposed;

    /// <summary>Opens device <paramref name="device"/>: driver, primary context, a stream, the kernels, cuBLAS and cuDNN.</summary>
    /// <exception cref="CudaLibraryNotFoundException">A library is missing (the message lists every path tried).</exception>
    /// <exception cref="CudaException">The driver, a library or a module failed.</exception>
    public CudaBackend(bool tf32 = true, int device = 0)
    {
        var dev = CudaDevice.Get(device);
        if (dev.ComputeCapability.CompareTo(PtxModules.Target) < 0)
            throw new NotSupportedException(
                $"{dev.Name} has compute capability {dev.ComputeCapability}; the engine's CUDA kernels are built for {PtxModules.Target} " +
                $"(sm_{PtxModules.Target.Major}{PtxModules.Target.Minor}: A100, H100 and later) and cannot run on it");
        _context = CudaContext.RetainPrimary(dev);
        var owned = new List<IDisposable> { _context };
        try
        {
            _stream = CudaStream.Create(_context); owned.Add(_stream);
            _driverMemory = new DriverAllocator(_context);
            _memory = new CachingAllocator(_driverMemory, caching: Environment.GetEnvironmentVariable(NoCachingVariable) != "1");
            foreach (string name in KernelCatalog.All.Select(k => k.Module).Distinct())
            {
                var module = CudaModule.LoadEmbedded(_context, name);
                owned.Add(module);
                _modules.Add(name, module);
            }
            foreach (var k in KernelCatalog.All) _functions.Add(k.Entry, _modules[k.Module].GetFunction(k.Entry));
            _blas = CublasHandle.Create(_context, _stream); owned.Add(_blas);
            _blas.Tf32 = tf32;
            NativeLibraries.Require(NativeLibraries.Cudnn);
            _dnn = CudnnHandle.Create(_context); owned.Add(_dnn);
            _dnn.SetStream(_stream.Handle.Handle);
            _convWorkspace = new GrowingDeviceWorkspace(AllocateWorkspace, FreeWorkspace); owned.Add(_convWorkspace);
            _bnScratch = new GrowingDeviceWorkspace(AllocateWorkspace, FreeWorkspace); owned.Add(_bnScratch);
            _conv = new CudnnConvolutions(_dnn, _convWorkspace) { AllowTf32 = tf32 }; owned.Add(_conv);
            _bn = new CudnnBatchNorm(_dnn, _bnScratch); owned.Add(_bn);
            Tf32 = tf32;
            Device = dev;
        }
        catch
        {
            for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
            throw;
        }
    }

    /// <summary>RLMIXUP_CUDA_NO_CACHING=1: every tensor its own exact-size device allocation (see <see cref="CachingAllocator"/>).</summary>
    public const string NoCachingVariable = "RLMIXUP_CUDA_NO_CACHING";

    public string Name => $"cuda:{Device.Ordinal} ({Device.Name})";
    public CudaDevice Device { get; }
    public bool Tf32 { get; }
    /// <summary>The cuDNN convolution plans made so far: per shape and direction, the algorithm, math type and workspace.</summary>
    public IReadOnlyList<ConvPlanInfo> ConvolutionPlans => _conv.Plans;
    /// <summary>The caching allocator's counters (allocations, cache hits, bytes held).</summary>
    public AllocatorStats MemoryStats => _memory.Stats;

    /// <summary>
    /// What `info` prints about the backend once it is open (the libraries and the device have
    /// their lines from <see cref="CudaProbe"/>): the software device's warning when that is what
    /// runs, the device memory free, the math mode. Every driver query is made here, on the calling
    /// thread with the context current, not later while the lines are read.
    /// </summary>
    public IReadOnlyList<string> Describe()
    {
        Enter();
        var (free, total) = _context.MemoryInfo();
        string? software = NativeLibraries.SoftwareDevice;
        return
        [
            .. software == null ? Array.Empty<string>() : [$"SOFTWARE DEVICE (CPU simulation, not a GPU): {software}; its timings and numerics say nothing about a GPU"],
            $"memory       {free / (1L << 20)} MiB free of {total / (1L << 20)} MiB",
            $"math         TF32 tensor cores {(Tf32 ? "allowed (--no-tf32 turns them off)" : "off: strict float32")}",
        ];
    }

    /// <summary>
    /// Makes the backend's context current on the calling thread when it is not (the trainer may run
    /// on any thread). The driver is asked which context is current (cuCtxGetCurrent reads a
    /// thread-local): a cached answer would go stale when anything else on the thread (another
    /// backend, a release path binding its own context) switches contexts.
    /// </summary>
    private void Enter()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        EnsureCurrent(_context);
    }

    private static void EnsureCurrent(CudaContext context)
    {
        CuDriver.Check(CuDriver.cuCtxGetCurrent(out var current));
        if (current != context.Handle) context.MakeCurrent();
    }

    // ---- memory

    /// <summary>
    /// cuMemAlloc/cuMemFree for the caching allocator, each with the backend's context current (the
    /// allocator may be entered from any thread). In teardown (<see cref="Teardown"/>) a free binds
    /// the context quietly and ignores the status: a faulted context must not stop the rest of Dispose.
    /// </summary>
    private sealed class DriverAllocator(CudaContext context) : IDeviceAllocator
    {
        public bool Teardown { get; set; }

        public ulong Allocate(long bytes)
        {
            EnsureCurrent(context);
            return DeviceMemory.Allocate(bytes).Value;
        }

        public void Free(ulong ptr)
        {
            if (Teardown)
            {
                CudaContext.BindQuietly(context.Handle);
                try { CuDriver.cuMemFree(new CUdeviceptr(ptr)); } catch (Exception) { } // status ignored, never throws
                return;
            }
            EnsureCurrent(context);
            DeviceMemory.Free(new CUdeviceptr(ptr));
        }
    }

    private nint AllocateWorkspace(ulong bytes) => (nint)_memory.Allocate(checked((long)bytes));
    private void FreeWorkspace(nint ptr) => _memory.Free((ulong)ptr);

    /// <summary>
    /// A tensor's or a dataset's block back to the cache, from any thread. No device call (the
    /// caching allocator only moves it to a free list; cuMemFree happens under <see cref="Enter"/> in
    /// an allocation that trims, or in <see cref="Dispose"/>), so no context needs to be current.
    /// </summary>
    internal void Release(ulong pointer)
    {
        if (_disposed) return; // the context and every block went with the backend
        _memory.Free(pointer);
    }

    public Tensor Allocate(Shape shape)
    {
        Enter();
        long floats = shape.Size;
        ulong p = _memory.Allocate(Math.Max(1, floats) * sizeof(float));
        DeviceMemory.Fill32(new CUdeviceptr(p), 0u, floats, _stream);
        return new Tensor(new CudaBuffer(this, p, floats), 0, shape, ownsBuffer: true);
    }

    /// <summary>The device address of a tensor's element 0; the tensor must belong to this backend.</summary>
    internal CUdeviceptr Ptr(Tensor t)
    {
        if (t.Buffer is not CudaBuffer b || !ReferenceEquals(b.Owner, this))
            throw new ArgumentException($"tensor of shape {t.Shape} belongs to backend '{t.Backend.Name}', not to {Name}");
        if (b.Pointer == 0) throw new ObjectDisposedException($"tensor of shape {t.Shape}", "its device memory was released");
        return new CUdeviceptr(TensorAddress(b.Pointer, t.Offset));
    }

    /// <summary>The address of float <paramref name="offset"/> of a block at <paramref name="pointer"/>.</summary>
    public static ulong TensorAddress(ulong pointer, int offset) =>
        offset >= 0 ? checked(pointer + (ulong)offset * sizeof(float)) : throw new ArgumentOutOfRangeException(nameof(offset));

    private nint Raw(Tensor t) => (nint)Ptr(t).Value;
    private nint RawOrZero(Tensor? t) => t == null ? 0 : Raw(t);

    public void Upload(Tensor dst, ReadOnlySpan<float> src)
    {
        Enter();
        if (src.Length != dst.Length) throw new ShapeMismatchException($"upload of {src.Length} floats into a tensor of shape {dst.Shape}");
        DeviceMemory.CopyToDevice(Ptr(dst), src, _stream);
    }

    /// <summary>
    /// Device → host through a page-locked staging buffer: the copy is truly asynchronous (and runs
    /// at full PCIe speed, where pageable memory goes through the driver's own bounce buffer), so the
    /// stream is synchronised before the staged floats are read.
    /// </summary>
    public void Download(Tensor src, Span<float> dst)
    {
        Enter();
        if (dst.Length != src.Length) throw new ShapeMismatchException($"download of a tensor of shape {src.Shape} into {dst.Length} floats");
        if (dst.IsEmpty) return;
        if (_staging == null || _staging.Length < dst.Length)
        {
            _staging?.Dispose();
            _staging = new PinnedHostBuffer<float>(_context, Math.Max(dst.Length, 1L << 16));
        }
        DeviceMemory.CopyToHostAsync(_staging, 0, dst.Length, Ptr(src), _stream);
        _stream.Synchronize();
        _staging.Span[..dst.Length].CopyTo(dst);
    }

    private PinnedHostBuffer<float>? _staging;

    public void Synchronize()
    {
        Enter();
        _stream.Synchronize();
    }

    public void Fill(Tensor t, float value)
    {
        Enter();
        DeviceMemory.Fill(Ptr(t), value, t.Length, _stream);
    }

    public void Copy(Tensor dst, Tensor src)
    {
        Enter();
        OpChecks.Copy(dst, src);
        DeviceMemory.CopyDeviceToDevice(Ptr(dst), Ptr(src), (long)src.Length * sizeof(float), _stream);
    }

    /// <summary>
    /// Host data for one launch, in device memory from the cache: copied on the stream (the span is
    /// free again when this returns) and released after the launch is queued, which the single
    /// stream makes safe.
    /// </summary>
    private ulong Stage<T>(ReadOnlySpan<T> data) where T : unmanaged
    {
        long bytes = Math.Max(1, (long)data.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        ulong p = _memory.Allocate(bytes);
        DeviceMemory.CopyToDevice(new CUdeviceptr(p), data, _stream);
        return p;
    }

    // ---- kernels

    private void Launch(KernelInfo kernel, LaunchGeometry g, params ReadOnlySpan<KernelArg> args)
    {
        if (g.GridX < 1) return; // nothing to do (an empty tensor)
        var packed = KernelLaunch.Pack(kernel, args, _args);
        _functions[kernel.Entry].Launch(g.GridX, g.BlockX, g.DynamicSharedBytes, _stream, packed);
    }

    private KernelArg F(Tensor t) => KernelArg.F32Ptr(Ptr(t));

    // ---- elementwise

    public void Add(Tensor y, Tensor a, Tensor b)
    {
        Enter();
        OpChecks.Add(y, a, b);
        Launch(KernelCatalog.Entry.Add, KernelCatalog.Add(y.Length), F(y), F(a), F(b), (long)y.Length);
    }

    public void Axpy(Tensor y, float alpha, Tensor x)
    {
        Enter();
        OpChecks.Axpy(y, x);
        Launch(KernelCatalog.Entry.Axpy, KernelCatalog.Axpy(y.Length), F(y), alpha, F(x), (long)y.Length);
    }

    public void Scale(Tensor y, float alpha)
    {
        Enter();
        Launch(KernelCatalog.Entry.Scale, KernelCatalog.Scale(y.Length), F(y), alpha, (long)y.Length);
    }

    public void ReluForward(Tensor y, Tensor x)
    {
        Enter();
        OpChecks.Unary("relu", y, x);
        Launch(KernelCatalog.Entry.ReluForward, KernelCatalog.ReluForward(y.Length), F(y), F(x), (long)y.Length);
    }

    public void ReluBackward(Tensor dx, Tensor y, Tensor dy)
    {
        Enter();
        OpChecks.UnaryBackward("relu backward", dx, y, dy);
        Launch(KernelCatalog.Entry.ReluBackward, KernelCatalog.ReluBackward(y.Length), F(dx), F(y), F(dy), (long)y.Length);
    }

    public void TanhForward(Tensor y, Tensor x)
    {
        Enter();
        OpChecks.Unary("tanh", y, x);
        Launch(KernelCatalog.Entry.TanhForward, KernelCatalog.TanhForward(y.Length), F(y), F(x), (long)y.Length);
    }

    public void TanhBackward(Tensor dx, Tensor y, Tensor dy)
    {
        Enter();
        OpChecks.UnaryBackward("tanh backward", dx, y, dy);
        Launch(KernelCatalog.Entry.TanhBackward, KernelCatalog.TanhBackward(y.Length), F(dx), F(y), F(dy), (long)y.Length);
    }

    // ---- dense

    public void Gemm(Tensor c, Tensor a, bool transA, Tensor b, bool transB, float alpha = 1f, float beta = 0f)
    {
        Enter();
        var (m, n, k) = OpChecks.Gemm(c, a, transA, b, transB);
        _blas.GemmRowMajor(transA, transB, m, n, k, alpha, Ptr(a), a.Shape[1], Ptr(b), b.Shape[1], beta, Ptr(c), n);
    }

    public void LinearForward(Tensor y, Tensor x, Tensor w, Tensor? b)
    {
        Enter();
        var (n, fout) = OpChecks.Linear(y, x, w, b);
        Gemm(y, x, false, w, true);
        if (b != null) Launch(KernelCatalog.Entry.AddRowBias, KernelCatalog.AddRowBias(n, fout), F(y), F(b), n, fout);
    }

    public void LinearBackward(Tensor? dx, Tensor? dw, Tensor? db, Tensor dy, Tensor x, Tensor w)
    {
        Enter();
        var (n, fout) = OpChecks.LinearBackward(dx, dw, db, dy, x, w);
        if (dx != null) Gemm(dx, dy, false, w, false);
        if (dw != null) Gemm(dw, dy, true, x, false, 1f, 1f);
        if (db != null) Launch(KernelCatalog.Entry.RowBiasBackward, KernelCatalog.RowBiasBackward(n, fout), F(db), F(dy), n, fout);
    }

    // ---- per-channel bias, pooling

    public void AddChannelBias(Tensor y, Tensor bias)
    {
        Enter();
        OpChecks.ChannelBias(y, bias);
        var s = y.Shape;
        Launch(KernelCatalog.Entry.AddChannelBias, KernelCatalog.AddChannelBias(s.N, s.C, s.H * s.W), F(y), F(bias), s.N, s.C, s.H * s.W);
    }

    public void ChannelBiasBackward(Tensor dbias, Tensor dy)
    {
        Enter();
        OpChecks.ChannelBiasBackward(dbias, dy);
        var s = dy.Shape;
        Launch(KernelCatalog.Entry.ChannelBiasBackward, KernelCatalog.ChannelBiasBackward(s.N, s.C, s.H * s.W), F(dbias), F(dy), s.N, s.C, s.H * s.W);
    }

    public void GlobalAvgPoolForward(Tensor y, Tensor x)
    {
        Enter();
        OpChecks.GlobalAvgPool(y, x);
        var s = x.Shape;
        Launch(KernelCatalog.Entry.GlobalAvgPoolForward, KernelCatalog.GlobalAvgPoolForward(s.N * s.C, s.H * s.W), F(y), F(x), s.N * s.C, s.H * s.W);
    }

    public void GlobalAvgPoolBackward(Tensor dx, Tensor dy)
    {
        Enter();
        OpChecks.GlobalAvgPoolBackward(dx, dy);
        var s = dx.Shape;
        Launch(KernelCatalog.Entry.GlobalAvgPoolBackward, KernelCatalog.GlobalAvgPoolBackward(s.N * s.C, s.H * s.W), F(dx), F(dy), s.N * s.C, s.H * s.W);
    }

    // ---- loss

    public void LogSoftmaxForward(Tensor logp, Tensor z)
    {
        Enter();
        var (rows, k) = OpChecks.LogSoftmax(logp, z);
        Launch(KernelCatalog.Entry.LogSoftmaxForward, KernelCatalog.LogSoftmaxForward(rows, k), F(logp), F(z), rows, k);
    }

    public void LogSoftmaxBackward(Tensor dz, Tensor logp, Tensor dlogp)
    {
        Enter();
        var (rows, k) = OpChecks.LogSoftmaxBackward(dz, logp, dlogp);
        Launch(KernelCatalog.Entry.LogSoftmaxBackward, KernelCatalog.LogSoftmaxBackward(rows, k), F(dz), F(logp), F(dlogp), rows, k);
    }

    public void SoftCrossEntropyForward(Tensor losses, Tensor logp, Tensor targets)
    {
        Enter();
        var (rows, k) = OpChecks.SoftCrossEntropy(losses, logp, targets);
        Launch(KernelCatalog.Entry.SoftCrossEntropyForward, KernelCatalog.SoftCrossEntropyForward(rows, k), F(losses), F(logp), F(targets), rows, k);
    }

    public void SoftCrossEntropyBackward(Tensor dz, Tensor logp, Tensor targets, float scale)
    {
        Enter();
        var (rows, k) = OpChecks.SoftCrossEntropyBackward(dz, logp, targets);
        Launch(KernelCatalog.Entry.SoftCrossEntropyBackward, KernelCatalog.SoftCrossEntropyBackward(rows, k),
            F(dz), F(logp), F(targets), rows, k, scale);
    }

    // ---- optimisers: one kernel over the whole arena

    public void SgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lr, float momentum, float weightDecay, bool nesterov)
    {
        Enter();
        OpChecks.Sgd(param, grad, momentumBuffer);
        Launch(KernelCatalog.Entry.SgdStep, KernelCatalog.SgdStep(param.Length), F(param), F(grad), F(momentumBuffer), (long)param.Length,
            lr, momentum, weightDecay, nesterov ? 1 : 0);
    }

    public void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, int step, float lr, float beta1, float beta2, float eps, float weightDecay)
    {
        Enter();
        OpChecks.Adam(param, grad, m, v, step);
        var (stepSize, bc2Sqrt) = KernelCatalog.AdamScalars(step, lr, beta1, beta2);
        Launch(KernelCatalog.Entry.AdamStep, KernelCatalog.AdamStep(param.Length, step: step), F(param), F(grad), F(m), F(v), (long)param.Length,
            stepSize, bc2Sqrt, beta1, beta2, eps, weightDecay);
    }

    /// <summary>
    /// Waits for the stream, then releases everything with the context current on the calling
    /// thread. Never throws for a faulted context (after a failed kernel every call returns the
    /// fault): each release binds the context quietly and ignores its status, as the release paths
    /// of the binding layer do, so that the modules, the stream and the context are still released.
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        try { _context.MakeCurrent(); _stream.Synchronize(); }
        catch (CudaException) { } // a faulted context: release what can be released
        _disposed = true;
        _bn.Dispose();
        _conv.Dispose();
        _convWorkspace.Dispose();   // back to the cache: no device call
        _bnScratch.Dispose();
        CudaContext.BindQuietly(_context.Handle);
        _dnn.Dispose();             // cudnnDestroy in the handle's context (CudnnHandle.Create(context))
        _blas.Dispose();            // binds its context itself
        _driverMemory.Teardown = true;
        CudaContext.BindQuietly(_context.Handle);
        _memory.ReleaseAll();
        foreach (var m in _modules.Values) m.Dispose();
        _staging?.Dispose();
        _stream.Dispose();
        _context.Dispose();
    }
}
