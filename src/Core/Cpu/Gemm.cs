using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static RlMixup.Core.Cpu.GemmPack;

namespace RlMixup.Core.Cpu;

/// <summary>The instruction set of a GEMM micro-kernel, in increasing order.</summary>
public enum GemmIsa { Scalar, Avx2, Avx512 }

/// <summary>
/// Single-precision GEMM on the host, row-major: C (m×n) = alpha·op(A)·op(B) + beta·C.
/// op(A) is (m×k): A is stored (m×k) with row stride lda, or (k×m) when transA.
/// op(B) is (k×n): B is stored (k×n) with row stride ldb, or (n×k) when transB.
/// beta == 0 means C is not read (NaN/garbage in C does not propagate), as in BLAS.
/// </summary>
/// <remarks>
/// BLIS-style structure (Goto/van de Geijn): loop over column blocks of C (NC), then over k
/// blocks (KC) packing a KC×NC slab of op(B) into NR-wide micro-panels, then over row blocks
/// (MC), then a register-blocked micro-kernel sweeps the block: 8×32 with AVX-512 where the CPU
/// has it, else 6×16 with AVX2/FMA (GemmKernels*.cs); a last panel whose columns end in its first
/// half runs a half-width tile (8×16, 6×8), so n = 16 or 196 spends no FMAs on padding. All give
/// the same bits (see GemmKernels.cs):
/// nothing here that decides the k blocking or the thread split depends on the kernel.
/// The shapes this was tuned for are the per-image im2col GEMMs of PreActResNet18 on CIFAR:
///   forward   y(Cout×HW)  = W(Cout×9Cin)·col(9Cin×HW):  (64,1024,576) … (512,16,4608)
///   bwd data  dcol        = Wᵀ·dy  (transA):           (576,1024,64) … (4608,16,512)
///   bwd filt  dW         += dy·colᵀ (transB, beta=1):  (64,576,1024) … (512,4608,16)
/// The work is FMA bound whenever n ≥ 64; for n = 16 the weight matrix is streamed once, so A
/// is then read in place rather than packed (packing would double the memory traffic).
/// </remarks>
public static unsafe class Gemm
{
    // Cache blocking for Zen 3 (per core: L1d 32 KiB, L2 512 KiB; L3 32 MiB shared):
    //   MC·KC·4 = 240 KiB  A block (packed or read in place), stays in L2 across all B panels,
    //   KC·NC·4 = 8 MiB    packed B slab, lives in L3 (only reached when n > 4096),
    //   KC·NR·4 = 32/64 KiB one packed B micro-panel (NR = 16/32), streamed from L2 by the kernel.
    // KC = 512 is larger than the textbook "B micro-panel fits L1" value (256): measured on the
    // forward shapes it wins 5–15% (fewer passes over C, fewer B packs), and Zen 3's L2 feeds
    // the 64 B of B per 6 cycles the kernel needs with room to spare. The exception is Aᵀ read
    // in place, where the kernel touches one cache line of A per k step and those KC lines
    // must stay in L1 for the next MR-row panel, so that path uses KC_T = 256.
    // On Zen 4, MC = 48 measured 4–6% faster on single width-64 products (`bench gemm`, one
    // thread) but 5% slower on the width-64 training phase (3 alternating rounds of `rlmixup
    // bench`), so MC stays 120.
    internal const int KC = 512, KC_T = 256, MC = 120, NC = 4096;

    // A is packed only when it is stored transposed and reused across more than 64 columns of B
    // (n > 64). Row-major A is always read in place: measured as fast as packed at every
    // model shape (1024³ included), and for n ≤ 64 packing costs 15–20%. Counted in columns, not
    // panels, so that the k blocking (KC or KC_T) is the same whichever kernel runs.
    internal const int PackATransMinColumns = 65;

    // Threads split C at multiples of these. Columns at the kernels' widest NR: a strip's column
    // count decides whether Aᵀ is packed, and so its k blocking, which must not depend on the
    // kernel. Rows decide nothing about the arithmetic, so they split at 8 (the AVX-512 MR) for
    // balance: m = 200 was 120 + 80 rows at a multiple of 24, now 104 + 96.
    internal const int SplitRows = 8, SplitCols = 32;

    /// <summary>
    /// The micro-kernel this process uses: AVX-512 when the CPU has it and .NET accelerates
    /// Vector512 (DOTNET_EnableAVX512=0 or DOTNET_PreferredVectorBitWidth=256 turn it off), else
    /// AVX2/FMA, else the scalar loops.
    /// </summary>
    public static GemmIsa Isa { get; } = Detect();

    static GemmIsa Detect() =>
        Avx512F.IsSupported && Vector512.IsHardwareAccelerated ? GemmIsa.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? GemmIsa.Avx2
        : GemmIsa.Scalar;

    // Below this many multiply-adds (m·n·k) a second thread costs more than it saves (waking a
    // pool thread is ~10 µs; 2^21 FMAs is ~50 µs on one core).
    internal const long ParallelMinWork = 1L << 21;

    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads = 1) =>
        Sgemm(Isa, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);

    /// <summary>Sgemm with a chosen kernel (tests and benchmarks compare them); isa must be supported here.</summary>
    internal static void Sgemm(GemmIsa isa, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads = 1)
    {
        if (isa > Isa) throw new PlatformNotSupportedException($"the {isa} GEMM kernel needs a CPU with {isa}");
        if (isa == GemmIsa.Scalar)
        {
            SgemmScalar(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }

        int t = Math.Min(threads, Environment.ProcessorCount);
        if (t > 1 && (long)m * n * k >= ParallelMinWork)
            RunParallel(isa, t, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else
            Blocked(isa, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    static void Blocked(GemmIsa isa, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, nint lda, float* b, nint ldb, float beta, float* c, nint ldc)
    {
        if (isa == GemmIsa.Avx512) Blocked<Avx512Kernel>(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else Blocked<Avx2Kernel>(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    /// <summary>The blocked, packed single-thread GEMM (m, n, k ≥ 1, alpha ≠ 0).</summary>
    static void Blocked<K>(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, nint lda, float* b, nint ldb, float beta, float* c, nint ldc) where K : IGemmKernel
    {
        int MR = K.MR, NR = K.NR;
        var ws = Workspace.Get(Math.Min(k, KC), Math.Min(NC, RoundUp(n, NR)));
        float* tile = stackalloc float[MR * NR];
        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            bool packA = transA && nc >= PackATransMinColumns;
            // Split k evenly into blocks of at most kcMax (576 → 2×288 rather than 512 + 64),
            // so no pass over C is spent on a sliver of k.
            int kcMax = transA && !packA ? KC_T : KC;
            int kBlocks = (k + kcMax - 1) / kcMax;
            int kcStep = Math.Min(kcMax, RoundUp((k + kBlocks - 1) / kBlocks, 8));
            for (int pc = 0; pc < k; pc += kcStep)
            {
                int kc = Math.Min(kcStep, k - pc);
                float betaP = pc == 0 ? beta : 1f;   // later k blocks accumulate onto the first
                PackB<K>(transB, transB ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, kc, nc, ws.B);
                for (int ic = 0; ic < m; ic += MC)
                {
                    int mc = Math.Min(MC, m - ic);
                    float* aBlk = transA ? a + pc * lda + ic : a + ic * lda + pc;
                    int mFull = mc - mc % MR;        // rows covered by whole MR-row panels
                    if (packA)
                        PackA<K>(transA, aBlk, lda, mc, kc, ws.A);
                    else if (mFull < mc)             // in-place A: only the ragged last panel is
                        PackA<K>(transA, transA ? aBlk + mFull : aBlk + mFull * lda, lda, mc - mFull, kc, ws.A);

                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int nr = Math.Min(NR, nc - jr);
                        float* bp = ws.B + jr * kc;
                        for (int ir = 0; ir < mc; ir += MR)
                        {
                            int mr = Math.Min(MR, mc - ir);
                            float* ap; nint rsA, csA;
                            if (packA) { ap = ws.A + ir * kc; rsA = 1; csA = MR; }
                            else if (mr < MR) { ap = ws.A; rsA = 1; csA = MR; }
                            else if (transA) { ap = aBlk + ir; rsA = 1; csA = lda; }
                            else { ap = aBlk + ir * lda; rsA = lda; csA = 1; }

                            float* cp = c + (ic + ir) * ldc + jc + jr;
                            bool half = nr <= NR / 2;   // a half-width last panel (PackB)
                            // Ragged edge: the whole tile into scratch, then merge the valid part.
                            bool direct = mr == MR && nr == (half ? NR / 2 : NR);
                            float* dst = direct ? cp : tile;
                            nint ldd = direct ? ldc : NR;
                            float al = direct ? alpha : 1f, be = direct ? betaP : 0f;
                            if (half) K.RunHalf(kc, ap, rsA, csA, bp, dst, ldd, al, be);
                            else K.Run(kc, ap, rsA, csA, bp, dst, ldd, al, be);
                            if (!direct) MergeTile(tile, NR, mr, nr, alpha, betaP, cp, ldc);
                        }
                    }
                }
            }
        }
    }

    /// <summary>The kernels' store (alpha·acc, fma(acc, alpha, C) or fma(acc, alpha, beta·C)) for a ragged tile.</summary>
    static void MergeTile(float* tile, int ldt, int mr, int nr, float alpha, float beta, float* c, nint ldc)
    {
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
            {
                float acc = tile[i * ldt + j];
                float* cij = c + i * ldc + j;
                *cij = beta == 0f ? acc * alpha
                    : MathF.FusedMultiplyAdd(acc, alpha, beta == 1f ? *cij : *cij * beta);
            }
    }

    static void ScaleC(int m, int n, float beta, float* c, nint ldc)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + i * ldc, n);
            if (beta == 0f) row.Clear();
            else for (int j = 0; j < n; j++) row[j] *= beta;
        }
    }

    static int RoundUp(int x, int q) => (x + q - 1) / q * q;

    static void Validate(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"negative size m={m} n={n} k={k}");
        if (m == 0 || n == 0) return;
        if (k > 0 && lda < (transA ? m : k)) throw new ArgumentOutOfRangeException(nameof(lda));
        if (k > 0 && ldb < (transB ? k : n)) throw new ArgumentOutOfRangeException(nameof(ldb));
        if (ldc < n) throw new ArgumentOutOfRangeException(nameof(ldc));
    }

    // ---------------------------------------------------------------- threads > 1
    // C is cut into t strips, one blocked GEMM per strip, each with its own packing buffers.
    // We cut the longer side: cutting rows makes every thread pack all of op(B) (k·n extra
    // work), cutting columns makes every thread pack all of op(A) (k·m), so the cheaper
    // duplicate is along the shorter side. E.g. 1024³ → two 512×1024 strips.
    // The calling thread runs strip 0; strips 1..t-1 go to the thread pool through reusable
    // work items (no allocation per call once the items exist).

    static void RunParallel(GemmIsa isa, int t, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, nint lda, float* b, nint ldb, float beta, float* c, nint ldc)
    {
        bool byRows = m >= n;
        int q = byRows ? SplitRows : SplitCols, len = byRows ? m : n;
        int step = RoundUp((len + t - 1) / t, q);
        t = (len + step - 1) / step;
        var jobs = Job.ForThisThread(t);
        for (int s = 1; s < t; s++)
        {
            var job = jobs[s];
            int o = s * step, sz = Math.Min(step, len - o);
            job.Done.Reset();
            job.Error = null;
            if (byRows)
                job.Set(isa, transA, transB, sz, n, k, alpha, transA ? a + o : a + o * lda, lda, b, ldb, beta, c + o * ldc, ldc);
            else
                job.Set(isa, transA, transB, m, sz, k, alpha, a, lda, transB ? b + o * ldb : b + o, ldb, beta, c + o, ldc);
            ThreadPool.UnsafeQueueUserWorkItem(job, preferLocal: false);
        }
        if (byRows) Blocked(isa, transA, transB, Math.Min(step, m), n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else Blocked(isa, transA, transB, m, Math.Min(step, n), k, alpha, a, lda, b, ldb, beta, c, ldc);
        for (int s = 1; s < t; s++)
        {
            jobs[s].Done.Wait();
            if (jobs[s].Error is { } e) throw new AggregateException(e);
        }
    }

    sealed class Job : IThreadPoolWorkItem
    {
        [ThreadStatic] static Job[]? cache;
        internal readonly ManualResetEventSlim Done = new(false);
        internal Exception? Error;
        GemmIsa isa;
        bool transA, transB;
        int m, n, k;
        float alpha, beta;
        float* a, b, c;
        nint lda, ldb, ldc;

        internal static Job[] ForThisThread(int t)
        {
            var jobs = cache;
            if (jobs == null || jobs.Length < t)
            {
                jobs = new Job[t];
                for (int i = 0; i < t; i++) jobs[i] = new Job();
                cache = jobs;
            }
            return jobs;
        }

        internal void Set(GemmIsa isa, bool transA, bool transB, int m, int n, int k, float alpha,
            float* a, nint lda, float* b, nint ldb, float beta, float* c, nint ldc)
        {
            this.isa = isa;
            (this.transA, this.transB, this.m, this.n, this.k, this.alpha, this.beta) = (transA, transB, m, n, k, alpha, beta);
            this.a = a; this.b = b; this.c = c;
            (this.lda, this.ldb, this.ldc) = (lda, ldb, ldc);
        }

        public void Execute()
        {
            try { Blocked(isa, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); }
            catch (Exception e) { Error = e; }
            finally { Done.Set(); }
        }
    }

    // ---------------------------------------------------------------- packing buffers
    /// <summary>
    /// Per-thread packing buffers: 64-byte aligned native memory, A fixed at MC·KC floats
    /// (240 KiB), B growing to the largest kc·n seen (8 MiB at most, ~1.4 MiB for the
    /// PreActResNet18 shapes). The finalizer frees them once the thread is gone.
    /// </summary>
    sealed class Workspace
    {
        [ThreadStatic] static Workspace? current;
        internal float* A, B;
        int bFloats;

        internal static Workspace Get(int kc, int ncPadded)
        {
            var ws = current ??= new Workspace();
            if (ws.A == null) ws.A = (float*)NativeMemory.AlignedAlloc((nuint)(MC * KC * sizeof(float)), 64);
            int need = kc * ncPadded;
            if (ws.bFloats < need)
            {
                // Grow with headroom so a network's mix of layer shapes settles after a few calls.
                int size = Math.Min(KC * NC, need + need / 4);
                NativeMemory.AlignedFree(ws.B);
                ws.B = (float*)NativeMemory.AlignedAlloc((nuint)size * sizeof(float), 64);
                ws.bFloats = size;
            }
            return ws;
        }

        ~Workspace()
        {
            NativeMemory.AlignedFree(A);
            NativeMemory.AlignedFree(B);
        }
    }

    // ---------------------------------------------------------------- scalar fallback
    /// <summary>
    /// Plain loops with the same contract as Sgemm, used when AVX2/FMA are missing (and by the
    /// tests, which call it directly). Loop order i-p-j keeps the inner loop unit-stride on
    /// B and C when B is not transposed; with transB each C element is a dot product instead.
    /// </summary>
    internal static void SgemmScalar(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        if (m == 0 || n == 0) return;
        ScaleC(m, n, beta, c, ldc);
        if (k == 0 || alpha == 0f) return;
        for (int i = 0; i < m; i++)
        {
            float* ci = c + (nint)i * ldc;
            if (!transB)
            {
                for (int p = 0; p < k; p++)
                {
                    float aip = alpha * (transA ? a[(nint)p * lda + i] : a[(nint)i * lda + p]);
                    float* bp = b + (nint)p * ldb;
                    for (int j = 0; j < n; j++) ci[j] += aip * bp[j];
                }
            }
            else
            {
                for (int j = 0; j < n; j++)
                {
                    float* bj = b + (nint)j * ldb;
                    float s = 0f;
                    for (int p = 0; p < k; p++)
                        s += (transA ? a[(nint)p * lda + i] : a[(nint)i * lda + p]) * bj[p];
                    ci[j] += alpha * s;
                }
            }
        }
    }
}
