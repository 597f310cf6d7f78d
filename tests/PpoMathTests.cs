// The agent's arithmetic against hand-computed values and float64 finite differences: GAE (SB3's
// episode_starts semantics), the MultiCategorical distribution, the clipped PPO loss, orthogonal init.
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Models;
using RlMixup.Ppo;
using RlMixup.Tests.Reference;
using static RlMixup.Tests.Reference.FiniteDiff;

namespace RlMixup.Tests;

public class PpoMathTests
{
    #region GAE

    private static RolloutBuffer Rollout(float[] rewards, float[] values, bool[] episodeStarts)
    {
        var buf = new RolloutBuffer(rewards.Length, 1, 1);
        for (int t = 0; t < rewards.Length; t++) buf.Add([0f], [0], rewards[t], episodeStarts[t], values[t], 0f);
        return buf;
    }

    // r = [1, 2, 3, 4], V = [0.5, 1, 1.5, 2], an episode ends after step 1 (so step 2 starts one),
    // γ = 2 (> 1), bootstrap V = 3 after the last step, which did not end an episode:
    //   δ3 = 4 + 2·3 − 2 = 8,  δ2 = 3 + 2·2 − 1.5 = 5.5,  δ1 = 2 + 0 − 1 = 1 (boundary),  δ0 = 1 + 2·1 − 0.5 = 2.5
    // λ = 0: A = δ.   λ = 1: A3 = 8, A2 = 5.5 + 2·8 = 21.5, A1 = 1 (the boundary cuts the sum), A0 = 2.5 + 2·1 = 4.5.
    [TestCase(0.0, new[] { 2.5f, 1f, 5.5f, 8f })]
    [TestCase(1.0, new[] { 4.5f, 1f, 21.5f, 8f })]
    public void GaeEpisodeBoundaryMidRolloutGammaAboveOne(double lambda, float[] expected)
    {
        float[] v = [0.5f, 1f, 1.5f, 2f];
        var buf = Rollout([1f, 2f, 3f, 4f], v, [true, false, true, false]);
        buf.ComputeReturnsAndAdvantage(lastValue: 3f, done: false, gamma: 2.0, gaeLambda: lambda);
        Assert.That(buf.Advantages, Is.EqualTo(expected).Within(1e-6f).AsCollection);
        Assert.That(buf.Returns, Is.EqualTo(expected.Select((a, i) => a + v[i]).ToArray()).Within(1e-6f).AsCollection);
    }

    // The rollout ends an episode (RL-Mixup's case): the bootstrap value is ignored.
    // r = [0, 0, 1], V = [0.2, 0.4, 0.8], γ = 1.5, λ = 0.5:
    //   δ2 = 1 − 0.8 = 0.2,  δ1 = 1.5·0.8 − 0.4 = 0.8,  δ0 = 1.5·0.4 − 0.2 = 0.4
    //   A2 = 0.2,  A1 = 0.8 + 0.75·0.2 = 0.95,  A0 = 0.4 + 0.75·0.95 = 1.1125
    [Test]
    public void GaeDoneAtTheEndIgnoresTheBootstrap()
    {
        var buf = Rollout([0f, 0f, 1f], [0.2f, 0.4f, 0.8f], [false, false, false]);
        buf.ComputeReturnsAndAdvantage(lastValue: 100f, done: true, gamma: 1.5, gaeLambda: 0.5);
        Assert.That(buf.Advantages, Is.EqualTo(new[] { 1.1125f, 0.95f, 0.2f }).Within(1e-6f).AsCollection);
        Assert.That(buf.Returns, Is.EqualTo(new[] { 1.3125f, 1.35f, 1.0f }).Within(1e-6f).AsCollection);
    }

    [Test]
    public void GaeEpisodeStartOfTheFirstStepDoesNotMatter()
    {
        var a = Rollout([1f, 0f], [0.1f, 0.3f], [true, false]);
        var b = Rollout([1f, 0f], [0.1f, 0.3f], [false, false]);
        a.ComputeReturnsAndAdvantage(0.7f, false, 1.001, 0.95);
        b.ComputeReturnsAndAdvantage(0.7f, false, 1.001, 0.95);
        Assert.That(a.Advantages, Is.EqualTo(b.Advantages).AsCollection);
    }

    #endregion

    #region MultiCategorical

    // Two categoricals of 3 classes: d0 uniform (logits 0, 0, 0), d1 with logits (0, ln 2, ln 3), i.e. p = (1/6, 2/6, 3/6).
    private static readonly float[] HandLogits = [0f, 0f, 0f, 0f, MathF.Log(2f), MathF.Log(3f)];

    [Test]
    public void LogProbAndEntropyHandComputed()
    {
        // a = (2, 1): log(1/3) + log(2/6) = −2 ln 3
        Assert.That(MultiCategorical.LogProb(HandLogits, [2, 1], 3), Is.EqualTo(-2 * Math.Log(3)).Within(1e-6));
        // a = (0, 2): log(1/3) + log(1/2)
        Assert.That(MultiCategorical.LogProb(HandLogits, [0, 2], 3), Is.EqualTo(-Math.Log(3) - Math.Log(2)).Within(1e-6));
        // H = ln 3 + (1/6·ln 6 + 1/3·ln 3 + 1/2·ln 2)
        double h = Math.Log(3) + Math.Log(6) / 6 + Math.Log(3) / 3 + Math.Log(2) / 2;
        Assert.That(MultiCategorical.Entropy(HandLogits, 2, 3), Is.EqualTo(h).Within(1e-6));
        int[] mode = new int[2];
        MultiCategorical.Mode(HandLogits, 3, mode);
        Assert.That(mode, Is.EqualTo(new[] { 0, 2 }));
    }

    /// <summary>Float64 reference: Σ_d log softmax(z_d)[a_d] and Σ_d H(softmax(z_d)).</summary>
    private static (double LogProb, double Entropy) RefDistribution(double[] z, int[] a, int k)
    {
        double lp = 0, h = 0;
        for (int d = 0; d < a.Length; d++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < k; j++) max = Math.Max(max, z[d * k + j]);
            double s = 0;
            for (int j = 0; j < k; j++) s += Math.Exp(z[d * k + j] - max);
            double lse = max + Math.Log(s);
            lp += z[d * k + a[d]] - lse;
            for (int j = 0; j < k; j++) { double l = z[d * k + j] - lse; h -= Math.Exp(l) * l; }
        }
        return (lp, h);
    }

    [TestCase(1, 10, 0.0, 1.0)]
    [TestCase(4, 10, 1.0, 0.0)]
    [TestCase(5, 3, -0.7, 0.3)]
    public void LogProbAndEntropyGradientsMatchFiniteDifferences(int dims, int classes, double dLogProb, double dEntropy)
    {
        var rng = new Random(dims * 100 + classes);
        var zf = Data.Uniform(dims * classes, rng, -3, 3);
        var a = Enumerable.Range(0, dims).Select(_ => rng.Next(classes)).ToArray();
        var (lp, h) = RefDistribution(ToDouble(zf), a, classes);
        Assert.That(MultiCategorical.LogProb(zf, a, classes), Is.EqualTo(lp).Within(1e-12));
        Assert.That(MultiCategorical.Entropy(zf, dims, classes), Is.EqualTo(h).Within(1e-12));

        var g = new float[zf.Length];
        Array.Fill(g, float.NaN); // overwritten, never accumulated
        MultiCategorical.Backward(g, zf, a, classes, dLogProb, dEntropy);
        var expected = Gradient(z => { var (l, e) = RefDistribution(z, a, classes); return dLogProb * l + dEntropy * e; }, ToDouble(zf));
        // the engine works in double and rounds the gradient to float32 once
        Validate("multi-categorical dlogits", g, expected, 1e-7, Tol.Rtol);
    }

    [Test]
    public void SamplingFollowsTheProbabilities()
    {
        var rng = new Rng(5);
        var counts = new int[2, 3];
        var a = new int[2];
        const int n = 30000;
        for (int i = 0; i < n; i++)
        {
            MultiCategorical.Sample(HandLogits, 3, rng, a);
            counts[0, a[0]]++; counts[1, a[1]]++;
        }
        double[][] p = [[1 / 3.0, 1 / 3.0, 1 / 3.0], [1 / 6.0, 2 / 6.0, 3 / 6.0]];
        // a frequency's standard deviation is √(p(1−p)/n) ≤ 0.0029; 0.012 is over 4 of them
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < 3; k++)
                Assert.That(counts[d, k] / (double)n, Is.EqualTo(p[d][k]).Within(0.012), $"categorical {d}, class {k}");
    }

    #endregion

    #region Clipped loss

    /// <summary>Float64 reference of the whole minibatch loss as a function of the logits and values.</summary>
    private static double RefLoss(double[] z, double[] v, int[][] actions, double[] oldLp, double[] adv, double[] ret, int k, PpoConfig c)
    {
        int m = v.Length, row = z.Length / m;
        double pg = 0, vl = 0, el = 0;
        for (int i = 0; i < m; i++)
        {
            var (lp, h) = RefDistribution(z[(i * row)..((i + 1) * row)], actions[i], k);
            double ratio = Math.Exp(lp - oldLp[i]);
            pg -= Math.Min(adv[i] * ratio, adv[i] * Math.Clamp(ratio, 1 - c.ClipRange, 1 + c.ClipRange));
            vl += (ret[i] - v[i]) * (ret[i] - v[i]);
            el -= h;
        }
        return pg / m + c.EntCoef * el / m + c.VfCoef * vl / m;
    }

    // Ratios inside the clip range (1.05, 0.97) and outside it on both sides (1.5, 0.6), with positive
    // and negative advantages, so that every branch of min/clamp is exercised: the gradient through
    // log π vanishes exactly for (A > 0, ratio > 1 + ε) and (A < 0, ratio < 1 − ε).
    [Test]
    public void ClippedLossGradientMatchesFiniteDifferences()
    {
        const int dims = 3, k = 4, row = dims * k;
        double[] ratios = [1.05, 0.97, 1.5, 0.6, 1.5, 0.6, 1.02];
        double[] adv = [0.8, -1.1, 1.3, 0.9, -0.7, -1.4, 0.5];
        int m = ratios.Length;
        var config = new PpoConfig { ClipRange = 0.2, EntCoef = 0.01, VfCoef = 0.5 };
        var rng = new Random(11);
        var zf = Data.Uniform(m * row, rng, -2, 2);
        var vf = Data.Uniform(m, rng);
        var ret = ToDouble(Data.Uniform(m, rng, -2, 2));
        var actions = Enumerable.Range(0, m).Select(_ => Enumerable.Range(0, dims).Select(_ => rng.Next(k)).ToArray()).ToArray();
        var lp = new double[m]; var ent = new double[m]; var old = new double[m];
        for (int i = 0; i < m; i++)
        {
            lp[i] = MultiCategorical.LogProb(zf.AsSpan(i * row, row), actions[i], k);
            ent[i] = MultiCategorical.Entropy(zf.AsSpan(i * row, row), dims, k);
            old[i] = lp[i] - Math.Log(ratios[i]);
        }

        var res = PpoLoss.Compute(lp, old, adv, vf, ret, ent, config);
        double refLoss = RefLoss(ToDouble(zf), ToDouble(vf), actions, old, adv, ret, k, config);
        Assert.That(res.Loss, Is.EqualTo(refLoss).Within(1e-9));
        Assert.That(res.ClipFraction, Is.EqualTo(4.0 / m).Within(1e-12));
        double kl = ratios.Sum(r => r - 1 - Math.Log(r)) / m;
        Assert.That(res.ApproxKl, Is.EqualTo(kl).Within(1e-9));
        Assert.That(res.DLogProb[2], Is.EqualTo(0.0), "A > 0, ratio above 1 + ε: clipped, no gradient");
        Assert.That(res.DLogProb[5], Is.EqualTo(0.0), "A < 0, ratio below 1 − ε: clipped, no gradient");
        Assert.That(res.DLogProb[3], Is.Not.EqualTo(0.0), "A > 0, ratio below 1 − ε: the unclipped term is the minimum");

        var dz = new float[m * row];
        for (int i = 0; i < m; i++)
            MultiCategorical.Backward(dz.AsSpan(i * row, row), zf.AsSpan(i * row, row), actions[i], k, res.DLogProb[i], res.DEntropy[i]);
        var dzRef = Gradient(z => RefLoss(z, ToDouble(vf), actions, old, adv, ret, k, config), ToDouble(zf));
        Validate("ppo loss dlogits", dz, dzRef, 1e-7, Tol.Rtol);
        var dvRef = Gradient(v => RefLoss(ToDouble(zf), v, actions, old, adv, ret, k, config), ToDouble(vf));
        Validate("ppo loss dvalues", res.DValues, dvRef, 1e-7, Tol.Rtol);
    }

    #endregion

    #region Orthogonal init

    // (rows, cols) after flattening: wide, tall, square, and a conv weight (8, 3·3·3).
    [TestCase(new[] { 6, 20 }, 1.4142135623730951)]
    [TestCase(new[] { 20, 6 }, 1.0)]
    [TestCase(new[] { 10, 10 }, 0.01)]
    [TestCase(new[] { 8, 3, 3, 3 }, 1.4142135623730951)]
    public void OrthogonalRowsOrColumnsHaveNormGain(int[] dims, double gain)
    {
        var shape = new Shape(dims);
        var w = new float[shape.Size];
        Init.Orthogonal(gain).Fill(w, shape, new Rng(3));
        int rows = dims[0], cols = shape.Size / rows;
        bool wide = rows <= cols;
        int n = wide ? rows : cols;
        // W·Wᵀ (rows ≤ cols) or Wᵀ·W (tall) = gain²·I; float32 storage bounds the error to a few ulps of gain²
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                int len = wide ? cols : rows;
                for (int t = 0; t < len; t++)
                    s += wide ? (double)w[i * cols + t] * w[j * cols + t] : (double)w[t * cols + i] * w[t * cols + j];
                Assert.That(s, Is.EqualTo(i == j ? gain * gain : 0).Within(1e-6 * gain * gain), $"({i},{j})");
            }
        var again = new float[shape.Size];
        Init.Orthogonal(gain).Fill(again, shape, new Rng(3));
        Assert.That(again, Is.EqualTo(w).AsCollection, "same seed, same matrix");
    }

    #endregion
}
