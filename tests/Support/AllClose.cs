using NUnit.Framework;

namespace RlMixup.Tests;

/// <summary>
/// llm.c-style comparison: every element must satisfy |a − e| ≤ atol + rtol·|e|. Non-finite
/// expected values are skipped; a failure names the tensor and its worst element.
/// </summary>
public static class AllClose
{
    public static void Assert(string name, ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double atol, double rtol)
    {
        NUnit.Framework.Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{name}: length");
        int worst = -1, bad = 0;
        double worstExcess = double.NegativeInfinity;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!double.IsFinite(expected[i])) continue;
            double err = Math.Abs(actual[i] - expected[i]), allowed = atol + rtol * Math.Abs(expected[i]);
            if (!(err <= allowed)) bad++;
            double excess = double.IsNaN(err) ? double.PositiveInfinity : err - allowed;
            if (excess > worstExcess) { worstExcess = excess; worst = i; }
        }
        if (bad > 0)
            NUnit.Framework.Assert.Fail(
                $"{name}: {bad} of {actual.Length} elements out of tolerance (atol {atol:g3}, rtol {rtol:g3}); " +
                $"worst at [{worst}]: got {actual[worst]:g9}, expected {expected[worst]:g9}, error {Math.Abs(actual[worst] - expected[worst]):g3}");
    }

    public static void Assert(string name, ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double atol, double rtol)
    {
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++) e[i] = expected[i];
        Assert(name, actual, e, atol, rtol);
    }
}
