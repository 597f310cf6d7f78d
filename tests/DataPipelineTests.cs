using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Data;

namespace RlMixup.Tests;

/// <summary>The input pipeline: crop/flip draws, their application, normalisation, shuffling and drop-last.</summary>
public class DataPipelineTests
{
    private IBackend _b = null!;

    [OneTimeSetUp] public void Setup() => _b = new CpuBackend();
    [OneTimeTearDown] public void TearDown() => _b.Dispose();

    [TestCase(2)]
    [TestCase(4)]
    public void CropOffsetsStayWithinThePaddingAndReachEveryShift(int pad)
    {
        var draws = new CropFlip[20_000];
        new Augmentation(pad).Draw(new Rng(1), draws);
        Assert.That(draws.Select(d => d.Dx).Distinct().Order(), Is.EqualTo(Enumerable.Range(-pad, 2 * pad + 1)));
        Assert.That(draws.Select(d => d.Dy).Distinct().Order(), Is.EqualTo(Enumerable.Range(-pad, 2 * pad + 1)));
    }

    [Test]
    public void FlipProbabilityIsAboutOneHalf()
    {
        var draws = new CropFlip[40_000];
        Augmentation.Default.Draw(new Rng(2), draws);
        double p = draws.Count(d => d.Flip) / (double)draws.Length;
        Assert.That(p, Is.InRange(0.49, 0.51)); // ±4 standard deviations
        new Augmentation(2, Flip: false).Draw(new Rng(2), draws);
        Assert.That(draws.Any(d => d.Flip), Is.False);
    }

    [Test]
    public void DrawsAreDeterministicBySeed()
    {
        CropFlip[] a = new CropFlip[500], b = new CropFlip[500], c = new CropFlip[500];
        Augmentation.Default.Draw(new Rng(7), a);
        Augmentation.Default.Draw(new Rng(7), b);
        Augmentation.Default.Draw(new Rng(8), c);
        Assert.That(a, Is.EqualTo(b));
        Assert.That(a, Is.Not.EqualTo(c));
    }

    [Test]
    public void NormalisationIsExact()
    {
        double[] mean = [129.3, 124.1, 112.4], std = [68.2, 65.4, 70.4];
        foreach (int c in new[] { 0, 1, 2 })
            foreach (byte v in new byte[] { 0, 1, 100, 129, 200, 255 })
                Assert.That(Normalisation.Apply(c, v), Is.EqualTo((v - mean[c]) / std[c]).Within(2e-6), $"channel {c}, value {v}");
    }

    [Test]
    public void CropShiftsWithZeroFillThenFlips()
    {
        var set = SyntheticData.Images(1, 10, seed: 4);
        var src = set.Image(0);
        var dst = new float[ImageSet.ImageBytes];
        foreach (var a in new[] { new CropFlip(2, -1, false), new CropFlip(-2, 2, true), new CropFlip(-4, 3, false), CropFlip.Identity })
        {
            CpuBatchSource.WriteImage(src, a, dst);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                    {
                        int cx = a.Flip ? 31 - x : x, sy = y + a.Dy, sx = cx + a.Dx;
                        byte raw = sy is >= 0 and < 32 && sx is >= 0 and < 32 ? src[c * 1024 + sy * 32 + sx] : (byte)0;
                        Assert.That(dst[c * 1024 + y * 32 + x], Is.EqualTo(Normalisation.Apply(c, raw)).Within(1e-6),
                            $"{a} channel {c} at ({y}, {x})");
                    }
        }
    }

    [Test]
    public void ZeroFillIsNormalisedBlack()
    {
        var white = new ImageSet(Enumerable.Repeat((byte)255, ImageSet.ImageBytes).ToArray(), [0], 10);
        var dst = new float[ImageSet.ImageBytes];
        CpuBatchSource.WriteImage(white.Image(0), new CropFlip(2, -2, false), dst);
        for (int c = 0; c < 3; c++)
        {
            float black = -Normalisation.Mean[c] / Normalisation.Std[c], full = Normalisation.Apply(c, 255);
            Assert.That(dst[c * 1024 + 0 * 32 + 5], Is.EqualTo(black), "top rows come from the padding (Dy = −2)");
            Assert.That(dst[c * 1024 + 1 * 32 + 5], Is.EqualTo(black));
            Assert.That(dst[c * 1024 + 2 * 32 + 5], Is.EqualTo(full));
            Assert.That(dst[c * 1024 + 10 * 32 + 29], Is.EqualTo(full));
            Assert.That(dst[c * 1024 + 10 * 32 + 30], Is.EqualTo(black), "right columns come from the padding (Dx = +2)");
            Assert.That(dst[c * 1024 + 10 * 32 + 31], Is.EqualTo(black));
        }
    }

    [Test]
    public void AnImageSetRefusesALabelOutsideItsClasses()
    {
        // gather_augment cannot check a label on the device: a label ≥ K would give an all-zero target row there
        var px = new byte[2 * ImageSet.ImageBytes];
        var e = Assert.Throws<ArgumentException>(() => new ImageSet(px, [3, 10], 10))!;
        Assert.That(e.Message, Is.EqualTo("image set: image 1 has label 10, outside 0..9"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageSet(px, [0, 0], 0));
        Assert.DoesNotThrow(() => new ImageSet(px, [9, 0], 10));
    }

    [Test]
    public void TheCpuSourceRefusesTheCropsTheGpuRefuses()
    {
        // CudaBackend.GatherAugment refuses a shift of a whole image or more; the CPU source refuses the same
        var set = SyntheticData.Images(2, 10, seed: 5);
        var source = new CpuBatchSource(_b, set);
        using var x = _b.Allocate(new Shape(1, 3, 32, 32));
        using var t = _b.Allocate(new Shape(1, 10));
        Assert.DoesNotThrow(() => source.Fill(x, t, [1], [new CropFlip(31, -31, true)]));
        foreach (var bad in new[] { new CropFlip(32, 0, false), new CropFlip(0, -32, false), new CropFlip(int.MinValue, 0, true) })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => source.Fill(x, t, [1], [bad]))!;
            Assert.That(e.Message, Does.StartWith("batch source: image 0: crop"));
        }
    }

    [Test]
    public void EvaluationBatchesAreNormalisedOnlyAndKeepTheLastPartialBatch()
    {
        var set = SyntheticData.Images(250, 10, seed: 5);
        using var loader = DataLoader.Evaluation(new CpuBatchSource(_b, set), batchSize: 100);
        var batches = new List<(int Size, float[] X, float[] T, int[] Idx)>();
        foreach (var batch in loader.Epoch(null)) batches.Add((batch.Size, batch.X.ToArray(), batch.Targets.ToArray(), batch.Indices));
        Assert.That(loader.BatchesPerEpoch, Is.EqualTo(3));
        Assert.That(batches.Select(b => b.Size), Is.EqualTo(new[] { 100, 100, 50 }));
        var last = batches[2];
        Assert.That(last.Idx, Is.EqualTo(Enumerable.Range(200, 50)));
        var expected = new float[50 * ImageSet.ImageBytes];
        Normalisation.ToFloat(set, last.Idx, expected);
        Assert.That(last.X, Is.EqualTo(expected));
        for (int i = 0; i < 50; i++)
            for (int k = 0; k < 10; k++)
                Assert.That(last.T[i * 10 + k], Is.EqualTo(k == set.Labels[200 + i] ? 1f : 0f));
    }

    [Test]
    public void TrainingEpochsShuffleDropTheLastBatchAndRepeatBySeed()
    {
        var set = SyntheticData.Images(250, 10, seed: 6);
        var source = new CpuBatchSource(_b, set);
        using var loader = DataLoader.Training(source);
        Assert.That((loader.BatchSize, loader.BatchesPerEpoch), Is.EqualTo((100, 2)));

        List<(int[] Idx, float[] X, float[] T)> Run(ulong seed, int epochs)
        {
            var rng = new Rng(seed);
            var all = new List<(int[], float[], float[])>();
            for (int e = 0; e < epochs; e++)
                foreach (var b in loader.Epoch(rng)) all.Add((b.Indices, b.X.ToArray(), b.Targets.ToArray()));
            return all;
        }
        var a = Run(11, 2);
        var again = Run(11, 2);
        var other = Run(12, 1);
        Assert.That(a, Has.Count.EqualTo(4));
        Assert.That(a.All(b => b.Idx.Length == 100));
        var epoch0 = a[0].Idx.Concat(a[1].Idx).ToArray();
        Assert.That(epoch0.Distinct().Count(), Is.EqualTo(200), "no image twice in an epoch");
        Assert.That(epoch0, Is.Not.EqualTo(Enumerable.Range(0, 200)), "shuffled");
        Assert.That(a[2].Idx, Is.Not.EqualTo(a[0].Idx), "a new permutation every epoch");
        for (int i = 0; i < 4; i++)
        {
            Assert.That(again[i].Idx, Is.EqualTo(a[i].Idx));
            Assert.That(again[i].X, Is.EqualTo(a[i].X), "same seed, same augmented batch");
            Assert.That(again[i].T, Is.EqualTo(a[i].T));
        }
        Assert.That(other[0].Idx, Is.Not.EqualTo(a[0].Idx));
        // the targets are the one-hot labels of the drawn images
        for (int i = 0; i < 100; i++) Assert.That(a[0].T[i * 10 + set.Labels[a[0].Idx[i]]], Is.EqualTo(1f));
        Assert.That(a[0].T.Sum(), Is.EqualTo(100f));
    }

    [Test]
    public void TrainingBatchEqualsTheReferenceOfItsDraws()
    {
        var set = SyntheticData.Images(120, 10, seed: 8);
        using var loader = DataLoader.Training(new CpuBatchSource(_b, set), batchSize: 50, new Augmentation(Padding: 4));
        var batch = loader.Epoch(new Rng(3)).First();
        var x = batch.X.ToArray();
        // replay: the permutation first, then the batch's draws
        var rng = new Rng(3);
        var perm = rng.Permutation(120);
        var draws = new CropFlip[50];
        new Augmentation(Padding: 4).Draw(rng, draws);
        Assert.That(batch.Indices, Is.EqualTo(perm[..50]));
        var one = new float[ImageSet.ImageBytes];
        for (int i = 0; i < 50; i++)
        {
            CpuBatchSource.WriteImage(set.Image(perm[i]), draws[i], one);
            Assert.That(x.AsSpan(i * ImageSet.ImageBytes, ImageSet.ImageBytes).SequenceEqual(one), $"image {i}");
        }
    }

    [Test]
    public void WrongTensorShapesAreRejected()
    {
        var source = new CpuBatchSource(_b, SyntheticData.Images(10, 10, seed: 1));
        using var x = _b.Allocate(new Shape(4, 3, 32, 32));
        using var t = _b.Allocate(new Shape(4, 9));
        Assert.Throws<ShapeMismatchException>(() => source.Fill(x, t, [0, 1, 2, 3], []));
    }
}
