// One fixture for every op of IBackend, one region per op family, so that each op is found under the
// same name as in IBackend; that is why this file runs past ~400 lines.
//
// Method: the engine (float32) is compared with RefOps (float64). Forward outputs directly; data and
// parameter gradients against central finite differences of the float64 reference, with a fixed random
// upstream gradient dy = r (L = Σ r ⊙ f(x)). Inputs are drawn in float32, so both sides see exactly the
// same numbers and the only error left is the engine's float32 rounding, bounded in Tol.
//
// Contract checks folded in: data gradients OVERWRITE (dx is pre-filled with NaN, which any "+=" or
// "beta·dx" would propagate) and parameter gradients ACCUMULATE (pre-filled with known values, then
// the backward runs twice and must give prefill + 2·grad).
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Tests.Reference;
using static RlMixup.Tests.Reference.FiniteDiff;

namespace RlMixup.Tests;

[TestFixture(1)]
[TestFixture(2)]
[TestFixture(3)]
public class OpGradientTests(int threads)
{
    private IBackend _b = null!;

    // Every 3x3 stride-1 pad-1 convolution takes the Winograd path here, however few its channels.
    [OneTimeSetUp] public void Setup() => _b = new CpuBackend(threads) { WinogradMinChannels = 0 };
    [OneTimeTearDown] public void TearDown() => _b.Dispose();

    private Tensor T(float[] data, params int[] dims)
    {
        var t = _b.Allocate(new Shape(dims));
        t.CopyFrom(data);
        return t;
    }

    private Tensor Nan(params int[] dims) => T(Data.Filled(new Shape(dims).Size, float.NaN), dims);

    /// <summary>A seed that depends only on the text (string.GetHashCode is randomised per process).</summary>
    private static int Seed(string s)
    {
        uint h = 2166136261;
        foreach (char ch in s) h = (h ^ ch) * 16777619;
        return (int)(h & 0x7fffffff);
    }

    private static double MaxAbs(double[] a) => a.Length == 0 ? 0 : a.Max(Math.Abs);
    private static double MaxAbs(float[] a) => a.Length == 0 ? 0 : a.Max(v => Math.Abs((double)v));
    private static double[] Abs(double[] a) => a.Select(Math.Abs).ToArray();

    /// <summary>prefill + times·grad, the value an accumulating gradient must hold after `times` backward calls.</summary>
    private static double[] Accumulated(float[] prefill, double[] grad, int times)
    {
        var e = new double[grad.Length];
        for (int i = 0; i < e.Length; i++) e[i] = prefill[i] + times * grad[i];
        return e;
    }

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
    ];

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
        bool winograd = c is { KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1 };
        int winogradBefore = ((CpuBackend)_b).WinogradCalls;
        _b.Conv2dForward(y, x, w, spec);
        int k = c.C * c.KH * c.KW;
        Validate("conv2d y", y.ToArray(), Conv(xd, wd), Tol.Sum(k, MaxAbs(Conv(Abs(xd), Abs(wd)))), Tol.Rtol);

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
        // Both orientations of the filter-gradient GEMM (dW = dY·colᵀ, then dWᵀ = col·dYᵀ) must agree.
        var cpu = (CpuBackend)_b;
        cpu.FilterGradTransposed = false;
        _b.Conv2dBackwardFilter(dw, x, dy, spec);
        Validate("conv2d dw (prefill + 1 backward)", dw.ToArray(), Accumulated(prefill, dwRef, 1), Tol.Sum(kdw + 1, kdw + 1), Tol.Rtol);
        cpu.FilterGradTransposed = true;
        try { _b.Conv2dBackwardFilter(dw, x, dy, spec); }
        finally { cpu.FilterGradTransposed = null; }
        Validate("conv2d dw (prefill + 2 backwards)", dw.ToArray(), Accumulated(prefill, dwRef, 2), Tol.Sum(2 * kdw + 1, 2 * kdw + 1), Tol.Rtol);
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

    #region BatchNorm

    public sealed record BnCase(int N, int C, int H, int W, float Eps, float Momentum)
    {
        public override string ToString() => $"N{N} C{C} {H}x{W} eps{Eps} m{Momentum}";
    }

    private static readonly BnCase[] BnCases =
    [
        new(2, 3, 4, 5, 1e-5f, 0.1f),
        new(1, 5, 3, 3, 1e-5f, 0.1f),   // batch 1: statistics over H·W only
        new(4, 10, 2, 3, 0.5f, 0.3f),   // a large eps makes a misplaced eps visible
        new(3, 7, 1, 1, 1e-5f, 0.1f),   // 1x1 maps (M = N = 3)
    ];

    [TestCaseSource(nameof(BnCases))]
    public void BatchNorm(BnCase c)
    {
        var rng = new Random(2000 + c.N * 100 + c.C);
        int hw = c.H * c.W, m = c.N * hw, len = c.N * c.C * hw;
        // per-channel offsets in [−2, 2] so that a missing mean subtraction cannot go unnoticed
        var offset = Data.Uniform(c.C, rng, -2, 2);
        var xf = Data.Uniform(len, rng);
        for (int i = 0; i < len; i++) xf[i] += offset[i / hw % c.C];
        var gf = Data.Uniform(c.C, rng, -1.5, 1.5);
        var bf = Data.Uniform(c.C, rng);
        var rmf = Data.Uniform(c.C, rng, -0.5, 0.5);
        var rvf = Data.Uniform(c.C, rng, 0.5, 1.5);
        double[] xd = ToDouble(xf), gd = ToDouble(gf), bd = ToDouble(bf);
        double eps = c.Eps;
        double[] Bn(double[] x, double[] g, double[] b) => RefOps.BatchNormTraining(x, c.N, c.C, hw, g, b, eps);

        var x = T(xf, c.N, c.C, c.H, c.W);
        var gamma = T(gf, c.C);
        var beta = T(bf, c.C);
        var rm = T(rmf, c.C);
        var rv = T(rvf, c.C);
        var saveMean = Nan(c.C);
        var saveInv = Nan(c.C);
        var y = Nan(c.N, c.C, c.H, c.W);
        _b.BatchNormForwardTraining(y, x, gamma, beta, rm, rv, saveMean, saveInv, c.Momentum, c.Eps, updateRunning: true);

        // Error model: mean and variance are float32 sums of M terms of size ≤ |x|max (resp. ≤ (x−μ)²max),
        // so μ is off by ~√M·ε·|x|max and 1/σ by ~√M·ε·x̂max² relatively; y = γ·(x−μ)/σ + β inherits
        // γ/σ·(μ error) + γ·x̂·(relative 1/σ error).
        var (mean, var) = RefOps.ChannelStats(xd, c.N, c.C, hw);
        var inv = var.Select(v => 1 / Math.Sqrt(v + eps)).ToArray();
        double invMax = MaxAbs(inv), gMax = MaxAbs(gf), xMax = MaxAbs(xf);
        var yRef = Bn(xd, gd, bd);
        double xhatMax = 0;
        for (int i = 0; i < len; i++) xhatMax = Math.Max(xhatMax, Math.Abs((xd[i] - mean[i / hw % c.C]) * inv[i / hw % c.C]));
        double statTol = Tol.Sum(m, xMax * invMax + xhatMax * xhatMax);
        Validate("bn saveMean", saveMean.ToArray(), mean, Tol.Sum(m, xMax), Tol.Rtol);
        Validate("bn saveInvStd", saveInv.ToArray(), inv, Tol.Sum(m, invMax * xhatMax * xhatMax), Tol.Rtol);
        Validate("bn y (training)", y.ToArray(), yRef, gMax * statTol, Tol.Rtol);

        // running statistics: momentum update with the UNBIASED variance (M/(M−1)); two roundings each
        var (rmRef, rvRef) = RefOps.UpdateRunning(ToDouble(rmf), ToDouble(rvf), xd, c.N, c.C, hw, c.Momentum);
        Validate("bn running mean", rm.ToArray(), rmRef, Tol.Sum(m, xMax), Tol.Rtol);
        Validate("bn running var", rv.ToArray(), rvRef, Tol.Sum(m, MaxAbs(var) * xhatMax * xhatMax), Tol.Rtol);

        // updateRunning = false leaves the running statistics bit-for-bit alone
        var rm2 = T(rmf, c.C);
        var rv2 = T(rvf, c.C);
        _b.BatchNormForwardTraining(Nan(c.N, c.C, c.H, c.W), x, gamma, beta, rm2, rv2, Nan(c.C), Nan(c.C), c.Momentum, c.Eps, updateRunning: false);
        Assert.That(rm2.ToArray(), Is.EqualTo(rmf), "bn running mean must not move when updateRunning is false");
        Assert.That(rv2.ToArray(), Is.EqualTo(rvf), "bn running var must not move when updateRunning is false");

        // eval mode: normalise with the running statistics (no reduction: a few roundings per element)
        var yEval = Nan(c.N, c.C, c.H, c.W);
        _b.BatchNormForwardInference(yEval, x, gamma, beta, rm2, rv2, c.Eps);
        var yEvalRef = RefOps.BatchNormInference(xd, c.N, c.C, hw, gd, bd, ToDouble(rmf), ToDouble(rvf), eps);
        Validate("bn y (eval)", yEval.ToArray(), yEvalRef, 1e-6, 8 * Tol.Rtol);

        // backward through the training forward. dx = γ/σ·(dy − mean(dy) − x̂·mean(dy·x̂)): two M-term
        // reductions of terms ≤ 1 and ≤ x̂max, scaled by γ/σ, plus the error of the saved statistics.
        var rf = Data.Uniform(len, rng);
        var r = ToDouble(rf);
        var dy = T(rf, c.N, c.C, c.H, c.W);
        var dx = Nan(c.N, c.C, c.H, c.W);
        var pg = Data.Uniform(c.C, rng);
        var pb = Data.Uniform(c.C, rng);
        var dgamma = T(pg, c.C);
        var dbeta = T(pb, c.C);
        _b.BatchNormBackward(dx, dgamma, dbeta, dy, x, gamma, saveMean, saveInv);

        var dxRef = Gradient(Projected(v => Bn(v, gd, bd), r), xd);
        var dgRef = Gradient(Projected(v => Bn(xd, v, bd), r), gd);
        var dbRef = Gradient(Projected(v => Bn(xd, gd, v), r), bd);
        double dxTol = gMax * invMax * Tol.Sum(m, (1 + xhatMax * xhatMax) * (1 + xMax * invMax));
        Validate("bn dx", dx.ToArray(), dxRef, dxTol, Tol.Rtol);
        Validate("bn dgamma (prefill + 1 backward)", dgamma.ToArray(), Accumulated(pg, dgRef, 1), Tol.Sum(m, m * xhatMax * (1 + xMax * invMax)), Tol.Rtol);
        Validate("bn dbeta (prefill + 1 backward)", dbeta.ToArray(), Accumulated(pb, dbRef, 1), Tol.Sum(m, m), Tol.Rtol);

        // second call: gradients accumulate, dx is overwritten again (same values)
        var dx2 = Nan(c.N, c.C, c.H, c.W);
        _b.BatchNormBackward(dx2, dgamma, dbeta, dy, x, gamma, saveMean, saveInv);
        Validate("bn dx (second call)", dx2.ToArray(), dxRef, dxTol, Tol.Rtol);
        Validate("bn dgamma (prefill + 2 backwards)", dgamma.ToArray(), Accumulated(pg, dgRef, 2), 2 * Tol.Sum(m, m * xhatMax * (1 + xMax * invMax)), Tol.Rtol);
        Validate("bn dbeta (prefill + 2 backwards)", dbeta.ToArray(), Accumulated(pb, dbRef, 2), 2 * Tol.Sum(m, m), Tol.Rtol);

        // parameter gradients switched off: dx alone
        var dx3 = Nan(c.N, c.C, c.H, c.W);
        _b.BatchNormBackward(dx3, null, null, dy, x, gamma, saveMean, saveInv);
        Validate("bn dx (no parameter gradients)", dx3.ToArray(), dxRef, dxTol, Tol.Rtol);
    }

    #endregion

    #region Linear and Gemm

    [TestCase(1, 5, 3, true)]
    [TestCase(4, 7, 10, true)]
    [TestCase(3, 33, 9, false)]
    [TestCase(5, 64, 17, true)]
    public void Linear(int n, int inF, int outF, bool bias)
    {
        var rng = new Random(3000 + n * 1000 + inF * 10 + outF);
        var xf = Data.Uniform(n * inF, rng);
        var wf = Data.Uniform(outF * inF, rng);
        var bf = Data.Uniform(outF, rng);
        double[] xd = ToDouble(xf), wd = ToDouble(wf), bd = ToDouble(bf);
        double[] Lin(double[] x, double[] w, double[] b) => RefOps.Linear(x, w, bias ? b : null, n, inF, outF);

        var x = T(xf, n, inF);
        var w = T(wf, outF, inF);
        var b = bias ? T(bf, outF) : null;
        var y = Nan(n, outF);
        _b.LinearForward(y, x, w, b);
        // inF products |x·w| ≤ 1 plus the bias
        Validate("linear y", y.ToArray(), Lin(xd, wd, bd), Tol.Sum(inF + 1, inF + 1), Tol.Rtol);

        var rf = Data.Uniform(n * outF, rng);
        var r = ToDouble(rf);
        var dy = T(rf, n, outF);
        var dx = Nan(n, inF);
        var pw = Data.Uniform(wf.Length, rng);
        var pb = Data.Uniform(outF, rng);
        var dw = T(pw, outF, inF);
        var db = bias ? T(pb, outF) : null;
        _b.LinearBackward(dx, dw, db, dy, x, w);

        // dx sums outF terms |r·w| ≤ 1; dw and db sum n terms ≤ 1 (+ the prefill)
        var dxRef = Gradient(Projected(v => Lin(v, wd, bd), r), xd);
        var dwRef = Gradient(Projected(v => Lin(xd, v, bd), r), wd);
        Validate("linear dx", dx.ToArray(), dxRef, Tol.Sum(outF, outF), Tol.Rtol);
        Validate("linear dw (prefill + 1 backward)", dw.ToArray(), Accumulated(pw, dwRef, 1), Tol.Sum(n + 1, n + 1), Tol.Rtol);
        double[]? dbRef = null;
        if (bias)
        {
            dbRef = Gradient(Projected(v => Lin(xd, wd, v), r), bd);
            Validate("linear db (prefill + 1 backward)", db!.ToArray(), Accumulated(pb, dbRef, 1), Tol.Sum(n + 1, n + 1), Tol.Rtol);
        }

        // without dx: parameter gradients still accumulate
        _b.LinearBackward(null, dw, db, dy, x, w);
        Validate("linear dw (prefill + 2 backwards)", dw.ToArray(), Accumulated(pw, dwRef, 2), Tol.Sum(2 * n + 1, 2 * n + 1), Tol.Rtol);
        if (bias)
            Validate("linear db (prefill + 2 backwards)", db!.ToArray(), Accumulated(pb, dbRef!, 2), Tol.Sum(2 * n + 1, 2 * n + 1), Tol.Rtol);

        // without parameter gradients: dx alone, overwritten
        var dx2 = Nan(n, inF);
        _b.LinearBackward(dx2, null, null, dy, x, w);
        Validate("linear dx (no parameter gradients)", dx2.ToArray(), dxRef, Tol.Sum(outF, outF), Tol.Rtol);
    }

    private static IEnumerable<TestCaseData> GemmCases()
    {
        (int M, int N, int K)[] sizes = [(1, 1, 1), (5, 7, 9), (33, 17, 65), (64, 48, 130), (3, 70, 2)];
        (float Alpha, float Beta)[] scales = [(1f, 0f), (0.75f, -1.25f), (-2f, 1f)];
        foreach (var (m, n, k) in sizes)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    foreach (var (alpha, beta) in scales)
                        yield return new TestCaseData(m, n, k, ta, tb, alpha, beta);
    }

    [TestCaseSource(nameof(GemmCases))]
    public void Gemm(int m, int n, int k, bool transA, bool transB, float alpha, float beta)
    {
        var rng = new Random(4000 + m * 10000 + n * 100 + k);
        var af = Data.Uniform(m * k, rng);
        var bf = Data.Uniform(k * n, rng);
        var cf = Data.Uniform(m * n, rng);
        var a = transA ? T(af, k, m) : T(af, m, k);
        var b = transB ? T(bf, n, k) : T(bf, k, n);
        // with beta = 0, C is write-only (BLAS convention): NaN garbage in it must not leak out
        var c = beta == 0 ? Nan(m, n) : T(cf, m, n);
        _b.Gemm(c, a, transA, b, transB, alpha, beta);
        var expected = RefOps.Gemm(ToDouble(af), transA, ToDouble(bf), transB, m, n, k, alpha, beta, ToDouble(cf));
        // k products ≤ 1 scaled by |alpha|, plus |beta·C| ≤ |beta|
        Validate($"gemm {m}x{n}x{k} tA={transA} tB={transB}", c.ToArray(), expected,
            Tol.Sum(k + 1, Math.Abs(alpha) * k + Math.Abs(beta)), Tol.Rtol);
    }

    #endregion

    #region Elementwise and memory

    [TestCase(1, 7)]
    [TestCase(3, 37)]
    public void AddAxpyScale(int rows, int cols)
    {
        var rng = new Random(5000 + rows * 100 + cols);
        var af = Data.Uniform(rows * cols, rng, -3, 3);
        var bf = Data.Uniform(rows * cols, rng, -3, 3);
        double[] ad = ToDouble(af), bd = ToDouble(bf);
        var a = T(af, rows, cols);
        var b = T(bf, rows, cols);
        var y = Nan(rows, cols);
        // one float32 rounding per element
        _b.Add(y, a, b);
        Validate("add", y.ToArray(), RefOps.Add(ad, bd), 1e-30, 2 * Tol.EpsF32);

        // in place (y aliases a), as a residual add does
        var a2 = T(af, rows, cols);
        _b.Add(a2, a2, b);
        Validate("add in place", a2.ToArray(), RefOps.Add(ad, bd), 1e-30, 2 * Tol.EpsF32);

        // axpy: y += alpha·x. -0.375 is a short binary fraction, so alpha·x is exact or rounds once
        // (error ≤ u·|alpha·x| ≤ u·1.125, which may not be small relative to a cancelling sum), then the add rounds once
        var acc = T(af, rows, cols);
        _b.Axpy(acc, -0.375f, b);
        Validate("axpy", acc.ToArray(), ad.Select((v, i) => v - 0.375 * bd[i]).ToArray(), 2 * 1.125 * Tol.EpsF32, 2 * Tol.EpsF32);

        // scale: y *= alpha (0.1f is not a power of two, so this rounds once)
        var s = T(af, rows, cols);
        _b.Scale(s, 0.1f);
        Validate("scale", s.ToArray(), ad.Select(v => v * (double)0.1f).ToArray(), 1e-30, 2 * Tol.EpsF32);
    }

    [Test]
    public void FillCopyUploadDownload()
    {
        var rng = new Random(5100);
        var src = Data.Uniform(2 * 3 * 4 * 5, rng);
        var t = _b.Allocate(new Shape(2, 3, 4, 5));
        Assert.That(t.ToArray(), Is.All.EqualTo(0f), "Allocate must zero-fill");
        _b.Upload(t, src);
        var back = new float[src.Length];
        _b.Download(t, back);
        Assert.That(back, Is.EqualTo(src), "upload/download round trip");

        var copy = Nan(2, 3, 4, 5);
        _b.Copy(copy, t);
        Assert.That(copy.ToArray(), Is.EqualTo(src), "copy");

        _b.Fill(t, -2.5f);
        Assert.That(t.ToArray(), Is.All.EqualTo(-2.5f), "fill");
        Assert.That(copy.ToArray(), Is.EqualTo(src), "copy must not alias its source");

        // ops on views touch only the view
        var whole = T(src, 2, 60);
        var second = whole.View(60, new Shape(60));
        _b.Fill(second, 1f);
        var after = whole.ToArray();
        Assert.That(after.AsSpan(0, 60).ToArray(), Is.EqualTo(src.AsSpan(0, 60).ToArray()), "fill of a view leaked outside it");
        Assert.That(after.AsSpan(60).ToArray(), Is.All.EqualTo(1f), "fill of a view");
    }

    [TestCase(1, 3, 4, 5)]
    [TestCase(2, 5, 7, 3)]
    public void Relu(int n, int c, int h, int w)
    {
        var rng = new Random(6000 + n * 1000 + c * 100 + h * 10 + w);
        int len = n * c * h * w;
        // |x| > 1e-2 ≫ FD step: no difference quotient straddles the kink
        var xf = Data.AwayFromZero(len, rng, 1e-2, 2);
        var xd = ToDouble(xf);
        var x = T(xf, n, c, h, w);
        var y = Nan(n, c, h, w);
        _b.ReluForward(y, x);
        Validate("relu y", y.ToArray(), RefOps.Relu(xd), 1e-30, 0);

        var rf = Data.Uniform(len, rng);
        var dy = T(rf, n, c, h, w);
        var dx = Nan(n, c, h, w);
        _b.ReluBackward(dx, y, dy);
        var dxRef = Gradient(Projected(RefOps.Relu, ToDouble(rf)), xd);
        // dx is dy or 0 exactly; the FD quotient of a linear piece is exact to ~1e-10
        Validate("relu dx", dx.ToArray(), dxRef, 1e-8, 0);
    }

    [TestCase(1, 3, 4, 5)]
    [TestCase(2, 5, 7, 3)]
    public void Tanh(int n, int c, int h, int w)
    {
        var rng = new Random(6100 + n * 1000 + c * 100 + h * 10 + w);
        int len = n * c * h * w;
        var xf = Data.Uniform(len, rng, -3, 3);
        var xd = ToDouble(xf);
        var x = T(xf, n, c, h, w);
        var y = Nan(n, c, h, w);
        _b.TanhForward(y, x);
        // a float32 tanh is good to a few ulps; |tanh| < 1
        Validate("tanh y", y.ToArray(), RefOps.Tanh(xd), 4 * Tol.EpsF32, 4 * Tol.EpsF32);

        var rf = Data.Uniform(len, rng);
        var dy = T(rf, n, c, h, w);
        var dx = Nan(n, c, h, w);
        _b.TanhBackward(dx, y, dy);
        // dy·(1 − y²) from the float32 y: the ulp error of y is doubled by 2y, plus three roundings
        var dxRef = Gradient(Projected(RefOps.Tanh, ToDouble(rf)), xd);
        Validate("tanh dx", dx.ToArray(), dxRef, 16 * Tol.EpsF32, Tol.Rtol);
    }

    #endregion

    #region Pooling

    [TestCase(1, 3, 4, 5)]
    [TestCase(2, 10, 7, 5)]
    [TestCase(3, 4, 1, 1)]
    public void GlobalAvgPool(int n, int c, int h, int w)
    {
        var rng = new Random(7000 + n * 1000 + c * 100 + h * 10 + w);
        int hw = h * w;
        var xf = Data.Uniform(n * c * hw, rng);
        var xd = ToDouble(xf);
        var x = T(xf, n, c, h, w);
        var y = Nan(n, c);
        _b.GlobalAvgPoolForward(y, x);
        // a mean of hw terms ≤ 1: the sum's error divided by hw
        Validate("gap y", y.ToArray(), RefOps.GlobalAvgPool(xd, n, c, hw), Tol.Sum(hw, hw) / hw, Tol.Rtol);

        var rf = Data.Uniform(n * c, rng);
        var dy = T(rf, n, c);
        var dx = Nan(n, c, h, w);
        _b.GlobalAvgPoolBackward(dx, dy);
        var dxRef = Gradient(Projected(v => RefOps.GlobalAvgPool(v, n, c, hw), ToDouble(rf)), xd);
        Validate("gap dx", dx.ToArray(), dxRef, 1e-8, Tol.Rtol);
    }

    #endregion

    #region LogSoftmax and soft cross-entropy

    [TestCase(1, 3)]
    [TestCase(4, 10)]
    [TestCase(3, 37)]
    public void LogSoftmax(int n, int k)
    {
        var rng = new Random(8000 + n * 100 + k);
        var zf = Data.Uniform(n * k, rng, -4, 4);
        zf[0] += 20; // one large logit: a kernel without the max shift still works here, but must stay accurate
        var zd = ToDouble(zf);
        var z = T(zf, n, k);
        var logp = Nan(n, k);
        _b.LogSoftmaxForward(logp, z);
        // log Σ exp over k terms ≤ 1 (after the max shift): ~√k·ε absolute, plus the rounding of z − lse
        double zMax = MaxAbs(zf);
        Validate("log_softmax", logp.ToArray(), RefOps.LogSoftmax(zd, n, k), Tol.Sum(k, 1 + zMax), Tol.Rtol);

        // dz = dlogp − softmax·Σ dlogp: a k-term sum of |r| ≤ 1, times softmax ≤ 1
        var rf = Data.Uniform(n * k, rng);
        var dlogp = T(rf, n, k);
        var dz = Nan(n, k);
        _b.LogSoftmaxBackward(dz, logp, dlogp);
        var dzRef = Gradient(Projected(v => RefOps.LogSoftmax(v, n, k), ToDouble(rf)), zd);
        Validate("log_softmax dz", dz.ToArray(), dzRef, Tol.Sum(k, k), Tol.Rtol);
    }

    public enum TargetKind { OneHot, MixupPair, Dirichlet, SumNotOne }

    [TestCase(1, 3, TargetKind.OneHot, 1f)]
    [TestCase(4, 10, TargetKind.MixupPair, 0.25f)]
    [TestCase(5, 7, TargetKind.Dirichlet, 0.2f)]
    [TestCase(3, 10, TargetKind.SumNotOne, 1f)]
    [TestCase(6, 5, TargetKind.SumNotOne, 0.37f)]
    public void SoftCrossEntropy(int n, int k, TargetKind kind, float scale)
    {
        var rng = new Random(9000 + n * 100 + k + (int)kind);
        var zf = Data.Uniform(n * k, rng, -4, 4);
        var tf = Targets(n, k, kind, rng);
        double[] zd = ToDouble(zf), td = ToDouble(tf);
        var z = T(zf, n, k);
        var targets = T(tf, n, k);
        var logp = Nan(n, k);
        _b.LogSoftmaxForward(logp, z);

        // forward from the engine's own logp, so this checks the loss alone: k products y·logp
        var logpF = logp.ToArray();
        var losses = Nan(n);
        _b.SoftCrossEntropyForward(losses, logp, targets);
        var lossRef = RefOps.SoftCrossEntropy(ToDouble(logpF), td, n, k);
        double sumAbs = 0;
        for (int i = 0; i < logpF.Length; i++) sumAbs = Math.Max(sumAbs, Math.Abs(logpF[i] * tf[i]) * k);
        Validate("soft CE losses", losses.ToArray(), lossRef, Tol.Sum(k, sumAbs), Tol.Rtol);

        // backward: gradient of scale·Σ_i loss_i(z) with respect to the LOGITS, fused through log-softmax.
        // dz = scale·(softmax·Σy − y): a k-term sum of targets, softmax from the float32 logp.
        double Loss(double[] v) => scale * RefOps.SoftCrossEntropy(RefOps.LogSoftmax(v, n, k), td, n, k).Sum();
        var dz = Nan(n, k);
        _b.SoftCrossEntropyBackward(dz, logp, targets, scale);
        var dzRef = Gradient(Loss, zd);
        double tSum = tf.Select(Math.Abs).Max() * k;
        Validate($"soft CE dz ({kind})", dz.ToArray(), dzRef, scale * Tol.Sum(k, tSum + 1 + MaxAbs(zf)), Tol.Rtol);
    }

    private static float[] Targets(int n, int k, TargetKind kind, Random rng)
    {
        var t = new float[n * k];
        for (int i = 0; i < n; i++)
        {
            var row = t.AsSpan(i * k, k);
            switch (kind)
            {
                case TargetKind.OneHot:
                    row[rng.Next(k)] = 1f;
                    break;
                case TargetKind.MixupPair:
                    // λ·onehot(a) + (1−λ)·onehot(b), sometimes with a == b
                    float lam = (float)rng.NextDouble();
                    row[rng.Next(k)] += lam;
                    row[rng.Next(k)] += 1 - lam;
                    break;
                case TargetKind.Dirichlet:
                    float s = 0;
                    for (int j = 0; j < k; j++) s += row[j] = (float)-Math.Log(1 - rng.NextDouble());
                    for (int j = 0; j < k; j++) row[j] /= s;
                    break;
                case TargetKind.SumNotOne:
                    // positive weights whose row sum is drawn from [0.3, 2]: the softmax term must be
                    // weighted by Σ y, not by 1
                    double total = 0.3 + 1.7 * rng.NextDouble(), acc = 0;
                    var raw = new double[k];
                    for (int j = 0; j < k; j++) acc += raw[j] = rng.NextDouble();
                    for (int j = 0; j < k; j++) row[j] = (float)(raw[j] / acc * total);
                    break;
            }
        }
        return t;
    }

    #endregion

    #region Optimisers

    [TestCase(0f, 0f, false)]
    [TestCase(0.9f, 0f, false)]
    [TestCase(0.9f, 5e-4f, false)]
    [TestCase(0.9f, 1e-2f, true)]
    public void SgdStep(float momentum, float weightDecay, bool nesterov)
    {
        const int len = 37, steps = 5;
        const float lr = 0.1f;
        var rng = new Random(10000 + (int)(momentum * 10) + (int)(weightDecay * 1e4) + (nesterov ? 1 : 0));
        var pf = Data.Uniform(len, rng);
        double[] p = ToDouble(pf), buf = new double[len];
        var param = T(pf, len);
        var grad = _b.Allocate(new Shape(len));
        var mbuf = _b.Allocate(new Shape(len)); // zero buffer: the first step must make buf = g
        float[] lastGrad = [];
        for (int t = 1; t <= steps; t++)
        {
            var gf = lastGrad = Data.Uniform(len, rng, -2, 2);
            grad.CopyFrom(gf);
            _b.SgdStep(param, grad, mbuf, lr, momentum, weightDecay, nesterov);
            RefOps.SgdStep(p, ToDouble(gf), buf, lr, momentum, weightDecay, nesterov);
            // each step adds a handful of roundings on values of size ≤ ~10; t steps compound them
            Validate($"sgd param after step {t}", param.ToArray(), p, t * 1e-6, t * Tol.Rtol);
            if (momentum != 0)
                Validate($"sgd momentum buffer after step {t}", mbuf.ToArray(), buf, t * 1e-6, t * Tol.Rtol);
        }
        Assert.That(grad.ToArray(), Is.EqualTo(lastGrad), "g = grad + wd·p is a local: the gradient buffer must be left as it was");
    }

    [TestCase(0f)]
    [TestCase(1e-2f)]
    public void AdamStep(float weightDecay)
    {
        const int len = 41, steps = 6;
        const float lr = 1e-2f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
        var rng = new Random(11000 + (int)(weightDecay * 1e4));
        var pf = Data.Uniform(len, rng);
        double[] p = ToDouble(pf), m = new double[len], v = new double[len];
        var param = T(pf, len);
        var grad = _b.Allocate(new Shape(len));
        var mt = _b.Allocate(new Shape(len));
        var vt = _b.Allocate(new Shape(len));
        for (int t = 1; t <= steps; t++)
        {
            // gradients spanning three decades, so that v and the bias corrections matter per element
            var gf = Data.Uniform(len, rng, -1, 1);
            for (int i = 0; i < len; i += 3) gf[i] *= 1e-3f;
            grad.CopyFrom(gf);
            _b.AdamStep(param, grad, mt, vt, t, lr, beta1, beta2, eps, weightDecay);
            RefOps.AdamStep(p, ToDouble(gf), m, v, t, lr, beta1, beta2, eps, weightDecay);
            // m and v: two roundings per step; the update lr·m̂/(√v̂ + eps) is ≤ ~lr·3 and carries a
            // relative error of ~10 ε_f32 (moments, pow, sqrt, division), so ~1e-8 absolute per step
            // m can cancel towards 0, so its atol is a few roundings of terms ≤ 1; v ≥ 0 never cancels
            Validate($"adam m after step {t}", mt.ToArray(), m, t * 4 * Tol.EpsF32, t * Tol.Rtol);
            Validate($"adam v after step {t}", vt.ToArray(), v, 1e-30, t * Tol.Rtol);
            Validate($"adam param after step {t}", param.ToArray(), p, t * 1e-7, t * Tol.Rtol);
        }
    }

    #endregion
}
