using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.Cuda;
using RlMixup.Core.Cuda.Native;
using RlMixup.Engine;
using RlMixup.Engine.Data;
using RlMixup.Engine.SelfTest;

namespace RlMixup.Tests;

/// <summary>
/// The CUDA backend. Without a GPU: launch-argument checking, address arithmetic, the one-line
/// errors of device selection and `info`. With one (skipped otherwise): the whole self-test
/// against the CPU, and the device batch source against the host one, bit for bit.
/// </summary>
public class CudaBackendTests
{
    private static readonly CUdeviceptr Some = new(0x7f00_0000_1000);

    [Test]
    public void ALaunchMatchingTheKernelsParametersPacksThemInOrder()
    {
        var k = KernelCatalog.Entry.Axpy; // (float* y, float alpha, const float* x, size_t n)
        KernelArg[] args = [KernelArg.F32Ptr(Some), 2.5f, KernelArg.F32Ptr(Some.Offset(64)), 1000L];
        var packed = KernelLaunch.Pack(k, args);
        Assert.That(packed.Count, Is.EqualTo(4));
        var data = packed.Data;
        Assert.That(BitConverter.ToUInt64(data.Slice(packed.OffsetOf(0), 8)), Is.EqualTo(Some.Value));
        Assert.That(BitConverter.ToSingle(data.Slice(packed.OffsetOf(1), 4)), Is.EqualTo(2.5f));
        Assert.That(BitConverter.ToUInt64(data.Slice(packed.OffsetOf(2), 8)), Is.EqualTo(Some.Value + 64));
        Assert.That(BitConverter.ToUInt64(data.Slice(packed.OffsetOf(3), 8)), Is.EqualTo(1000UL));
    }

    [Test]
    public void ALaunchWithTheWrongCountKindOrANullPointerIsRefusedNamingTheKernel()
    {
        var k = KernelCatalog.Entry.Axpy;
        var wrongCount = Assert.Throws<ArgumentException>(() => KernelLaunch.Validate(k, [KernelArg.F32Ptr(Some), 1f]))!;
        Assert.That(wrongCount.Message, Does.Contain("axpy").And.Contain("2 arguments for 4"));
        // an int where the kernel takes size_t: the driver would read 8 bytes of which 4 are garbage
        var wrongKind = Assert.Throws<ArgumentException>(() => KernelLaunch.Validate(k, [KernelArg.F32Ptr(Some), 1f, KernelArg.F32Ptr(Some), 10]))!;
        Assert.That(wrongKind.Message, Does.Contain("parameter 3 'n'").And.Contain("U64"));
        var intPtr = Assert.Throws<ArgumentException>(() => KernelLaunch.Validate(k, [KernelArg.I32Ptr(Some), 1f, KernelArg.F32Ptr(Some), 10L]))!;
        Assert.That(intPtr.Message, Does.Contain("parameter 0 'y'"));
        var nullPtr = Assert.Throws<ArgumentException>(() => KernelLaunch.Validate(k, [KernelArg.F32Ptr(Some), 1f, KernelArg.F32Ptr(new CUdeviceptr(0)), 10L]))!;
        Assert.That(nullPtr.Message, Does.Contain("null device pointer"));
    }

    [Test]
    public void ScalarArgumentsKeepTheirExactBits()
    {
        Assert.That(KernelArg.F32(-0f).Bits, Is.EqualTo(0x8000_0000UL));
        Assert.That(KernelArg.I32(-1).Bits, Is.EqualTo(0xFFFF_FFFFUL));
        Assert.That(KernelArg.U64(1L << 40).Bits, Is.EqualTo(1UL << 40));
        Assert.Throws<OverflowException>(() => KernelArg.U64(-1));
    }

    [Test]
    public void ATensorViewsAddressIsTheBlockPlusFourBytesPerFloat()
    {
        Assert.That(CudaBackend.TensorAddress(0x1000, 0), Is.EqualTo(0x1000UL));
        Assert.That(CudaBackend.TensorAddress(0x1000, 3), Is.EqualTo(0x100CUL));
        Assert.That(CudaBackend.TensorAddress(0x1000, int.MaxValue), Is.EqualTo(0x1000UL + 4UL * int.MaxValue));
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaBackend.TensorAddress(0x1000, -1));
    }

    private static CudaBackend Gpu(bool tf32)
    {
        if (!CudaDevice.TryInit(out var reason)) Assert.Ignore($"no usable CUDA: {reason}");
        try { return new CudaBackend(tf32); }
        catch (CudaLibraryNotFoundException e) { Assert.Ignore($"CUDA libraries missing: {e.Message}"); throw; }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void OnAGpuEveryOpTheTrainingStepTheMixAndDeterminismMatchTheCpu(bool tf32)
    {
        using var gpu = Gpu(tf32);
        using var cpu = new CpuBackend();
        var report = BackendSelfTest.Run(gpu, cpu, tf32, seed: 1);
        var failed = report.Rows.Where(r => !r.Pass).Select(r => $"{r.Check} {r.Shape}: worst {r.Worst:G3} {r.Detail}").ToList();
        Assert.That(failed, Is.Empty);
    }

    [Test]
    public void OnAGpuTheDeviceBatchSourceEqualsTheHostOneBitForBit()
    {
        using var gpu = Gpu(tf32: false);
        var set = SyntheticData.Images(40, 10, seed: 3);
        using var device = new CudaBatchSource(gpu, set);
        var host = new CpuBatchSource(new CpuBackend(1), set);
        int[] idx = [5, 0, 39, 17, 17, 8];
        CropFlip[] aug = [new(-2, 1, true), new(0, 0, false), new(2, -2, false), new(1, 2, true), new(-31, 0, false), new(0, 31, true)];
        using var xd = gpu.Allocate(new Shape(6, 3, 32, 32));
        using var yd = gpu.Allocate(new Shape(6, 10));
        using var xh = host.Backend.Allocate(new Shape(6, 3, 32, 32));
        using var yh = host.Backend.Allocate(new Shape(6, 10));
        device.Fill(xd, yd, idx, aug);
        host.Fill(xh, yh, idx, aug);
        Assert.That(xd.ToArray(), Is.EqualTo(xh.ToArray()));
        Assert.That(yd.ToArray(), Is.EqualTo(yh.ToArray()));
    }
}
