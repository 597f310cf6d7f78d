using RlMixup.Engine.Training;

namespace RlMixup.Engine.Display;

/// <summary>
/// Progress as plain lines, for redirected output and terminals without cursor control: one line
/// about every tenth of an epoch (the epoch's own summary line is written by the run).
/// </summary>
public sealed class PlainProgress(TextWriter output)
{
    public void OnStep(StepProgress p)
    {
        int every = Math.Max(1, (p.StepsPerEpoch + 9) / 10);
        if (p.Step % every != 0 || p.Step == p.StepsPerEpoch) return;
        output.WriteLine($"  epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.StepsPerEpoch} (global step {p.GlobalStep}): " +
            $"loss {p.TrainLoss:F4}, lr {p.LearningRate:F4}, {p.ImagesPerSecond:F0} images/s");
    }
}
