using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlMixup.Core.Cpu;

// Winograd F(4×4, 3×3): each 4×4 output tile costs 36 multiplies per (in, out) channel pair, 2.25
// per output where F(2×2, 3×3) costs 4 and a direct convolution 9. The drivers are F(2×2)'s
// (CpuBackend.Winograd.cs) with 36 ξ planes instead of 16; only the transforms differ:
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//   G  = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
// (Lavin & Gray 2016, points 0, ±1, ±2). The larger points cost accuracy: a float32 output is off
// by a few 1e-6 of the sum of |terms| where F(2×2) is off by about 1e-7, the trade that cuDNN and
// oneDNN make too. Tile (i, j) reads padded input rows 4i..4i+5 and columns 4j..4j+5; each padded
// row is split into its four column phases, so 8 tiles of a tile row are 8 contiguous floats of
// each phase.
public sealed partial class CpuBackend
{
    // Which tile, measured with `bench conv --compare-tile` (F(2×2) against F(4×4), alternating run
    // by run, batch 100, 2 threads; docs/performance.md has the tables):
    //  - forward and backward-data: F(4×4) wins from 64 channels (1.1–1.6× at width 64, the agent's
    //    1.2–1.5×); at 16–32 channels the two are level within the noise;
    //  - backward-filter: its GEMMs have only Cout×Cin outputs, so the transforms weigh more: F(4×4)
    //    loses at 64 channels on 32×32 maps (0.85–0.9×) and wins from 100 (1.1–1.3×).
    // F(4×4)'s 36 planes of V and M are 2.25× F(2×2)'s per column, and the group of images whose
    // tiles one set of GEMMs covers must stay near the L2 cache: 64 columns, not 512, measured
    // 1.3–1.6× faster at width 64 (at 512 columns F(4×4) lost to F(2×2) on 32×32 maps). The
    // filter gradient keeps 512: its GEMMs reduce over the columns into Cout×Cin partial sums.
    private const int Winograd4Columns = 64;

    /// <summary>Forward and backward-data take F(4×4, 3×3) from this min(Cin, Cout) up, F(2×2, 3×3) below.</summary>
    internal int Winograd4MinChannels { get; set; } = 64;

    /// <summary>The filter gradient takes F(4×4, 3×3) from this min(Cin, Cout) up.</summary>
    internal int Winograd4FilterMinChannels { get; set; } = 96;

    /// <summary>Tests and benchmarks force the Winograd tile (2 or 4); null chooses by channel count.</summary>
    internal int? WinogradTile { get; set; }

    /// <summary>The output tile side, 2 or 4, of the Winograd convolution for this plan.</summary>
    private int TileFor(in ConvPlan pl, bool filterGrad) =>
        WinogradTile ?? (Math.Min(pl.C, pl.O) >= (filterGrad ? Winograd4FilterMinChannels : Winograd4MinChannels) ? 4 : 2);

    /// <summary>The columns (tiles of a group of images) each forward or backward-data GEMM aims for.</summary>
    private static int WinogradColumns(int tile) => tile == 4 ? Winograd4Columns : TargetColumns;

    /// <summary>U = G g Gᵀ (6×6) for 8 filters: taps k at g[k·ld], results ξ = 6·row + col at dst[ξ·us].</summary>
    private static unsafe void FilterTransform8x6(float* g, int ld, float* dst, long us)
    {
        // t (6×3) = G g, kept as 18 vectors t[3·i + j]
        Vector256<float>* t = stackalloc Vector256<float>[18];
        for (int j = 0; j < 3; j++)
        {
            var g0 = Vector256.Load(g + j * ld); var g1 = Vector256.Load(g + (3 + j) * ld); var g2 = Vector256.Load(g + (6 + j) * ld);
            G6(g0, g1, g2, out t[j], out t[3 + j], out t[6 + j], out t[9 + j], out t[12 + j], out t[15 + j]);
        }
        for (int i = 0; i < 6; i++)
        {
            G6(t[3 * i], t[3 * i + 1], t[3 * i + 2], out var u0, out var u1, out var u2, out var u3, out var u4, out var u5);
            float* d = dst + 6 * i * us;
            u0.Store(d); u1.Store(d + us); u2.Store(d + 2 * us); u3.Store(d + 3 * us); u4.Store(d + 4 * us); u5.Store(d + 5 * us);
        }
    }

    /// <summary>G applied to (g0, g1, g2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void G6(Vector256<float> g0, Vector256<float> g1, Vector256<float> g2,
        out Vector256<float> u0, out Vector256<float> u1, out Vector256<float> u2, out Vector256<float> u3, out Vector256<float> u4, out Vector256<float> u5)
    {
        var sixth = Vector256.Create(1f / 6); var twelfth = Vector256.Create(1f / 12);
        var outer = g0 + g2;
        var edge = Vector256.FusedMultiplyAdd(g0, Vector256.Create(1f / 24), g2 * sixth);
        u0 = g0 * Vector256.Create(0.25f);
        u1 = -(outer + g1) * sixth;
        u2 = (g1 - outer) * sixth;
        u3 = Vector256.FusedMultiplyAdd(g1, twelfth, edge);
        u4 = Vector256.FusedMultiplyAdd(-g1, twelfth, edge);
        u5 = g2;
    }

    /// <summary>
    /// V[ξ, c, ti·TW + tj] (row stride ld, ξ planes xiStride apart) = Bᵀ d B for every 6×6 tile of
    /// one image x (ci, h, w). planes: scratch of InputPlanes4Floats(h, w).
    /// </summary>
    private static unsafe void InputTransform4(float* x, int ci, int h, int w, float* v, int ld, long xiStride, float* planes)
    {
        int th = (h + 3) / 4, tw = (w + 3) / 4, rw = RoundUp8(tw) + 1, pr = 4 * th + 2;
        long phase = (long)pr * rw + 8;
        float* row = planes + 4 * phase;
        new Span<float>(row, PhaseRowFloats(tw)).Clear();      // only [1, w] is ever written below
        Vector256<float>* t = stackalloc Vector256<float>[36];
        for (int c = 0; c < ci; c++)
        {
            float* xc = x + (long)c * h * w;
            // padded row r is image row r − 1; padded column q is image column q − 1
            for (int r = 0; r < pr; r++)
                SplitPhases(r >= 1 && r - 1 < h ? xc + (r - 1) * w : null, w, 1, planes + r * rw, phase, tw + 1, row);
            float* vc = v + (long)c * ld;
            for (int ti = 0; ti < th; ti++)
            {
                float* top = planes + 4 * ti * rw;
                float* dst = vc + ti * tw;
                for (int j = 0; j < tw; j += 8, dst += 8)
                {
                    // Bᵀ down the six rows of each of the six columns (column q: phase q mod 4, shifted by q / 4)
                    for (int q = 0; q < 6; q++)
                    {
                        float* p = top + (q & 3) * phase + j + (q >> 2);
                        B6(Vector256.Load(p), Vector256.Load(p + rw), Vector256.Load(p + 2 * rw),
                            Vector256.Load(p + 3 * rw), Vector256.Load(p + 4 * rw), Vector256.Load(p + 5 * rw),
                            out t[q], out t[6 + q], out t[12 + q], out t[18 + q], out t[24 + q], out t[30 + q]);
                    }
                    // then B across the columns: row k of Bᵀ d goes to ξ = 6k .. 6k+5
                    for (int k = 0; k < 6; k++)
                    {
                        B6(t[6 * k], t[6 * k + 1], t[6 * k + 2], t[6 * k + 3], t[6 * k + 4], t[6 * k + 5],
                            out var r0, out var r1, out var r2, out var r3, out var r4, out var r5);
                        float* d = dst + 6 * k * xiStride;
                        r0.Store(d); r1.Store(d + xiStride); r2.Store(d + 2 * xiStride);
                        r3.Store(d + 3 * xiStride); r4.Store(d + 4 * xiStride); r5.Store(d + 5 * xiStride);
                    }
                }
            }
        }
    }

    /// <summary>Bᵀ applied to (d0 … d5).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void B6(Vector256<float> d0, Vector256<float> d1, Vector256<float> d2, Vector256<float> d3, Vector256<float> d4, Vector256<float> d5,
        out Vector256<float> r0, out Vector256<float> r1, out Vector256<float> r2, out Vector256<float> r3, out Vector256<float> r4, out Vector256<float> r5)
    {
        var four = Vector256.Create(4f); var five = Vector256.Create(5f);
        var s = d4 - d2;
        var e = (d3 - d1) * Vector256.Create(2f);
        r0 = Vector256.FusedMultiplyAdd(four, d0, Vector256.FusedMultiplyAdd(-five, d2, d4));
        r1 = Vector256.FusedMultiplyAdd(-four, d1 + d2, d3 + d4);
        r2 = Vector256.FusedMultiplyAdd(four, d1 - d2, d4 - d3);
        r3 = s + e;
        r4 = s - e;
        r5 = Vector256.FusedMultiplyAdd(four, d1, Vector256.FusedMultiplyAdd(-five, d3, d5));
    }

    /// <summary>Floats of the InputTransform4 scratch for h×w maps: four phase planes with slack, and one padded row.</summary>
    private static int InputPlanes4Floats(int h, int w)
    {
        int th = (h + 3) / 4, tw = (w + 3) / 4, rw = RoundUp8(tw) + 1, pr = 4 * th + 2;
        return 4 * (pr * rw + 8) + PhaseRowFloats(tw);
    }

    /// <summary>The padded-row buffer of SplitPhases: whole 32-float groups covering every phase column.</summary>
    private static int PhaseRowFloats(int tw) => 4 * (RoundUp8(tw) + 8);

    /// <summary>
    /// One row into its four column phases: phase k gets p[4j + k], j ∈ [0, count), where p is the
    /// row shifted right by <paramref name="shift"/> columns and zero outside [shift, shift + w); the
    /// phases lie <paramref name="phase"/> floats apart from out. A null row is all zero. The row is
    /// first copied into row[shift..] (everything else there stays zero), so whole groups of 32
    /// columns split with no scalar tail; the last group writes up to 7 floats past column count of
    /// each phase, which the row stride (RoundUp8(TW) + 1 ≥ count) and the slack after the last row
    /// take. The tiles' vector loads read those lanes too; they only feed lanes past the last tile.
    /// </summary>
    private static unsafe void SplitPhases(float* x, int w, int shift, float* out0, long phase, int count, float* row)
    {
        if (x == null)
        {
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < count; j += 8) Vector256<float>.Zero.Store(out0 + k * phase + j);
            return;
        }
        new ReadOnlySpan<float>(x, w).CopyTo(new Span<float>(row + shift, w));
        for (int j = 0; j < count; j += 8)
        {
            float* src = row + 4 * j;
            Deinterleave(Vector256.Load(src), Vector256.Load(src + 8), out var e0, out var o0);
            Deinterleave(Vector256.Load(src + 16), Vector256.Load(src + 24), out var e1, out var o1);
            Deinterleave(e0, e1, out var p0, out var p2);
            Deinterleave(o0, o1, out var p1, out var p3);
            p0.Store(out0 + j); p1.Store(out0 + phase + j); p2.Store(out0 + 2 * phase + j); p3.Store(out0 + 3 * phase + j);
        }
    }

    /// <summary>The 16 floats a|b split into the 8 at even and the 8 at odd positions, in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Deinterleave(Vector256<float> a, Vector256<float> b, out Vector256<float> evens, out Vector256<float> odds)
    {
        var e = Avx.Shuffle(a, b, 0b10_00_10_00); // a0 a2 b0 b2 | a4 a6 b4 b6
        var o = Avx.Shuffle(a, b, 0b11_01_11_01);
        evens = Avx2.Permute4x64(e.AsDouble(), 0b11_01_10_00).AsSingle();
        odds = Avx2.Permute4x64(o.AsDouble(), 0b11_01_10_00).AsSingle();
    }

    /// <summary>
    /// y (co, h, w) of one image = Aᵀ M A per 4×4 tile, with M[ξ, o, ti·TW + tj] (row stride ld, ξ
    /// planes xiStride apart).
    /// </summary>
    private static unsafe void OutputTransform4(float* m, int ld, long xiStride, int co, int h, int w, float* y)
    {
        int th = (h + 3) / 4, tw = (w + 3) / 4;
        float* tmp = stackalloc float[32];
        Vector256<float>* s = stackalloc Vector256<float>[24];
        for (int o = 0; o < co; o++)
        {
            float* mo = m + (long)o * ld, yo = y + (long)o * h * w;
            for (int ti = 0; ti < th; ti++)
            {
                float* src = mo + ti * tw;
                int rows = Math.Min(4, h - 4 * ti);
                for (int j = 0; j < tw; j += 8)
                {
                    // Aᵀ down the six rows of each column, then A across them, one output row at a time
                    for (int q = 0; q < 6; q++)
                    {
                        float* p = src + j + q * xiStride;
                        A4(Vector256.Load(p), Vector256.Load(p + 6 * xiStride), Vector256.Load(p + 12 * xiStride),
                            Vector256.Load(p + 18 * xiStride), Vector256.Load(p + 24 * xiStride), Vector256.Load(p + 30 * xiStride),
                            out s[q], out s[6 + q], out s[12 + q], out s[18 + q]);
                    }
                    int valid = Math.Min(32, w - 4 * j);
                    for (int r = 0; r < rows; r++)
                    {
                        A4(s[6 * r], s[6 * r + 1], s[6 * r + 2], s[6 * r + 3], s[6 * r + 4], s[6 * r + 5],
                            out var q0, out var q1, out var q2, out var q3);
                        StoreInterleaved4(q0, q1, q2, q3, yo + (4 * ti + r) * w + 4 * j, valid, tmp);
                    }
                }
            }
        }
    }

    /// <summary>Aᵀ applied to (m0 … m5): (m0+m1+m2+m3+m4, m1−m2+2(m3−m4), m1+m2+4(m3+m4), m1−m2+8(m3−m4)+m5).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void A4(Vector256<float> m0, Vector256<float> m1, Vector256<float> m2, Vector256<float> m3, Vector256<float> m4, Vector256<float> m5,
        out Vector256<float> o0, out Vector256<float> o1, out Vector256<float> o2, out Vector256<float> o3)
    {
        var a = m1 + m2; var b = m1 - m2; var c = m3 + m4; var d = m3 - m4;
        o0 = m0 + a + c;
        o1 = Vector256.FusedMultiplyAdd(Vector256.Create(2f), d, b);
        o2 = Vector256.FusedMultiplyAdd(Vector256.Create(4f), c, a);
        o3 = Vector256.FusedMultiplyAdd(Vector256.Create(8f), d, b) + m5;
    }

    /// <summary>dst[0..valid) = q0₀ q1₀ q2₀ q3₀ q0₁ … q3₇ (the four output columns of 8 tiles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreInterleaved4(Vector256<float> q0, Vector256<float> q1, Vector256<float> q2, Vector256<float> q3, float* dst, int valid, float* tmp)
    {
        Transpose8x4(q0, q1, q2, q3, out var t04, out var t15, out var t26, out var t37);
        float* d = valid == 32 ? dst : tmp;
        Avx.Permute2x128(t04, t15, 0x20).Store(d);
        Avx.Permute2x128(t26, t37, 0x20).Store(d + 8);
        Avx.Permute2x128(t04, t15, 0x31).Store(d + 16);
        Avx.Permute2x128(t26, t37, 0x31).Store(d + 24);
        if (valid == 32) return;
        for (int q = 0; q < valid; q++) dst[q] = tmp[q];
    }

    /// <summary>
    /// dM[ξ, o, ti·TW + tj] (row stride ld, ξ planes xiStride apart) = A d Aᵀ for every 4×4 tile d of
    /// one image's dy (co, h, w), zero outside the image (the adjoint of OutputTransform4).
    /// planes: scratch of InputPlanes4Floats(h, w).
    /// </summary>
    private static unsafe void OutputGradTransform4(float* dy, int co, int h, int w, float* m, int ld, long xiStride, float* planes)
    {
        int th = (h + 3) / 4, tw = (w + 3) / 4, rw = RoundUp8(tw) + 1;
        long phase = 4L * rw + 8;
        float* row = planes + 4 * phase;
        new Span<float>(row, PhaseRowFloats(tw)).Clear();
        Vector256<float>* t = stackalloc Vector256<float>[24];
        for (int o = 0; o < co; o++)
        {
            float* src = dy + (long)o * h * w, dst = m + (long)o * ld;
            for (int ti = 0; ti < th; ti++, dst += tw)
            {
                for (int r = 0; r < 4; r++)
                    SplitPhases(4 * ti + r < h ? src + (4 * ti + r) * w : null, w, 0, planes + r * rw, phase, tw, row);
                for (int j = 0; j < tw; j += 8)
                {
                    // A down the four rows of each column q (phase q), then A across: ξ = 6k + l
                    for (int q = 0; q < 4; q++)
                    {
                        float* p = planes + q * phase + j;
                        AAdj(Vector256.Load(p), Vector256.Load(p + rw), Vector256.Load(p + 2 * rw), Vector256.Load(p + 3 * rw),
                            out t[q], out t[4 + q], out t[8 + q], out t[12 + q], out t[16 + q], out t[20 + q]);
                    }
                    for (int k = 0; k < 6; k++)
                    {
                        AAdj(t[4 * k], t[4 * k + 1], t[4 * k + 2], t[4 * k + 3], out var r0, out var r1, out var r2, out var r3, out var r4, out var r5);
                        float* d = dst + j + 6 * k * xiStride;
                        r0.Store(d); r1.Store(d + xiStride); r2.Store(d + 2 * xiStride);
                        r3.Store(d + 3 * xiStride); r4.Store(d + 4 * xiStride); r5.Store(d + 5 * xiStride);
                    }
                }
            }
        }
    }

    /// <summary>A applied to (a, b, c, d): (a, a+b+c+d, a−b+c−d, a+2b+4c+8d, a−2b+4c−8d, d).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AAdj(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d,
        out Vector256<float> r0, out Vector256<float> r1, out Vector256<float> r2, out Vector256<float> r3, out Vector256<float> r4, out Vector256<float> r5)
    {
        var four = Vector256.Create(4f);
        var even = a + c; var odd = b + d;
        var even4 = Vector256.FusedMultiplyAdd(four, c, a);
        var odd4 = Vector256.FusedMultiplyAdd(four, d, b) * Vector256.Create(2f);
        r0 = a; r1 = even + odd; r2 = even - odd; r3 = even4 + odd4; r4 = even4 - odd4; r5 = d;
    }

    /// <summary>
    /// dw (co, ci, 3, 3) += Gᵀ dU G for every filter, dU[ξ, o, c] with planes us apart (us = co·ci),
    /// 8 filters per vector.
    /// </summary>
    private static unsafe void FilterGradTransform4(float* du, long us, int co, int ci, float* dw)
    {
        long total = (long)co * ci;
        float* tail = stackalloc float[36 * 8];
        float* outs = stackalloc float[9 * 8];
        Vector256<float>* t = stackalloc Vector256<float>[18];
        for (long f = 0; f < total; f += 8)
        {
            int lanes = (int)Math.Min(8, total - f);
            float* src = du + f;
            long stride = us;
            if (lanes < 8)
            {
                // the last filters: copied into a zero-padded block, so that no load runs past dU
                new Span<float>(tail, 36 * 8).Clear();
                for (int xi = 0; xi < 36; xi++)
                    for (int l = 0; l < lanes; l++) tail[xi * 8 + l] = du[xi * us + f + l];
                src = tail;
                stride = 8;
            }
            for (int r = 0; r < 6; r++) // t (6×3) = dU G: row r of dU times G
            {
                float* p = src + 6 * r * stride;
                GAdj(Vector256.Load(p), Vector256.Load(p + stride), Vector256.Load(p + 2 * stride),
                    Vector256.Load(p + 3 * stride), Vector256.Load(p + 4 * stride), Vector256.Load(p + 5 * stride),
                    out t[3 * r], out t[3 * r + 1], out t[3 * r + 2]);
            }
            for (int l = 0; l < 3; l++) // dg = Gᵀ t, column by column
            {
                GAdj(t[l], t[3 + l], t[6 + l], t[9 + l], t[12 + l], t[15 + l], out var g0, out var g1, out var g2);
                g0.Store(outs + l * 8); g1.Store(outs + (3 + l) * 8); g2.Store(outs + (6 + l) * 8);
            }
            for (int l = 0; l < lanes; l++)
            {
                float* g = dw + (f + l) * 9;
                for (int k = 0; k < 9; k++) g[k] += outs[k * 8 + l];
            }
        }
    }

    /// <summary>Gᵀ applied to (v0 … v5): (¼v0 − ⅙(v1+v2) + (v3+v4)/24, ⅙(v2−v1) + (v3−v4)/12, −⅙(v1+v2) + ⅙(v3+v4) + v5).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GAdj(Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3, Vector256<float> v4, Vector256<float> v5,
        out Vector256<float> a0, out Vector256<float> a1, out Vector256<float> a2)
    {
        var sixth = Vector256.Create(1f / 6);
        var inner = v1 + v2; var outer = v3 + v4;
        a0 = Vector256.FusedMultiplyAdd(v0, Vector256.Create(0.25f), Vector256.FusedMultiplyAdd(outer, Vector256.Create(1f / 24), -inner * sixth));
        a1 = Vector256.FusedMultiplyAdd(v3 - v4, Vector256.Create(1f / 12), (v2 - v1) * sixth);
        a2 = Vector256.FusedMultiplyAdd(outer - inner, sixth, v5);
    }
}
