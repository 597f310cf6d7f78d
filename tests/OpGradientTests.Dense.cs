using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Tests.Reference;
using static RlMixup.Tests.Reference.FiniteDiff;

namespace RlMixup.Tests;

public partial class OpGradientTests
{
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
}
