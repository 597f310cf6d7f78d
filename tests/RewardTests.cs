using NUnit.Framework;
using RlMixup.Engine.Training;

namespace RlMixup.Tests;

public class RewardTests
{
    [Test]
    public void RewardIsTheScaledAccuracyDeltaEveryFiftySteps()
    {
        var r = new RewardTracker();
        Assert.That(Enumerable.Range(1, 200).Where(s => r.IsRewardStep(s)), Is.EqualTo(new[] { 50, 100, 150, 200 }));
        // epoch 1 of 4: (1/4)·(0.30 − 0); then epoch 2: (2/4)·(0.25 − 0.30); epoch 4: (4/4)·(0.5 − 0.25)
        Assert.That(r.Reward(0.30, 1, 4), Is.EqualTo(0.075).Within(1e-12));
        Assert.That(r.Reward(0.25, 2, 4), Is.EqualTo(-0.025).Within(1e-12));
        Assert.That(r.Reward(0.50, 4, 4), Is.EqualTo(0.25).Within(1e-12));
        Assert.That(r.Previous, Is.EqualTo(0.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.Reward(0.5, 5, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RewardTracker(0));
    }

    [Test]
    public void AccuracyCountsArgmaxMatchesWithFirstMaximumOnTies()
    {
        float[] logits = [0.1f, 0.9f, 0.0f, /**/ 2f, 2f, 1f, /**/ -1f, -3f, -0.5f];
        Assert.That(Accuracy.CountCorrect(logits, [1, 0, 2], 3), Is.EqualTo(3));
        Assert.That(Accuracy.CountCorrect(logits, [1, 1, 0], 3), Is.EqualTo(1), "a tie goes to the first maximum");
        Assert.Throws<ArgumentException>(() => Accuracy.CountCorrect(logits, [1, 0], 3));
    }
}
