namespace RlMixup.Engine.Training;

/// <summary>What the agent is rewarded by (method notes, "Reward").</summary>
public enum RewardKind
{
    /// <summary>Eq. 5: the scaled change of held-out accuracy every <see cref="Runs.RewardSpec.Interval"/> steps (the paper).</summary>
    Accuracy,
    /// <summary>Option (C): every step, the cosine similarity of the clean and the mixed batch's pooled input-gradient maps.</summary>
    GradSim,
}

/// <summary>How a measured accuracy becomes the accuracy reward (the paper's §5.6 compares the two).</summary>
public enum RewardForm
{
    /// <summary>Eq. 5: r = (k/K)·(v − V), the scaled change since the last reward.</summary>
    Eq5,
    /// <summary>r = v: the held-out accuracy itself.</summary>
    Raw,
}

/// <summary>
/// The accuracy reward. Every <see cref="Interval"/> steps (or, with <see cref="AtEpisodeEnd"/>, on
/// each epoch's last step only: the paper's §5.6 ablation) the trainer measures v, the top-1 on a
/// fresh uniform sample of the held-out set. Eq. 5 (the paper) rewards r = (k/K)·(v − V), with k the
/// 1-based epoch, K the number of epochs and V the previous v (initially 0); the raw form (§5.6)
/// rewards r = v. Then V = v. Every other step earns 0.
/// </summary>
public sealed class RewardTracker(int interval = 50, RewardForm form = RewardForm.Eq5, bool atEpisodeEnd = false)
{
    public int Interval { get; } = interval > 0 ? interval : throw new ArgumentOutOfRangeException(nameof(interval), "the reward interval must be positive");
    public RewardForm Form { get; } = form;
    public bool AtEpisodeEnd { get; } = atEpisodeEnd;
    /// <summary>V: the accuracy measured at the last reward step.</summary>
    public double Previous { get; set; }

    /// <summary>True when the 1-based global step earns a measured reward; <paramref name="episodeEnd"/>: it is its epoch's last.</summary>
    public bool IsRewardStep(long step, bool episodeEnd = false) => AtEpisodeEnd ? episodeEnd : step % Interval == 0;

    /// <summary>r for a measured accuracy v at 1-based epoch k of K; updates V.</summary>
    public double Reward(double accuracy, int epoch, int epochs)
    {
        if (epoch < 1 || epoch > epochs) throw new ArgumentOutOfRangeException(nameof(epoch), $"epoch {epoch} is outside 1..{epochs}");
        double r = Form == RewardForm.Raw ? accuracy : (double)epoch / epochs * (accuracy - Previous);
        Previous = accuracy;
        return r;
    }
}

/// <summary>
/// The grad-sim reward: the mean over the batch's images of cos(s_i, s′_i), where s_i is image i's
/// saliency map from the saliency pass on the clean batch and s′_i the map pooled the same way from
/// the training backward's input gradient on the mixed batch; each map is flattened to p·p values.
/// A map with norm 0 gives cos = 0. Computed on the host, in double.
/// </summary>
public static class GradSimReward
{
    public static double Mean(ReadOnlySpan<float> clean, ReadOnlySpan<float> mixed, int images)
    {
        if (images < 1 || clean.Length != mixed.Length || clean.Length % images != 0)
            throw new ArgumentException($"grad-sim reward: {clean.Length} and {mixed.Length} map values for {images} images");
        int size = clean.Length / images;
        double sum = 0;
        for (int i = 0; i < images; i++) sum += Cosine(clean.Slice(i * size, size), mixed.Slice(i * size, size));
        return sum / images;
    }

    /// <summary>cos(a, b) = a·b / (|a| |b|) in double; 0 when either norm is 0.</summary>
    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"cosine: vectors of {a.Length} and {b.Length} values");
        double dot = 0, na = 0, nb = 0;
        for (int k = 0; k < a.Length; k++)
        {
            dot += (double)a[k] * b[k];
            na += (double)a[k] * a[k];
            nb += (double)b[k] * b[k];
        }
        return na == 0 || nb == 0 ? 0 : dot / (Math.Sqrt(na) * Math.Sqrt(nb));
    }
}

public static class Accuracy
{
    /// <summary>Number of rows of logits (N, K) whose arg-max equals the label (ties: the first maximum, as torch.argmax).</summary>
    public static int CountCorrect(ReadOnlySpan<float> logits, ReadOnlySpan<byte> labels, int classes)
    {
        if (logits.Length != labels.Length * classes)
            throw new ArgumentException($"accuracy: {logits.Length} logits for {labels.Length} labels of {classes} classes");
        int correct = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            var row = logits.Slice(i * classes, classes);
            int arg = 0;
            for (int c = 1; c < classes; c++) if (row[c] > row[arg]) arg = c;
            if (arg == labels[i]) correct++;
        }
        return correct;
    }
}
