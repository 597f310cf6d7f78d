using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlMixup.Core.Cpu;

// The SIMD pieces of Gemm: the register-blocked micro-kernels and the panel packers. Kept apart
// from Gemm.cs (the blocking loops, threading and the scalar fallback) so that each file reads
// on its own. Two micro-kernels implement IGemmKernel: Avx2Kernel (6×16, this file) and
// Avx512Kernel (8×32, GemmKernels512.cs); Gemm's loops are generic over them, so the JIT
// compiles one specialised copy of the loops per kernel with MR and NR as constants.
//
// Data layout shared by kernels and packers (BLIS terms):
//   packed B micro-panel: kc rows of NR floats, row p holds op(B)[p, j0..j0+NR) (zero padded),
//   A micro-panel: MR rows of op(A) addressed as a[r·rsA + p·csA]; that covers
//     packed A       (rsA=1,   csA=MR),  written by PackA, zero padded past the last row,
//     A in place     (rsA=lda, csA=1),   op(A) = A row-major, read straight from the caller,
//     Aᵀ in place    (rsA=1,   csA=lda), op(A) = Aᵀ, read straight from the caller.
//   Reading A in place avoids a full extra pass over A when each A panel is used only once or
//   twice (n = 16 or 64 in the deep conv layers, where A is the 9 MB weight matrix).
//
// Every kernel accumulates C[i, j] over p in increasing order with one fused multiply-add per
// step, and stores alpha·acc (beta = 0), fma(acc, alpha, C) (beta = 1) or fma(acc, alpha, beta·C).
// So the 6×16 and the 8×32 kernel give the same bits for the same k blocking, and Gemm keeps the
// blocking independent of the kernel: a run is bit-identical on AVX2-only and AVX-512 machines.

/// <summary>A register-blocked micro-kernel: C[0..MR, 0..NR) = alpha·(A·B) + beta·C over kc steps.</summary>
internal unsafe interface IGemmKernel
{
    static abstract int MR { get; }
    static abstract int NR { get; }

    /// <summary>beta == 0: C is not read. B is one packed micro-panel (kc × NR).</summary>
    static abstract void Run(int kc, float* a, nint rsA, nint csA, float* b, float* c, nint ldc, float alpha, float beta);

    /// <summary>
    /// Run on C[0..MR, 0..NR/2) with B a half-width packed panel (kc × NR/2): the last panel of a
    /// product whose columns end in its first half (n = 196 ends 4 columns into a 32-wide panel),
    /// which a full tile would spend mostly on padding.
    /// </summary>
    static abstract void RunHalf(int kc, float* a, nint rsA, nint csA, float* b, float* c, nint ldc, float alpha, float beta);
}

/// <summary>
/// 6×16 with AVX2/FMA: 12 ymm accumulators (6 rows × 2 vectors of 8) + 2 B vectors + 1 broadcast
/// = 15 of the 16 ymm registers. Per k step: 2 loads of B, 6 broadcasts of A, 12 FMAs; the FMAs are
/// the bottleneck (2 per cycle on Zen 3/4, latency 4 → needs ≥ 8 independent chains; we have 12).
/// </summary>
internal readonly unsafe struct Avx2Kernel : IGemmKernel
{
    public static int MR => 6;
    public static int NR => 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, nint rsA, nint csA, float* b,
        float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default,
            c40 = default, c41 = default, c50 = default, c51 = default;
        // Six row pointers and one shared offset: every broadcast is then a single
        // vbroadcastss ymm, [row + off*4], whatever the strides are.
        float* a0 = a, a1 = a + rsA, a2 = a + 2 * rsA, a3 = a + 3 * rsA, a4 = a + 4 * rsA, a5 = a + 5 * rsA;
        nint off = 0;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Avx.LoadVector256(b), b1 = Avx.LoadVector256(b + 8), x;
            x = Vector256.Create(a0[off]); c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[off]); c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[off]); c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[off]); c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[off]); c40 = Fma.MultiplyAdd(x, b0, c40); c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[off]); c50 = Fma.MultiplyAdd(x, b0, c50); c51 = Fma.MultiplyAdd(x, b1, c51);
            off += csA;
            b += NR;
        }
        Store(c, c00, c01, alpha, beta);
        Store(c + ldc, c10, c11, alpha, beta);
        Store(c + 2 * ldc, c20, c21, alpha, beta);
        Store(c + 3 * ldc, c30, c31, alpha, beta);
        Store(c + 4 * ldc, c40, c41, alpha, beta);
        Store(c + 5 * ldc, c50, c51, alpha, beta);
    }

    /// <summary>6×8: one accumulator per row, B panels 8 wide.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunHalf(int kc, float* a, nint rsA, nint csA, float* b,
        float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        float* a0 = a, a1 = a + rsA, a2 = a + 2 * rsA, a3 = a + 3 * rsA, a4 = a + 4 * rsA, a5 = a + 5 * rsA;
        nint off = 0;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Avx.LoadVector256(b);
            c0 = Fma.MultiplyAdd(Vector256.Create(a0[off]), b0, c0);
            c1 = Fma.MultiplyAdd(Vector256.Create(a1[off]), b0, c1);
            c2 = Fma.MultiplyAdd(Vector256.Create(a2[off]), b0, c2);
            c3 = Fma.MultiplyAdd(Vector256.Create(a3[off]), b0, c3);
            c4 = Fma.MultiplyAdd(Vector256.Create(a4[off]), b0, c4);
            c5 = Fma.MultiplyAdd(Vector256.Create(a5[off]), b0, c5);
            off += csA;
            b += 8;
        }
        Store(c, c0, alpha, beta);
        Store(c + ldc, c1, alpha, beta);
        Store(c + 2 * ldc, c2, alpha, beta);
        Store(c + 3 * ldc, c3, alpha, beta);
        Store(c + 4 * ldc, c4, alpha, beta);
        Store(c + 5 * ldc, c5, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* c, Vector256<float> lo, Vector256<float> hi, float alpha, float beta)
    {
        Store(c, lo, alpha, beta);
        Store(c + 8, hi, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* c, Vector256<float> v, float alpha, float beta)
    {
        var va = Vector256.Create(alpha);
        if (beta == 0f) Avx.Store(c, v * va);   // never read C: it may hold NaN/garbage (BLAS semantics)
        else if (beta == 1f) Avx.Store(c, Fma.MultiplyAdd(v, va, Avx.LoadVector256(c)));
        else Avx.Store(c, Fma.MultiplyAdd(v, va, Avx.LoadVector256(c) * Vector256.Create(beta)));
    }

}

/// <summary>The panel packers, generic over the kernel's MR (for A) and NR (for B).</summary>
internal static unsafe class GemmPack
{
    /// <summary>
    /// Packs op(A)[i0.., p0..p0+kc) for mc rows into ceil(mc/MR) micro-panels of kc×MR floats
    /// (row r of panel q at dst[q·MR·kc + p·MR + r]); rows past mc are zero.
    /// </summary>
    internal static void PackA<K>(bool transA, float* a, nint lda, int mc, int kc, float* dst) where K : IGemmKernel
    {
        int MR = K.MR;
        float** rows = stackalloc float*[MR];
        for (int i = 0; i < mc; i += MR, dst += MR * kc)
        {
            int mr = Math.Min(MR, mc - i);
            if (!transA)
            {
                // A row-major (m×k): gather MR row streams, one float each per k step.
                float* r0 = a + i * lda;
                if (mr == MR)
                {
                    for (int r = 0; r < MR; r++) rows[r] = r0 + r * lda;
                    float* d = dst;
                    for (int p = 0; p < kc; p++, d += MR)
                        for (int r = 0; r < MR; r++) d[r] = rows[r][p];
                }
                else
                {
                    for (int p = 0; p < kc; p++)
                        for (int r = 0; r < MR; r++)
                            dst[p * MR + r] = r < mr ? r0[r * lda + p] : 0f;
                }
            }
            else
            {
                // A stored (k×m): the MR values of one k step are contiguous.
                float* s = a + i;
                if (mr == MR)
                {
                    float* d = dst;
                    for (int p = 0; p < kc; p++, d += MR, s += lda)
                    {
                        if (MR == 8) Avx.Store(d, Avx.LoadVector256(s));
                        else
                        {
                            Sse.Store(d, Sse.LoadVector128(s));
                            for (int r = 4; r < MR; r++) d[r] = s[r];
                        }
                    }
                }
                else
                {
                    for (int p = 0; p < kc; p++)
                        for (int r = 0; r < MR; r++)
                            dst[p * MR + r] = r < mr ? s[p * lda + r] : 0f;
                }
            }
        }
    }

    /// <summary>
    /// Packs op(B)[p0..p0+kc, j0..j0+nc) into ceil(nc/NR) micro-panels of kc×NR floats
    /// (element (p, j) of panel q at dst[q·NR·kc + p·NR + j]); columns past nc are zero. A last
    /// panel of at most NR/2 columns is kc×NR/2 (the kernel's RunHalf reads it). NR/2 is a
    /// multiple of 8.
    /// </summary>
    internal static void PackB<K>(bool transB, float* b, nint ldb, int kc, int nc, float* dst) where K : IGemmKernel
    {
        for (int j = 0; j < nc; j += K.NR, dst += K.NR * kc)
        {
            int nr = Math.Min(K.NR, nc - j);
            // A last panel whose columns end in its first half is packed half-width, for RunHalf.
            int NR = nr <= K.NR / 2 ? K.NR / 2 : K.NR;
            if (!transB)
            {
                // B row-major (k×n): each k step is NR contiguous floats, a straight copy.
                float* s = b + j;
                if (nr == NR)
                {
                    float* d = dst;
                    for (int p = 0; p < kc; p++, d += NR, s += ldb)
                        for (int q = 0; q < NR; q += 8)
                            Avx.Store(d + q, Avx.LoadVector256(s + q));
                }
                else
                {
                    for (int p = 0; p < kc; p++)
                        for (int jj = 0; jj < NR; jj++)
                            dst[p * NR + jj] = jj < nr ? s[p * ldb + jj] : 0f;
                }
            }
            else
            {
                // B stored (n×k), e.g. the im2col matrix in the filter gradient dW += dy·colᵀ:
                // NR rows of B become the NR columns of the panel, transposed 8×8 at a time.
                float* s = b + j * ldb;
                if (nr == NR)
                {
                    int p = 0;
                    for (; p + 8 <= kc; p += 8)
                        for (int q = 0; q < NR; q += 8)
                            Transpose8x8(s + q * ldb + p, ldb, dst + p * NR + q, NR);
                    for (; p < kc; p++)
                        for (int jj = 0; jj < NR; jj++)
                            dst[p * NR + jj] = s[jj * ldb + p];
                }
                else
                {
                    for (int p = 0; p < kc; p++)
                        for (int jj = 0; jj < NR; jj++)
                            dst[p * NR + jj] = jj < nr ? s[jj * ldb + p] : 0f;
                }
            }
        }
    }

    /// <summary>
    /// Reads 8 rows of 8 floats (row stride ld) and writes the transpose as 8 rows of 8 floats
    /// with row stride ldd: dst[p·ldd + j] = src[j·ld + p].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8x8(float* src, nint ld, float* dst, nint ldd)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + ld);
        var r2 = Avx.LoadVector256(src + 2 * ld); var r3 = Avx.LoadVector256(src + 3 * ld);
        var r4 = Avx.LoadVector256(src + 4 * ld); var r5 = Avx.LoadVector256(src + 5 * ld);
        var r6 = Avx.LoadVector256(src + 6 * ld); var r7 = Avx.LoadVector256(src + 7 * ld);
        // Interleave pairs of rows, then pairs of pairs: u0 = column 0 (low lane) and column 4
        // (high lane) of rows 0..3, and so on; the final lane permutes join rows 0..3 and 4..7.
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }
}
