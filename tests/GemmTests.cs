using System.Runtime.InteropServices;
using NUnit.Framework;
using RlMixup.Core.Cpu;

namespace RlMixup.Tests;

/// <summary>
/// Gemm.Sgemm (and the scalar fallback) against a float64 reference, once per micro-kernel:
/// the AVX2 kernel on every machine, the AVX-512 kernel where the CPU has it.
///
/// Tolerance: a float32 dot product of length k accumulated in any order has error at most
/// ≈ k·u·Σ_p|a_p·b_p| with u = 2^-24 ≈ 6e-8 (Higham, §3.1); in practice it grows like √k·u.
/// The bound we assert is 1e-5·(|alpha|·Σ_p|a_p||b_p| + |beta|·|c|) + 1e-30: for the largest k
/// here (4608) k·u ≈ 2.7e-4 is the worst case, √k·u ≈ 4e-6, so 1e-5 leaves headroom for the
/// typical case while still catching any indexing bug (which produces O(1) relative errors).
/// </summary>
[TestFixture(GemmIsa.Avx2)]
[TestFixture(GemmIsa.Avx512)]
public unsafe class GemmTests(GemmIsa isa)
{
    delegate void SgemmFn(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    SgemmFn Fast1 => (ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc) =>
        Gemm.Sgemm(isa, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc, threads: 1);
    SgemmFn Fast2 => (ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc) =>
        Gemm.Sgemm(isa, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc, threads: 2);
    static readonly SgemmFn Scalar = Gemm.SgemmScalar;

    [SetUp]
    public void RequireIsa()
    {
        if (isa > Gemm.Isa) Assert.Ignore($"this CPU has no {isa} (the engine uses {Gemm.Isa})");
    }

    /// <summary>
    /// Runs one case with padded strides (ld = minimum + pad) and checks every element of C,
    /// including that the padding columns of C are left untouched.
    /// </summary>
    static void Check(SgemmFn f, bool ta, bool tb, int m, int n, int k, float alpha, float beta,
        int pad = 0, bool nanC = false, int seed = 1)
    {
        var rng = new Random(seed + m * 7919 + n * 104729 + k * 31 + (ta ? 1 : 0) + (tb ? 2 : 0));
        int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        int aRows = ta ? k : m, bRows = tb ? n : k;
        // At least one element so the pointers are valid even for 0-sized operands.
        var a = new float[Math.Max(1, aRows * lda)];
        var b = new float[Math.Max(1, bRows * ldb)];
        var c = new float[Math.Max(1, m * ldc)];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < c.Length; i++) c[i] = nanC ? float.NaN : (float)(rng.NextDouble() * 2 - 1);
        var c0 = (float[])c.Clone();

        fixed (float* pa = a, pb = b, pc = c)
            f(ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);

        for (int i = 0; i < m; i++)
            for (int j = 0; j < ldc; j++)
            {
                float got = c[i * ldc + j];
                if (j >= n)
                {
                    // Padding between rows of C must not be written.
                    if (!(got.Equals(c0[i * ldc + j])))
                        Assert.Fail($"padding C[{i},{j}] changed: {c0[i * ldc + j]} -> {got}");
                    continue;
                }
                double s = 0, mag = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = ta ? a[p * lda + i] : a[i * lda + p];
                    double y = tb ? b[j * ldb + p] : b[p * ldb + j];
                    s += x * y;
                    mag += Math.Abs(x * y);
                }
                double cOld = beta == 0 ? 0 : c0[i * ldc + j];
                double want = alpha * s + beta * cOld;
                double tol = 1e-5 * (Math.Abs(alpha) * mag + Math.Abs(beta * cOld)) + 1e-30;
                if (!(Math.Abs(got - want) <= tol))
                    Assert.Fail($"C[{i},{j}] = {got}, want {want} (tol {tol:E2}) for tA={ta} tB={tb} m={m} n={n} k={k} " +
                                $"alpha={alpha} beta={beta} pad={pad} nanC={nanC}");
            }
    }

    static IEnumerable<(int m, int n, int k)> SmallShapes()
    {
        yield return (1, 1, 1);
        yield return (0, 5, 3);
        yield return (4, 0, 3);
        yield return (3, 4, 0);     // k = 0: C = beta·C
        yield return (1, 17, 1);
        yield return (6, 16, 1);    // exactly one micro-tile
        yield return (7, 13, 29);   // primes: ragged in every direction
        yield return (5, 33, 8);
        yield return (13, 15, 17);
        yield return (12, 32, 64);
        yield return (19, 50, 300); // k spans two balanced k blocks
        yield return (37, 70, 9);
        yield return (130, 20, 5);  // m spans two MC blocks with a ragged panel in each
        yield return (8, 32, 3);    // exactly one AVX-512 micro-tile
        yield return (9, 31, 33);   // one past / one short of it
        yield return (17, 65, 7);
    }

    static readonly (bool, bool)[] Trans = [(false, false), (true, false), (false, true), (true, true)];

    [Test]
    public void SmallShapesAllTransposesAlphaBeta()
    {
        foreach (var (m, n, k) in SmallShapes())
            foreach (var (ta, tb) in Trans)
                foreach (var (alpha, beta) in new[] { (1f, 0f), (-0.75f, 1f), (2.5f, 0.5f) })
                    Check(Fast1, ta, tb, m, n, k, alpha, beta);
    }

    [Test]
    public void PaddedStrides()
    {
        foreach (var (ta, tb) in Trans)
        {
            Check(Fast1, ta, tb, 7, 13, 29, 1.5f, 0.5f, pad: 3);
            Check(Fast1, ta, tb, 64, 48, 40, 1f, 1f, pad: 5);
            Check(Fast1, ta, tb, 25, 100, 70, -1f, 0f, pad: 16);
        }
    }

    [Test]
    public void BetaZeroIgnoresNaNInC()
    {
        foreach (var (ta, tb) in Trans)
        {
            Check(Fast1, ta, tb, 7, 13, 29, 1f, 0f, nanC: true);
            Check(Fast1, ta, tb, 24, 64, 40, 0.5f, 0f, pad: 2, nanC: true);
            Check(Fast1, ta, tb, 3, 4, 0, 1f, 0f, nanC: true);  // k = 0 clears C
            Check(Scalar, ta, tb, 7, 13, 29, 1f, 0f, nanC: true);
        }
    }

    [Test]
    public void AlphaZeroScalesC()
    {
        Check(Fast1, false, false, 9, 20, 11, 0f, 0.5f);
        Check(Fast1, true, true, 9, 20, 11, 0f, 0f, nanC: true);
    }

    /// <summary>PreActResNet18 im2col shapes (width 16: forward, backward-data, backward-filter).</summary>
    [Test]
    public void ModelShapesWidth16()
    {
        foreach (var (cout, cin, hw) in new[] { (16, 3, 1024), (16, 16, 1024), (32, 32, 256), (64, 64, 64), (128, 128, 16) })
        {
            Check(Fast1, false, false, cout, hw, cin * 9, 1f, 0f);          // y = W·col
            Check(Fast1, true, false, cin * 9, hw, cout, 1f, 0f);           // dcol = Wᵀ·dy
            Check(Fast1, false, true, cout, cin * 9, hw, 1f, 1f);           // dW += dy·colᵀ
        }
        Check(Fast1, false, false, 32, 256, 16, 1f, 0f);                    // 1×1 shortcut
    }

    /// <summary>A few width-64 shapes, picked to cover in-place A, packed Aᵀ and long k.</summary>
    [Test]
    public void ModelShapesWidth64()
    {
        Check(Fast1, false, false, 512, 16, 4608, 1f, 0f);     // deepest forward, k spans 9 blocks
        Check(Fast1, true, false, 576, 64, 64, 1f, 0f);        // Aᵀ in place (n ≤ 64)
        Check(Fast1, true, false, 144, 256, 128, 1f, 0f);      // Aᵀ packed (n > 64)
        Check(Fast1, false, true, 64, 576, 256, 1f, 1f);       // filter gradient
        Check(Fast1, false, true, 100, 10, 512, 1f, 0f);       // linear layer x·wᵀ
    }

    [Test]
    public void TwoThreads()
    {
        // Above the parallel threshold, splitting rows (m ≥ n) and columns (n > m).
        foreach (var (ta, tb) in Trans)
        {
            Check(Fast2, ta, tb, 200, 90, 150, 1f, 0.5f, pad: 1);
            Check(Fast2, ta, tb, 60, 333, 130, -1f, 0f, nanC: true);
        }
        Check(Fast2, false, false, 7, 13, 29, 1f, 1f);    // below threshold: single thread
    }

    [Test]
    public void ScalarFallback()
    {
        foreach (var (m, n, k) in SmallShapes())
            foreach (var (ta, tb) in Trans)
                Check(Scalar, ta, tb, m, n, k, 1.5f, 0.5f);
        foreach (var (ta, tb) in Trans)
            Check(Scalar, ta, tb, 16, 100, 144, 1f, 0f, pad: 3);
    }

    [Test]
    public void ConcurrentCallersAgree()
    {
        // Many threads at once with threads=1 (the convolution's pattern): per-thread packing
        // buffers must not be shared. Every caller computes the same product into its own C.
        const int m = 64, n = 64, k = 96;
        var rng = new Random(5);
        var a = new float[m * k]; var b = new float[k * n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble();
        for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble();
        var expect = new float[m * n];
        fixed (float* pa = a, pb = b, pc = expect) Gemm.Sgemm(isa, false, false, m, n, k, 1f, pa, k, pb, n, 0f, pc, n);
        var results = new float[16][];
        System.Threading.Tasks.Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            var c = new float[m * n];
            for (int rep = 0; rep < 20; rep++)
                fixed (float* pa = a, pb = b, pc = c) Gemm.Sgemm(isa, false, false, m, n, k, 1f, pa, k, pb, n, 0f, pc, n);
            results[t] = c;
        });
        foreach (var r in results) Assert.That(r, Is.EqualTo(expect));
    }

    [Test]
    public void SteadyStateDoesNotAllocate()
    {
        const int m = 64, n = 256, k = 144;
        float* a = (float*)NativeMemory.Alloc(m * k * sizeof(float));
        float* b = (float*)NativeMemory.Alloc(k * n * sizeof(float));
        float* c = (float*)NativeMemory.Alloc(m * n * sizeof(float));
        try
        {
            new Span<float>(a, m * k).Fill(1f); new Span<float>(b, k * n).Fill(1f);
            Gemm.Sgemm(isa, false, true, m, n, k, 1f, a, k, b, k, 0f, c, n);   // warm up buffers
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10; i++) Gemm.Sgemm(isa, false, true, m, n, k, 1f, a, k, b, k, 0f, c, n);
            Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
            Assert.That(c[0], Is.EqualTo((float)k));
        }
        finally { NativeMemory.Free(a); NativeMemory.Free(b); NativeMemory.Free(c); }
    }

    /// <summary>
    /// Every kernel accumulates each element in the same order with the same roundings, and the
    /// blocking does not depend on the kernel, so every kernel gives the AVX2 kernel's bits: a run
    /// reproduces exactly on machines with and without AVX-512. Covers ragged tiles, both k block
    /// sizes (in-place and packed Aᵀ), alpha and beta, and the two-thread split.
    /// </summary>
    [Test]
    public void SameBitsAsTheAvx2Kernel()
    {
        var shapes = SmallShapes().Concat([(144, 70, 600), (64, 300, 520), (200, 90, 150), (60, 333, 130), (576, 64, 64)]);
        foreach (var (m, n, k) in shapes)
            foreach (var (ta, tb) in Trans)
                foreach (var (alpha, beta) in new[] { (1f, 0f), (1f, 1f), (-0.75f, 1f), (2.5f, 0.5f) })
                    foreach (int threads in new[] { 1, 2 })
                    {
                        var mine = Product(isa, ta, tb, m, n, k, alpha, beta, threads);
                        var avx2 = Product(GemmIsa.Avx2, ta, tb, m, n, k, alpha, beta, threads);
                        for (int i = 0; i < mine.Length; i++)
                            if (BitConverter.SingleToInt32Bits(mine[i]) != BitConverter.SingleToInt32Bits(avx2[i]))
                                Assert.Fail($"{isa} C[{i / n},{i % n}] = {mine[i]:R}, AVX2 {avx2[i]:R} for tA={ta} tB={tb} " +
                                            $"m={m} n={n} k={k} alpha={alpha} beta={beta} threads={threads}");
                    }
    }

    static float[] Product(GemmIsa isa, bool ta, bool tb, int m, int n, int k, float alpha, float beta, int threads)
    {
        var rng = new Random(m * 31 + n * 17 + k);
        var a = new float[Math.Max(1, m * k)];
        var b = new float[Math.Max(1, k * n)];
        var c = new float[Math.Max(1, m * n)];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < c.Length; i++) c[i] = (float)(rng.NextDouble() * 2 - 1);
        fixed (float* pa = a, pb = b, pc = c)
            Gemm.Sgemm(isa, ta, tb, m, n, k, alpha, pa, ta ? m : k, pb, tb ? k : n, beta, pc, n, threads);
        return c;
    }

    [Test]
    public void AnUnsupportedKernelIsRefused()
    {
        if (Gemm.Isa == GemmIsa.Avx512) Assert.Ignore("this CPU supports every kernel");
        var q = new float[4];
        fixed (float* p = q)
        {
            float* r = p;
            Assert.Throws<PlatformNotSupportedException>(() => Gemm.Sgemm(GemmIsa.Avx512, false, false, 1, 1, 1, 1f, r, 1, r, 1, 0f, r, 1));
        }
    }

    [Test]
    public void RejectsBadArguments()
    {
        var buf = new float[16];
        fixed (float* p = buf)
        {
            float* q = p;
            Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, false, -1, 2, 2, 1f, q, 2, q, 2, 0f, q, 2));
            Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, false, 2, 2, 3, 1f, q, 2, q, 2, 0f, q, 2));
            Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, false, 2, 3, 2, 1f, q, 2, q, 3, 0f, q, 2));
        }
    }
}
