using NUnit.Framework;
using RlMixup.Engine.Display;
using RlMixup.Engine.Training;

namespace RlMixup.Tests;

/// <summary>Elapsed time, the estimate of what is left and the one-off announcement of the whole run's time.</summary>
public class RunClockTests
{
    private static StepProgress Step(long global, int epochs = 3, int perEpoch = 10) =>
        new((int)((global - 1) / perEpoch) + 1, epochs, (int)((global - 1) % perEpoch) + 1, perEpoch, global, 2.3, 0.1, double.NaN, new int[10], 100);

    [Test]
    public void TheEstimateIsTheSecondsPerStepSinceTheFirstStepTimesTheStepsLeft()
    {
        var t = TimeSpan.FromSeconds(5);
        var clock = new RunClock(() => t);
        Assert.That(clock.Step(Step(4)), Is.Null, "the first step seen (a resumed run starts at step 4) only starts the clock");
        Assert.That(clock.Left, Is.Null);
        TimeSpan? announced = null;
        for (long g = 5; g <= 20; g++)
        {
            t += TimeSpan.FromSeconds(2);
            if (clock.Step(Step(g)) is { } total) { Assert.That(announced, Is.Null, "announced once"); announced = total; }
            Assert.That(clock.Left, Is.EqualTo(TimeSpan.FromSeconds(2 * (30 - g))));
        }
        Assert.That(announced, Is.EqualTo(TimeSpan.FromSeconds(5 + 2 * 10) + TimeSpan.FromSeconds(2 * (30 - 14))), "announced 10 steps after the first");
        Assert.That(clock.Elapsed, Is.EqualTo(TimeSpan.FromSeconds(5 + 2 * 16)));
    }

    [Test]
    public void PlainLinesCarryTheTimesAndACpuRunOfDaysIsSaidLoudly()
    {
        var t = TimeSpan.Zero;
        var output = new StringWriter();
        var plain = new PlainProgress(output, cpu: true, new RunClock(() => t));
        for (long g = 1; g <= 20; g++)
        {
            t += TimeSpan.FromSeconds(600);
            plain.OnStep(Step(g, epochs: 300, perEpoch: 500));
        }
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines.Count(l => l.StartsWith("WARNING: at this speed the whole run takes about ", StringComparison.Ordinal) && l.Contains(" days on the CPU")), Is.EqualTo(1));
        var fast = new StringWriter();
        var quick = new PlainProgress(fast, cpu: false, new RunClock(() => t));
        for (long g = 1; g <= 20; g++) { t += TimeSpan.FromMilliseconds(100); quick.OnStep(Step(g)); }
        var quickLines = fast.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(quickLines, Has.One.StartsWith("estimate: the whole run takes about "));
        Assert.That(quickLines.Where(l => l.StartsWith("  epoch ", StringComparison.Ordinal)).Skip(1), Has.All.Contain(", elapsed ").And.Contain(", left "));
    }

    [TestCase(42, "42 s")]
    [TestCase(725, "12 min 05 s")]
    [TestCase(11220, "3 h 07 min")]
    [TestCase(207360, "2.4 days")]
    public void TimesAreReadable(double seconds, string text) => Assert.That(RunClock.Format(TimeSpan.FromSeconds(seconds)), Is.EqualTo(text));
}
