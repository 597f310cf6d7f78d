using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Mixup;

namespace RlMixup.Tests;

/// <summary>
/// The samplers behind λ (Gamma → Beta → Dirichlet) and CutMix's box, checked by their moments over
/// N = 200,000 draws from a fixed seed. Each check allows Z = 5 standard errors: for the mean
/// SE = σ/√N with the true σ; for the variance SE = √((μ4 − σ⁴)/N), the large-sample standard error
/// of the sample variance, with μ4 (the fourth central moment) estimated from the same sample, which
/// needs no kurtosis formula per distribution. A correct sampler fails such a check with probability
/// below 10⁻⁶; the seed is fixed, so the tests are deterministic anyway. A wrong shape parameter
/// (e.g. the shape &lt; 1 boost dropped) moves the mean by hundreds of SEs.
/// </summary>
public class SamplingTests
{
    private const int N = 200_000;
    private const double Z = 5;

    [TestCase(0.5)]
    [TestCase(1.0)]
    [TestCase(2.5)]
    public void GammaHasMeanAndVarianceOfItsShape(double k)
    {
        var rng = new Rng(100 + (ulong)(k * 10));
        var x = new double[N];
        for (int i = 0; i < N; i++) x[i] = rng.Gamma(k);
        Assert.That(x, Is.All.GreaterThanOrEqualTo(0.0));
        CheckMoments(x, mean: k, variance: k, $"Gamma({k})");
    }

    [Test]
    public void GammaOfShapeOneIsExponential()
    {
        // Kolmogorov–Smirnov against 1 − e^(−x): the critical value at level 0.001 is 1.95/√N.
        var rng = new Rng(7);
        var x = new double[N];
        for (int i = 0; i < N; i++) x[i] = rng.Gamma(1);
        Assert.That(KolmogorovSmirnov(x, v => 1 - Math.Exp(-v)), Is.LessThan(1.95 / Math.Sqrt(N)));
    }

    [TestCase(0.5, 0.5)]
    [TestCase(1.0, 1.0)]
    public void BetaHasItsMeanAndVariance(double a, double b)
    {
        var rng = new Rng(200 + (ulong)(a * 10));
        var x = new double[N];
        for (int i = 0; i < N; i++) x[i] = rng.Beta(a, b);
        Assert.That(x, Is.All.InRange(0.0, 1.0));
        double s = a + b;
        CheckMoments(x, mean: a / s, variance: a * b / (s * s * (s + 1)), $"Beta({a},{b})");
    }

    [Test]
    public void BetaOfOneOneIsUniform()
    {
        var rng = new Rng(8);
        var x = new double[N];
        for (int i = 0; i < N; i++) x[i] = rng.Beta(1, 1);
        Assert.That(KolmogorovSmirnov(x, v => v), Is.LessThan(1.95 / Math.Sqrt(N)));
    }

    /// <summary>
    /// Component i of Dirichlet(α) is Beta(α_i, α0 − α_i): mean α_i/α0, variance α_i(α0 − α_i)/(α0²(α0 + 1));
    /// two components have covariance −α_i α_j/(α0²(α0 + 1)). Every draw sums to 1.
    /// </summary>
    [TestCase(new[] { 0.5, 0.5 })]
    [TestCase(new[] { 1.0, 2.0, 3.0 })]
    public void DirichletComponentsHaveBetaMoments(double[] alpha)
    {
        int d = alpha.Length;
        double a0 = alpha.Sum();
        var rng = new Rng(300 + (ulong)d);
        var draws = new double[d][];
        for (int c = 0; c < d; c++) draws[c] = new double[N];
        var one = new double[d];
        for (int i = 0; i < N; i++)
        {
            rng.Dirichlet(alpha, one);
            double sum = 0;
            for (int c = 0; c < d; c++) { draws[c][i] = one[c]; sum += one[c]; }
            Assert.That(sum, Is.EqualTo(1.0).Within(1e-12), $"draw {i} sums to 1");
        }
        for (int c = 0; c < d; c++)
            CheckMoments(draws[c], alpha[c] / a0, alpha[c] * (a0 - alpha[c]) / (a0 * a0 * (a0 + 1)), $"Dirichlet component {c}");

        // Covariance of components 0 and 1; its SE is √((E[(x−x̄)²(y−ȳ)²] − cov²)/N), estimated from the sample.
        double[] x0 = draws[0], x1 = draws[1];
        double m0 = x0.Average(), m1 = x1.Average(), cov = 0, m22 = 0;
        for (int i = 0; i < N; i++) { double p = (x0[i] - m0) * (x1[i] - m1); cov += p; m22 += p * p; }
        cov /= N; m22 /= N;
        double want = -alpha[0] * alpha[1] / (a0 * a0 * (a0 + 1));
        Assert.That(cov, Is.EqualTo(want).Within(Z * Math.Sqrt((m22 - cov * cov) / N)), "covariance of components 0 and 1");
    }

    [Test]
    public void OneDrawOfTwoSymmetricDirichletIsBetaAndItsComplement()
    {
        // The method samples (λ1, λ2) ~ Dirichlet(α, α) as λ1 ~ Beta(α, α), λ2 = 1 − λ1: same law, same stream.
        var (a, b) = (new Rng(42), new Rng(42));
        Span<double> l = stackalloc double[2];
        for (int i = 0; i < 1000; i++)
        {
            a.Dirichlet([0.5, 0.5], l);
            Assert.That(b.Beta(0.5, 0.5), Is.EqualTo(l[0]).Within(1e-12));
            Assert.That(l[0] + l[1], Is.EqualTo(1.0).Within(1e-12));
        }
    }

    /// <summary>
    /// CutBox.Sample for 32×32 images with λ ~ Beta(1, 1): every box lies inside the image, the
    /// corrected λ is exactly 1 − area/(H·W) and never below the drawn λ (clipping and the integer
    /// side only shrink the box). The mean kept fraction is therefore NOT E[λ] = 0.5: the box side
    /// is 2·⌊⌊32√(1−λ)⌋/2⌋, clipped to the image around a uniform centre, which gives
    /// E[kept] = 0.70075 (enumerated below over the 32 side lengths and 32 centre rows). The sample
    /// mean must match that within 5 SE, and stay within [E[λ], E[λ] + 0.25].
    /// </summary>
    [Test]
    public void CutBoxStaysInsideAndCorrectsLambda()
    {
        const int h = 32, w = 32;
        var rng = new Rng(17);
        var kept = new double[N];
        string? firstBad = null;
        for (int i = 0; i < N; i++)
        {
            double lambda = rng.Beta(1, 1);
            var box = CutBox.Sample(rng, lambda, h, w);
            kept[i] = box.KeptFraction(h, w);
            bool inside = box.Y0 >= 0 && box.X0 >= 0 && box.Y1 <= h && box.X1 <= w && box.Y0 <= box.Y1 && box.X0 <= box.X1;
            int area = (box.Y1 - box.Y0) * (box.X1 - box.X0);
            if (i < 2000) // the Contains test agrees with the area (a pixel count; slow, so on a prefix)
            {
                int count = 0;
                for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) if (box.Contains(y, x)) count++;
                if (count != area) firstBad ??= $"draw {i}: box {box} contains {count} pixels, area {area}";
            }
            if (!inside) firstBad ??= $"draw {i}: box {box} is not inside {h}×{w}";
            else if (box.Area != area || Math.Abs(kept[i] - (1 - (double)area / (h * w))) > 1e-6)
                firstBad ??= $"draw {i}: box {box} has Area {box.Area} and kept {kept[i]}, expected {area} and {1 - (double)area / (h * w)}";
            else if (kept[i] < lambda - 1e-6) firstBad ??= $"draw {i}: kept {kept[i]} below the drawn λ {lambda}: the box covers more than 1 − λ";
        }
        Assert.That(firstBad, Is.Null);
        double expected = ExpectedCutMixKept(h);
        Assert.That(expected, Is.EqualTo(0.70075).Within(1e-5));
        double mean = kept.Average(), sd = Math.Sqrt(kept.Select(k => (k - mean) * (k - mean)).Sum() / (N - 1));
        TestContext.Out.WriteLine($"CutMix kept fraction: mean {mean:F5}, exact expectation {expected:F5}, SE {sd / Math.Sqrt(N):E2}");
        Assert.That(mean, Is.EqualTo(expected).Within(Z * sd / Math.Sqrt(N)), "mean kept fraction vs its exact expectation");
        Assert.That(mean, Is.InRange(0.5, 0.75), "mean kept fraction vs E[λ] = 0.5");
    }

    /// <summary>
    /// E[1 − area/(s²)] for CutBox.Sample on s×s with λ ~ U(0, 1): the side is k = ⌊s√(1−λ)⌋ with
    /// probability ((k+1)² − k²)/s², the box rows are [cy − ⌊k/2⌋, cy + ⌊k/2⌋) clipped, with cy uniform,
    /// and rows and columns are independent, so E[area | k] = E[rows | k]².
    /// </summary>
    private static double ExpectedCutMixKept(int s)
    {
        double e = 0;
        for (int k = 0; k < s; k++)
        {
            int half = k / 2;
            double rows = 0;
            for (int cy = 0; cy < s; cy++) rows += Math.Min(cy + half, s) - Math.Max(cy - half, 0);
            rows /= s;
            e += (2.0 * k + 1) / (s * s) * (1 - rows * rows / (s * s));
        }
        return e;
    }

    private static void CheckMoments(double[] x, double mean, double variance, string what)
    {
        double m = x.Average();
        double m2 = 0, m4 = 0;
        foreach (double v in x) { double d = v - m; m2 += d * d; m4 += d * d * d * d; }
        double s2 = m2 / (x.Length - 1);
        m4 /= x.Length;
        double seMean = Math.Sqrt(variance / x.Length), seVar = Math.Sqrt((m4 - s2 * s2) / x.Length);
        TestContext.Out.WriteLine($"{what}: mean {m:F5} (want {mean:F5}, SE {seMean:E2}), variance {s2:F5} (want {variance:F5}, SE {seVar:E2})");
        Assert.That(m, Is.EqualTo(mean).Within(Z * seMean), $"{what}: mean");
        Assert.That(s2, Is.EqualTo(variance).Within(Z * seVar), $"{what}: variance");
    }

    /// <summary>sup |F_n − F| over the sample, for a continuous CDF F.</summary>
    private static double KolmogorovSmirnov(double[] x, Func<double, double> cdf)
    {
        var s = (double[])x.Clone();
        Array.Sort(s);
        double d = 0;
        for (int i = 0; i < s.Length; i++)
        {
            double f = cdf(s[i]);
            d = Math.Max(d, Math.Max((i + 1.0) / s.Length - f, f - (double)i / s.Length));
        }
        return d;
    }
}
