namespace RlMixup.Ppo;

/// <summary>The minibatch loss of PPO-Clip and its gradient with respect to log π, V and H of each sample.</summary>
public sealed record PpoLossResult(
    double PgLoss, double VLoss, double EntropyLoss, double Loss, double ApproxKl, double ClipFraction,
    double[] DLogProb, float[] DValues, double[] DEntropy);

/// <summary>
/// SB3's PPO loss on one minibatch of m samples (advantages already normalised by the caller):
///   ratio        = exp(log π − log π_old)
///   pgLoss       = −mean(min(A·ratio, A·clamp(ratio, 1 − ε, 1 + ε)))
///   vLoss        = mean((R − V)²)                              (no value clipping)
///   entropyLoss  = −mean(H)
///   loss         = pgLoss + ent_coef·entropyLoss + vf_coef·vLoss
///   approxKl     = mean((ratio − 1) − log ratio),   clipFraction = mean(|ratio − 1| &gt; ε)
/// Gradients, as autograd gives them: through min, the unclipped branch when A·ratio ≤ A·clamp(ratio)
/// (where the two are equal, ratio is inside the clip range or A = 0, and both branches carry A·ratio),
/// otherwise the clipped branch, which is flat outside [1 − ε, 1 + ε]. So
///   ∂loss/∂log π_i = −A_i·ratio_i/m when A_i·ratio_i ≤ A_i·clamp(ratio_i), else 0;
///   ∂loss/∂V_i = vf_coef·2(V_i − R_i)/m;   ∂loss/∂H_i = −ent_coef/m.
/// </summary>
public static class PpoLoss
{
    public static PpoLossResult Compute(ReadOnlySpan<double> logProb, ReadOnlySpan<double> oldLogProb, ReadOnlySpan<double> advantages,
        ReadOnlySpan<float> values, ReadOnlySpan<double> returns, ReadOnlySpan<double> entropy, PpoConfig config)
    {
        int m = logProb.Length;
        if (oldLogProb.Length != m || advantages.Length != m || values.Length != m || returns.Length != m || entropy.Length != m)
            throw new ArgumentException("ppo loss: every per-sample input must have the minibatch's length");
        double eps = config.ClipRange;
        double pg = 0, vl = 0, el = 0, kl = 0, clipped = 0;
        var dLogProb = new double[m]; var dValues = new float[m]; var dEntropy = new double[m];
        for (int i = 0; i < m; i++)
        {
            double logRatio = logProb[i] - oldLogProb[i];
            double ratio = Math.Exp(logRatio);
            double a = advantages[i];
            double unclipped = a * ratio, clippedTerm = a * Math.Clamp(ratio, 1 - eps, 1 + eps);
            pg -= Math.Min(unclipped, clippedTerm);
            dLogProb[i] = unclipped <= clippedTerm ? -a * ratio / m : 0;
            if (Math.Abs(ratio - 1) > eps) clipped++;
            kl += (ratio - 1) - logRatio;

            double diff = values[i] - returns[i];
            vl += diff * diff;
            dValues[i] = (float)(config.VfCoef * 2 * diff / m);

            el -= entropy[i];
            dEntropy[i] = -config.EntCoef / m;
        }
        pg /= m; vl /= m; el /= m;
        double loss = pg + config.EntCoef * el + config.VfCoef * vl;
        return new PpoLossResult(pg, vl, el, loss, kl / m, clipped / m, dLogProb, dValues, dEntropy);
    }
}
