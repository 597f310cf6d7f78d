using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Tests.Reference;
using static RlMixup.Tests.Reference.FiniteDiff;

namespace RlMixup.Tests;

public partial class OpGradientTests
{
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
