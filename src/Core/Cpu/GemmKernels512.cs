using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlMixup.Core.Cpu;

/// <summary>
/// 8×32 with AVX-512F: 16 zmm accumulators (8 rows × 2 vectors of 16) + 2 B vectors + 1 broadcast
/// = 19 of the 32 zmm registers. Per k step: 2 loads of B, 8 broadcasts of A, 16 FMAs, against the
/// AVX2 kernel's 8 loads per 12 (half-width) FMAs: a quarter of the load and broadcast instructions
/// per multiply-add. On Zen 4 a zmm FMA issues on both 256-bit pipes, so the peak FLOP rate is the
/// AVX2 kernel's; what the wider tile buys is front-end and load-port headroom, which is where the
/// 6×16 kernel loses time. 8 rows (not 12 or 14) because the model's row counts are multiples of 16:
/// 8 divides them all, so no rows are wasted on a ragged last panel.
/// </summary>
/// <remarks>
/// The arithmetic per element is the AVX2 kernel's exactly (see GemmKernels.cs), so the two give
/// the same bits; GemmTests checks that on ragged shapes.
/// </remarks>
internal readonly unsafe struct Avx512Kernel : IGemmKernel
{
    public static int MR => 8;
    public static int NR => 32;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, nint rsA, nint csA, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default,
            c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        float* a0 = a, a1 = a + rsA, a2 = a + 2 * rsA, a3 = a + 3 * rsA,
            a4 = a + 4 * rsA, a5 = a + 5 * rsA, a6 = a + 6 * rsA, a7 = a + 7 * rsA;
        nint off = 0;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16), x;
            x = Vector512.Create(a0[off]); c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[off]); c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[off]); c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[off]); c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a4[off]); c40 = Avx512F.FusedMultiplyAdd(x, b0, c40); c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a5[off]); c50 = Avx512F.FusedMultiplyAdd(x, b0, c50); c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a6[off]); c60 = Avx512F.FusedMultiplyAdd(x, b0, c60); c61 = Avx512F.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a7[off]); c70 = Avx512F.FusedMultiplyAdd(x, b0, c70); c71 = Avx512F.FusedMultiplyAdd(x, b1, c71);
            off += csA;
            b += 32;
        }
        Store(c, c00, c01, alpha, beta);
        Store(c + ldc, c10, c11, alpha, beta);
        Store(c + 2 * ldc, c20, c21, alpha, beta);
        Store(c + 3 * ldc, c30, c31, alpha, beta);
        Store(c + 4 * ldc, c40, c41, alpha, beta);
        Store(c + 5 * ldc, c50, c51, alpha, beta);
        Store(c + 6 * ldc, c60, c61, alpha, beta);
        Store(c + 7 * ldc, c70, c71, alpha, beta);
    }

    /// <summary>8×16: one accumulator per row, B panels 16 wide.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunHalf(int kc, float* a, nint rsA, nint csA, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default,
            c4 = default, c5 = default, c6 = default, c7 = default;
        float* a0 = a, a1 = a + rsA, a2 = a + 2 * rsA, a3 = a + 3 * rsA,
            a4 = a + 4 * rsA, a5 = a + 5 * rsA, a6 = a + 6 * rsA, a7 = a + 7 * rsA;
        nint off = 0;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a0[off]), b0, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a1[off]), b0, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a2[off]), b0, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a3[off]), b0, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a4[off]), b0, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a5[off]), b0, c5);
            c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(a6[off]), b0, c6);
            c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(a7[off]), b0, c7);
            off += csA;
            b += 16;
        }
        Store(c, c0, alpha, beta);
        Store(c + ldc, c1, alpha, beta);
        Store(c + 2 * ldc, c2, alpha, beta);
        Store(c + 3 * ldc, c3, alpha, beta);
        Store(c + 4 * ldc, c4, alpha, beta);
        Store(c + 5 * ldc, c5, alpha, beta);
        Store(c + 6 * ldc, c6, alpha, beta);
        Store(c + 7 * ldc, c7, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* c, Vector512<float> lo, Vector512<float> hi, float alpha, float beta)
    {
        Store(c, lo, alpha, beta);
        Store(c + 16, hi, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(float* c, Vector512<float> v, float alpha, float beta)
    {
        var va = Vector512.Create(alpha);
        if (beta == 0f) Vector512.Store(v * va, c);   // never read C: it may hold NaN/garbage (BLAS semantics)
        else if (beta == 1f) Vector512.Store(Avx512F.FusedMultiplyAdd(v, va, Vector512.Load(c)), c);
        else Vector512.Store(Avx512F.FusedMultiplyAdd(v, va, Vector512.Load(c) * Vector512.Create(beta)), c);
    }
}
