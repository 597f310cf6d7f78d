using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlMixup.Core.Cpu;

// Winograd F(2×2, 3×3) (Lavin & Gray 2016) for 3×3, stride 1, padding 1 convolutions: each 2×2
// output tile costs 16 multiplies per (in, out) channel pair instead of 36, i.e. 2.25× fewer GEMM
// flops than im2col. For input x (N, Cin, H, W), output y (N, Cout, H, W):
//   tiles    TH×TW = ⌈H/2⌉×⌈W/2⌉ per image; tile (i, j) reads input rows 2i-1..2i+2, cols 2j-1..2j+2
//   U  (16, Cout, Cin)  = G g Gᵀ per 3×3 filter g, recomputed every call (weights change every step)
//   V  (16, Cin, T)     = Bᵀ d B per 4×4 input tile d, T = tiles of a group of images side by side
//   M_ξ (Cout, T)       = U_ξ · V_ξ                     16 GEMMs, ξ = 4·row + col of the 4×4 tile
//   y 2×2 tile          = Aᵀ M A
// Backward-data of such a convolution is the same convolution of dy with every filter rotated
// 180° and in/out channels swapped, so it runs through the same path with U built from the
// rotated filters. Backward-filter is the adjoint: dU_ξ = Σ_tiles (A dY Aᵀ)_ξ · V_ξᵀ, then
// dg = Gᵀ dU G. Measured at batch 100, 2 threads (ms, Winograd / im2col, same run): width 64
// layer1 38 / 65, layer2 37 / 54, layer3 37 / 68, layer4 52 / 79; width 16 layer2 2.7 / 7.4,
// layer3 2.9 / 4.2, layer4 4.3 / 5.7, layer1 even (9.3 / 8.7, within the noise).
// Groups of images and their spread over threads follow the im2col path (CpuBackend.Conv.cs),
// counting tiles instead of output pixels.
// From 64 channels the same drivers run F(4×4, 3×3) instead, with 36 ξ planes (CpuBackend.Winograd4.cs).
// The transforms run 8 tiles of a tile row at a time (Vector256). On maps one or two F(4×4) tiles
// wide (8×8 and 4×4) most of those lanes would idle, so there F(4×4) runs 8 images per vector
// instead (CpuBackend.Winograd4Lanes.cs).
public sealed partial class CpuBackend
{
    /// <summary>
    /// 3×3/stride 1/pad 1 convolutions with min(Cin, Cout) below this use im2col; tests set 0 to
    /// force Winograd. Measured at batch 100, 2 threads (forward / backward-data, ms):
    ///   stem   C 3,   O 16,  32×32   im2col 1.7 / 1.6   Winograd 2.4 / 2.4  (k = 3: transforms dominate)
    ///   layer1 C 16,  O 16,  32×32   im2col 7.7 / 5.6   Winograd 4.1 / 4.0
    ///   layer4 C 128, O 128, 4×4     im2col 4.2 / 3.8   Winograd 2.6 / 2.6
    ///   layer1 C 64,  O 64,  32×32   im2col 63 / 51     Winograd 27 / 27
    ///   layer4 C 512, O 512, 4×4     im2col 50 / 51     Winograd 31 / 31
    /// so every 3×3 conv of PreActResNet18 but the stem takes it; 16 is the smallest count measured to win.
    /// </summary>
    internal int WinogradMinChannels { get; set; } = 16;

    /// <summary>Number of convolutions (forward or backward-data) that took the Winograd path.</summary>
    internal int WinogradCalls;

    [ThreadStatic] private static float[]? t_wu, t_wv, t_wm, t_wplane;

    private bool UseWinograd(in ConvPlan pl) =>
        pl.KH == 3 && pl.KW == 3 && pl.Spec == new Conv2dSpec(1, 1) && Math.Min(pl.C, pl.O) >= WinogradMinChannels
        && Avx2.IsSupported;

    // The 16 ξ planes of U, V and M are each a multiple of 4 KiB long at most model shapes (e.g.
    // U at 512×512 is 1 MiB), so the transforms' 16 store streams would all map to the same L1
    // and L2 sets; one extra cache line per plane spreads them out (measured 3× on the filter
    // transform at 512 channels).
    private static long PlaneStride(long plane) => plane + 16;

    private unsafe void WinogradForward(float* x, float* w, float* y, in ConvPlan pl)
    {
        int tile = TileFor(pl, filterGrad: false);
        long us = PlaneStride((long)pl.O * pl.C);
        float[] u = Scratch(ref t_wu, (int)(Xis(tile) * us));
        fixed (float* pu = u)
        {
            float* pu2 = pu, pw = w;
            int o = pl.O, c = pl.C;
            Chunks(o, 8, (s, e, _) => FilterTransform(pw, o, c, false, tile, pu2, us, s, e));
            WinogradConv(x, pl.N, c, pl.H, pl.W, tile, pu, us, o, y);
        }
    }

    /// <summary>The number of ξ planes, (tile + 2)², of F(tile×tile, 3×3).</summary>
    private static int Xis(int tile) => (tile + 2) * (tile + 2);

    private unsafe void WinogradBackwardData(float* dy, float* w, float* dx, in ConvPlan pl)
    {
        int tile = TileFor(pl, filterGrad: false);
        long us = PlaneStride((long)pl.O * pl.C);
        float[] u = Scratch(ref t_wu, (int)(Xis(tile) * us));
        fixed (float* pu = u)
        {
            float* pu2 = pu, pw = w;
            int o = pl.O, c = pl.C;
            Chunks(c, 8, (s, e, _) => FilterTransform(pw, o, c, true, tile, pu2, us, s, e));
            WinogradConv(dy, pl.N, o, pl.H, pl.W, tile, pu, us, c, dx);
        }
    }

    [ThreadStatic] private static float[]? t_taps;

    /// <summary>
    /// U rows [lo, hi) from w (O, C, 3, 3), planes us apart. Forward: U (16, O, C), row o holds
    /// the C filters w[o, ·]. Flipped (backward-data): U (16, C, O), row c holds the O filters
    /// w[·, c] rotated 180°. Each row's n filters are first gathered tap-major, taps (9, n), so
    /// the transform runs on 8 filters per vector and stores contiguous rows.
    /// </summary>
    private static unsafe void FilterTransform(float* w, int o, int c, bool flip, int tile, float* u, long us, int lo, int hi)
    {
        int n = flip ? o : c, n8 = RoundUp8(n), xis = Xis(tile);
        float[] taps = Scratch(ref t_taps, 9 * n8 + xis * 8);
        fixed (float* pt = taps)
        {
            float* tail = pt + 9 * n8;
            // lanes [n, n8) of the last 8-filter block are transformed too, then dropped
            for (int k = 0; k < 9; k++)
                for (int f = n; f < n8; f++) pt[k * n8 + f] = 0;
            for (int row = lo; row < hi; row++)
            {
                if (!flip)
                {
                    float* src = w + (long)row * c * 9;
                    for (int f = 0; f < n; f++)
                        for (int k = 0; k < 9; k++) pt[k * n8 + f] = src[f * 9 + k];
                }
                else
                    for (int f = 0; f < n; f++)
                    {
                        float* src = w + ((long)f * c + row) * 9;
                        for (int k = 0; k < 9; k++) pt[k * n8 + f] = src[8 - k];
                    }
                float* dst = u + (long)row * n;
                int f0 = 0;
                for (; f0 + 8 <= n; f0 += 8) FilterTransform8(tile, pt + f0, n8, dst + f0, us);
                if (f0 < n)
                {
                    FilterTransform8(tile, pt + f0, n8, tail, 8);
                    for (int xi = 0; xi < xis; xi++)
                        for (int f = f0; f < n; f++) dst[xi * us + f] = tail[xi * 8 + f - f0];
                }
            }
        }
    }

    private static unsafe void FilterTransform8(int tile, float* g, int ld, float* dst, long us)
    {
        if (tile == 2) FilterTransform8x4(g, ld, dst, us);
        else FilterTransform8x6(g, ld, dst, us);
    }

    /// <summary>U = G g Gᵀ for 8 filters: taps k at g[k·ld], results ξ at dst[ξ·us]; G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1].</summary>
    private static unsafe void FilterTransform8x4(float* g, int ld, float* dst, long us)
    {
        var half = Vector256.Create(0.5f);
        // t (4×3) = G g, one row of t per i, kept as three column vectors
        Span<Vector256<float>> t = stackalloc Vector256<float>[12];
        for (int j = 0; j < 3; j++)
        {
            var g0 = Vector256.Load(g + j * ld); var g1 = Vector256.Load(g + (3 + j) * ld); var g2 = Vector256.Load(g + (6 + j) * ld);
            t[j] = g0;
            t[3 + j] = half * (g0 + g1 + g2);
            t[6 + j] = half * (g0 - g1 + g2);
            t[9 + j] = g2;
        }
        for (int i = 0; i < 4; i++)
        {
            var t0 = t[3 * i]; var t1 = t[3 * i + 1]; var t2 = t[3 * i + 2];
            t0.Store(dst + (4 * i) * us);
            (half * (t0 + t1 + t2)).Store(dst + (4 * i + 1) * us);
            (half * (t0 - t1 + t2)).Store(dst + (4 * i + 2) * us);
            t2.Store(dst + (4 * i + 3) * us);
        }
    }

    /// <summary>
    /// y (n, co, h, w) = the 3×3 pad-1 convolution of x (n, ci, h, w) whose transformed filters are
    /// u (ξ, co, ci), by F(tile×tile, 3×3).
    /// </summary>
    private unsafe void WinogradConv(float* x, int n, int ci, int h, int w, int tile, float* u, long us, int co, float* y)
    {
        Interlocked.Increment(ref WinogradCalls);
        if (LaneBatched(tile, w))
        {
            WinogradConvLanes(x, n, ci, h, w, u, us, co, y);
            return;
        }
        int th = (h + tile - 1) / tile, tw = (w + tile - 1) / tile, tiles = th * tw, xis = Xis(tile);
        int groupsPerThread = Math.Max(1, (int)Math.Ceiling((double)n * tiles / ((double)Threads * WinogradColumns(tile))));
        int g = (n + Math.Min(n, Threads * groupsPerThread) - 1) / Math.Min(n, Threads * groupsPerThread);
        int groups = (n + g - 1) / g;
        // Row stride of V_ξ and M_ξ: 8 floats of slack after the T columns take the overhang of
        // the last 8-tile block, so the transforms never need a scalar tail.
        int ld = g * tiles + 8;
        long vs = PlaneStride((long)ci * ld), ms = PlaneStride((long)co * ld);
        Chunks(groups, 1, (s, e, _) =>
        {
            float[] v = Scratch(ref t_wv, (int)(xis * vs)), m = Scratch(ref t_wm, (int)(xis * ms));
            float[] planes = Scratch(ref t_wplane, tile == 2 ? InputPlanesFloats(h, w) : InputPlanes4Floats(h, w));
            fixed (float* pv = v, pm = m, pp = planes)
                for (int grp = s; grp < e; grp++)
                {
                    int first = grp * g, count = Math.Min(g, n - first), cols = count * tiles;
                    for (int i = 0; i < count; i++)
                        InputTransform(tile, x + (long)(first + i) * ci * h * w, ci, h, w, pv + i * tiles, ld, vs, pp);
                    for (int xi = 0; xi < xis; xi++)
                        Cpu.Gemm.Sgemm(false, false, co, cols, ci, 1f, u + xi * us, ci,
                            pv + xi * vs, ld, 0f, pm + xi * ms, ld, 1);
                    for (int i = 0; i < count; i++)
                    {
                        float* yi = y + (long)(first + i) * co * h * w;
                        if (tile == 2) OutputTransform(pm + i * tiles, ld, ms, co, h, w, yi);
                        else OutputTransform4(pm + i * tiles, ld, ms, co, h, w, yi);
                    }
                }
        });
    }

    private static int RoundUp8(int v) => (v + 7) & ~7;

    // ---- valid (pad 0) 3×3 convolutions, the agent's: through the same-padded path.
    // A valid output is the interior of the pad-1 output, y_valid[i, j] = y_same[i+1, j+1], so the
    // forward computes y_same and crops it; backward-data and backward-filter take dy embedded in a
    // zero frame as the pad-1 convolution's dy (the border outputs do not exist, so their gradient
    // is zero). The border costs (H·W)/((H−2)(W−2)) more GEMM work (1.36× at 14×14, 1.44× at 12×12),
    // well under Winograd's 2.25× saving. Measured at the agent's shapes (batch 100, 2 threads, ms,
    // this path / im2col, same run): see docs/performance.md, "Convolutions".

    // One image (the agent acting on a single observation) is faster through im2col: its GEMMs are
    // small enough that the transforms and the border dominate (0.90 vs 0.80 ms at 100→200, 16×16).
    private bool UseWinogradValid(in ConvPlan pl) =>
        pl.KH == 3 && pl.KW == 3 && pl.Spec == new Conv2dSpec(1, 0) && pl.H >= 3 && pl.W >= 3 && pl.N >= 2
        && Math.Min(pl.C, pl.O) >= WinogradMinChannels && Avx2.IsSupported && (WinogradValid ?? true);

    /// <summary>Tests and benchmarks forbid (false) the Winograd route for valid convolutions; null allows it.</summary>
    internal bool? WinogradValid { get; set; }

    private static ConvPlan SamePadded(in ConvPlan pl) => pl with { Spec = new Conv2dSpec(1, 1), OH = pl.H, OW = pl.W };

    private float[] _validScratch = [];

    /// <summary>
    /// A scratch (N, O, H, W) for the same-padded output or output gradient, kept between calls.
    /// It is allocated pinned, so its address stays valid without a fixed block.
    /// </summary>
    private unsafe float* ValidScratch(in ConvPlan same)
    {
        int size = same.N * same.OutImage;
        if (_validScratch.Length < size) _validScratch = GC.AllocateUninitializedArray<float>(size, pinned: true);
        return (float*)Unsafe.AsPointer(ref _validScratch[0]);
    }

    /// <summary>y (N, O, H−2, W−2) = the interior of ys (N, O, H, W).</summary>
    private static unsafe void CropInterior(float* ys, float* y, in ConvPlan pl)
    {
        int h = pl.H, w = pl.W, oh = pl.OH, ow = pl.OW;
        long planes = (long)pl.N * pl.O;
        for (long p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
                new ReadOnlySpan<float>(ys + p * h * w + (i + 1) * w + 1, ow).CopyTo(new Span<float>(y + p * oh * ow + i * ow, ow));
    }

    /// <summary>
    /// The valid convolution's dy (N, O, H−2, W−2) in a zero frame one pixel wide, (N, O, H, W): the
    /// same-padded convolution's output gradient. Lives in the scratch until the next call.
    /// </summary>
    private unsafe float* EmbedInterior(float* dy, in ConvPlan pl)
    {
        int h = pl.H, w = pl.W, oh = pl.OH, ow = pl.OW;
        long planes = (long)pl.N * pl.O;
        float* dys = ValidScratch(SamePadded(pl));
        new Span<float>(dys, checked((int)(planes * h * w))).Clear();
        for (long p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
                new ReadOnlySpan<float>(dy + p * oh * ow + i * ow, ow).CopyTo(new Span<float>(dys + p * h * w + (i + 1) * w + 1, ow));
        return dys;
    }

    /// <summary>
    /// dw (O, C, 3, 3) += the filter gradient of a 3×3 pad-1 convolution by Winograd: with V_ξ the
    /// input tiles (Bᵀ d B, as forward) and dM_ξ = A dY Aᵀ the 4×4 transform of each 2×2 tile of dy
    /// (the adjoint of the forward's output transform), dU_ξ (O, C) = Σ_tiles dM_ξ · V_ξᵀ, 16 GEMMs
    /// per group of images into per-worker partials, then dw += Gᵀ dU G (the adjoint of U = G g Gᵀ).
    /// </summary>
    private unsafe void WinogradBackwardFilter(float* x, float* dy, float* dw, in ConvPlan pl)
    {
        Interlocked.Increment(ref WinogradCalls);
        int n = pl.N, ci = pl.C, co = pl.O, h = pl.H, w = pl.W, tile = TileFor(pl, filterGrad: true), xis = Xis(tile);
        int th = (h + tile - 1) / tile, tw = (w + tile - 1) / tile, tiles = th * tw;
        int groupsPerThread = Math.Max(1, (int)Math.Ceiling((double)n * tiles / ((double)Threads * TargetColumns)));
        int g = (n + Math.Min(n, Threads * groupsPerThread) - 1) / Math.Min(n, Threads * groupsPerThread);
        int groups = (n + g - 1) / g;
        int ld = g * tiles + 8;
        long vs = PlaneStride((long)ci * ld), ms = PlaneStride((long)co * ld), us = (long)co * ci;
        bool lanes = LaneBatched(tile, w);
        int workers = Math.Min(Threads, lanes ? n : groups);
        var partials = FilterPartials(workers, (int)(xis * us));
        if (lanes) WinogradFilterGradLanes(x, dy, n, ci, co, h, w, partials, us);
        else Chunks(groups, 1, (s, e, worker) =>
        {
            float[] v = Scratch(ref t_wv, (int)(xis * vs)), m = Scratch(ref t_wm, (int)(xis * ms));
            float[] planes = Scratch(ref t_wplane, tile == 2 ? InputPlanesFloats(h, w) : InputPlanes4Floats(h, w));
            fixed (float* pv = v, pm = m, pp = planes, pu = partials[worker])
                for (int grp = s; grp < e; grp++)
                {
                    int first = grp * g, count = Math.Min(g, n - first), cols = count * tiles;
                    for (int i = 0; i < count; i++)
                    {
                        InputTransform(tile, x + (long)(first + i) * ci * h * w, ci, h, w, pv + i * tiles, ld, vs, pp);
                        float* dyi = dy + (long)(first + i) * co * h * w;
                        if (tile == 2) OutputGradTransform(dyi, co, h, w, pm + i * tiles, ld, ms);
                        else OutputGradTransform4(dyi, co, h, w, pm + i * tiles, ld, ms, pp);
                    }
                    for (int xi = 0; xi < xis; xi++)
                        Cpu.Gemm.Sgemm(false, true, co, ci, cols, 1f, pm + xi * ms, ld, pv + xi * vs, ld, 1f, pu + xi * us, ci, 1);
                }
        });
        for (int i = 1; i < workers; i++) Simd.Axpy(partials[0].AsSpan(0, (int)(xis * us)), 1f, partials[i].AsSpan(0, (int)(xis * us)));
        fixed (float* pu = partials[0])
        {
            if (tile == 2) FilterGradTransform(pu, us, co, ci, dw);
            else FilterGradTransform4(pu, us, co, ci, dw);
        }
    }

    /// <summary>
    /// dM[ξ, o, ti·TW + tj] (row stride ld, ξ planes xiStride apart) = A d Aᵀ for every 2×2 tile d of
    /// one image's dy (co, h, w), zero outside the image; A = [1 0; 1 1; 1 -1; 0 -1], so a column
    /// (a, c) becomes (a, a+c, a−c, −c).
    /// </summary>
    private static unsafe void OutputGradTransform(float* dy, int co, int h, int w, float* m, int ld, long xiStride)
    {
        int th = (h + 1) / 2, tw = (w + 1) / 2;
        for (int o = 0; o < co; o++)
        {
            float* src = dy + (long)o * h * w, dst = m + (long)o * ld;
            for (int ti = 0; ti < th; ti++)
            {
                int r0 = 2 * ti;
                bool second = r0 + 1 < h;
                for (int tj = 0; tj < tw; tj++)
                {
                    int c0 = 2 * tj;
                    bool right = c0 + 1 < w;
                    float d00 = src[r0 * w + c0], d01 = right ? src[r0 * w + c0 + 1] : 0f;
                    float d10 = second ? src[(r0 + 1) * w + c0] : 0f, d11 = second && right ? src[(r0 + 1) * w + c0 + 1] : 0f;
                    // t = A d: four rows of two
                    float t00 = d00, t01 = d01, t10 = d00 + d10, t11 = d01 + d11, t20 = d00 - d10, t21 = d01 - d11, t30 = -d10, t31 = -d11;
                    float* q = dst + ti * tw + tj;
                    Store4(q, xiStride, 0, t00, t01);
                    Store4(q, xiStride, 4, t10, t11);
                    Store4(q, xiStride, 8, t20, t21);
                    Store4(q, xiStride, 12, t30, t31);
                }
            }
        }
    }

    /// <summary>Row (p, q) of A d, times Aᵀ: ξ = xi..xi+3 get (p, p+q, p−q, −q).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store4(float* q, long xiStride, int xi, float p, float r)
    {
        q[xi * xiStride] = p;
        q[(xi + 1) * xiStride] = p + r;
        q[(xi + 2) * xiStride] = p - r;
        q[(xi + 3) * xiStride] = -r;
    }

    /// <summary>
    /// dw (co, ci, 3, 3) += Gᵀ dU G for every filter, dU[ξ, o, c] with planes us apart;
    /// Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1].
    /// </summary>
    private static unsafe void FilterGradTransform(float* du, long us, int co, int ci, float* dw)
    {
        float* u = stackalloc float[16];
        float* t = stackalloc float[12];
        for (long f = 0; f < (long)co * ci; f++)
        {
            for (int xi = 0; xi < 16; xi++) u[xi] = du[xi * us + f];
            for (int r = 0; r < 4; r++) // t (4×3) = dU G: row r of dU times G
            {
                float a = u[4 * r], b = u[4 * r + 1], c = u[4 * r + 2], d = u[4 * r + 3];
                t[3 * r] = a + 0.5f * (b + c);
                t[3 * r + 1] = 0.5f * (b - c);
                t[3 * r + 2] = 0.5f * (b + c) + d;
            }
            float* g = dw + f * 9;
            for (int l = 0; l < 3; l++) // dg = Gᵀ t, column by column
            {
                float a = t[l], b = t[3 + l], c = t[6 + l], d = t[9 + l];
                g[l] += a + 0.5f * (b + c);
                g[3 + l] += 0.5f * (b - c);
                g[6 + l] += 0.5f * (b + c) + d;
            }
        }
    }

    /// <summary>
    /// V[ξ, c, ti·TW + tj] (row stride ld, ξ planes xiStride apart) = Bᵀ d B for every tile of one
    /// image x (ci, h, w). planes: scratch for one channel split into even and odd columns.
    /// </summary>
    private static unsafe void InputTransform(float* x, int ci, int h, int w, float* v, int ld, long xiStride, float* planes)
    {
        int th = (h + 1) / 2, tw = (w + 1) / 2, rw = RoundUp8(tw) + 1, pr = 2 * th + 2;
        // Padded input column q ∈ [-1, 2·TW] is E[(q+1)/2] for odd q, O[q/2] for even q, so tile
        // j reads E[j], O[j], E[j+1], O[j+1]: four contiguous vectors for 8 tiles.
        // Layout of planes (InputPlanesFloats): E, 8 floats of slack, O, 8 of slack, one padded row.
        float* ev = planes, od = planes + pr * rw + 8, row = od + pr * rw + 8;
        new Span<float>(row, 2 * rw + 16).Clear();      // only [1, w] is ever written below
        for (int c = 0; c < ci; c++)
        {
            float* xc = x + (long)c * h * w;
            for (int r = 0; r < pr; r++)
                SplitRow(r - 1 < h && r >= 1 ? xc + (r - 1) * w : null, w, ev + r * rw, od + r * rw, rw, row);
            float* vc = v + (long)c * ld;
            for (int ti = 0; ti < th; ti++)
            {
                float* e0 = ev + 2 * ti * rw, o0 = od + 2 * ti * rw;
                float* dst = vc + ti * tw;
                for (int j = 0; j < tw; j += 8, dst += 8)
                {
                    // Bᵀ down the 4 rows, separately for the four column vectors
                    Vector256<float> a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3;
                    Rows(e0 + j, rw, out a0, out a1, out a2, out a3);       // column 0 of each tile
                    Rows(o0 + j, rw, out b0, out b1, out b2, out b3);       // column 1
                    Rows(e0 + j + 1, rw, out c0, out c1, out c2, out c3);   // column 2
                    Rows(o0 + j + 1, rw, out d0, out d1, out d2, out d3);   // column 3
                    // then B across the columns: row k of Bᵀ d goes to ξ = 4k .. 4k+3
                    Cols(dst, xiStride, 0, a0, b0, c0, d0);
                    Cols(dst, xiStride, 4, a1, b1, c1, d1);
                    Cols(dst, xiStride, 8, a2, b2, c2, d2);
                    Cols(dst, xiStride, 12, a3, b3, c3, d3);
                }
            }
        }
    }

    /// <summary>V = Bᵀ d B for every tile of one image, by the transform of F(tile×tile, 3×3).</summary>
    private static unsafe void InputTransform(int tile, float* x, int ci, int h, int w, float* v, int ld, long xiStride, float* planes)
    {
        if (tile == 2) InputTransform(x, ci, h, w, v, ld, xiStride, planes);
        else InputTransform4(x, ci, h, w, v, ld, xiStride, planes);
    }

    /// <summary>Bᵀ applied to rows p, p+rw, p+2rw, p+3rw: (d0-d2, d1+d2, d2-d1, d1-d3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Rows(float* p, int rw, out Vector256<float> r0, out Vector256<float> r1, out Vector256<float> r2, out Vector256<float> r3)
    {
        var d0 = Vector256.Load(p); var d1 = Vector256.Load(p + rw);
        var d2 = Vector256.Load(p + 2 * rw); var d3 = Vector256.Load(p + 3 * rw);
        r0 = d0 - d2; r1 = d1 + d2; r2 = d2 - d1; r3 = d1 - d3;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Cols(float* dst, long xiStride, int xi, Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3)
    {
        (c0 - c2).Store(dst + xi * xiStride);
        (c1 + c2).Store(dst + (xi + 1) * xiStride);
        (c2 - c1).Store(dst + (xi + 2) * xiStride);
        (c1 - c3).Store(dst + (xi + 3) * xiStride);
    }

    /// <summary>Floats of the InputTransform scratch for h×w maps: the E and O planes with slack, and one padded row.</summary>
    private static int InputPlanesFloats(int h, int w)
    {
        int th = (h + 1) / 2, tw = (w + 1) / 2, rw = RoundUp8(tw) + 1, pr = 2 * th + 2;
        return 2 * (pr * rw + 8) + 2 * rw + 16;
    }

    /// <summary>
    /// One padded row into even/odd planes: ev[j] = x[2j-1], od[j] = x[2j] (zero outside [0, w)),
    /// j ∈ [0, rw). A null row is the zero padding above/below the image. The row is first copied
    /// to row[1..w] (row[0] and everything past w stay zero), so that whole vectors of 16 padded
    /// columns split into 8 evens and 8 odds with no scalar tail, whatever w is; the last vector
    /// writes up to 7 floats past column rw, into the next row (written after) or the slack.
    /// </summary>
    private static unsafe void SplitRow(float* x, int w, float* ev, float* od, int rw, float* row)
    {
        if (x == null)
        {
            for (int j = 0; j < rw; j += 8) { Vector256<float>.Zero.Store(ev + j); Vector256<float>.Zero.Store(od + j); }
            return;
        }
        new ReadOnlySpan<float>(x, w).CopyTo(new Span<float>(row + 1, w));
        for (int j = 0; j < rw; j += 8)
        {
            var a = Vector256.Load(row + 2 * j); var b = Vector256.Load(row + 2 * j + 8);
            var evens = Avx.Shuffle(a, b, 0b10_00_10_00); // a0 a2 b0 b2 | a4 a6 b4 b6
            var odds = Avx.Shuffle(a, b, 0b11_01_11_01);
            Avx2.Permute4x64(evens.AsDouble(), 0b11_01_10_00).AsSingle().Store(ev + j);
            Avx2.Permute4x64(odds.AsDouble(), 0b11_01_10_00).AsSingle().Store(od + j);
        }
    }

    /// <summary>
    /// y (co, h, w) of one image = Aᵀ M A per tile, with M[ξ, o, ti·TW + tj] (row stride ld, ξ
    /// planes xiStride apart) and Aᵀ = [1 1 1 0; 0 1 -1 -1].
    /// </summary>
    private static unsafe void OutputTransform(float* m, int ld, long xiStride, int co, int h, int w, float* y)
    {
        int th = (h + 1) / 2, tw = (w + 1) / 2;
        float* tmp = stackalloc float[32];
        for (int o = 0; o < co; o++)
        {
            float* mo = m + (long)o * ld, yo = y + (long)o * h * w;
            for (int ti = 0; ti < th; ti++)
            {
                float* src = mo + ti * tw;
                float* row0 = yo + 2 * ti * w;
                bool second = 2 * ti + 1 < h;
                for (int j = 0; j < tw; j += 8)
                {
                    // Aᵀ down the 4 rows for each of the 4 columns, then A across them
                    Vector256<float> s00, s01, s02, s03, s10, s11, s12, s13;
                    OutRows(src + j, xiStride, 0, out s00, out s10);
                    OutRows(src + j, xiStride, 1, out s01, out s11);
                    OutRows(src + j, xiStride, 2, out s02, out s12);
                    OutRows(src + j, xiStride, 3, out s03, out s13);
                    var y00 = s00 + s01 + s02; var y01 = s01 - s02 - s03;
                    var y10 = s10 + s11 + s12; var y11 = s11 - s12 - s13;
                    int valid = Math.Min(16, w - 2 * j);
                    StoreInterleaved(y00, y01, row0 + 2 * j, valid, tmp);
                    if (second) StoreInterleaved(y10, y11, row0 + w + 2 * j, valid, tmp);
                }
            }
        }
    }

    /// <summary>Column col of Aᵀ·(4×4 tile): rows ξ = col, 4+col, 8+col, 12+col → (m0+m1+m2, m1-m2-m3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void OutRows(float* p, long xiStride, int col, out Vector256<float> s0, out Vector256<float> s1)
    {
        var m0 = Vector256.Load(p + col * xiStride); var m1 = Vector256.Load(p + (4 + col) * xiStride);
        var m2 = Vector256.Load(p + (8 + col) * xiStride); var m3 = Vector256.Load(p + (12 + col) * xiStride);
        s0 = m0 + m1 + m2; s1 = m1 - m2 - m3;
    }

    /// <summary>dst[0..valid) = a0 b0 a1 b1 … a7 b7 (the two output columns of 8 tiles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreInterleaved(Vector256<float> a, Vector256<float> b, float* dst, int valid, float* tmp)
    {
        var lo = Avx.UnpackLow(a, b);   // a0 b0 a1 b1 | a4 b4 a5 b5
        var hi = Avx.UnpackHigh(a, b);  // a2 b2 a3 b3 | a6 b6 a7 b7
        var first = Avx.Permute2x128(lo, hi, 0x20);
        var second = Avx.Permute2x128(lo, hi, 0x31);
        if (valid == 16) { first.Store(dst); second.Store(dst + 8); return; }
        first.Store(tmp); second.Store(tmp + 8);
        for (int q = 0; q < valid; q++) dst[q] = tmp[q];
    }
}
