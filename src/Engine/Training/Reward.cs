namespace RlMixup.Engine.Training;

/// <summary>
/// The paper's reward (eq. 5): every <see cref="Interval"/> steps, r = (k/K)·(v − V), with v the
/// top-1 accuracy on a fresh uniform sample of the held-out set, k the 1-based epoch, K the number
/// of epochs and V the previous v (initially 0); then V = v. Every other step earns 0.
/// </summary>
public sealed class RewardTracker(int interval = 50)
{
    public int Interval { get; } = interval > 0 ? interval : throw new ArgumentOutOfRangeException(nameof(interval), "the reward interval must be positive");
    /// <summary>V: the accuracy measured at the last reward step.</summary>
    public double Previous { get; set; }

    /// <summary>True when the 1-based global step earns a measured reward.</summary>
    public bool IsRewardStep(long step) => step % Interval == 0;

    /// <summary>r for a measured accuracy v at 1-based epoch k of K; updates V.</summary>
    public double Reward(double accuracy, int epoch, int epochs)
    {
        if (epoch < 1 || epoch > epochs) throw new ArgumentOutOfRangeException(nameof(epoch), $"epoch {epoch} is outside 1..{epochs}");
        double r = (double)epoch / epochs * (accuracy - Previous);
        Previous = accuracy;
        return r;
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
