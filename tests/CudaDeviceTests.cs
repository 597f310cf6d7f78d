using NUnit.Framework;
using RlMixup.Core.Cuda;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Tests;

/// <summary>
/// The managed CUDA wrappers on a real GPU: memory round trips, a hand-written PTX kernel,
/// graph replay, event timing and cuBLAS against a CPU product. Every test is ignored, with the
/// probe's one-line reason, on a machine without a usable CUDA driver and device.
/// </summary>
[NonParallelizable]
public class CudaDeviceTests
{
    // y[i] += a for i < n: a hand-written module for the JIT's error path and for a missing kernel
    // (the software device loads any PTX but runs only the kernels of src/Kernels).
    private const string AddScalarPtx = """
        .version 7.0
        .target sm_52
        .address_size 64

        .visible .entry add_scalar(
            .param .u64 p_x,
            .param .f32 p_a,
            .param .u32 p_n
        )
        {
            .reg .pred %p<2>;
            .reg .b32 %r<6>;
            .reg .f32 %f<4>;
            .reg .b64 %rd<5>;
            ld.param.u64 %rd1, [p_x];
            ld.param.f32 %f1, [p_a];
            ld.param.u32 %r1, [p_n];
            mov.u32 %r2, %ctaid.x;
            mov.u32 %r3, %ntid.x;
            mov.u32 %r4, %tid.x;
            mad.lo.s32 %r5, %r2, %r3, %r4;
            setp.ge.u32 %p1, %r5, %r1;
            @%p1 bra DONE;
            cvta.to.global.u64 %rd2, %rd1;
            mul.wide.u32 %rd3, %r5, 4;
            add.s64 %rd4, %rd2, %rd3;
            ld.global.f32 %f2, [%rd4];
            add.f32 %f3, %f2, %f1;
            st.global.f32 [%rd4], %f3;
        DONE:
            ret;
        }
        """;

    private CudaContext _context = null!;
    private CudaStream _stream = null!;

    [OneTimeSetUp]
    public void Probe()
    {
        if (!CudaDevice.TryInit(out var reason)) Assert.Ignore($"no usable CUDA: {reason}");
        _context = CudaContext.RetainPrimary(CudaDevice.Get(0));
        _stream = CudaStream.Create(_context);
    }

    [SetUp]
    public void BindContext() => _context.MakeCurrent();

    [OneTimeTearDown]
    public void Release()
    {
        _stream?.Dispose();
        _context?.Dispose();
    }

    [Test]
    public void DeviceReportsPlausibleProperties()
    {
        var info = _context.Device.Info();
        TestContext.Out.WriteLine(info.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(info.Name, Is.Not.Empty);
            Assert.That(info.SmCount, Is.GreaterThan(0));
            Assert.That(info.TotalMemoryBytes, Is.GreaterThan(1L << 30));
            Assert.That(info.ComputeCapability.Major, Is.GreaterThanOrEqualTo(5));
            Assert.That(info.DriverVersion, Is.GreaterThanOrEqualTo(11000));
            Assert.That(info.MaxSharedMemoryPerBlockOptin, Is.GreaterThanOrEqualTo(48 * 1024));
            Assert.That(NativeLibraries.LoadedPath(NativeLibraries.Driver), Does.Contain("libcuda"));
            var (free, total) = _context.MemoryInfo();
            Assert.That(free, Is.InRange(1L, total));
        });
    }

    [Test]
    public void MemoryRoundTripsAndFills()
    {
        var data = Enumerable.Range(0, 1000).Select(i => i * 0.5f).ToArray();
        using var buffer = new DeviceBuffer<float>(_context, data.Length);
        buffer.CopyFrom(data, _stream);
        Assert.That(buffer.ToArray(_stream), Is.EqualTo(data));

        using var copy = new DeviceBuffer<float>(_context, data.Length);
        DeviceMemory.CopyDeviceToDevice(copy.Pointer, buffer.Pointer, buffer.Bytes, _stream);
        Assert.That(copy.ToArray(_stream), Is.EqualTo(data));

        DeviceMemory.Fill(buffer.Pointer.Offset(4 * 10), -3f, 5, _stream);
        var filled = buffer.ToArray(_stream);
        Assert.That(filled[9..16], Is.EqualTo(new[] { 4.5f, -3f, -3f, -3f, -3f, -3f, 7.5f }));
        buffer.Clear(_stream);
        Assert.That(buffer.ToArray(_stream), Is.All.EqualTo(0f));
    }

    [Test]
    public void PinnedBuffersCopyAsynchronously()
    {
        using var host = new PinnedHostBuffer<int>(_context, 256);
        for (var i = 0; i < 256; i++) host.Span[i] = i * i;
        using var device = new DeviceBuffer<int>(_context, 256);
        DeviceMemory.CopyToDeviceAsync(device.Pointer, host, 0, 256, _stream);
        using var back = new PinnedHostBuffer<int>(_context, 256);
        DeviceMemory.CopyToHostAsync(back, 0, 256, device.Pointer, _stream);
        _stream.Synchronize();
        Assert.That(back.Span.ToArray(), Is.EqualTo(host.Span.ToArray()));
        Assert.Throws<ArgumentOutOfRangeException>(() => DeviceMemory.CopyToHostAsync(back, 200, 100, device.Pointer, _stream));
    }

    [Test]
    public void KernelLaunchAddsTheScaledVector()
    {
        // axpy of src/Kernels/elementwise.cu: y += alpha·x over n elements (a grid-stride loop).
        using var module = CudaModule.LoadEmbedded(_context, "elementwise");
        var kernel = module.GetFunction("axpy");
        const int n = 1000;
        using var y = new DeviceBuffer<float>(_context, n + 24);
        using var x = new DeviceBuffer<float>(_context, n + 24);
        y.CopyFrom(Enumerable.Range(0, n + 24).Select(i => (float)i).ToArray(), _stream);
        x.CopyFrom(Enumerable.Repeat(2f, n + 24).ToArray(), _stream);
        kernel.Launch((n + 255) / 256, 256, 0, _stream, new KernelArgs().Add(y).Add(0.25f).Add(x).Add((ulong)n));
        var result = y.ToArray(_stream);
        Assert.That(result[..n], Is.EqualTo(Enumerable.Range(0, n).Select(i => i + 0.5f).ToArray()));
        Assert.That(result[n..], Is.EqualTo(Enumerable.Range(n, 24).Select(i => (float)i).ToArray()), "threads past n must not write");
        Assert.That(kernel.Attribute(CuFunctionAttribute.CU_FUNC_ATTRIBUTE_NUM_REGS), Is.GreaterThan(0));
    }

    [Test]
    public void MissingKernelNamesTheModuleAndTheKernel()
    {
        using var module = CudaModule.Load(_context, AddScalarPtx, "add_scalar_test");
        var e = Assert.Throws<CudaException>(() => module.GetFunction("no_such_kernel"))!;
        Assert.That(e.Status, Is.EqualTo("CUDA_ERROR_NOT_FOUND"));
        Assert.That(e.Message, Does.Contain("add_scalar_test").And.Contain("no_such_kernel"));
    }

    [Test]
    public void BadPtxPutsTheJitLogInTheMessage()
    {
        var broken = AddScalarPtx.Replace("add.f32 %f3, %f2, %f1;", "add.f32 %f3, %f2, %undefined_register;");
        var e = Assert.Throws<CudaException>(() => CudaModule.Load(_context, broken, "broken"))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Status, Is.EqualTo("CUDA_ERROR_INVALID_PTX"));
        Assert.That(e.Message, Does.Contain("cuModuleLoadDataEx(broken)").And.Contain("JIT log:").And.Contain("undefined_register"));
        Assert.That(e.Message, Does.Not.Contain("\n"));
        Assert.That(SoftwareDevice.TakeViolations(), SoftwareDevice.Active ? Has.Length.EqualTo(1) : Is.Empty);
    }

    [Test]
    public void GraphReplaysTheCapturedWork()
    {
        using var module = CudaModule.LoadEmbedded(_context, "elementwise");
        var kernel = module.GetFunction("axpy");
        using var y = new DeviceBuffer<float>(_context, 64);
        using var x = new DeviceBuffer<float>(_context, 64);
        y.Clear(_stream);
        x.CopyFrom(Enumerable.Repeat(1f, 64).ToArray(), _stream);
        _stream.Synchronize();
        using var graph = CudaGraph.Capture(_context, _stream, () =>
            kernel.Launch(1, 64, 0, _stream, new KernelArgs().Add(y).Add(1f).Add(x).Add(64UL)));
        Assert.That(y.ToArray(_stream), Is.All.EqualTo(0f), "capturing does not run the work");
        graph.Launch(_stream);
        graph.Launch(_stream);
        graph.Launch(_stream);
        Assert.That(y.ToArray(_stream), Is.All.EqualTo(3f));
    }

    [Test]
    public void FailedCaptureBodyEndsTheCapture()
    {
        Assert.Throws<InvalidOperationException>(() => CudaGraph.Capture(_context, _stream, () => throw new InvalidOperationException("x")));
        // The stream is usable again (not stuck in capture mode).
        Assert.DoesNotThrow(() => _stream.Synchronize());
    }

    [Test]
    public void EventsTimeTheStream()
    {
        using var start = CudaEvent.Create(_context);
        using var end = CudaEvent.Create(_context);
        using var x = new DeviceBuffer<float>(_context, 1 << 20);
        start.Record(_stream);
        x.Clear(_stream);
        end.Record(_stream);
        end.Synchronize();
        Assert.That(CudaEvent.ElapsedMilliseconds(start, end), Is.GreaterThanOrEqualTo(0f));
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void CublasRowMajorGemmMatchesTheCpu(bool transA, bool transB)
    {
        if (!NativeLibraries.TryRequire(NativeLibraries.Cublas, out var reason)) Assert.Ignore(reason);
        const int m = 37, n = 29, k = 53, batch = 3;
        var rng = new Random(3);
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        float[] Random(int count) => Enumerable.Range(0, count).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var a = Random(batch * aRows * aCols);
        var b = Random(batch * bRows * bCols);
        var c = Random(batch * m * n);
        const float alpha = 0.75f, beta = -0.5f;
        var expected = new float[c.Length];
        for (var t = 0; t < batch; t++)
            for (var i = 0; i < m; i++)
                for (var j = 0; j < n; j++)
                {
                    double s = 0;
                    for (var p = 0; p < k; p++)
                        s += (double)(transA ? a[t * k * m + p * aCols + i] : a[t * m * k + i * aCols + p])
                             * (transB ? b[t * n * k + j * bCols + p] : b[t * k * n + p * bCols + j]);
                    expected[t * m * n + i * n + j] = (float)(alpha * s + beta * c[t * m * n + i * n + j]);
                }

        using var blas = CublasHandle.Create(_context, _stream);
        Assert.That(blas.Version, Is.GreaterThanOrEqualTo(11000));
        using var da = new DeviceBuffer<float>(_context, a.Length);
        using var db = new DeviceBuffer<float>(_context, b.Length);
        using var dc = new DeviceBuffer<float>(_context, c.Length);
        da.CopyFrom(a, _stream);
        db.CopyFrom(b, _stream);
        dc.CopyFrom(c, _stream);
        blas.GemmRowMajor(transA, transB, m, n, k, alpha, da.Pointer, aCols, db.Pointer, bCols, beta, dc.Pointer, n);
        var single = dc.ToArray(_stream);
        Assert.That(single[..(m * n)], Is.EqualTo(expected[..(m * n)]).Within(1e-4f));

        dc.CopyFrom(c, _stream);
        blas.GemmStridedBatchedRowMajor(transA, transB, m, n, k, alpha, da.Pointer, aCols, (long)m * k,
            db.Pointer, bCols, (long)k * n, beta, dc.Pointer, n, (long)m * n, batch);
        Assert.That(dc.ToArray(_stream), Is.EqualTo(expected).Within(1e-4f));

        blas.Tf32 = true;
        dc.CopyFrom(c, _stream);
        blas.GemmRowMajor(transA, transB, m, n, k, alpha, da.Pointer, aCols, db.Pointer, bCols, beta, dc.Pointer, n);
        // TF32 keeps 10 mantissa bits: errors of about 1e-3 relative on sums of 53 products.
        Assert.That(dc.ToArray(_stream)[..(m * n)], Is.EqualTo(expected[..(m * n)]).Within(2e-2f));
    }
}
