using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlMixup.Core.Cpu;

// im2col and col2im through phase planes.
// A row of the im2col matrix, tap (c, ki, kj), holds x[c][oy·sH + ki − pH][ox·sW + kj − pW] over the
// output pixels (oy, ox). With strides above 1 those reads skip through x, so a plain im2col is a
// strided gather, one short output row at a time: at CIFAR's 16-, 8- and 4-wide stride-2 outputs the
// loop overhead cost more than the GEMM it fed (0.11 of 0.16 ms per group at width 16).
// Split each image once into its sH·sW phase planes, phase (a, b)[c][i][j] = x[c][i·sH + a][j·sW + b]
// (zero past the image), and every tap reads ONE phase plane at a fixed shift:
//   ki − pH = dy·sH + a  (a = (ki − pH) mod sH),  kj − pW = dx·sW + b,
//   col[(c,ki,kj)][oy, ox] = phase (a, b)[c][oy + dy][ox + dx]  (zero outside the plane).
// When the output is as wide as a phase plane (every "same" and stride-2 convolution of the models)
// a row of col is the plane shifted by dy·Wp + dx: one contiguous copy of the whole map, then
// zeros in the columns that wrapped around. Stride 1 needs no split: x is its only phase plane.
// col2im is the adjoint: shifted adds into zeroed phase planes in the same tap order as before (so
// the same bits), then the planes interleaved back into dx.
public sealed partial class CpuBackend
{
    [ThreadStatic] private static float[]? t_phase;

    /// <summary>The phase planes of a plan: Hp × Wp each, one per (a, b, channel) in that order.</summary>
    private readonly record struct Phases(int SH, int SW, int Hp, int Wp, int C)
    {
        public static Phases Of(in ConvPlan pl) =>
            new(pl.Spec.StrideH, pl.Spec.StrideW, CeilDiv(pl.H, pl.Spec.StrideH), CeilDiv(pl.W, pl.Spec.StrideW), pl.C);

        public bool Identity => SH == 1 && SW == 1;
        public int Plane => Hp * Wp;
        public int Floats => SH * SW * C * Plane;

        /// <summary>Channel 0's plane that tap (ki, kj) reads (channel c's is c planes on), and its shift (dy, dx) in plane rows and columns.</summary>
        public (long Offset, int Dy, int Dx) Tap(in ConvPlan pl, int ki, int kj)
        {
            int ri = ki - pl.Spec.PadH, rj = kj - pl.Spec.PadW;
            int dy = FloorDiv(ri, SH), dx = FloorDiv(rj, SW);
            int a = ri - dy * SH, b = rj - dx * SW;
            return ((long)(a * SW + b) * C * Plane, dy, dx);
        }
    }

    /// <summary>The scratch for one image's phase planes (unused at stride 1).</summary>
    private static float[] PhaseScratch(in ConvPlan pl)
    {
        var ph = Phases.Of(pl);
        return Scratch(ref t_phase, ph.Identity ? 1 : ph.Floats);
    }

    /// <summary>
    /// col rows (C·kH·kW) × P columns, row stride ld, from one image x (C,H,W); zero where the
    /// window leaves the image. phases: scratch of Phases.Floats (unused at stride 1).
    /// </summary>
    private static unsafe void Im2Col(float* x, in ConvPlan pl, float* col, int ld, float* phases)
    {
        var ph = Phases.Of(pl);
        float* planes = ph.Identity ? x : phases;
        if (!ph.Identity) SplitPhases(x, pl, ph, phases);
        // Tap by tap, all channels at once: a tap's plane and shift are the same for every channel
        // (consecutive channels are consecutive planes), so the geometry is worked out once.
        long rows = (long)pl.KH * pl.KW * ld;
        for (int ki = 0; ki < pl.KH; ki++)
            for (int kj = 0; kj < pl.KW; kj++)
            {
                var (offset, dy, dx) = ph.Tap(pl, ki, kj);
                var tap = Shift.Of(ph.Hp, ph.Wp, dy, dx, pl.OH, pl.OW);
                float* dst = col + (long)(ki * pl.KW + kj) * ld, src = planes + offset;
                for (int ch = 0; ch < pl.C; ch++, dst += rows, src += ph.Plane) tap.Copy(src, dst);
            }
    }

    /// <summary>
    /// dx (C,H,W) = the adjoint of Im2Col applied to dcol (row stride ld); overwrites dx. dcol is
    /// scratch and is consumed: the entries that fall outside the image are zeroed in place. Every
    /// element of dx sums its taps in (kH, kW) order, as a channel-by-channel loop would.
    /// </summary>
    private static unsafe void Col2Im(float* col, int ld, in ConvPlan pl, float* dx, float* phases)
    {
        var ph = Phases.Of(pl);
        float* planes = ph.Identity ? dx : phases;
        new Span<float>(planes, ph.Floats).Clear();
        long rows = (long)pl.KH * pl.KW * ld;
        for (int ki = 0; ki < pl.KH; ki++)
            for (int kj = 0; kj < pl.KW; kj++)
            {
                var (offset, dy, dxs) = ph.Tap(pl, ki, kj);
                var tap = Shift.Of(ph.Hp, ph.Wp, dy, dxs, pl.OH, pl.OW);
                float* src = col + (long)(ki * pl.KW + kj) * ld, dst = planes + offset;
                for (int ch = 0; ch < pl.C; ch++, src += rows, dst += ph.Plane) tap.Add(dst, src);
            }
        if (!ph.Identity) MergePhases(phases, pl, ph, dx);
    }

    /// <summary>
    /// A map (oh × ow) read from a plane (hp × wp) at a shift: map[oy, ox] = plane[oy + dy, ox + dx],
    /// zero outside the plane. Rows [YLo, YHi) and columns [XLo, XHi) are inside. When ow == wp the
    /// inside rows are one flat run [Lo, Hi) of the map at plane offset Lo + Offset; the positions
    /// that wrapped into a neighbouring row, and the ends cut off at the plane's edges, all lie in
    /// the columns outside [XLo, XHi).
    /// </summary>
    private readonly record struct Shift(int Oh, int Ow, int Wp, int Dy, int Dx, int YLo, int YHi, int XLo, int XHi, bool Flat, int Lo, int Hi)
    {
        public static Shift Of(int hp, int wp, int dy, int dx, int oh, int ow)
        {
            int yLo = Math.Clamp(-dy, 0, oh), yHi = Math.Clamp(hp - dy, yLo, oh);
            int xLo = Math.Clamp(-dx, 0, ow), xHi = Math.Clamp(wp - dx, xLo, ow);
            if (xHi == xLo) yHi = yLo;
            bool flat = ow == wp;
            int shift = dy * wp + dx;
            int lo = flat ? Math.Max(yLo * ow, -shift) : 0, hi = flat ? Math.Min(yHi * ow, hp * wp - shift) : 0;
            return new(oh, ow, wp, dy, dx, yLo, yHi, xLo, xHi, flat, lo, Math.Max(lo, hi));
        }

        private int Offset => Dy * Wp + Dx;

        /// <summary>map = the shifted plane.</summary>
        public unsafe void Copy(float* plane, float* map)
        {
            new Span<float>(map, YLo * Ow).Clear();
            new Span<float>(map + YHi * Ow, (Oh - YHi) * Ow).Clear();
            if (YHi == YLo) return;
            if (Flat)
            {
                new ReadOnlySpan<float>(plane + Lo + Offset, Hi - Lo).CopyTo(new Span<float>(map + Lo, Hi - Lo));
                ZeroOutside(map);
                return;
            }
            for (int oy = YLo; oy < YHi; oy++)
            {
                float* d = map + oy * Ow, s = plane + (oy + Dy) * Wp + Dx;
                new Span<float>(d, XLo).Clear();
                new ReadOnlySpan<float>(s + XLo, XHi - XLo).CopyTo(new Span<float>(d + XLo, XHi - XLo));
                new Span<float>(d + XHi, Ow - XHi).Clear();
            }
        }

        /// <summary>The adjoint of Copy: plane += the map shifted back, inside the plane. The map is consumed.</summary>
        public unsafe void Add(float* plane, float* map)
        {
            if (YHi == YLo) return;
            if (Flat)
            {
                ZeroOutside(map);
                Simd.Axpy(new Span<float>(plane + Lo + Offset, Hi - Lo), 1f, new ReadOnlySpan<float>(map + Lo, Hi - Lo));
                return;
            }
            for (int oy = YLo; oy < YHi; oy++)
                Simd.Axpy(new Span<float>(plane + (oy + Dy) * Wp + Dx + XLo, XHi - XLo), 1f, new ReadOnlySpan<float>(map + oy * Ow + XLo, XHi - XLo));
        }

        /// <summary>Zeroes columns [0, XLo) and [XHi, Ow) of the inside rows.</summary>
        private unsafe void ZeroOutside(float* map)
        {
            if (XLo == 0 && XHi == Ow) return;
            for (int oy = YLo; oy < YHi; oy++)
            {
                float* r = map + oy * Ow;
                for (int q = 0; q < XLo; q++) r[q] = 0f;
                for (int q = XHi; q < Ow; q++) r[q] = 0f;
            }
        }
    }

    /// <summary>One image x (C,H,W) into its phase planes; entries past the image are zero.</summary>
    private static unsafe void SplitPhases(float* x, in ConvPlan pl, in Phases ph, float* phases)
    {
        long bStride = (long)ph.C * ph.Plane, aStride = ph.SW * bStride;
        // The row phases some tap reads (a 1×1 stride-2 kernel reads only the even rows).
        Span<bool> read = ph.SH <= 64 ? stackalloc bool[ph.SH] : new bool[ph.SH];
        for (int ki = 0; ki < pl.KH; ki++) read[ki - pl.Spec.PadH - FloorDiv(ki - pl.Spec.PadH, ph.SH) * ph.SH] = true;
        for (int ch = 0; ch < pl.C; ch++)
        {
            float* plane0 = phases + (long)ch * ph.Plane;
            for (int y = 0; y < pl.H; y++)
            {
                if (!read[y % ph.SH]) continue;
                float* dst = plane0 + (y % ph.SH) * aStride + (y / ph.SH) * ph.Wp;
                float* row = x + ((long)ch * pl.H + y) * pl.W;
                if (ph.SW == 2) SplitPair(row, pl.W, dst, dst + bStride);
                else
                    for (int b = 0; b < ph.SW; b++)
                        for (int j = 0; j < ph.Wp; j++)
                        {
                            int xc = j * ph.SW + b;
                            dst[b * bStride + j] = xc < pl.W ? row[xc] : 0f;
                        }
            }
            // plane rows that no image row reaches (H not a multiple of sH)
            for (int a = 0; a < ph.SH; a++)
                for (int i = CeilDiv(pl.H - a, ph.SH); i < ph.Hp; i++)
                    for (int b = 0; b < ph.SW; b++)
                        new Span<float>(plane0 + a * aStride + b * bStride + i * ph.Wp, ph.Wp).Clear();
        }
    }

    /// <summary>The adjoint of SplitPhases on the image: dx[c][y][x] = phase (y mod sH, x mod sW)[c][y / sH][x / sW].</summary>
    private static unsafe void MergePhases(float* phases, in ConvPlan pl, in Phases ph, float* dx)
    {
        long bStride = (long)ph.C * ph.Plane, aStride = ph.SW * bStride;
        for (int ch = 0; ch < pl.C; ch++)
        {
            float* plane0 = phases + (long)ch * ph.Plane;
            for (int y = 0; y < pl.H; y++)
            {
                float* src = plane0 + (y % ph.SH) * aStride + (y / ph.SH) * ph.Wp;
                float* row = dx + ((long)ch * pl.H + y) * pl.W;
                if (ph.SW == 2) MergePair(src, src + bStride, row, pl.W);
                else
                    for (int xc = 0; xc < pl.W; xc++) row[xc] = src[(xc % ph.SW) * bStride + xc / ph.SW];
            }
        }
    }

    /// <summary>even[j] = row[2j], odd[j] = row[2j + 1] for j &lt; ⌈w/2⌉; odd's last entry is zero when w is odd.</summary>
    private static unsafe void SplitPair(float* row, int w, float* even, float* odd)
    {
        int j = 0;
        if (Avx2.IsSupported)
        {
            for (; 2 * j + 16 <= w; j += 8)
            {
                Deinterleave(Vector256.Load(row + 2 * j), Vector256.Load(row + 2 * j + 8), out var e, out var o);
                e.Store(even + j); o.Store(odd + j);
            }
            if (2 * j + 8 <= w)
            {
                var v = Avx2.PermuteVar8x32(Vector256.Load(row + 2 * j), Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7));
                v.GetLower().Store(even + j); v.GetUpper().Store(odd + j);
                j += 4;
            }
        }
        for (; 2 * j + 1 < w; j++) { even[j] = row[2 * j]; odd[j] = row[2 * j + 1]; }
        if (2 * j < w) { even[j] = row[2 * j]; odd[j] = 0f; }
    }

    /// <summary>row[2j] = even[j], row[2j + 1] = odd[j] for the w entries of row (the adjoint of SplitPair).</summary>
    private static unsafe void MergePair(float* even, float* odd, float* row, int w)
    {
        int j = 0;
        if (Avx2.IsSupported)
        {
            for (; 2 * j + 16 <= w; j += 8)
            {
                var e = Vector256.Load(even + j); var o = Vector256.Load(odd + j);
                var lo = Avx.UnpackLow(e, o); var hi = Avx.UnpackHigh(e, o); // e0 o0 e1 o1 | e4 o4 e5 o5, e2 o2 e3 o3 | e6 …
                Avx.Permute2x128(lo, hi, 0x20).Store(row + 2 * j);
                Avx.Permute2x128(lo, hi, 0x31).Store(row + 2 * j + 8);
            }
            if (2 * j + 8 <= w)
            {
                var v = Vector256.Create(Vector128.Load(even + j), Vector128.Load(odd + j));
                Avx2.PermuteVar8x32(v, Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).Store(row + 2 * j);
                j += 4;
            }
        }
        for (; 2 * j + 1 < w; j++) { row[2 * j] = even[j]; row[2 * j + 1] = odd[j]; }
        if (2 * j < w) row[2 * j] = even[j];
    }

    /// <summary>⌊a/b⌋ for b &gt; 0 and any sign of a.</summary>
    private static int FloorDiv(int a, int b) => a >= 0 ? a / b : -((-a + b - 1) / b);
}
