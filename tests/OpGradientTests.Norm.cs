using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Tests.Reference;
using static RlMixup.Tests.Reference.FiniteDiff;

namespace RlMixup.Tests;

public partial class OpGradientTests
{
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
        _b.BatchNormBackward(dx, dgamma, dbeta, dy, x, gamma, saveMean, saveInv, 1e-5f);

        var dxRef = Gradient(Projected(v => Bn(v, gd, bd), r), xd);
        var dgRef = Gradient(Projected(v => Bn(xd, v, bd), r), gd);
        var dbRef = Gradient(Projected(v => Bn(xd, gd, v), r), bd);
        double dxTol = gMax * invMax * Tol.Sum(m, (1 + xhatMax * xhatMax) * (1 + xMax * invMax));
        Validate("bn dx", dx.ToArray(), dxRef, dxTol, Tol.Rtol);
        Validate("bn dgamma (prefill + 1 backward)", dgamma.ToArray(), Accumulated(pg, dgRef, 1), Tol.Sum(m, m * xhatMax * (1 + xMax * invMax)), Tol.Rtol);
        Validate("bn dbeta (prefill + 1 backward)", dbeta.ToArray(), Accumulated(pb, dbRef, 1), Tol.Sum(m, m), Tol.Rtol);

        // second call: gradients accumulate, dx is overwritten again (same values)
        var dx2 = Nan(c.N, c.C, c.H, c.W);
        _b.BatchNormBackward(dx2, dgamma, dbeta, dy, x, gamma, saveMean, saveInv, 1e-5f);
        Validate("bn dx (second call)", dx2.ToArray(), dxRef, dxTol, Tol.Rtol);
        Validate("bn dgamma (prefill + 2 backwards)", dgamma.ToArray(), Accumulated(pg, dgRef, 2), 2 * Tol.Sum(m, m * xhatMax * (1 + xMax * invMax)), Tol.Rtol);
        Validate("bn dbeta (prefill + 2 backwards)", dbeta.ToArray(), Accumulated(pb, dbRef, 2), 2 * Tol.Sum(m, m), Tol.Rtol);

        // parameter gradients switched off: dx alone
        var dx3 = Nan(c.N, c.C, c.H, c.W);
        _b.BatchNormBackward(dx3, null, null, dy, x, gamma, saveMean, saveInv, 1e-5f);
        Validate("bn dx (no parameter gradients)", dx3.ToArray(), dxRef, dxTol, Tol.Rtol);
    }

    /// <summary>
    /// A batch big enough for every thread to take a run of planes, on channels far from zero (mean
    /// 300, std ~0.6): E[x²]−E[x]² in float would lose the variance entirely; per-plane deviations
    /// combined with Chan's formula keep it. Results are bit-identical to one thread's.
    /// </summary>
    [Test]
    public void BatchNormOnManyPlanesIsStableAndThreadIndependent()
    {
        const int n = 64, c = 24, h = 8, w = 8, hw = h * w, len = n * c * hw;
        var rng = new Random(77);
        var xf = Data.Uniform(len, rng);
        for (int i = 0; i < len; i++) xf[i] += 300f + (i / hw % c);
        var gf = Data.Uniform(c, rng, 0.5, 1.5);
        var bf = Data.Uniform(c, rng);
        var rf = Data.Uniform(len, rng);

        float[][] Run(IBackend b)
        {
            Tensor Make(float[] d, params int[] dims) { var t = b.Allocate(new Shape(dims)); t.CopyFrom(d); return t; }
            var x = Make(xf, n, c, h, w);
            var gamma = Make(gf, c);
            var beta = Make(bf, c);
            var rm = Make(new float[c], c);
            var rv = Make(Data.Filled(c, 1f), c);
            var sm = b.Allocate(new Shape(c));
            var si = b.Allocate(new Shape(c));
            var y = b.Allocate(x.Shape);
            b.BatchNormForwardTraining(y, x, gamma, beta, rm, rv, sm, si, 0.1f, 1e-5f, updateRunning: true);
            var dy = Make(rf, n, c, h, w);
            var dx = b.Allocate(x.Shape);
            var dg = b.Allocate(new Shape(c));
            var db = b.Allocate(new Shape(c));
            b.Fill(dg, 0f); b.Fill(db, 0f);
            b.BatchNormBackward(dx, dg, db, dy, x, gamma, sm, si, 1e-5f);
            var yEval = b.Allocate(x.Shape);
            b.BatchNormForwardInference(yEval, x, gamma, beta, rm, rv, 1e-5f);
            return [y.ToArray(), sm.ToArray(), si.ToArray(), rm.ToArray(), rv.ToArray(), dx.ToArray(), dg.ToArray(), db.ToArray(), yEval.ToArray()];
        }

        var got = Run(_b);
        var (mean, var) = RefOps.ChannelStats(ToDouble(xf), n, c, hw);
        var inv = var.Select(v => 1 / Math.Sqrt(v + 1e-5)).ToArray();
        // The variance (~1/12) is 4·10⁻⁷ of the mean squared: only a stable sum recovers 1/σ to 1e-4.
        Validate("bn saveInvStd, offset 300", got[2], inv, 0, 1e-4);
        Validate("bn saveMean, offset 300", got[1], mean, 0, 1e-6);
        Validate("bn y, offset 300", got[0], RefOps.BatchNormTraining(ToDouble(xf), n, c, hw, ToDouble(gf), ToDouble(bf), 1e-5), 1e-3, 0);

        using var one = new CpuBackend(1);
        var reference = Run(one);
        string[] names = ["y", "saveMean", "saveInvStd", "running mean", "running var", "dx", "dgamma", "dbeta", "y (eval)"];
        for (int i = 0; i < names.Length; i++)
            Assert.That(got[i], Is.EqualTo(reference[i]), $"bn {names[i]}: {threads} threads must give the bits of 1 thread");
    }

    #endregion
}
