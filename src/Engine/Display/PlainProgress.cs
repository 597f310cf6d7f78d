using RlMixup.Engine.Training;

namespace RlMixup.Engine.Display;

/// <summary>
/// Progress as plain lines, for redirected output and terminals without cursor control: one line
/// about every tenth of an epoch (the epoch's own summary line is written by the run), with the
/// elapsed time and the estimate of what is left, and once, a few steps in, the whole run's
/// estimated time (<see cref="RunClock"/>), said loudly when a CPU run would take days.
/// </summary>
public sealed class PlainProgress(TextWriter output, bool cpu = false, RunClock? clock = null)
{
    private readonly RunClock _clock = clock ?? new RunClock();

    public void OnStep(StepProgress p)
    {
        if (_clock.Step(p) is { } total) output.WriteLine(RunClock.Announce(total, cpu));
        int every = Math.Max(1, (p.StepsPerEpoch + 9) / 10);
        if (p.Step % every != 0 || p.Step == p.StepsPerEpoch) return;
        string eta = _clock.Left is { } left ? $", elapsed {RunClock.Format(_clock.Elapsed)}, left {RunClock.Format(left)}" : "";
        output.WriteLine($"  epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.StepsPerEpoch} (global step {p.GlobalStep}): " +
            $"loss {p.TrainLoss:F4}, lr {p.LearningRate:F4}, {p.ImagesPerSecond:F0} images/s{eta}");
    }
}
