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

    [Test]
    public void GradSimIsTheMeanPerImageCosineOfTheFlattenedMaps()
    {
        // Two images of 2×2 maps. Image 0: a = (1,0,0,0), b = (1,1,0,0) → cos = 1/√2.
        // Image 1: a = (1,2,2,0) (norm 3), b = (2,0,1,2) (norm 3) → a·b = 2 + 2 = 4 → cos = 4/9.
        float[] clean = [1, 0, 0, 0, /**/ 1, 2, 2, 0];
        float[] mixed = [1, 1, 0, 0, /**/ 2, 0, 1, 2];
        Assert.That(GradSimReward.Cosine(clean.AsSpan(0, 4), mixed.AsSpan(0, 4)), Is.EqualTo(1 / Math.Sqrt(2)).Within(1e-15));
        Assert.That(GradSimReward.Cosine(clean.AsSpan(4), mixed.AsSpan(4)), Is.EqualTo(4.0 / 9).Within(1e-15));
        Assert.That(GradSimReward.Mean(clean, mixed, 2), Is.EqualTo((1 / Math.Sqrt(2) + 4.0 / 9) / 2).Within(1e-15));
        Assert.That(GradSimReward.Mean(clean, clean, 2), Is.EqualTo(1).Within(1e-15), "identical maps");
        Assert.That(GradSimReward.Mean([0, 0, 0, 0, 1, 2, 2, 0], clean, 2), Is.EqualTo((0 + 1) / 2.0).Within(1e-15), "a zero map counts as cos 0");
        Assert.Throws<ArgumentException>(() => GradSimReward.Mean(clean, mixed, 3));
        Assert.Throws<ArgumentException>(() => GradSimReward.Mean(clean, mixed.AsSpan(0, 4), 2));
    }
}
