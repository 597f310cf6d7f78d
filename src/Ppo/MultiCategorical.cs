using RlMixup.Core;

namespace RlMixup.Ppo;

/// <summary>
/// D independent categorical distributions of K classes each, one row of logits (D·K) per sample:
/// Stable-Baselines3's MultiCategoricalDistribution for MultiDiscrete([K]*D). The log-probability
/// and the entropy of a sample are SUMS over the D categoricals.
/// Host code in double over float logits: the rows are small (D·K = 1000 at the paper's size) and
/// the PPO loss around them is scalar bookkeeping.
/// </summary>
public static class MultiCategorical
{
    /// <summary>log-softmax of each K-group of one row, in double.</summary>
    private static void LogSoftmax(ReadOnlySpan<float> z, Span<double> logp)
    {
        double max = double.NegativeInfinity;
        foreach (float v in z) if (v > max) max = v;
        double s = 0;
        foreach (float v in z) s += Math.Exp(v - max);
        double lse = max + Math.Log(s);
        for (int k = 0; k < z.Length; k++) logp[k] = z[k] - lse;
    }

    private static void CheckRow(int rowLength, int dims, int classes)
    {
        if (dims < 1 || classes < 1 || rowLength != dims * classes)
            throw new ShapeMismatchException($"multi-categorical: a row of {rowLength} logits is not {dims} × {classes}");
    }

    /// <summary>log π(a|row) = Σ_d log softmax(z_d)[a_d].</summary>
    public static double LogProb(ReadOnlySpan<float> logits, ReadOnlySpan<int> actions, int classes)
    {
        int dims = actions.Length;
        CheckRow(logits.Length, dims, classes);
        Span<double> lp = stackalloc double[classes];
        double s = 0;
        for (int d = 0; d < dims; d++)
        {
            int a = actions[d];
            if ((uint)a >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(actions), $"action {a} of dimension {d} is outside [0, {classes})");
            LogSoftmax(logits.Slice(d * classes, classes), lp);
            s += lp[a];
        }
        return s;
    }

    /// <summary>H = Σ_d −Σ_k p_dk log p_dk.</summary>
    public static double Entropy(ReadOnlySpan<float> logits, int dims, int classes)
    {
        CheckRow(logits.Length, dims, classes);
        Span<double> lp = stackalloc double[classes];
        double h = 0;
        for (int d = 0; d < dims; d++)
        {
            LogSoftmax(logits.Slice(d * classes, classes), lp);
            for (int k = 0; k < classes; k++) h -= Math.Exp(lp[k]) * lp[k];
        }
        return h;
    }

    /// <summary>
    /// The gradient of dLogProb·log π(a) + dEntropy·H with respect to one row of logits, OVERWRITING
    /// <paramref name="dLogits"/>. Per categorical d with p = softmax(z_d), l = log p, H_d = −Σ p·l:
    ///   ∂ log p_a / ∂z_k = [k = a] − p_k,      ∂H_d / ∂z_k = −p_k·(l_k + H_d).
    /// </summary>
    public static void Backward(Span<float> dLogits, ReadOnlySpan<float> logits, ReadOnlySpan<int> actions, int classes,
        double dLogProb, double dEntropy)
    {
        int dims = actions.Length;
        CheckRow(logits.Length, dims, classes);
        if (dLogits.Length != logits.Length) throw new ShapeMismatchException($"multi-categorical backward: {dLogits.Length} gradients for {logits.Length} logits");
        Span<double> lp = stackalloc double[classes];
        for (int d = 0; d < dims; d++)
        {
            LogSoftmax(logits.Slice(d * classes, classes), lp);
            double h = 0;
            for (int k = 0; k < classes; k++) h -= Math.Exp(lp[k]) * lp[k];
            for (int k = 0; k < classes; k++)
            {
                double p = Math.Exp(lp[k]);
                double g = dLogProb * ((k == actions[d] ? 1 : 0) - p) - dEntropy * p * (lp[k] + h);
                dLogits[d * classes + k] = (float)g;
            }
        }
    }

    /// <summary>
    /// One sample per categorical by inverse CDF: u ~ U[0,1) from <paramref name="rng"/>, the first
    /// class whose cumulative probability exceeds u (the last class absorbs rounding).
    /// </summary>
    public static void Sample(ReadOnlySpan<float> logits, int classes, Rng rng, Span<int> actions)
    {
        int dims = actions.Length;
        CheckRow(logits.Length, dims, classes);
        Span<double> lp = stackalloc double[classes];
        for (int d = 0; d < dims; d++)
        {
            LogSoftmax(logits.Slice(d * classes, classes), lp);
            double u = rng.NextDouble(), c = 0;
            int a = classes - 1;
            for (int k = 0; k < classes; k++)
            {
                c += Math.Exp(lp[k]);
                if (u < c) { a = k; break; }
            }
            actions[d] = a;
        }
    }

    /// <summary>The most likely class of each categorical (the first one on ties, as argmax).</summary>
    public static void Mode(ReadOnlySpan<float> logits, int classes, Span<int> actions)
    {
        int dims = actions.Length;
        CheckRow(logits.Length, dims, classes);
        for (int d = 0; d < dims; d++)
        {
            var z = logits.Slice(d * classes, classes);
            int best = 0;
            for (int k = 1; k < classes; k++) if (z[k] > z[best]) best = k;
            actions[d] = best;
        }
    }
}
