using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cuda;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Tests;

/// <summary>
/// The managed cuDNN layer's logic that runs without the library: algorithm-cache keys, the
/// choice among cuDNN's perf rows, workspace growth and convolution geometry.
/// The calls into cuDNN itself are in <see cref="CudnnDeviceTests"/>.
/// </summary>
public class CudnnLayerTests
{
    private static readonly ConvShape Stem = new(N: 100, C: 3, H: 32, W: 32, K: 64, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1);

    [Test]
    public void KeysOfEqualGeometryAreEqualWithEqualHash()
    {
        var a = new ConvKey(Stem, ConvDirection.Forward, Tf32: false);
        var b = new ConvKey(Stem with { }, ConvDirection.Forward, Tf32: false);
        Assert.That(a, Is.EqualTo(b));
        Assert.That(a.GetHashCode(), Is.EqualTo(b.GetHashCode()));
    }

    [Test]
    public void EveryFieldOfTheKeyDistinguishesKeys()
    {
        var baseKey = new ConvKey(Stem, ConvDirection.Forward, false);
        var variants = new[]
        {
            baseKey with { Tf32 = true },
            baseKey with { Direction = ConvDirection.BackwardData },
            baseKey with { Direction = ConvDirection.BackwardFilter },
            baseKey with { Shape = Stem with { N = 50 } },
            baseKey with { Shape = Stem with { C = 4 } },
            baseKey with { Shape = Stem with { H = 16 } },
            baseKey with { Shape = Stem with { W = 16 } },
            baseKey with { Shape = Stem with { K = 128 } },
            baseKey with { Shape = Stem with { R = 1 } },
            baseKey with { Shape = Stem with { S = 1 } },
            baseKey with { Shape = Stem with { StrideH = 2 } },
            baseKey with { Shape = Stem with { StrideW = 2 } },
            baseKey with { Shape = Stem with { PadH = 0 } },
            baseKey with { Shape = Stem with { PadW = 0 } },
            baseKey with { Shape = Stem with { DilationH = 2 } },
            baseKey with { Shape = Stem with { DilationW = 2 } },
            baseKey with { Shape = Stem with { C = 4, K = 64, Groups = 2 } },
        };
        var all = variants.Prepend(baseKey).ToArray();
        Assert.That(all.Distinct().Count(), Is.EqualTo(all.Length));
        // The hash separates them too (no accidental collisions among these realistic keys).
        Assert.That(all.Select(k => k.GetHashCode()).Distinct().Count(), Is.EqualTo(all.Length));
    }

    [Test]
    public void CacheCreatesOnePlanPerKey()
    {
        using var cache = new ConvPlanCache<object>();
        int created = 0;
        object Create(ConvKey _) { created++; return new object(); }
        var fwd = new ConvKey(Stem, ConvDirection.Forward, false);
        var p1 = cache.GetOrAdd(fwd, Create);
        var p2 = cache.GetOrAdd(fwd with { }, Create);
        Assert.That(p2, Is.SameAs(p1));
        Assert.That(created, Is.EqualTo(1));
        cache.GetOrAdd(fwd with { Tf32 = true }, Create);
        cache.GetOrAdd(fwd with { Direction = ConvDirection.BackwardFilter }, Create);
        Assert.That(created, Is.EqualTo(3));
        Assert.That(cache.Count, Is.EqualTo(3));
    }

    private sealed class Counted : IDisposable
    {
        public int Disposals;
        public void Dispose() => Disposals++;
    }

    [Test]
    public void CacheDisposesItsPlansOnceAndThenRefusesUse()
    {
        var cache = new ConvPlanCache<Counted>();
        var a = cache.GetOrAdd(new ConvKey(Stem, ConvDirection.Forward, false), _ => new Counted());
        var b = cache.GetOrAdd(new ConvKey(Stem, ConvDirection.BackwardData, false), _ => new Counted());
        cache.Dispose();
        cache.Dispose();
        Assert.That((a.Disposals, b.Disposals), Is.EqualTo((1, 1)));
        Assert.Throws<ObjectDisposedException>(() => cache.GetOrAdd(new ConvKey(Stem, ConvDirection.Forward, false), _ => new Counted()));
    }

    [Test]
    public void CacheDoesNotKeepAFailedCreation()
    {
        using var cache = new ConvPlanCache<object>();
        var key = new ConvKey(Stem, ConvDirection.Forward, false);
        Assert.Throws<InvalidOperationException>(() => cache.GetOrAdd(key, _ => throw new InvalidOperationException("no algo")));
        Assert.That(cache.Count, Is.EqualTo(0));
        Assert.That(cache.GetOrAdd(key, _ => "second try"), Is.EqualTo("second try"));
    }

    private static ConvAlgoCandidate Row(int algo, CudnnStatus status = CudnnStatus.CUDNN_STATUS_SUCCESS, ulong memory = 0,
        bool deterministic = true, CudnnMathType math = CudnnMathType.CUDNN_FMA_MATH) =>
        new(algo, status, -1, memory, deterministic ? CudnnDeterminism.CUDNN_DETERMINISTIC : CudnnDeterminism.CUDNN_NON_DETERMINISTIC, math);

    [Test]
    public void PickTakesTheFirstAcceptableRowAndTheMathTypeItRunsWith()
    {
        ConvAlgoCandidate[] rows =
        [
            Row(5, status: CudnnStatus.CUDNN_STATUS_NOT_SUPPORTED),
            Row(0, deterministic: false, math: CudnnMathType.CUDNN_TENSOR_OP_MATH),
            Row(6, memory: 1UL << 40),
            Row(2, math: CudnnMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION),
            Row(8, math: CudnnMathType.CUDNN_TENSOR_OP_MATH, memory: 8192),
            Row(7, math: CudnnMathType.CUDNN_DEFAULT_MATH, memory: 4096),
            Row(3),
        ];
        // TF32 off: the tensor-core row is refused; the DEFAULT one runs with FMA math, as PyTorch runs it.
        var pick = ConvAlgoSelection.Pick(rows, new ConvKey(Stem, ConvDirection.BackwardFilter, Tf32: false), new ConvAlgoOptions());
        Assert.That((pick.Algo, pick.WorkspaceBytes, pick.MathType), Is.EqualTo((7, 4096UL, CudnnMathType.CUDNN_FMA_MATH)));
        // TF32 on: the tensor-core row, with its own math type on the descriptor.
        pick = ConvAlgoSelection.Pick(rows, new ConvKey(Stem, ConvDirection.BackwardFilter, Tf32: true), new ConvAlgoOptions());
        Assert.That((pick.Algo, pick.WorkspaceBytes, pick.MathType), Is.EqualTo((8, 8192UL, CudnnMathType.CUDNN_TENSOR_OP_MATH)));
    }

    [Test]
    public void WithTf32OffRowsOfDefaultMathAreUsableWhateverTheDescriptorSaid()
    {
        // Real cuDNN lists an algorithm as TENSOR_OP and as DEFAULT even when the descriptor asks for
        // FMA: no row says FMA. Refusing every non-FMA row would find no algorithm at all.
        ConvAlgoCandidate[] rows =
        [
            Row(6, status: CudnnStatus.CUDNN_STATUS_NOT_SUPPORTED, math: CudnnMathType.CUDNN_DEFAULT_MATH),
            Row(1, math: CudnnMathType.CUDNN_TENSOR_OP_MATH, memory: 512),
            Row(0, math: CudnnMathType.CUDNN_DEFAULT_MATH),
            Row(2, math: CudnnMathType.CUDNN_DEFAULT_MATH, memory: 256),
        ];
        var pick = ConvAlgoSelection.Pick(rows, new ConvKey(Stem, ConvDirection.Forward, Tf32: false), new ConvAlgoOptions());
        Assert.That((pick.Algo, pick.MathType), Is.EqualTo((0, CudnnMathType.CUDNN_FMA_MATH)));
        var e = Assert.Throws<InvalidOperationException>(() =>
            ConvAlgoSelection.Pick(rows[..2], new ConvKey(Stem, ConvDirection.Forward, Tf32: false), new ConvAlgoOptions()))!;
        Assert.That(e.Message, Does.Contain("algo 6 CUDNN_DEFAULT_MATH: CUDNN_STATUS_NOT_SUPPORTED")
            .And.Contain("algo 1 CUDNN_TENSOR_OP_MATH: CUDNN_TENSOR_OP_MATH (tensor cores, with TF32 off)"));
    }

    [Test]
    public void PickHonoursTheOptionsAndTheTf32Flag()
    {
        ConvAlgoCandidate[] rows = [Row(0, deterministic: false, math: CudnnMathType.CUDNN_TENSOR_OP_MATH), Row(1)];
        var relaxed = new ConvAlgoOptions(Deterministic: false);
        Assert.That(ConvAlgoSelection.Pick(rows, new ConvKey(Stem, ConvDirection.Forward, Tf32: true), relaxed).Algo, Is.EqualTo(0));
        Assert.That(ConvAlgoSelection.Pick(rows, new ConvKey(Stem, ConvDirection.Forward, Tf32: false), relaxed).Algo, Is.EqualTo(1));
        Assert.That(ConvAlgoSelection.Pick(rows, new ConvKey(Stem, ConvDirection.Forward, Tf32: true), new ConvAlgoOptions()).Algo, Is.EqualTo(1));
        Assert.That(ConvAlgoSelection.Pick([Row(4, memory: 100)], new ConvKey(Stem, ConvDirection.Forward, false),
            new ConvAlgoOptions(MaxWorkspaceBytes: 100)).Algo, Is.EqualTo(4), "the limit is inclusive");
    }

    [Test]
    public void PickNeverTakesARowThatConvertsToFp16()
    {
        ConvAlgoCandidate[] rows = [Row(0, math: CudnnMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION), Row(1, math: CudnnMathType.CUDNN_DEFAULT_MATH)];
        var pick = ConvAlgoSelection.Pick(rows, new ConvKey(Stem, ConvDirection.Forward, Tf32: true), new ConvAlgoOptions());
        Assert.That(pick.Algo, Is.EqualTo(1));
        var e = Assert.Throws<InvalidOperationException>(() => ConvAlgoSelection.Pick(rows[..1], new ConvKey(Stem, ConvDirection.Forward, Tf32: true), new ConvAlgoOptions()))!;
        Assert.That(e.Message, Does.Contain("converts float32 inputs to fp16"));
    }

    [Test]
    public void PickWithNothingUsableSaysWhyEachRowWasRefused()
    {
        var key = new ConvKey(Stem, ConvDirection.BackwardData, Tf32: false);
        var e = Assert.Throws<InvalidOperationException>(() => ConvAlgoSelection.Pick(
            [Row(0, deterministic: false), Row(3, status: CudnnStatus.CUDNN_STATUS_NOT_SUPPORTED_SHAPE)], key, new ConvAlgoOptions()))!;
        Assert.That(e.Message, Does.Contain("BackwardData"));
        Assert.That(e.Message, Does.Contain("algo 0 CUDNN_FMA_MATH: not deterministic"));
        Assert.That(e.Message, Does.Contain("algo 3 CUDNN_FMA_MATH: CUDNN_STATUS_NOT_SUPPORTED_SHAPE"));
        e = Assert.Throws<InvalidOperationException>(() => ConvAlgoSelection.Pick([], key, new ConvAlgoOptions()))!;
        Assert.That(e.Message, Does.Contain("cuDNN returned none"));
    }

    [Test]
    public void MathTypeFollowsTheTf32Flag()
    {
        // PyTorch's choice: DEFAULT_MATH permits TF32 on Ampere and later, FMA_MATH is strict float32;
        // ALLOW_CONVERSION would also permit fp16 inputs.
        Assert.That(ConvAlgoSelection.MathTypeFor(true), Is.EqualTo(CudnnMathType.CUDNN_DEFAULT_MATH));
        Assert.That(ConvAlgoSelection.MathTypeFor(false), Is.EqualTo(CudnnMathType.CUDNN_FMA_MATH));
    }

    /// <summary>A fake device allocator: hands out increasing fake addresses and records every call.</summary>
    private sealed class FakeAllocator
    {
        public readonly List<(nint Address, ulong Bytes)> Allocations = [];
        public readonly List<nint> Frees = [];
        private nint _next = 0x10000;
        public nint Allocate(ulong bytes) { var a = _next; _next += 0x10000000; Allocations.Add((a, bytes)); return a; }
        public void Free(nint a) => Frees.Add(a);
    }

    [Test]
    public void WorkspaceGrowsInWholeMebibytesAndFreesTheOldBuffer()
    {
        var fake = new FakeAllocator();
        var ws = new GrowingDeviceWorkspace(fake.Allocate, fake.Free);
        Assert.That(ws.Acquire(0), Is.EqualTo((nint)0), "no workspace, no allocation");
        Assert.That(fake.Allocations, Is.Empty);

        var a = ws.Acquire(1000);
        Assert.That(fake.Allocations, Is.EqualTo(new[] { (a, GrowingDeviceWorkspace.Granularity) }));
        Assert.That(ws.Acquire(GrowingDeviceWorkspace.Granularity), Is.EqualTo(a), "fits: same buffer");
        Assert.That(ws.Acquire(10), Is.EqualTo(a), "never shrinks");
        Assert.That(ws.Acquire(0), Is.EqualTo(a));
        Assert.That(fake.Allocations, Has.Count.EqualTo(1));

        var b = ws.Acquire(3 * GrowingDeviceWorkspace.Granularity + 1);
        Assert.That(b, Is.Not.EqualTo(a));
        Assert.That(fake.Frees, Is.EqualTo(new[] { a }));
        Assert.That(ws.Capacity, Is.EqualTo(4 * GrowingDeviceWorkspace.Granularity));

        ws.Dispose();
        ws.Dispose();
        Assert.That(fake.Frees, Is.EqualTo(new[] { a, b }));
        Assert.Throws<ObjectDisposedException>(() => ws.Acquire(1));
    }

    [Test]
    public void WorkspaceRejectsANullAllocation()
    {
        var ws = new GrowingDeviceWorkspace(_ => 0, _ => Assert.Fail("nothing to free"));
        Assert.Throws<InvalidOperationException>(() => ws.Acquire(1));
        Assert.That(ws.Capacity, Is.EqualTo(0UL));
    }

    [Test]
    public void ConvShapeFromTheEngineSpecMatchesItsOutputShape()
    {
        var x = new Shape(8, 64, 32, 32);
        var w = new Shape(128, 64, 3, 3);
        var spec = new Conv2dSpec(stride: 2, pad: 1);
        var s = ConvShape.From(x, w, spec);
        Assert.That(s, Is.EqualTo(new ConvShape(8, 64, 32, 32, 128, 3, 3, 2, 2, 1, 1)));
        var y = spec.OutputShape(x, w);
        Assert.That((s.OutH, s.OutW), Is.EqualTo((y.H, y.W)));
        Assert.DoesNotThrow(s.Validate);
        Assert.Throws<ShapeMismatchException>(() => ConvShape.From(x, new Shape(128, 32, 3, 3), spec));
    }

    [Test]
    public void ConvShapeValidationNamesTheProblem()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => (Stem with { Groups = 2 }).Validate())!.Message, Does.Contain("groups"));
        Assert.Throws<ArgumentException>(() => (Stem with { StrideH = 0 }).Validate());
        Assert.Throws<ArgumentException>(() => (Stem with { H = 2, PadH = 0, DilationH = 2 }).Validate());
        // Extent 3 > 2 rows: truncating division would give one output row; it must be refused.
        Assert.Throws<ArgumentException>(() => (Stem with { H = 2, PadH = 0, StrideH = 2 }).Validate());
        Assert.That((Stem with { DilationH = 2 }).OutH, Is.EqualTo(30));
    }
}
