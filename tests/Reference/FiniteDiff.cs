using System.Globalization;
using NUnit.Framework;

namespace RlMixup.Tests.Reference;

/// <summary>
/// Central finite differences in float64, random projections that turn a tensor-valued op into a
/// scalar loss, and the tolerance check every gradient test ends with.
/// </summary>
public static class FiniteDiff
{
    /// <summary>
    /// Step of the central difference (f(x+h) − f(x−h)) / 2h, on double inputs of magnitude ~1.
    ///
    /// Why the finite-difference error can be ignored next to a float32 tolerance:
    /// - truncation: the Taylor remainder is h²/6·f''' ≈ 1.7e-13·|f'''|. Our test functions are
    ///   polynomials, tanh, exp/log and 1/sqrt of well-conditioned arguments, so |f'''| is O(1–100)
    ///   and this stays below 1e-10;
    /// - rounding: f is evaluated in double, each value carries an error of about ε_f64·|L| with
    ///   ε_f64 = 2.2e-16, and dividing by 2h amplifies it to ≈ ε_f64·|L|/h ≈ 2.2e-10·|L|. The
    ///   losses we differentiate have |L| ≤ ~1e3, so this is ≤ ~2e-7 in the worst case and ~1e-9
    ///   typically;
    /// - float32 results themselves carry errors of ε_f32 = 6e-8 relative per rounding, summed over
    ///   K terms; every tolerance below is ≥ 1e-6 absolute, well above both FD error terms.
    /// Piecewise-linear ops (ReLU) are only probed at |x| > 1e-2 ≫ h, so no step crosses the kink.
    /// </summary>
    public const double Step = 1e-6;

    /// <summary>∂f/∂x_i for every i, by central differences. x is restored on return.</summary>
    public static double[] Gradient(Func<double[], double> f, double[] x, double h = Step)
    {
        var all = new int[x.Length];
        for (int i = 0; i < all.Length; i++) all[i] = i;
        return Gradient(f, x, all, h);
    }

    /// <summary>∂f/∂x_i for the listed indices only (result[j] belongs to indices[j]).</summary>
    public static double[] Gradient(Func<double[], double> f, double[] x, IReadOnlyList<int> indices, double h = Step)
    {
        var g = new double[indices.Count];
        for (int j = 0; j < indices.Count; j++)
        {
            int i = indices[j];
            double x0 = x[i];
            x[i] = x0 + h;
            double fp = f(x);
            x[i] = x0 - h;
            double fm = f(x);
            x[i] = x0;
            g[j] = (fp - fm) / (2 * h);
        }
        return g;
    }

    /// <summary>
    /// A fixed random projection r with entries in [−1, 1), exactly representable in float32 so that
    /// the same r can be handed to the engine as the upstream gradient dy.
    /// </summary>
    public static double[] Projection(int length, Random rng) => ToDouble(Data.Uniform(length, rng, -1, 1));

    /// <summary>L = Σ r ⊙ y: the scalar whose gradient with respect to y is r.</summary>
    public static double Dot(double[] r, double[] y)
    {
        if (r.Length != y.Length) throw new ArgumentException($"projection of length {r.Length} vs output of length {y.Length}");
        double s = 0;
        for (int i = 0; i < r.Length; i++) s += r[i] * y[i];
        return s;
    }

    /// <summary>L(x) = Σ r ⊙ f(x), so that ∂L/∂x is the vector-Jacobian product of f with dy = r.</summary>
    public static Func<double[], double> Projected(Func<double[], double[]> f, double[] r) => x => Dot(r, f(x));

    public static double[] ToDouble(float[] a)
    {
        var d = new double[a.Length];
        for (int i = 0; i < a.Length; i++) d[i] = a[i];
        return d;
    }

    public static float[] ToFloat(double[] a)
    {
        var f = new float[a.Length];
        for (int i = 0; i < a.Length; i++) f[i] = (float)a[i];
        return f;
    }

    /// <summary>
    /// Asserts |actual − expected| ≤ atol + |expected|·rtol elementwise. Elements whose expected value
    /// is not finite are skipped (as llm.c's validate_result does); a non-finite actual against a finite
    /// expected value fails. The message names the worst element (largest error/tolerance ratio) and
    /// how many elements failed.
    /// </summary>
    public static void Validate(string name, ReadOnlySpan<float> actual, double[] expected, double atol, double rtol)
    {
        if (actual.Length != expected.Length)
            Assert.Fail($"{name}: {actual.Length} values computed but {expected.Length} expected");
        int worst = -1, failures = 0;
        double worstRatio = -1, maxAbsErr = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i];
            if (!double.IsFinite(e)) continue;
            double a = actual[i];
            double err = double.IsFinite(a) ? Math.Abs(a - e) : double.PositiveInfinity;
            double tol = atol + Math.Abs(e) * rtol;
            double ratio = err / tol;
            if (ratio > 1) failures++;
            if (ratio > worstRatio) { worstRatio = ratio; worst = i; }
            if (err > maxAbsErr) maxAbsErr = err;
        }
        if (failures > 0)
        {
            var ci = CultureInfo.InvariantCulture;
            double we = expected[worst], wa = actual[worst];
            Assert.Fail(string.Format(ci,
                "{0}: {1} of {2} elements out of tolerance (atol {3:G3}, rtol {4:G3}); worst at [{5}]: " +
                "actual {6:G9}, expected {7:G12}, |error| {8:G4} = {9:G4}× its tolerance; max |error| {10:G4}",
                name, failures, expected.Length, atol, rtol, worst, wa, we, Math.Abs(wa - we), worstRatio, maxAbsErr));
        }
    }
}

/// <summary>Seeded random test data, drawn in float32 so the engine and the reference see identical inputs.</summary>
public static class Data
{
    public static float[] Uniform(int length, Random rng, double lo = -1, double hi = 1)
    {
        var a = new float[length];
        for (int i = 0; i < length; i++) a[i] = (float)(lo + (hi - lo) * rng.NextDouble());
        return a;
    }

    /// <summary>Uniform values in ±[minAbs, maxAbs): kept away from 0, e.g. for the ReLU kink.</summary>
    public static float[] AwayFromZero(int length, Random rng, double minAbs, double maxAbs)
    {
        var a = new float[length];
        for (int i = 0; i < length; i++)
        {
            double m = minAbs + (maxAbs - minAbs) * rng.NextDouble();
            a[i] = (float)(rng.Next(2) == 0 ? -m : m);
        }
        return a;
    }

    public static float[] Filled(int length, float value)
    {
        var a = new float[length];
        Array.Fill(a, value);
        return a;
    }
}

/// <summary>
/// Float32 error model for the tolerances. A float32 sum of K terms accumulates a rounding error that
/// grows like √K·ε_f32·Σ|terms| for the usual random-walk behaviour (K·ε_f32·Σ|terms| worst case);
/// blocked or FMA kernels only do better. The float64 reference and the finite differences are
/// accurate to ~1e-9 (see <see cref="FiniteDiff.Step"/>), so the engine's float32 error is the only
/// thing the tolerance has to absorb.
/// </summary>
public static class Tol
{
    /// <summary>Unit roundoff of float32, 2⁻²⁴.</summary>
    public const double EpsF32 = 5.9604644775390625e-8;

    /// <summary>
    /// rtol for results that are a few roundings away from their inputs (one division, one sqrt, an
    /// exp): 16 ulps, which is ~1e-6.
    /// </summary>
    public const double Rtol = 16 * EpsF32;

    /// <summary>
    /// atol for a float32 sum of <paramref name="k"/> terms whose absolute values add up to at most
    /// <paramref name="sumAbs"/>: 4·√K·ε_f32·Σ|terms| (factor 4 = margin for the roundings of the products
    /// and of any epilogue), and never below 1e-6.
    /// </summary>
    public static double Sum(int k, double sumAbs) => Math.Max(1e-6, 4 * Math.Sqrt(Math.Max(k, 1)) * EpsF32 * sumAbs);
}
