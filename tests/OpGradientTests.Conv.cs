using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Tests.Reference;
using static RlMixup.Tests.Reference.FiniteDiff;

namespace RlMixup.Tests;

public partial class OpGradientTests
{
    #region Conv2d

    public sealed record ConvCase(int N, int C, int H, int W, int O, int KH, int KW, int SH, int SW, int PH, int PW)
    {
        public override string ToString() => $"N{N} C{C} {H}x{W} O{O} k{KH}x{KW} s{SH}x{SW} p{PH}x{PW}";
    }

    private static readonly ConvCase[] ConvCases =
    [
        new(1, 3, 7, 5, 5, 1, 1, 1, 1, 0, 0),   // 1x1 kernel, batch 1, non-square input
        new(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1),   // the "same" 3x3 of a ResNet block
        new(2, 5, 8, 6, 3, 3, 3, 2, 2, 0, 0),   // stride 2, no padding: the last input row/column is never read
        new(2, 6, 8, 8, 10, 1, 1, 2, 2, 0, 0),  // 1x1 stride-2 shortcut
        new(1, 4, 9, 7, 6, 5, 5, 1, 1, 2, 2),   // 5x5 kernel, padding 2
        new(2, 3, 7, 6, 5, 3, 2, 2, 1, 1, 0),   // non-square kernel, different H/W strides and pads
        new(2, 10, 6, 6, 9, 3, 3, 2, 2, 1, 1),  // channels not multiples of 8, stride 2 with padding
        new(1, 3, 5, 5, 2, 3, 3, 1, 1, 2, 2),   // padding larger than the kernel needs: output grows
        new(3, 17, 4, 5, 9, 3, 3, 1, 2, 1, 2),  // 17 input channels, batch 3
        new(7, 3, 4, 4, 5, 3, 3, 1, 1, 1, 1),   // several images per GEMM group, last group short
        new(5, 6, 3, 3, 4, 1, 1, 1, 1, 0, 0),   // pointwise 1x1 with images grouped (gather/scatter path)
        // Winograd F(2x2,3x3): odd/even H and W (partial last tiles), a single pixel, channel counts
        // that are not multiples of 8, a tile row wider than one 8-tile block (W = 36: TW = 18)
        new(1, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1),
        new(3, 5, 2, 3, 7, 3, 3, 1, 1, 1, 1),
        new(2, 9, 8, 8, 11, 3, 3, 1, 1, 1, 1),
        new(4, 3, 7, 5, 2, 3, 3, 1, 1, 1, 1),
        new(2, 4, 5, 36, 3, 3, 3, 1, 1, 1, 1),
        new(1, 2, 33, 17, 3, 3, 3, 1, 1, 1, 1),
        new(9, 7, 4, 4, 5, 3, 3, 1, 1, 1, 1),    // 4x4 images: 4 tiles each, many images per group
        // the direct 3x3 filter gradient (chosen for 16x16 maps and up, few channels): a row that is
        // not a multiple of 16 pixels, an odd number of output channels, more images than one chunk
        new(3, 4, 16, 19, 5, 3, 3, 1, 1, 1, 1),
        new(2, 3, 32, 32, 2, 3, 3, 1, 1, 1, 1),
        // stride 2 along W through the even/odd split: odd and even widths, pads 0-2 (negative tap
        // offsets), a 5-wide kernel, the narrowest image, a stride-1 H beside a stride-2 W
        new(2, 4, 7, 9, 5, 3, 3, 2, 2, 1, 1),
        new(1, 3, 5, 7, 4, 1, 1, 2, 2, 0, 0),
        new(1, 2, 6, 11, 3, 5, 5, 2, 2, 2, 2),
        new(2, 3, 3, 2, 2, 3, 3, 2, 2, 1, 1),
        new(3, 5, 4, 10, 6, 3, 3, 1, 2, 0, 1),
        // valid (pad 0) 3x3 convolutions through the same-padded Winograd path: the agent's kind,
        // odd and even sizes, a 1x1 output, channel counts not multiples of 8
        new(2, 5, 7, 6, 4, 3, 3, 1, 1, 0, 0),
        new(3, 9, 16, 16, 10, 3, 3, 1, 1, 0, 0),
        new(2, 4, 3, 3, 2, 3, 3, 1, 1, 0, 0),
        new(1, 6, 9, 9, 5, 3, 3, 1, 1, 0, 0),    // one image: im2col
        new(5, 3, 5, 8, 6, 3, 3, 1, 1, 0, 0),
    ];

    /// <summary>
    /// Forward, backward-data and every backward-filter route of one case against the float64
    /// reference. Winograd cases run twice more, with F(2×2, 3×3) and F(4×4, 3×3) forced (the
    /// model takes F(4×4) from 64 channels), against the same references. F(4×4)'s transforms have
    /// entries up to 8 and down to 1/24, so a float32 result carries more rounding than a plain sum:
    /// up to 1.27× the plain-sum bound on these cases. It is allowed 4×; a missing term or a wrong
    /// transform entry is an error of order 1 and still fails by orders of magnitude.
    /// </summary>
    [TestCaseSource(nameof(ConvCases))]
    public void Conv2d(ConvCase c)
    {
        var rng = new Random(Seed("conv" + c));
        int oh = RefOps.ConvOut(c.H, c.KH, c.SH, c.PH), ow = RefOps.ConvOut(c.W, c.KW, c.SW, c.PW);
        var xf = Data.Uniform(c.N * c.C * c.H * c.W, rng);
        var wf = Data.Uniform(c.O * c.C * c.KH * c.KW, rng);
        double[] xd = ToDouble(xf), wd = ToDouble(wf);
        var spec = new Conv2dSpec(c.SH, c.SW, c.PH, c.PW);
        double[] Conv(double[] x, double[] w) => RefOps.Conv2d(x, c.N, c.C, c.H, c.W, w, c.O, c.KH, c.KW, c.SH, c.SW, c.PH, c.PW);

        // forward: each output is a sum of K = C·kH·kW products; Σ|terms| is exactly conv(|x|, |w|)
        var x = T(xf, c.N, c.C, c.H, c.W);
        var w = T(wf, c.O, c.C, c.KH, c.KW);
        var y = Nan(c.N, c.O, oh, ow);
        bool winograd = c is { KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1 } or { KH: 3, KW: 3, SH: 1, SW: 1, PH: 0, PW: 0, N: >= 2 };
        int winogradBefore = ((CpuBackend)_b).WinogradCalls;
        _b.Conv2dForward(y, x, w, spec);
        int k = c.C * c.KH * c.KW;
        var yRef = Conv(xd, wd);
        double yTol = Tol.Sum(k, MaxAbs(Conv(Abs(xd), Abs(wd))));
        Validate("conv2d y", y.ToArray(), yRef, yTol, Tol.Rtol);

        // backward: dy = r with |r| ≤ 1, so an element of dx sums ≤ O·kH·kW terms |r·w| ≤ 1 and
        // an element of dw sums N·oH·oW terms |r·x| ≤ 1
        var rf = Data.Uniform(c.N * c.O * oh * ow, rng);
        var r = ToDouble(rf);
        var dy = T(rf, c.N, c.O, oh, ow);

        var dx = Nan(c.N, c.C, c.H, c.W);
        _b.Conv2dBackwardData(dx, dy, w, spec);
        Assert.That(((CpuBackend)_b).WinogradCalls - winogradBefore, Is.EqualTo(winograd ? 2 : 0), "Winograd calls (forward + backward-data)");
        var dxRef = Gradient(Projected(v => Conv(v, wd), r), xd);
        int kdx = c.O * c.KH * c.KW;
        Validate("conv2d dx", dx.ToArray(), dxRef, Tol.Sum(kdx, kdx), Tol.Rtol);

        var prefill = Data.Uniform(wf.Length, rng);
        var dw = T(prefill, c.O, c.C, c.KH, c.KW);
        var dwRef = Gradient(Projected(v => Conv(xd, v), r), wd);
        int kdw = c.N * oh * ow;
        // Both orientations of the im2col filter-gradient GEMM (dW = dY·colᵀ, then dWᵀ = col·dYᵀ) and,
        // for 3x3/stride 1/pad 1, the Winograd one must agree, each accumulating onto the last.
        var cpu = (CpuBackend)_b;
        cpu.WinogradFilterGrad = false;
        cpu.DirectFilterGrad = false;
        try
        {
            cpu.FilterGradTransposed = false;
            _b.Conv2dBackwardFilter(dw, x, dy, spec);
            Validate("conv2d dw (prefill + 1 backward)", dw.ToArray(), Accumulated(prefill, dwRef, 1), Tol.Sum(kdw + 1, kdw + 1), Tol.Rtol);
            cpu.FilterGradTransposed = true;
            _b.Conv2dBackwardFilter(dw, x, dy, spec);
        }
        finally { cpu.FilterGradTransposed = null; cpu.WinogradFilterGrad = null; cpu.DirectFilterGrad = null; }
        Validate("conv2d dw (prefill + 2 backwards)", dw.ToArray(), Accumulated(prefill, dwRef, 2), Tol.Sum(2 * kdw + 1, 2 * kdw + 1), Tol.Rtol);
        bool same3x3 = c is { KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1 };
        if (same3x3)
        {
            // The direct 3×3 filter gradient, forced whatever the shape: plain sums like im2col's.
            int direct = cpu.DirectFilterGradCalls;
            cpu.DirectFilterGrad = true;
            try { _b.Conv2dBackwardFilter(dw, x, dy, spec); }
            finally { cpu.DirectFilterGrad = null; }
            Assert.That(cpu.DirectFilterGradCalls - direct, Is.EqualTo(1), "the filter gradient took the direct path");
            Validate("conv2d dw (prefill + 2 backwards + direct)", dw.ToArray(), Accumulated(prefill, dwRef, 3), Tol.Sum(3 * kdw + 1, 3 * kdw + 1), Tol.Rtol);
        }
        if (!winograd) return;
        int before = cpu.WinogradCalls;
        cpu.DirectFilterGrad = false;
        try { _b.Conv2dBackwardFilter(dw, x, dy, spec); }
        finally { cpu.DirectFilterGrad = null; }
        Assert.That(cpu.WinogradCalls - before, Is.EqualTo(1), "the filter gradient took the Winograd path");
        // The transforms add a few roundings per term (products by ½, sums of up to four tiles'
        // worth): the bound of a sum of 3·kdw terms plus 4 roundings per term covers them.
        int done = same3x3 ? 4 : 3;   // after the direct pass, if there was one
        Validate("conv2d dw (prefill + backwards + Winograd)", dw.ToArray(), Accumulated(prefill, dwRef, done), Tol.Sum((done + 4) * kdw + 1, done * kdw + 1), Tol.Rtol);

        foreach (var (tile, factor) in new[] { (2, 1.0), (4, 4.0) })
        {
            cpu.WinogradTile = tile;
            cpu.DirectFilterGrad = false;
            try
            {
                before = cpu.WinogradCalls;
                var yt = Nan(c.N, c.O, oh, ow);
                _b.Conv2dForward(yt, x, w, spec);
                Validate($"conv2d y, F({tile}×{tile})", yt.ToArray(), yRef, factor * yTol, Tol.Rtol);
                var dxt = Nan(c.N, c.C, c.H, c.W);
                _b.Conv2dBackwardData(dxt, dy, w, spec);
                Validate($"conv2d dx, F({tile}×{tile})", dxt.ToArray(), dxRef, factor * Tol.Sum(kdx, kdx), Tol.Rtol);
                var dwt = T(new float[wf.Length], c.O, c.C, c.KH, c.KW);
                _b.Conv2dBackwardFilter(dwt, x, dy, spec);
                Validate($"conv2d dw, F({tile}×{tile})", dwt.ToArray(), dwRef, factor * Tol.Sum(5 * kdw + 1, kdw + 1), Tol.Rtol);
                Assert.That(cpu.WinogradCalls - before, Is.EqualTo(3), $"F({tile}×{tile}) ran forward, backward-data and backward-filter");
            }
            finally { cpu.WinogradTile = null; cpu.DirectFilterGrad = null; }
        }
    }

    /// <summary>
    /// The direct 3×3 filter gradient over several chunks of images per worker, against the im2col
    /// route on the same data: both are plain sums of the same products, in different orders.
    /// </summary>
    [Test]
    public void DirectFilterGradientOverManyChunks()
    {
        var cpu = (CpuBackend)_b;
        var rng = new Random(Seed("direct-chunks"));
        var (n, c, h, w, o) = (7, 3, 17, 21, 3);
        var x = T(Data.Uniform(n * c * h * w, rng), n, c, h, w);
        var dy = T(Data.Uniform(n * o * h * w, rng), n, o, h, w);
        var spec = new Conv2dSpec(1, 1);
        float[] Grad(bool direct)
        {
            var dw = T(new float[o * c * 9], o, c, 3, 3);
            cpu.DirectFilterGrad = direct;
            cpu.WinogradFilterGrad = false;
            int chunkBytes = cpu.DirectChunkBytes;
            cpu.DirectChunkBytes = 1;   // one image per pass
            try { _b.Conv2dBackwardFilter(dw, x, dy, spec); }
            finally { cpu.DirectFilterGrad = null; cpu.WinogradFilterGrad = null; cpu.DirectChunkBytes = chunkBytes; }
            return dw.ToArray();
        }
        var (direct, im2col) = (Grad(true), Grad(false));
        Assert.That(direct, Is.EqualTo(im2col).Within(1e-5f * n * h * w));
        Assert.That(direct.Select(Math.Abs).Max(), Is.GreaterThan(1f), "a real sum, not zeros");
    }

    #endregion

    #region Channel bias

    [TestCase(1, 3, 4, 5)]
    [TestCase(3, 10, 7, 6)]
    [TestCase(2, 4, 1, 1)]
    public void ChannelBias(int n, int c, int h, int w)
    {
        var rng = new Random(Seed($"bias{n},{c},{h},{w}"));
        int hw = h * w;
        var xf = Data.Uniform(n * c * hw, rng);
        var bf = Data.Uniform(c, rng);
        double[] xd = ToDouble(xf), bd = ToDouble(bf);

        // forward in place: one float32 addition per element
        var y = T(xf, n, c, h, w);
        _b.AddChannelBias(y, T(bf, c));
        Validate("channel bias y", y.ToArray(), RefOps.AddChannelBias(xd, bd, n, c, hw), 1e-7, Tol.Rtol);

        // backward: dbias accumulates a sum of n·h·w terms |r| ≤ 1
        var rf = Data.Uniform(n * c * hw, rng);
        var r = ToDouble(rf);
        var dy = T(rf, n, c, h, w);
        var dbRef = Gradient(Projected(v => RefOps.AddChannelBias(xd, v, n, c, hw), r), bd);
        var prefill = Data.Uniform(c, rng);
        var db = T(prefill, c);
        int k = n * hw;
        _b.ChannelBiasBackward(db, dy);
        Validate("channel bias db (prefill + 1 backward)", db.ToArray(), Accumulated(prefill, dbRef, 1), Tol.Sum(k + 1, k + 1), Tol.Rtol);
        _b.ChannelBiasBackward(db, dy);
        Validate("channel bias db (prefill + 2 backwards)", db.ToArray(), Accumulated(prefill, dbRef, 2), Tol.Sum(2 * k + 1, 2 * k + 1), Tol.Rtol);
    }

    #endregion
}
