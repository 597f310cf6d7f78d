using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cuda;
using RlMixup.Core.Cuda.Native;
using RlMixup.Engine;

namespace RlMixup.Tests;

/// <summary>
/// The software device catches what a GPU would punish, where a test can see it: memory that
/// cuMemAlloc does not initialise, reads past an allocation, uses after free, host pointers where
/// device memory is expected, asynchronous work read before its stream is synchronised, launches
/// outside sm_90's limits, kernel arguments packed with the wrong size, kernels that run past their
/// buffers, and TF32 rounding. Each provoked violation is taken by the test (the assembly-wide
/// check fails any test that leaves one behind).
/// </summary>
[NonParallelizable]
public class SoftwareDeviceTests
{
    private CudaContext _context = null!;
    private CudaStream _stream = null!;

    [SetUp]
    public void Open()
    {
        SoftwareDevice.RequireOrIgnore();
        _context = CudaContext.RetainPrimary(CudaDevice.Get(0));
        _stream = CudaStream.Create(_context);
    }

    [TearDown]
    public void Close()
    {
        _stream?.Dispose();
        _context?.Dispose();
    }

    private static string[] Taken(bool reset = false) => SoftwareDevice.TakeViolations(reset);

    [Test]
    public void TheDeviceSaysItIsASimulation()
    {
        Assert.That(NativeLibraries.SoftwareDevice, Does.Contain("CPU simulation").And.Contain("not a GPU"));
        Assert.That(CudaDevice.Get(0).Name, Does.Contain("software device (CPU simulation)"));
        Assert.That(NativeLibraries.LoadedPath(NativeLibraries.Driver), Does.StartWith(SoftwareDevice.Folder));
        using var backend = new CudaBackend(tf32: false);
        Assert.That(backend.Describe()[0], Does.StartWith("SOFTWARE DEVICE (CPU simulation, not a GPU)"));
    }

    [Test]
    public void FreshAllocationsAreNaNNotZero()
    {
        using var buffer = new DeviceBuffer<float>(_context, 1000);
        Assert.That(buffer.ToArray(_stream), Is.All.NaN, "cuMemAlloc does not zero; the device fills a fresh block with NaN");
        using var ints = new DeviceBuffer<int>(_context, 10);
        Assert.That(ints.ToArray(_stream), Is.All.EqualTo(-1));
    }

    [Test]
    public void AReadPastAnAllocationFailsWithTheDocumentedCodeAndSaysByHowMuch()
    {
        using var buffer = new DeviceBuffer<float>(_context, 100);
        var host = new float[101];
        var e = Assert.Throws<CudaException>(() => DeviceMemory.CopyToHost<float>(host, buffer.Pointer, _stream))!;
        Assert.That(e.Status, Is.EqualTo("CUDA_ERROR_INVALID_VALUE"));
        Assert.That(Taken(), Has.One.Contains("cuMemcpyDtoHAsync: srcDevice: 404 bytes from offset 0 of a 400-byte allocation run 4 bytes past its end"));
        e = Assert.Throws<CudaException>(() => DeviceMemory.Fill(buffer.Pointer.Offset(4 * 60), 1f, 41, _stream))!;
        Assert.That(e.Status, Is.EqualTo("CUDA_ERROR_INVALID_VALUE"));
        Assert.That(Taken(), Has.One.Contains("cuMemsetD32Async: dstDevice: 164 bytes from offset 240"));
    }

    [Test]
    public void AUseAfterFreeIsReported()
    {
        var buffer = new DeviceBuffer<float>(_context, 64);
        var pointer = buffer.Pointer;
        buffer.Dispose();
        var e = Assert.Throws<CudaException>(() => DeviceMemory.Fill(pointer, 0f, 64, _stream))!;
        Assert.That(e.Status, Is.EqualTo("CUDA_ERROR_INVALID_VALUE"));
        Assert.That(Taken(), Has.One.Contains("is in a freed allocation (use after free"));
    }

    [Test]
    public unsafe void AHostPointerWhereDeviceMemoryIsExpectedIsReported()
    {
        var host = new float[16];
        fixed (float* p = host)
        {
            var r = CuDriver.cuMemsetD32Async(new CUdeviceptr((ulong)p), 0, 16, _stream.Handle);
            Assert.That(r, Is.EqualTo(CuResult.CUDA_ERROR_INVALID_VALUE));
        }
        Assert.That(Taken(), Has.One.Contains("is host memory, not a device address"));
    }

    [Test]
    public void PinnedCopiesAreAsynchronousSoAMissingSynchronisationReadsStaleData()
    {
        using var device = new DeviceBuffer<float>(_context, 256);
        using var pinned = new PinnedHostBuffer<float>(_context, 256);
        pinned.Span.Fill(-7f);
        DeviceMemory.Fill(device.Pointer, 3f, 256, _stream);
        DeviceMemory.CopyToHostAsync(pinned, 0, 256, device.Pointer, _stream);
        // On a GPU the copy may or may not have landed here; on the software device it has not.
        Assert.That(pinned.Span.ToArray(), Is.All.EqualTo(-7f), "read before cuStreamSynchronize");
        _stream.Synchronize();
        Assert.That(pinned.Span.ToArray(), Is.All.EqualTo(3f));
    }

    [Test]
    public void PageableCopiesFollowTheDocumentedBlockingRules()
    {
        using var device = new DeviceBuffer<float>(_context, 8);
        var host = new float[8];
        Array.Fill(host, 5f);
        device.CopyFrom(host, _stream);
        Array.Fill(host, -1f); // the source of a pageable upload is staged at the call
        DeviceMemory.CopyToHost<float>(host, device.Pointer, _stream);
        Assert.That(host, Is.All.EqualTo(5f), "a pageable download returns once the copy is done");
    }

    /// <summary>cuLaunchKernel itself, past CudaFunction's own checks of the geometry.</summary>
    private unsafe CuResult RawLaunch(CudaModule module, string kernel, Dim3 grid, Dim3 block, uint shared, KernelArgs args)
    {
        var name = System.Text.Encoding.UTF8.GetBytes(kernel + "\0");
        CUfunction f;
        fixed (byte* n = name) CuDriver.Check(CuDriver.cuModuleGetFunction(out f, module.Handle, n));
        var s = _stream.Handle;
        return args.WithPointers(p => CuDriver.cuLaunchKernel(f, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, shared, s, p, null));
    }

    [Test]
    public void LaunchesOutsideSm90sLimitsAreRefused()
    {
        using var module = CudaModule.LoadEmbedded(_context, "elementwise");
        var fill = module.GetFunction("fill");
        using var y = new DeviceBuffer<float>(_context, 64);
        KernelArgs Args() => new KernelArgs().Add(y).Add(1f).Add(64UL);
        Assert.That(RawLaunch(module, "fill", 1, new Dim3(1025), 0, Args()), Is.EqualTo(CuResult.CUDA_ERROR_INVALID_VALUE));
        Assert.That(Taken(), Has.One.Contains("outside sm_90's limits"));
        Assert.That(RawLaunch(module, "fill", new Dim3(1, 65536), 32, 0, Args()), Is.EqualTo(CuResult.CUDA_ERROR_INVALID_VALUE));
        Assert.That(Taken(), Has.One.Contains("grid (1,65536,1)"));
        Assert.That(RawLaunch(module, "fill", 1, new Dim3(32, 1, 65), 0, Args()), Is.EqualTo(CuResult.CUDA_ERROR_INVALID_VALUE));
        Assert.That(Taken(), Has.One.Contains("block (32,1,65)"));
        var e = Assert.Throws<CudaException>(() => fill.Launch(1, 32, 49 * 1024, _stream, Args()))!;
        Assert.That(e.Status, Is.EqualTo("CUDA_ERROR_INVALID_VALUE"));
        Assert.That(Taken(), Has.One.Contains("of dynamic shared memory exceed the kernel's limit"));
        fill.SetMaxDynamicSharedMemory(64 * 1024);
        fill.Launch(1, 32, 49 * 1024, _stream, Args()); // allowed once the kernel opts in
        _stream.Synchronize();
        Assert.That(y.ToArray(_stream), Is.All.EqualTo(1f));
    }

    [Test]
    public void AnArgumentPackedWithTheWrongSizeIsReported()
    {
        using var module = CudaModule.LoadEmbedded(_context, "optim");
        // sgd_step(float* param, const float* grad, float* momentum_buf, size_t n, float lr, ...):
        // n packed as a 4-byte int, so the driver's 8-byte read of it takes lr's bytes too.
        var sgd = module.GetFunction("sgd_step");
        using var p = new DeviceBuffer<float>(_context, 64);
        var args = new KernelArgs().Add(p).Add(p).Add(p).Add(64).Add(0.1f).Add(0.9f).Add(0f).Add(1);
        var e = Assert.Throws<CudaException>(() => sgd.Launch(1, 64, 0, _stream, args))!;
        Assert.That(e.Status, Is.EqualTo("CUDA_ERROR_INVALID_VALUE"));
        Assert.That(Taken(), Has.One.Contains("parameter 3 is .u64 (8 bytes) in the PTX, but the value of parameter 4 starts 4 bytes after it"));
        // Packed right, the same launch runs.
        sgd.Launch(1, 64, 0, _stream, new KernelArgs().Add(p).Add(p).Add(p).Add(64UL).Add(0.1f).Add(0.9f).Add(0f).Add(1));
        _stream.Synchronize();
    }

    [Test]
    public void AKernelThatRunsPastItsBufferFaultsAndTheContextKeepsTheError()
    {
        using var module = CudaModule.LoadEmbedded(_context, "elementwise");
        var fill = module.GetFunction("fill");
        using var y = new DeviceBuffer<float>(_context, 1000);
        // n larger than the buffer: the grid-stride loop writes past the end, into the guard page.
        fill.Launch(64, 256, 0, _stream, new KernelArgs().Add(y).Add(1f).Add(16384UL));
        var e = Assert.Throws<CudaException>(() => _stream.Synchronize())!;
        Assert.That(e.Status, Is.EqualTo("CUDA_ERROR_ILLEGAL_ADDRESS"));
        var v = Taken(reset: true);
        Assert.That(v, Has.One.Contains("fill: illegal address").And.Contain("bytes past the end of the 4000-byte allocation"));
    }

    [Test]
    public void ASelftestCheckThatFaultsTheDeviceStopsTheRunAndIsNamed()
    {
        using var backend = new CudaBackend(tf32: false);
        using var reference = new RlMixup.Core.Cpu.CpuBackend(1);
        using var module = CudaModule.LoadEmbedded(_context, "elementwise");
        var fill = module.GetFunction("fill");
        // Runs past its buffer in the backend's own (primary) context: the fault is sticky for it.
        var faulting = new RlMixup.Engine.SelfTest.SelfTestCase("Fault", "(1000)", RlMixup.Engine.SelfTest.Tolerance.Exact, c =>
        {
            c.Record("y", [0f]);
            if (c.B is not CudaBackend) return;
            using var y = new DeviceBuffer<float>(_context, 1000);
            fill.Launch(64, 256, 0, _stream, new KernelArgs().Add(y).Add(1f).Add(16384UL));
            _stream.Synchronize();
        });
        var all = RlMixup.Engine.SelfTest.SelfTestCases.All();
        var report = RlMixup.Engine.SelfTest.BackendSelfTest.Run(backend, reference, false, 0,
            [.. all.Where(c => c.Op == "Fill"), faulting, .. all.Where(c => c.Op == "Copy")]);
        var violations = Taken(reset: true);
        Assert.That(report.ContextLost, Is.EqualTo("context lost after Fault ((1000)): CUDA_ERROR_ILLEGAL_ADDRESS"));
        Assert.That(report.Rows.Select(r => (r.Check, r.Pass)), Is.EqualTo(new[] { ("Fill", true), ("Fault", false) }));
        Assert.That(report.CasesNotRun, Is.EqualTo(1));
        Assert.That(violations, Has.Some.Contains("fill: illegal address"));
    }

    // .NET keeps its own copy of the environment on Unix; the device reads the C library's.
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv(string name, string value, int overwrite);
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "unsetenv")]
    private static extern int UnsetEnv(string name);

    [Test]
    public void TheComputeCapabilityIsCheckedWhenTheBackendIsCreated()
    {
        SetEnv("RLMIXUP_SOFTWARE_DEVICE_CC", "7.5", 1);
        try
        {
            var e = Assert.Throws<NotSupportedException>(() => new CudaBackend(tf32: false))!;
            Assert.That(e.Message, Does.Contain("compute capability 7.5").And.Contain("8.0").And.Contain("cannot run on it"));
            Assert.That(Backends.TryCreateCuda(true, out _, out string reason), Is.False);
            Assert.That(reason, Does.Contain("compute capability 7.5"));
        }
        finally { UnsetEnv("RLMIXUP_SOFTWARE_DEVICE_CC"); }
    }
}
