using System.Diagnostics;
using System.Globalization;
using RlMixup.Engine.Training;

namespace RlMixup.Engine.Display;

/// <summary>
/// Elapsed time and the estimate of what is left, from the steps this process has run: the time
/// since the first step it saw, divided by the steps since then, times the steps still to run.
/// Evaluation, rewards and PPO updates are inside that time once an epoch has passed; before that
/// the estimate is the training steps' alone. <see cref="EstimateAfter"/> steps in, the whole
/// run's estimate is ready to be announced once.
/// </summary>
public sealed class RunClock(Func<TimeSpan>? now = null)
{
    /// <summary>Steps run before the whole run's time is estimated.</summary>
    public const int EstimateAfter = 10;

    private readonly Func<TimeSpan> _now = now ?? Stopwatch.StartNew() switch { var w => () => w.Elapsed };
    private long _firstStep = -1;
    private TimeSpan _firstTime;
    private bool _announced;

    public TimeSpan Elapsed { get; private set; }
    /// <summary>The estimated time left, or null before two steps were seen.</summary>
    public TimeSpan? Left { get; private set; }

    /// <summary>Takes a step; returns the whole run's estimate (elapsed + left) once, <see cref="EstimateAfter"/> steps in.</summary>
    public TimeSpan? Step(StepProgress p)
    {
        var t = _now();
        Elapsed = t;
        if (_firstStep < 0) { (_firstStep, _firstTime) = (p.GlobalStep, t); return null; }
        long done = p.GlobalStep - _firstStep, total = (long)p.Epochs * p.StepsPerEpoch;
        if (done <= 0) return null;
        var perStep = (t - _firstTime) / done;
        Left = perStep * Math.Max(0, total - p.GlobalStep);
        if (_announced || done < EstimateAfter) return null;
        _announced = true;
        return Elapsed + Left;
    }

    /// <summary>"42 s", "12 min 05 s", "3 h 07 min", "2.4 days".</summary>
    public static string Format(TimeSpan t)
    {
        var c = CultureInfo.InvariantCulture;
        if (t.TotalDays >= 1) return string.Create(c, $"{t.TotalDays:F1} days");
        if (t.TotalHours >= 1) return string.Create(c, $"{(int)t.TotalHours} h {t.Minutes:D2} min");
        if (t.TotalMinutes >= 1) return string.Create(c, $"{(int)t.TotalMinutes} min {t.Seconds:D2} s");
        return string.Create(c, $"{t.TotalSeconds:F0} s");
    }

    /// <summary>The line that announces the estimate; on the CPU, a run of more than a day is said loudly.</summary>
    public static string Announce(TimeSpan total, bool cpu) =>
        cpu && total.TotalDays >= 1
            ? $"WARNING: at this speed the whole run takes about {Format(total)} on the CPU. The paper's setup needs a GPU (--device cuda); on the CPU, use a smaller --width, fewer --epochs or --max-train-images"
            : $"estimate: the whole run takes about {Format(total)} at the speed of its first steps";
}
