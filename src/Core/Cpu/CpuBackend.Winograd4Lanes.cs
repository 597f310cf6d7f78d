using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlMixup.Core.Cpu;

// F(4×4, 3×3) on small maps, 8 images per vector.
// The row-wise transforms (CpuBackend.Winograd4.cs) run 8 tiles of one tile row per vector. An 8×8
// map has 2 tiles per row and a 4×4 map 1, so there 6 or 7 of the 8 lanes idle, and the transforms
// cost more than the GEMMs they feed (the width-16 profile of layer 4: input transform 27% of the
// time, the GEMM kernel 15%). Here a group of images is first packed image-innermost,
// xp[c][row][col][lane], with the zero border already in place, so that one tile position of 8
// images is 8 contiguous floats and every vector is full. The GEMM columns of a group are ordered
// (tile position, lane): column (ti·TW + tj)·L + l, with L the lanes (the images rounded up to 8;
// the lanes past the last image carry zeros and are dropped). The arithmetic per tile is the
// row-wise path's, operation for operation, so the forward and backward-data give the same bits; the
// filter gradient sums its columns in another order, so it agrees to rounding.
public sealed partial class CpuBackend
{
    /// <summary>F(4×4) runs 8 images per vector on maps at most this many tiles wide (4 columns each); tests set it to force either layout.</summary>
    internal int WinogradLanesMaxTileColumns { get; set; } = 2;

    private bool LaneBatched(int tile, int w) => tile == 4 && (w + 3) / 4 <= WinogradLanesMaxTileColumns;

    [ThreadStatic] private static float[]? t_wlanes;

    /// <summary>Images per group for a worker's images: groups of about <paramref name="columns"/> GEMM columns.</summary>
    private static int LaneGroup(int images, int tiles, int columns)
    {
        int groups = Math.Max(1, (images * tiles + columns - 1) / columns);
        return (images + groups - 1) / groups;
    }

    /// <summary>
    /// The lanes of a group of count images: a multiple of 8 and, where the tiles' columns are the
    /// GEMM's n (forward and backward-data), enough that n is a multiple of 32. The 8×32 AVX-512
    /// kernel's ragged last panel costs more than the zero lanes do: 128×56×128 took 0.030 ms and
    /// 128×64×128 0.021 ms (`bench -- gemm`, one thread).
    /// </summary>
    private static int Lanes(int count, int tiles, bool gemmColumns)
    {
        int lanes = RoundUp8(count);
        if (!gemmColumns) return lanes;
        int a = tiles, b = 32;
        while (b != 0) (a, b) = (b, a % b);
        int step = Math.Max(8, 32 / a);    // 32 / gcd(tiles, 32)
        return (lanes + step - 1) / step * step;
    }

    private unsafe void WinogradConvLanes(float* x, int n, int ci, int h, int w, float* u, long us, int co, float* y)
    {
        int th = (h + 3) / 4, tw = (w + 3) / 4, tiles = th * tw;
        int rows = 4 * th + 2, cols = 4 * tw + 2;
        Chunks(n, 1, (s, e, _) =>
        {
            int group = LaneGroup(e - s, tiles, Winograd4Columns), maxLanes = Lanes(group, tiles, true), ld = tiles * maxLanes;
            long vs = PlaneStride((long)ci * ld), ms = PlaneStride((long)co * ld);
            float[] v = Scratch(ref t_wv, (int)(36 * vs)), m = Scratch(ref t_wm, (int)(36 * ms));
            float[] packed = Scratch(ref t_wlanes, ci * rows * cols * maxLanes);
            fixed (float* pv = v, pm = m, pp = packed)
                for (int first = s; first < e; first += group)
                {
                    int count = Math.Min(group, e - first), lanes = Lanes(count, tiles, true);
                    PackLanes(x + (long)first * ci * h * w, count, ci, h, w, 1, rows, cols, lanes, pp);
                    InputTransform4Lanes(pp, ci, th, tw, lanes, RoundUp8(count), pv, ld, vs);
                    for (int xi = 0; xi < 36; xi++)
                        Cpu.Gemm.Sgemm(false, false, co, tiles * lanes, ci, 1f, u + xi * us, ci, pv + xi * vs, ld, 0f, pm + xi * ms, ld, 1);
                    OutputTransform4Lanes(pm, ld, ms, co, h, w, lanes, count, y + (long)first * co * h * w);
                }
        });
    }

    /// <summary>The filter gradient's dU partial sums (one per worker, min(Threads, n) of them, planes us apart) by lane groups.</summary>
    private unsafe void WinogradFilterGradLanes(float* x, float* dy, int n, int ci, int co, int h, int w, float[][] partials, long us)
    {
        int th = (h + 3) / 4, tw = (w + 3) / 4, tiles = th * tw;
        int rows = 4 * th + 2, cols = 4 * tw + 2;
        Chunks(n, 1, (s, e, worker) =>
        {
            int group = LaneGroup(e - s, tiles, TargetColumns), maxLanes = Lanes(group, tiles, false), ld = tiles * maxLanes;
            long vs = PlaneStride((long)ci * ld), ms = PlaneStride((long)co * ld);
            float[] v = Scratch(ref t_wv, (int)(36 * vs)), m = Scratch(ref t_wm, (int)(36 * ms));
            float[] packed = Scratch(ref t_wlanes, Math.Max(ci * rows * cols, co * 4 * th * 4 * tw) * maxLanes);
            fixed (float* pv = v, pm = m, pp = packed, pu = partials[worker])
                for (int first = s; first < e; first += group)
                {
                    int count = Math.Min(group, e - first), lanes = Lanes(count, tiles, false);
                    PackLanes(x + (long)first * ci * h * w, count, ci, h, w, 1, rows, cols, lanes, pp);
                    InputTransform4Lanes(pp, ci, th, tw, lanes, lanes, pv, ld, vs);
                    PackLanes(dy + (long)first * co * h * w, count, co, h, w, 0, 4 * th, 4 * tw, lanes, pp);
                    OutputGradTransform4Lanes(pp, co, th, tw, lanes, pm, ld, ms);
                    for (int xi = 0; xi < 36; xi++)
                        Cpu.Gemm.Sgemm(false, true, co, ci, tiles * lanes, 1f, pm + xi * ms, ld, pv + xi * vs, ld, 1f, pu + xi * us, ci, 1);
                }
        });
    }

    /// <summary>
    /// dst (ch, rows, cols, lanes) from count images src (ch, h, w): dst[c, r, q, l] = image l's
    /// [c, r − offset, q − offset], zero outside the image and in the lanes past count.
    /// </summary>
    private static unsafe void PackLanes(float* src, int count, int ch, int h, int w, int offset, int rows, int cols, int lanes, float* dst)
    {
        new Span<float>(dst, ch * rows * cols * lanes).Clear();
        long image = (long)ch * h * w;
        for (int c = 0; c < ch; c++)
            for (int y = 0; y < h; y++)
            {
                float* d = dst + (((long)c * rows + y + offset) * cols + offset) * lanes;
                float* s = src + ((long)c * h + y) * w;
                for (int i = 0; i < count; i++, s += image)
                    for (int q = 0; q < w; q++) d[q * lanes + i] = s[q];
            }
    }

    /// <summary>
    /// V[ξ, c, (ti·TW + tj)·lanes + l] (row stride ld, ξ planes xiStride apart) = Bᵀ d B for the 6×6
    /// tile (ti, tj) of lane l, from xp (ci, 4TH + 2, 4TW + 2, lanes), the zero border included.
    /// Lanes from <paramref name="active"/> on (all-zero input) are stored as zeros without the transform.
    /// </summary>
    private static unsafe void InputTransform4Lanes(float* xp, int ci, int th, int tw, int lanes, int active, float* v, int ld, long xiStride)
    {
        int rows = 4 * th + 2, cols = 4 * tw + 2;
        long rs = (long)cols * lanes;
        Vector256<float>* t = stackalloc Vector256<float>[36];
        for (int c = 0; c < ci; c++)
            for (int ti = 0; ti < th; ti++)
                for (int tj = 0; tj < tw; tj++)
                {
                    float* top = xp + (((long)c * rows + 4 * ti) * cols + 4 * tj) * lanes;
                    float* dst = v + (long)c * ld + (ti * tw + tj) * lanes;
                    for (int l = active; l < lanes; l += 8)
                        for (int xi = 0; xi < 36; xi++) Vector256<float>.Zero.Store(dst + l + xi * xiStride);
                    for (int l = 0; l < active; l += 8)
                    {
                        // Bᵀ down the six rows of each of the six columns, then B across (as InputTransform4)
                        for (int q = 0; q < 6; q++)
                        {
                            float* p = top + q * lanes + l;
                            B6(Vector256.Load(p), Vector256.Load(p + rs), Vector256.Load(p + 2 * rs),
                                Vector256.Load(p + 3 * rs), Vector256.Load(p + 4 * rs), Vector256.Load(p + 5 * rs),
                                out t[q], out t[6 + q], out t[12 + q], out t[18 + q], out t[24 + q], out t[30 + q]);
                        }
                        for (int k = 0; k < 6; k++)
                        {
                            B6(t[6 * k], t[6 * k + 1], t[6 * k + 2], t[6 * k + 3], t[6 * k + 4], t[6 * k + 5],
                                out var r0, out var r1, out var r2, out var r3, out var r4, out var r5);
                            float* d = dst + l + 6 * k * xiStride;
                            r0.Store(d); r1.Store(d + xiStride); r2.Store(d + 2 * xiStride);
                            r3.Store(d + 3 * xiStride); r4.Store(d + 4 * xiStride); r5.Store(d + 5 * xiStride);
                        }
                    }
                }
    }

    /// <summary>
    /// y of count images (co, h, w each, from y) = Aᵀ M A per tile, M[ξ, o, (ti·TW + tj)·lanes + l]
    /// (row stride ld, ξ planes xiStride apart).
    /// </summary>
    private static unsafe void OutputTransform4Lanes(float* m, int ld, long xiStride, int co, int h, int w, int lanes, int count, float* y)
    {
        int th = (h + 3) / 4, tw = (w + 3) / 4;
        long image = (long)co * h * w;
        Vector256<float>* s = stackalloc Vector256<float>[24];
        Vector128<float>* rowsOf = stackalloc Vector128<float>[8];
        for (int o = 0; o < co; o++)
            for (int ti = 0; ti < th; ti++)
                for (int tj = 0; tj < tw; tj++)
                {
                    float* src = m + (long)o * ld + (ti * tw + tj) * lanes;
                    int rowsValid = Math.Min(4, h - 4 * ti), colsValid = Math.Min(4, w - 4 * tj);
                    float* corner = y + ((long)o * h + 4 * ti) * w + 4 * tj;
                    for (int l = 0; l < count; l += 8)
                    {
                        for (int q = 0; q < 6; q++)
                        {
                            float* p = src + l + q * xiStride;
                            A4(Vector256.Load(p), Vector256.Load(p + 6 * xiStride), Vector256.Load(p + 12 * xiStride),
                                Vector256.Load(p + 18 * xiStride), Vector256.Load(p + 24 * xiStride), Vector256.Load(p + 30 * xiStride),
                                out s[q], out s[6 + q], out s[12 + q], out s[18 + q]);
                        }
                        int images = Math.Min(8, count - l);
                        for (int r = 0; r < rowsValid; r++)
                        {
                            A4(s[6 * r], s[6 * r + 1], s[6 * r + 2], s[6 * r + 3], s[6 * r + 4], s[6 * r + 5],
                                out var q0, out var q1, out var q2, out var q3);
                            // output row r of the 8 images: lane λ's four columns are rowsOf[λ]
                            Transpose8x4(q0, q1, q2, q3, out var t04, out var t15, out var t26, out var t37);
                            rowsOf[0] = t04.GetLower(); rowsOf[4] = t04.GetUpper();
                            rowsOf[1] = t15.GetLower(); rowsOf[5] = t15.GetUpper();
                            rowsOf[2] = t26.GetLower(); rowsOf[6] = t26.GetUpper();
                            rowsOf[3] = t37.GetLower(); rowsOf[7] = t37.GetUpper();
                            for (int i = 0; i < images; i++)
                            {
                                float* d = corner + (l + i) * image + r * w;
                                if (colsValid == 4) rowsOf[i].Store(d);
                                else for (int q = 0; q < colsValid; q++) d[q] = rowsOf[i].GetElement(q);
                            }
                        }
                    }
                }
    }

    /// <summary>
    /// dM[ξ, o, (ti·TW + tj)·lanes + l] (row stride ld, ξ planes xiStride apart) = A d Aᵀ for the 4×4
    /// tile (ti, tj) of lane l, from dyp (co, 4TH, 4TW, lanes), zero past the image (the adjoint of
    /// OutputTransform4Lanes).
    /// </summary>
    private static unsafe void OutputGradTransform4Lanes(float* dyp, int co, int th, int tw, int lanes, float* m, int ld, long xiStride)
    {
        int rows = 4 * th, cols = 4 * tw;
        long rs = (long)cols * lanes;
        Vector256<float>* t = stackalloc Vector256<float>[24];
        for (int o = 0; o < co; o++)
            for (int ti = 0; ti < th; ti++)
                for (int tj = 0; tj < tw; tj++)
                {
                    float* top = dyp + (((long)o * rows + 4 * ti) * cols + 4 * tj) * lanes;
                    float* dst = m + (long)o * ld + (ti * tw + tj) * lanes;
                    for (int l = 0; l < lanes; l += 8)
                    {
                        // A down the four rows of each column q, then A across: ξ = 6k + l (as OutputGradTransform4)
                        for (int q = 0; q < 4; q++)
                        {
                            float* p = top + q * lanes + l;
                            AAdj(Vector256.Load(p), Vector256.Load(p + rs), Vector256.Load(p + 2 * rs), Vector256.Load(p + 3 * rs),
                                out t[q], out t[4 + q], out t[8 + q], out t[12 + q], out t[16 + q], out t[20 + q]);
                        }
                        for (int k = 0; k < 6; k++)
                        {
                            AAdj(t[4 * k], t[4 * k + 1], t[4 * k + 2], t[4 * k + 3], out var r0, out var r1, out var r2, out var r3, out var r4, out var r5);
                            float* d = dst + l + 6 * k * xiStride;
                            r0.Store(d); r1.Store(d + xiStride); r2.Store(d + 2 * xiStride);
                            r3.Store(d + 3 * xiStride); r4.Store(d + 4 * xiStride); r5.Store(d + 5 * xiStride);
                        }
                    }
                }
    }

    /// <summary>
    /// The 4×8 block (q0 … q3, lanes 0–7) transposed: t04 = lane 0's (q0 q1 q2 q3) | lane 4's, t15 =
    /// lanes 1 | 5, t26 = lanes 2 | 6, t37 = lanes 3 | 7.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x4(Vector256<float> q0, Vector256<float> q1, Vector256<float> q2, Vector256<float> q3,
        out Vector256<float> t04, out Vector256<float> t15, out Vector256<float> t26, out Vector256<float> t37)
    {
        var lo01 = Avx.UnpackLow(q0, q1); var hi01 = Avx.UnpackHigh(q0, q1);
        var lo23 = Avx.UnpackLow(q2, q3); var hi23 = Avx.UnpackHigh(q2, q3);
        t04 = Avx.Shuffle(lo01, lo23, 0b01_00_01_00);
        t15 = Avx.Shuffle(lo01, lo23, 0b11_10_11_10);
        t26 = Avx.Shuffle(hi01, hi23, 0b01_00_01_00);
        t37 = Avx.Shuffle(hi01, hi23, 0b11_10_11_10);
    }
}
