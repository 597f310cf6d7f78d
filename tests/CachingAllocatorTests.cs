using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cuda;
using RlMixup.Core.Cuda.Native;
using RlMixup.Models;

namespace RlMixup.Tests;

public class CachingAllocatorTests
{
    /// <summary>A device of <c>capacity</c> bytes that counts its calls and hands out 256-aligned addresses.</summary>
    private sealed class FakeDevice(long capacity = long.MaxValue, bool cudaStatus = false) : IDeviceAllocator
    {
        private readonly Dictionary<ulong, long> _blocks = [];
        private ulong _next = 0x7f00_0000_0000;
        public int Allocations, Frees;
        public long Used;
        public IReadOnlyDictionary<ulong, long> Sizes => _blocks;

        public ulong Allocate(long bytes)
        {
            if (Used + bytes > capacity)
            {
                if (cudaStatus) throw new CudaException("CUDA driver", "cuMemAlloc_v2(&ptr, bytes)", "CUDA_ERROR_OUT_OF_MEMORY", "out of memory");
                throw new DeviceOutOfMemoryException($"fake device full ({Used} + {bytes} > {capacity})");
            }
            Allocations++;
            ulong p = _next;
            _next += (ulong)((bytes + 255) / 256 * 256) + 256;
            _blocks.Add(p, bytes);
            Used += bytes;
            return p;
        }

        public void Free(ulong ptr)
        {
            Assert.That(_blocks.Remove(ptr, out long bytes), Is.True, $"the allocator freed 0x{ptr:x}, which the device never handed out");
            Frees++;
            Used -= bytes;
        }
    }

    [TestCase(0, 512)]
    [TestCase(1, 512)]
    [TestCase(4, 512)]
    [TestCase(511, 512)]
    [TestCase(512, 512)]
    [TestCase(513, 1024)]
    [TestCase(1000, 1024)]
    [TestCase(40_000, 40_448)]
    [TestCase(1 << 20, 1 << 20)]
    [TestCase((1 << 20) + 1, 2 << 20)]
    [TestCase(2 << 20, 2 << 20)]
    [TestCase((2 << 20) + 1, 4 << 20)]
    [TestCase(26_214_400, 27_262_976)]      // 100×64×32×32 floats = 25 MiB → 26 MiB
    [TestCase(3L << 30, 3L << 30)]
    public void SizeClassRounding(long bytes, long expected)
    {
        Assert.That(CachingAllocator.SizeClass(bytes), Is.EqualTo(expected));
        Assert.That(CachingAllocator.SizeClass(bytes) % CachingAllocator.Alignment, Is.Zero);
        Assert.That(CachingAllocator.SizeClass(bytes), Is.GreaterThanOrEqualTo(bytes));
    }

    [Test]
    public void NegativeSizeIsRejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => CachingAllocator.SizeClass(-1));

    [Test]
    public void FreedBlockIsReusedForTheSameClassOnly()
    {
        var dev = new FakeDevice();
        var a = new CachingAllocator(dev);
        ulong p = a.Allocate(1000);
        a.Free(p);
        Assert.That(a.Allocate(600), Is.EqualTo(p), "600 B and 1000 B share the 1024 B class");
        Assert.That(dev.Allocations, Is.EqualTo(1));
        ulong q = a.Allocate(2000);
        Assert.That(q, Is.Not.EqualTo(p));
        Assert.That(dev.Allocations, Is.EqualTo(2));
        var s = a.Stats;
        Assert.That(s.CacheHits, Is.EqualTo(1));
        Assert.That(s.DeviceAllocations, Is.EqualTo(2));
        Assert.That(s.BytesInUse, Is.EqualTo(1024 + 2048));
        Assert.That(s.BytesCached, Is.Zero);
        Assert.That(a.BlockSize(q), Is.EqualTo(2048));
    }

    [Test]
    public void StatsTrackInUseCachedAndPeak()
    {
        var a = new CachingAllocator(new FakeDevice());
        ulong p1 = a.Allocate(3 << 20), p2 = a.Allocate(100);
        a.Free(p1);
        var s = a.Stats;
        Assert.That(s.BytesInUse, Is.EqualTo(512));
        Assert.That(s.BytesCached, Is.EqualTo(4 << 20));
        Assert.That(s.PeakBytesInUse, Is.EqualTo((4 << 20) + 512));
        Assert.That(s.BlocksInUse, Is.EqualTo(1));
        Assert.That(s.BlocksCached, Is.EqualTo(1));
        a.Free(p2);
        Assert.That(a.Stats.PeakBytesReserved, Is.EqualTo((4 << 20) + 512));
        Assert.That(a.Stats.ToString(), Does.Contain("cached 4.0 MiB"));
    }

    /// <summary>
    /// The allocation pattern of one PreActResNet18 training step (width 64, batch 100) as a CUDA
    /// backend without persistent layer buffers would produce it: forward keeps every activation and
    /// frees a per-convolution workspace at once; backward allocates each data gradient and its
    /// workspace, then frees the activation and gradient it no longer needs; the mixed batch and
    /// the loss buffers come and go around the step.
    /// </summary>
    private static void TrainingStep(CachingAllocator a, int width = 64, int batch = 100)
    {
        var store = new ParameterStore();
        _ = new PreActResNet18(store, width, 100);
        var convs = store.Parameters.Where(t => t.Shape.Rank == 4).Select(t => t.Shape).ToList();
        long F(long floats) => floats * sizeof(float);
        var activations = new Stack<ulong>();
        ulong mixed = a.Allocate(F(batch * 3 * 32 * 32)), targets = a.Allocate(F(batch * 100));
        int hw = 32;
        foreach (var w in convs)
        {
            if (w.C != w.N && w.H == 3 && w.C != 3) hw /= 2;      // the first conv of a downsampling stage
            activations.Push(a.Allocate(F((long)batch * w.N * hw * hw)));    // conv output
            activations.Push(a.Allocate(F((long)batch * w.N * hw * hw)));    // bn + relu output
            a.Free(a.Allocate(F((long)w.Size * 9 + 4096)));                   // workspace
        }
        ulong logits = a.Allocate(F(batch * 100)), losses = a.Allocate(F(batch));
        a.Free(losses);
        ulong dlogits = a.Allocate(F(batch * 100));
        a.Free(logits);
        ulong grad = dlogits;
        foreach (var w in Enumerable.Reverse(convs))
        {
            a.Free(a.Allocate(F((long)w.Size * 9 + 4096)));
            ulong dx = a.Allocate(F((long)batch * w.C * hw * hw));
            a.Free(grad);
            a.Free(activations.Pop());
            a.Free(activations.Pop());
            grad = dx;
        }
        a.Free(grad);
        a.Free(mixed);
        a.Free(targets);
    }

    [Test]
    public void SteadyStateTrainingStepsMakeNoDeviceCalls()
    {
        var dev = new FakeDevice();
        var a = new CachingAllocator(dev);
        TrainingStep(a);
        int allocs = dev.Allocations, frees = dev.Frees;
        Assert.That(allocs, Is.GreaterThan(50), "the pattern should exercise many blocks");
        Assert.That(frees, Is.Zero);
        long hitsAfterFirst = a.Stats.CacheHits;
        for (int step = 0; step < 5; step++) TrainingStep(a);
        Assert.That(dev.Allocations, Is.EqualTo(allocs), "a repeated step must not call cuMemAlloc");
        Assert.That(dev.Frees, Is.Zero, "a repeated step must not call cuMemFree");
        Assert.That(a.Stats.CacheHits, Is.GreaterThan(hitsAfterFirst));
        Assert.That(a.Stats.BytesInUse, Is.Zero);
        Assert.That(a.Stats.BytesCached, Is.EqualTo(dev.Used));
    }

    [Test]
    public void TrimReleasesCachedBlocksOnly()
    {
        var dev = new FakeDevice();
        var a = new CachingAllocator(dev);
        ulong keep = a.Allocate(10_000);
        ulong p = a.Allocate(5 << 20), q = a.Allocate(700);
        a.Free(p);
        a.Free(q);
        long released = a.Trim();
        Assert.That(released, Is.EqualTo((6L << 20) + 1024));
        Assert.That(dev.Frees, Is.EqualTo(2));
        Assert.That(a.Stats.BytesCached, Is.Zero);
        Assert.That(a.Stats.BlocksInUse, Is.EqualTo(1));
        Assert.That(a.BlockSize(keep), Is.EqualTo(10_240));
        a.Allocate(5 << 20);
        Assert.That(dev.Allocations, Is.EqualTo(4), "after a trim the next request goes to the device again");
        a.ReleaseAll();
        Assert.That(dev.Used, Is.Zero);
        Assert.That(a.Stats.BlocksInUse, Is.Zero);
    }

    [Test]
    public void DoubleFreeAndForeignPointersThrow()
    {
        var a = new CachingAllocator(new FakeDevice());
        ulong p = a.Allocate(64);
        a.Free(p);
        var e = Assert.Throws<InvalidOperationException>(() => a.Free(p))!;
        Assert.That(e.Message, Does.Contain("double free"));
        e = Assert.Throws<InvalidOperationException>(() => a.Free(0xdead00))!;
        Assert.That(e.Message, Does.Contain("did not hand out"));
        Assert.That(a.Stats.BlocksCached, Is.EqualTo(1), "a rejected free changes nothing");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void OutOfMemoryTrimsAndRetriesOnce(bool cudaStatus)
    {
        var dev = new FakeDevice(capacity: 10L << 20, cudaStatus);
        var a = new CachingAllocator(dev);
        ulong p = a.Allocate(6 << 20);
        a.Free(p);                                   // 6 MiB cached, of a 10 MiB device
        ulong q = a.Allocate(8 << 20);               // fails, trims the 6 MiB, succeeds
        Assert.That(dev.Frees, Is.EqualTo(1));
        Assert.That(a.Stats.BytesInUse, Is.EqualTo(8 << 20));
        Assert.That(a.Stats.BytesCached, Is.Zero);
        Assert.That(a.BlockSize(q), Is.EqualTo(8 << 20));
    }

    [Test]
    public void OutOfMemoryAfterTheRetryNamesTheRequestAndTheStats()
    {
        var dev = new FakeDevice(capacity: 10L << 20);
        var a = new CachingAllocator(dev);
        a.Allocate(4 << 20);
        a.Free(a.Allocate(1000));
        var e = Assert.Throws<DeviceOutOfMemoryException>(() => a.Allocate(9_000_000))!;
        Assert.That(e.Message, Does.Contain("9000000 bytes"));
        Assert.That(e.Message, Does.Contain("size class 10485760 bytes"));
        Assert.That(e.Message, Does.Contain("in use 4.0 MiB"));
        Assert.That(e.Message, Does.Contain("cached 0.0 MiB in 1 blocks"));
        Assert.That(a.Stats.BytesCached, Is.Zero, "the cache was released before the retry");
        Assert.That(a.Stats.BytesInUse, Is.EqualTo(4 << 20));
    }

    [Test]
    public void OtherDeviceErrorsPassThroughWithoutARetry()
    {
        var a = new CachingAllocator(new ThrowingDevice());
        Assert.Throws<CudaException>(() => a.Allocate(10));
    }

    private sealed class ThrowingDevice : IDeviceAllocator
    {
        public ulong Allocate(long bytes) => throw new CudaException("CUDA driver", "cuMemAlloc_v2", "CUDA_ERROR_INVALID_CONTEXT", "invalid device context");
        public void Free(ulong ptr) { }
    }

    [Test]
    public void WithoutCachingEveryRequestIsItsOwnExactAllocationFreedAtOnce()
    {
        var device = new FakeDevice();
        var a = new CachingAllocator(device, caching: false);
        ulong p = a.Allocate(4620);
        Assert.That(device.Sizes[p], Is.EqualTo(4620), "exact size, no class");
        a.Free(p);
        Assert.That(device.Sizes, Does.Not.ContainKey(p), "freed to the device at once");
        ulong q = a.Allocate(4620);
        Assert.That(a.Stats.CacheHits, Is.Zero);
        Assert.That(a.Stats.DeviceAllocations, Is.EqualTo(2));
        a.Free(q);
    }
}
