using System.Diagnostics;
using NUnit.Framework;
using RlMixup.Engine.Data;

namespace RlMixup.Tests;

/// <summary>The built-in synthetic dataset: deterministic by seed, fast, learnable but not trivially.</summary>
public class DataSyntheticTests
{
    [Test]
    public void SameSeedSameBytesOtherSeedOtherBytes()
    {
        var a = SyntheticData.Generate(300, 100, seed: 5);
        var b = SyntheticData.Generate(300, 100, seed: 5);
        var c = SyntheticData.Generate(300, 100, seed: 6);
        Assert.That(a.Train.Pixels, Is.EqualTo(b.Train.Pixels));
        Assert.That(a.Test.Pixels, Is.EqualTo(b.Test.Pixels));
        Assert.That(a.Train.Labels, Is.EqualTo(b.Train.Labels));
        Assert.That(a.Train.Pixels, Is.Not.EqualTo(c.Train.Pixels));
        Assert.That(a.Test.Pixels.AsSpan(0, 3072).SequenceEqual(a.Train.Pixels.AsSpan(0, 3072)), Is.False, "test images differ from training images");
    }

    [Test]
    public void BalancedLabelsAndNames()
    {
        var d = SyntheticData.Generate(1000, 200, classes: 12, seed: 1);
        Assert.That(d.Classes, Is.EqualTo(12));
        Assert.That(d.ClassNames[0], Is.EqualTo("disc"));
        Assert.That(d.ClassNames[9], Is.EqualTo("square-1"));
        for (int c = 0; c < 12; c++) Assert.That(d.Train.Labels.Count(l => l == c), Is.InRange(83, 84));
        Assert.That(Dataset.Load("synthetic", "unused", maxTrain: 50, maxTest: 20, seed: 1).Describe(),
            Does.Contain("50 training and 20 test images, 10 classes"));
    }

    [Test]
    public void TenThousandImagesWellUnderASecond()
    {
        SyntheticData.Images(100, 10, 0); // warm up the JIT
        var sw = Stopwatch.StartNew();
        SyntheticData.Images(10_000, 10, 1);
        TestContext.Out.WriteLine($"10,000 synthetic images in {sw.Elapsed.TotalMilliseconds:F0} ms");
        Assert.That(sw.Elapsed.TotalSeconds, Is.LessThan(2.0), "generous for unoptimised Debug builds; Release takes about 0.3 s");
    }

    /// <summary>
    /// A learnability proxy: a nearest-class-mean classifier on 8×8 colour thumbnails beats chance
    /// clearly (the classes carry signal in the pixels) yet stays far from perfect (shapes move,
    /// colours overlap and clutter interferes, so a network has something to learn).
    /// </summary>
    [Test]
    public void NearestClassMeanIsAboveChanceButFarFromPerfect()
    {
        const int k = 10;
        var d = SyntheticData.Generate(4000, 1000, k, seed: 2);
        var means = new double[k, 192];
        var counts = new int[k];
        for (int i = 0; i < d.Train.Count; i++)
        {
            var f = Thumbnail(d.Train.Image(i));
            int c = d.Train.Labels[i];
            counts[c]++;
            for (int j = 0; j < 192; j++) means[c, j] += f[j];
        }
        for (int c = 0; c < k; c++) for (int j = 0; j < 192; j++) means[c, j] /= counts[c];
        double minGap = double.MaxValue;
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++)
            {
                double s = 0;
                for (int j = 0; j < 192; j++) s += (means[a, j] - means[b, j]) * (means[a, j] - means[b, j]);
                minGap = Math.Min(minGap, Math.Sqrt(s / 192));
            }
        int correct = 0;
        for (int i = 0; i < d.Test.Count; i++)
        {
            var f = Thumbnail(d.Test.Image(i));
            int best = 0; double bestDist = double.MaxValue;
            for (int c = 0; c < k; c++)
            {
                double s = 0;
                for (int j = 0; j < 192; j++) s += (f[j] - means[c, j]) * (f[j] - means[c, j]);
                if (s < bestDist) { bestDist = s; best = c; }
            }
            if (best == d.Test.Labels[i]) correct++;
        }
        double acc = correct / (double)d.Test.Count;
        TestContext.Out.WriteLine($"nearest class mean: {acc:P1} test accuracy; smallest RMS gap between class means {minGap:F1} grey levels");
        Assert.That(minGap, Is.GreaterThan(3.0), "every pair of class means differs");
        Assert.That(acc, Is.InRange(0.2, 0.8));
    }

    /// <summary>Mean of each 4×4 block per channel: 3×8×8 values.</summary>
    private static double[] Thumbnail(ReadOnlySpan<byte> img)
    {
        var f = new double[192];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    f[c * 64 + (y / 4) * 8 + x / 4] += img[c * 1024 + y * 32 + x] / 16.0;
        return f;
    }
}
