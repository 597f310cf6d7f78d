using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlMixup.Core.Cpu;

// The filter gradient of a 3×3, stride-1, pad-1 convolution computed directly, without im2col or
// Winograd transforms: dw[o, c, ky, kx] += Σ_n Σ_(y,x) dy[n, o, y, x] · x[n, c, y+ky−1, x+kx−1].
//
// Each image's input planes are copied into a zero frame with rows Wp = W + 2 wide, and its dy
// planes into rows of the same width whose last two columns are zero. Output pixel (y, x) is then
// the flat index q = y·Wp + x, and tap (ky, kx) is the input plane read at q + ky·Wp + kx: every
// tap is one correlation of two flat vectors, 16 pixels per zmm step. A register tile of 2 output
// channels × 9 taps (18 accumulators) is swept over the pixels of a chunk of images for one input
// channel, so each step loads 2 dy vectors and 9 input vectors for 18 FMAs, and the 18 horizontal
// sums happen once per chunk, not once per image. Without AVX-512, TapSums256 computes the same
// 16-lane sums as two 8-lane halves: the same products in the same order per lane, the same
// reduction tree, so the bits are the same on every machine.
//
// Why: at width 16 the first stage's filter gradients (16 → 16 channels at 32×32) spent most of
// their time in the Winograd transforms of x and dy (four times the data of the maps, written
// and read again) or in im2col, for GEMMs of only 16×16 outputs.
public sealed partial class CpuBackend
{
    /// <summary>Tests and benchmarks force (true) or forbid (false) the direct filter gradient; null follows <see cref="UseDirectFilterGrad"/>.</summary>
    internal bool? DirectFilterGrad { get; set; }

    /// <summary>Calls that took the direct filter-gradient path (tests check the routing).</summary>
    internal int DirectFilterGradCalls;

    private static bool DirectFilterGradApplies(in ConvPlan pl) =>
        pl.KH == 3 && pl.KW == 3 && pl.Spec == new Conv2dSpec(1, 1) && (Vector512.IsHardwareAccelerated || Fma.IsSupported);

    /// <summary>
    /// Where the direct kernel beats Winograd and im2col (conv timer, `--compare-filter`): maps of at
    /// least 16×16, so that a pixel vector is mostly real pixels, and few channel pairs: the stem and
    /// the 16-channel first stage at width 16 (3.3–3.9 ms against Winograd's 5.2–7.4), the stem at
    /// width 64. Not the 32-channel second stage at width 16 (a draw with Winograd: 3.1–5.5 against
    /// 3.8–4.0 ms), nor the 64-channel first stage at width 64 (48 against Winograd's 30 ms).
    /// </summary>
    private bool UseDirectFilterGrad(in ConvPlan pl) =>
        DirectFilterGradApplies(pl) && (DirectFilterGrad ?? (pl.H >= 16 && pl.W >= 16 && pl.O * pl.C <= 512));

    /// <summary>The framed images of one pass stay within this many bytes (half of a Zen 4 core's L2); tests shrink it.</summary>
    internal int DirectChunkBytes { get; set; } = 512 << 10;

    private unsafe void DirectBackwardFilter(float* x, float* dy, float* dw, in ConvPlan pl)
    {
        Interlocked.Increment(ref DirectFilterGradCalls);
        int n = pl.N, ci = pl.C, co = pl.O, h = pl.H, w = pl.W;
        int wp = w + 2, o2 = (co + 1) & ~1;
        int lr = RoundUp16(h * wp);                    // dy plane: h rows of wp, zero tail
        int xs = RoundUp16(lr + 2 * wp + 2);           // x plane: every tap of every step in bounds
        long imageFloats = (long)ci * xs + (long)o2 * lr;
        int chunk = (int)Math.Clamp(DirectChunkBytes / (imageFloats * sizeof(float)), 1, n);
        int workers = Math.Min(Threads, n);
        int taps = co * ci * 9;
        var partials = FilterPartials(workers, taps);
        var plan = pl;
        Chunks(n, 1, (s, e, worker) =>
        {
            float[] scratch = Scratch(ref t_col, (int)(chunk * imageFloats));
            fixed (float* buf = scratch, pu = partials[worker])
            {
                new Span<float>(pu, taps).Clear();
                for (int first = s; first < e; first += chunk)
                {
                    int count = Math.Min(chunk, e - first);
                    float* xp = buf, dyp = buf + (long)count * ci * xs;
                    for (int i = 0; i < count; i++)
                        FrameImage(x + (long)(first + i) * ci * h * w, dy + (long)(first + i) * co * h * w, plan,
                            xp + (long)i * ci * xs, xs, dyp + (long)i * o2 * lr, lr);
                    if (Vector512.IsHardwareAccelerated)
                        for (int o = 0; o < co; o += 2)
                            for (int c = 0; c < ci; c++)
                                TapSums(xp + (long)c * xs, (long)ci * xs, dyp + (long)o * lr, (long)o2 * lr, lr, wp, count,
                                    pu + ((long)o * ci + c) * 9, o + 1 < co ? pu + ((long)(o + 1) * ci + c) * 9 : null);
                    else
                        for (int o = 0; o < co; o++)
                            for (int c = 0; c < ci; c++)
                                TapSums256(xp + (long)c * xs, (long)ci * xs, dyp + (long)o * lr, (long)o2 * lr, lr, wp, count,
                                    pu + ((long)o * ci + c) * 9);
                }
            }
        });
        var dws = new Span<float>(dw, taps);
        for (int i = 0; i < workers; i++) Simd.Axpy(dws, 1f, partials[i].AsSpan(0, taps));
    }

    private static int RoundUp16(int v) => (v + 15) & ~15;

    /// <summary>One image's x planes into zero frames (row stride W+2) and its dy planes into rows of W+2 with two zero columns.</summary>
    private static unsafe void FrameImage(float* x, float* dy, in ConvPlan pl, float* xp, int xs, float* dyp, int lr)
    {
        int h = pl.H, w = pl.W, wp = w + 2, o2 = (pl.O + 1) & ~1;
        new Span<float>(xp, pl.C * xs).Clear();
        new Span<float>(dyp, o2 * lr).Clear();
        for (int c = 0; c < pl.C; c++)
            for (int y = 0; y < h; y++)
                new ReadOnlySpan<float>(x + ((long)c * h + y) * w, w).CopyTo(new Span<float>(xp + (long)c * xs + (y + 1) * wp + 1, w));
        for (int o = 0; o < pl.O; o++)
            for (int y = 0; y < h; y++)
                new ReadOnlySpan<float>(dy + ((long)o * h + y) * w, w).CopyTo(new Span<float>(dyp + (long)o * lr + y * wp, w));
    }

    /// <summary>
    /// For output channels o and o+1 (dy planes d and d + lr) and one input channel (x plane xp), over
    /// <paramref name="count"/> framed images: sum0[tap] += Σ d·x_tap, sum1[tap] += Σ (d+lr)·x_tap.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TapSums(float* xp, long xImage, float* d, long dImage, int lr, int wp, int count, float* sum0, float* sum1)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default, a8 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default, b8 = default;
        nint r1 = wp, r2 = 2 * wp;
        for (int i = 0; i < count; i++, xp += xImage, d += dImage)
        {
            float* d1 = d + lr;
            for (nint q = 0; q < lr; q += 16)
            {
                var y0 = Vector512.Load(d + q);
                var y1 = Vector512.Load(d1 + q);
                float* s = xp + q;
                var t = Vector512.Load(s);
                a0 = Vector512.FusedMultiplyAdd(y0, t, a0); b0 = Vector512.FusedMultiplyAdd(y1, t, b0);
                t = Vector512.Load(s + 1);
                a1 = Vector512.FusedMultiplyAdd(y0, t, a1); b1 = Vector512.FusedMultiplyAdd(y1, t, b1);
                t = Vector512.Load(s + 2);
                a2 = Vector512.FusedMultiplyAdd(y0, t, a2); b2 = Vector512.FusedMultiplyAdd(y1, t, b2);
                t = Vector512.Load(s + r1);
                a3 = Vector512.FusedMultiplyAdd(y0, t, a3); b3 = Vector512.FusedMultiplyAdd(y1, t, b3);
                t = Vector512.Load(s + r1 + 1);
                a4 = Vector512.FusedMultiplyAdd(y0, t, a4); b4 = Vector512.FusedMultiplyAdd(y1, t, b4);
                t = Vector512.Load(s + r1 + 2);
                a5 = Vector512.FusedMultiplyAdd(y0, t, a5); b5 = Vector512.FusedMultiplyAdd(y1, t, b5);
                t = Vector512.Load(s + r2);
                a6 = Vector512.FusedMultiplyAdd(y0, t, a6); b6 = Vector512.FusedMultiplyAdd(y1, t, b6);
                t = Vector512.Load(s + r2 + 1);
                a7 = Vector512.FusedMultiplyAdd(y0, t, a7); b7 = Vector512.FusedMultiplyAdd(y1, t, b7);
                t = Vector512.Load(s + r2 + 2);
                a8 = Vector512.FusedMultiplyAdd(y0, t, a8); b8 = Vector512.FusedMultiplyAdd(y1, t, b8);
            }
        }
        sum0[0] += Sum(a0); sum0[1] += Sum(a1); sum0[2] += Sum(a2); sum0[3] += Sum(a3); sum0[4] += Sum(a4);
        sum0[5] += Sum(a5); sum0[6] += Sum(a6); sum0[7] += Sum(a7); sum0[8] += Sum(a8);
        if (sum1 == null) return;
        sum1[0] += Sum(b0); sum1[1] += Sum(b1); sum1[2] += Sum(b2); sum1[3] += Sum(b3); sum1[4] += Sum(b4);
        sum1[5] += Sum(b5); sum1[6] += Sum(b6); sum1[7] += Sum(b7); sum1[8] += Sum(b8);
    }

    /// <summary>
    /// TapSums for one output channel on 256-bit vectors, for CPUs without AVX-512: each 16-lane sum
    /// is kept as its low and high 8 lanes (two passes over the pixels, 9 ymm accumulators each, as
    /// 18 zmm-sized ones would not fit 16 ymm registers). Every lane sees the same products in the
    /// same order, and the halves meet in <see cref="Sum"/>'s tree, so the bits are TapSums'.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TapSums256(float* xp, long xImage, float* d, long dImage, int lr, int wp, int count, float* sum)
    {
        Span<Vector256<float>> halves = stackalloc Vector256<float>[18];
        nint r1 = wp, r2 = 2 * wp;
        for (int half = 0; half < 2; half++)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default, a8 = default;
            float* x = xp + 8 * half, dd = d + 8 * half;
            for (int i = 0; i < count; i++, x += xImage, dd += dImage)
                for (nint q = 0; q < lr; q += 16)
                {
                    var y = Vector256.Load(dd + q);
                    float* s = x + q;
                    a0 = Fma.MultiplyAdd(y, Vector256.Load(s), a0);
                    a1 = Fma.MultiplyAdd(y, Vector256.Load(s + 1), a1);
                    a2 = Fma.MultiplyAdd(y, Vector256.Load(s + 2), a2);
                    a3 = Fma.MultiplyAdd(y, Vector256.Load(s + r1), a3);
                    a4 = Fma.MultiplyAdd(y, Vector256.Load(s + r1 + 1), a4);
                    a5 = Fma.MultiplyAdd(y, Vector256.Load(s + r1 + 2), a5);
                    a6 = Fma.MultiplyAdd(y, Vector256.Load(s + r2), a6);
                    a7 = Fma.MultiplyAdd(y, Vector256.Load(s + r2 + 1), a7);
                    a8 = Fma.MultiplyAdd(y, Vector256.Load(s + r2 + 2), a8);
                }
            int h = 9 * half;
            (halves[h], halves[h + 1], halves[h + 2], halves[h + 3], halves[h + 4], halves[h + 5], halves[h + 6], halves[h + 7], halves[h + 8])
                = (a0, a1, a2, a3, a4, a5, a6, a7, a8);
        }
        for (int t = 0; t < 9; t++) sum[t] += Sum(Vector512.Create(halves[t], halves[9 + t]));
    }

    /// <summary>The 16 lanes summed in a fixed tree (halves, then quarters, then pairs), the same on every machine.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum(Vector512<float> v)
    {
        var h = v.GetLower() + v.GetUpper();
        var q = h.GetLower() + h.GetUpper();
        return (q.GetElement(0) + q.GetElement(2)) + (q.GetElement(1) + q.GetElement(3));
    }
}
