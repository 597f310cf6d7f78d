using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.Mixup;

namespace RlMixup.Tests;

/// <summary>The paper's sanity cases for equations 1–4, on the CPU backend (the reference).</summary>
public class MixupTests
{
    private readonly CpuBackend _b = new(2);
    private const int H = 32, W = 32, P = 16;

    private Tensor T(Shape s, Func<int, float> f)
    {
        var t = _b.Allocate(s);
        t.CopyFrom(Enumerable.Range(0, s.Size).Select(f).ToArray());
        return t;
    }

    private Tensor RandomImages(int b, int c, Rng rng) => T(new Shape(b, c, H, W), _ => (float)rng.Normal());

    /// <summary>One-hot targets of class labels[i], K classes.</summary>
    private Tensor OneHot(int[] labels, int k) => T(new Shape(labels.Length, k), e => labels[e / k] == e % k ? 1f : 0f);

    private (Tensor Mixed, Tensor Targets, Tensor Fractions) MaskMix(Tensor x, Tensor y, Tensor masks, int[] perm, float[] lambda1)
    {
        var mixed = _b.Allocate(x.Shape);
        var targets = _b.Allocate(y.Shape);
        var fractions = _b.Allocate(new Shape(x.Shape.N, 3));
        _b.MaskMix(mixed, targets, fractions, x, y, masks, perm, lambda1);
        return (mixed, targets, fractions);
    }

    private Tensor Masks(Tensor maps, float q)
    {
        int b = maps.Shape[0];
        var masks = _b.Allocate(maps.Shape);
        _b.PercentileMasks(masks, _b.Allocate(new Shape(b)), maps, Enumerable.Repeat(q, b).ToArray());
        return masks;
    }

    private Tensor RandomMaps(int b, Rng rng)
    {
        var g = RandomImages(b, 3, rng);
        var maps = _b.Allocate(new Shape(b, P, P));
        _b.SaliencyMaps(maps, g);
        return maps;
    }

    [Test]
    public void QZeroReducesToInputMixup()
    {
        var rng = new Rng(1);
        const int b = 6, k = 10;
        var x = RandomImages(b, 3, rng);
        var y = OneHot([0, 1, 2, 3, 4, 5], k);
        var masks = Masks(RandomMaps(b, rng), 0f);
        Assert.That(masks.ToArray(), Is.All.EqualTo(1f), "q = 0 selects every cell");
        int[] perm = rng.Permutation(b);
        var (mixed, targets, fractions) = MaskMix(x, y, masks, perm, [0.3f]);

        var refMixed = _b.Allocate(x.Shape);
        var refTargets = _b.Allocate(y.Shape);
        _b.InputMixup(refMixed, refTargets, x, y, perm, 0.3f);
        Assert.That(mixed.ToArray(), Is.EqualTo(refMixed.ToArray()).Within(1e-6f));
        Assert.That(targets.ToArray(), Is.EqualTo(refTargets.ToArray()).Within(1e-6f));
        Assert.That(fractions.ToArray().Where((_, i) => i % 3 == 0), Is.All.EqualTo(1f), "f_inter = 1");
    }

    [Test]
    public void IdenticalMasksReduceToInputMixup()
    {
        var rng = new Rng(2);
        const int b = 5, k = 7;
        var x = RandomImages(b, 3, rng);
        var y = T(new Shape(b, k), _ => (float)rng.NextDouble());
        // Every image gets the same random half-filled mask, so m1 == m2 everywhere.
        var pattern = Enumerable.Range(0, P * P).Select(_ => rng.NextDouble() < 0.5 ? 1f : 0f).ToArray();
        var masks = T(new Shape(b, P, P), e => pattern[e % (P * P)]);
        int[] perm = rng.Permutation(b);
        var (mixed, targets, _) = MaskMix(x, y, masks, perm, [0.8f]);
        var refMixed = _b.Allocate(x.Shape);
        var refTargets = _b.Allocate(y.Shape);
        _b.InputMixup(refMixed, refTargets, x, y, perm, 0.8f);
        Assert.That(mixed.ToArray(), Is.EqualTo(refMixed.ToArray()).Within(1e-6f));
        Assert.That(targets.ToArray(), Is.EqualTo(refTargets.ToArray()).Within(1e-6f));
    }

    [Test]
    public void DisjointMasksGiveAPurePatchSwap()
    {
        var rng = new Rng(3);
        const int b = 4, k = 4;
        var x = RandomImages(b, 3, rng);
        var y = OneHot([0, 1, 2, 3], k);
        int[] perm = [1, 0, 3, 2];
        // Partners get complementary masks: m2 = ¬m1 everywhere, so m_inter is empty.
        var pattern = Enumerable.Range(0, P * P).Select(_ => rng.NextDouble() < 0.3 ? 1f : 0f).ToArray();
        var masks = T(new Shape(b, P, P), e => (e / (P * P)) % 2 == 0 ? pattern[e % (P * P)] : 1f - pattern[e % (P * P)]);
        var (mixed, targets, fractions) = MaskMix(x, y, masks, perm, [0.37f]);

        float[] xs = x.ToArray(), ms = mixed.ToArray(), m = masks.ToArray();
        int plane = H * W, image = 3 * plane;
        for (int i = 0; i < b; i++)
            for (int e = 0; e < image; e++)
            {
                int px = e % plane, cell = (px / W * P / H) * P + (px % W) * P / W;
                float own = m[i * P * P + cell];
                float expected = own == 1f ? xs[i * image + e] : xs[perm[i] * image + e];
                Assert.That(ms[i * image + e], Is.EqualTo(expected), $"image {i} element {e} must be copied, not blended");
            }
        var f = fractions.ToArray();
        float onesFraction = pattern.Count(v => v == 1f) / (float)(P * P);
        for (int i = 0; i < b; i++)
        {
            Assert.That(f[i * 3], Is.EqualTo(0f), "f_inter");
            Assert.That(f[i * 3 + 1] + f[i * 3 + 2], Is.EqualTo(1f).Within(1e-6f));
            float own = i % 2 == 0 ? onesFraction : 1 - onesFraction;
            Assert.That(f[i * 3 + 1], Is.EqualTo(own).Within(1e-6f), "f_only1 = the share of the image's own mask");
        }
        var t = targets.ToArray();
        for (int i = 0; i < b; i++)
        {
            Assert.That(t[i * k + i], Is.EqualTo(f[i * 3 + 1]).Within(1e-6f));
            Assert.That(t[i * k + perm[i]], Is.EqualTo(f[i * 3 + 2]).Within(1e-6f));
        }
    }

    [TestCase(1)]
    [TestCase(7)]
    [TestCase(100)]
    public void SoftLabelsSumToOneAndAreNonNegative(int b)
    {
        var rng = new Rng((ulong)(10 + b));
        const int k = 100;
        var x = RandomImages(b, 3, rng);
        var y = OneHot([.. Enumerable.Range(0, b).Select(_ => rng.NextInt(k))], k);
        var maps = RandomMaps(b, rng);
        var masks = _b.Allocate(maps.Shape);
        _b.PercentileMasks(masks, _b.Allocate(new Shape(b)), maps, [.. Enumerable.Range(0, b).Select(_ => 11f * rng.NextInt(10))]);
        float[] lambdas = [.. Enumerable.Range(0, b).Select(_ => (float)rng.Beta(0.5, 0.5))];
        var (_, targets, fractions) = MaskMix(x, y, masks, rng.Permutation(b), lambdas);
        var t = targets.ToArray();
        var f = fractions.ToArray();
        for (int i = 0; i < b; i++)
        {
            Assert.That(t.Skip(i * k).Take(k).Sum(), Is.EqualTo(1f).Within(1e-5f), $"row {i}");
            Assert.That(t.Skip(i * k).Take(k), Is.All.GreaterThanOrEqualTo(0f));
            Assert.That(f[i * 3] + f[i * 3 + 1] + f[i * 3 + 2], Is.EqualTo(1f).Within(1e-6f));
        }
    }

    /// <summary>
    /// The label weight of each source image equals the share of the mixed pixels that came from it.
    /// Mixing is linear in x, so with x = the indicator of source image s (all ones there, zeros
    /// elsewhere), the mean of mixed image i is exactly the weight of s in x'_i.
    /// </summary>
    [Test]
    public void LabelFractionsEqualThePixelFractionsTaken()
    {
        var rng = new Rng(5);
        const int b = 8;
        var maps = RandomMaps(b, rng);
        var masks = _b.Allocate(maps.Shape);
        _b.PercentileMasks(masks, _b.Allocate(new Shape(b)), maps, [0, 11, 33, 55, 66, 77, 88, 99]);
        int[] perm = [.. rng.Permutation(b)];
        float[] lambdas = [.. Enumerable.Range(0, b).Select(_ => (float)rng.Beta(0.5, 0.5))];
        var y = OneHot([.. Enumerable.Range(0, b)], b); // class = image index
        for (int s = 0; s < b; s++)
        {
            var x = T(new Shape(b, 3, H, W), e => e / (3 * H * W) == s ? 1f : 0f);
            var (mixed, targets, _) = MaskMix(x, y, masks, perm, lambdas);
            var ms = mixed.ToArray();
            var t = targets.ToArray();
            for (int i = 0; i < b; i++)
            {
                double share = ms.Skip(i * 3 * H * W).Take(3 * H * W).Average();
                Assert.That(t[i * b + s], Is.EqualTo(share).Within(1e-5), $"image {i}, source {s}");
            }
        }
    }

    [Test]
    public void MaskSizeIsMonotoneInQ()
    {
        var rng = new Rng(6);
        const int b = 20;
        var maps = RandomMaps(b, rng);
        int[] previous = [.. Enumerable.Repeat(int.MaxValue, b)];
        for (int a = 0; a < 10; a++)
        {
            var m = Masks(maps, 11f * a).ToArray();
            for (int i = 0; i < b; i++)
            {
                int count = m.Skip(i * P * P).Take(P * P).Count(v => v == 1f);
                Assert.That(count, Is.LessThanOrEqualTo(previous[i]), $"image {i}, q = {11 * a}");
                Assert.That(count, Is.GreaterThanOrEqualTo(1), "the maximum is always selected");
                previous[i] = count;
            }
        }
        Assert.That(previous, Is.All.LessThanOrEqualTo(3 + 1), "q = 99 of 256 distinct values keeps the top 3 cells (pos 252.45)");
    }

    // Expected values from numpy 1.24: np.float32(np.percentile(values, q)) (linear interpolation).
    private static readonly float[] Qs = [0, 11, 22, 33, 44, 55, 66, 77, 88, 99, 100, 50, 12.5f];
    private static IEnumerable<TestCaseData> NumpyCases()
    {
        yield return new TestCaseData(new[] { 0.1f, 0.1f, 0.1f, 0.2f, 0.2f, 0.5f, 0.5f, 0.5f, 0.9f, 1.0f },
            new[] { 0.1f, 0.1f, 0.1f, 0.197f, 0.2f, 0.485f, 0.5f, 0.5f, 0.868f, 0.991f, 1.0f, 0.35f, 0.1f }).SetName("ties");
        yield return new TestCaseData(new[] { 1f, 2, 3, 4, 5 },
            new[] { 1f, 1.44f, 1.88f, 2.32f, 2.76f, 3.2f, 3.64f, 4.08f, 4.52f, 4.96f, 5f, 3f, 1.5f }).SetName("ascending");
        yield return new TestCaseData(new[] { 7f, 1, 9, 3, 3, 8, 2, 2, 6, 0, 4, 4 },
            new[] { 0f, 1.21f, 2f, 2.63f, 3f, 4f, 4.52f, 6.47f, 7.68f, 8.89f, 9f, 3.5f, 1.375f }).SetName("shuffled with ties");
        yield return new TestCaseData(new[] { 0.25f }, Enumerable.Repeat(0.25f, 13).ToArray()).SetName("single value");
        yield return new TestCaseData(Enumerable.Repeat(0.3f, 7).ToArray(), Enumerable.Repeat(0.3f, 13).ToArray()).SetName("all equal");
    }

    [TestCaseSource(nameof(NumpyCases))]
    public void PercentilesMatchNumpy(float[] values, float[] expected)
    {
        var sorted = values.Order().ToArray();
        for (int i = 0; i < Qs.Length; i++)
            Assert.That(MixupReference.PercentileOfSorted(sorted, Qs[i]), Is.EqualTo(expected[i]).Within(2e-6f * Math.Max(1, Math.Abs(expected[i]))), $"q = {Qs[i]}");

        // The batched op: thresholds and masks (ties included) for every q at once.
        int n = values.Length;
        var maps = T(new Shape(Qs.Length, 1, n), e => values[e % n]);
        var masks = _b.Allocate(maps.Shape);
        var thresholds = _b.Allocate(new Shape(Qs.Length));
        _b.PercentileMasks(masks, thresholds, maps, Qs);
        var t = thresholds.ToArray();
        var m = masks.ToArray();
        for (int i = 0; i < Qs.Length; i++)
            for (int j = 0; j < n; j++)
                Assert.That(m[i * n + j], Is.EqualTo(values[j] >= t[i] ? 1f : 0f));
    }

    [Test]
    public void SaliencyMapsAreTheNormalisedPooledChannelNorm()
    {
        // One image, 2 channels, 4×4, p = 2: hand-computed.
        float[] g = [.. Enumerable.Range(0, 32).Select(i => (float)(i % 5 - 2))];
        var grad = T(new Shape(1, 2, 4, 4), i => g[i]);
        var maps = _b.Allocate(new Shape(1, 2, 2));
        _b.SaliencyMaps(maps, grad);
        var s = new double[16];
        for (int px = 0; px < 16; px++) s[px] = Math.Sqrt(g[px] * g[px] + g[16 + px] * g[16 + px]);
        var cells = new double[4];
        for (int px = 0; px < 16; px++) cells[(px / 4 / 2) * 2 + px % 4 / 2] += s[px] / 4;
        double total = cells.Sum();
        Assert.That(maps.ToArray(), Is.EqualTo(cells.Select(c => (float)(c / total)).ToArray()).Within(1e-6f));

        var zero = _b.Allocate(new Shape(3, 3, 32, 32));
        var uniform = _b.Allocate(new Shape(3, 8, 8));
        _b.SaliencyMaps(uniform, zero);
        Assert.That(uniform.ToArray(), Is.All.EqualTo(1f / 64), "a zero gradient gives a uniform map");

        var rng = new Rng(8);
        var maps16 = RandomMaps(5, rng).ToArray();
        for (int i = 0; i < 5; i++)
            Assert.That(maps16.Skip(i * 256).Take(256).Sum(), Is.EqualTo(1f).Within(1e-5f));
    }

    [Test]
    public void BadMixupInputsGiveClearErrors()
    {
        var grad = _b.Allocate(new Shape(2, 3, 32, 32));
        var ex = Assert.Throws<ArgumentException>(() => _b.SaliencyMaps(_b.Allocate(new Shape(2, 5, 5)), grad));
        Assert.That(ex!.Message, Does.Contain("32×32").And.Contain("5×5"));
        var x = _b.Allocate(new Shape(2, 3, 32, 32));
        var y = _b.Allocate(new Shape(2, 10));
        var masks = _b.Allocate(new Shape(2, P, P));
        Assert.Throws<ArgumentException>(() => MaskMix(x, y, masks, [0, 2], [0.5f]), "permutation entry out of range");
        Assert.Throws<ArgumentException>(() => MaskMix(x, y, masks, [0], [0.5f]), "permutation too short");
        Assert.Throws<ArgumentException>(() => MaskMix(x, y, masks, [1, 0], [0.5f, 0.5f, 0.5f]), "λ count");
        Assert.Throws<ArgumentOutOfRangeException>(() => Masks(_b.Allocate(new Shape(2, P, P)), 101f));
        var sm = Assert.Throws<ShapeMismatchException>(() => MaskMix(x, _b.Allocate(new Shape(3, 10)), masks, [1, 0], [0.5f]));
        Assert.That(sm!.Message, Does.Contain("(3, 10)").And.Contain("(2, 3, 32, 32)"));
    }

    // ---- what the CUDA kernels assume, refused by the shared checks (OpChecks) on the CPU as well

    [Test]
    public void SaliencyMapsRefuseMoreCellsOrWiderBandsThanTheKernelHolds()
    {
        // 64×64 cells of a 64×64 gradient: 4096 cells, the kernel's shared buffer holds 1024
        var cells = Assert.Throws<ArgumentException>(() => _b.SaliencyMaps(_b.Allocate(new Shape(1, 64, 64)), _b.Allocate(new Shape(1, 1, 64, 64))))!;
        Assert.That(cells.Message, Does.StartWith("saliency maps:").And.Contain("1024"));
        // 2×2 cells of a 64×128 image: one row of cells is 32·128 = 4096 pixels (fits); of 66×128, 33·128 = 4224 (does not)
        Assert.DoesNotThrow(() => _b.SaliencyMaps(_b.Allocate(new Shape(1, 2, 2)), _b.Allocate(new Shape(1, 1, 64, 128))));
        var band = Assert.Throws<ArgumentException>(() => _b.SaliencyMaps(_b.Allocate(new Shape(1, 2, 2)), _b.Allocate(new Shape(1, 1, 66, 128))))!;
        Assert.That(band.Message, Does.StartWith("saliency maps:").And.Contain("4224").And.Contain("4096"));
    }

    [Test]
    public void MixUpOpsRefuseEmptyShapes()
    {
        Assert.Throws<ShapeMismatchException>(() => _b.SaliencyMaps(_b.Allocate(new Shape(0, P, P)), _b.Allocate(new Shape(0, 3, H, W))), "no images");
        Assert.Throws<ShapeMismatchException>(() => _b.SaliencyMaps(_b.Allocate(new Shape(2, P, P)), _b.Allocate(new Shape(2, 0, H, W))), "no channels");
        Assert.Throws<ShapeMismatchException>(() => _b.PercentileMasks(_b.Allocate(new Shape(2, 0, 0)), _b.Allocate(new Shape(2)), _b.Allocate(new Shape(2, 0, 0)), [50f, 50f]), "no cells");
        var x = _b.Allocate(new Shape(2, 3, H, W));
        var e = Assert.Throws<ShapeMismatchException>(() => _b.InputMixup(_b.Allocate(x.Shape), _b.Allocate(new Shape(2, 0)), x, _b.Allocate(new Shape(2, 0)), [1, 0], 0.5f))!;
        Assert.That(e.Message, Does.StartWith("input mixup: targets (2, 0) is empty"));
        var none = _b.Allocate(new Shape(0, 3, H, W));
        Assert.Throws<ShapeMismatchException>(() => _b.CutMix(_b.Allocate(none.Shape), _b.Allocate(new Shape(0, 10)), none, _b.Allocate(new Shape(0, 10)), [], new CutBox(0, 0, 1, 1)));
        Assert.Throws<ShapeMismatchException>(() => MaskMix(x, _b.Allocate(new Shape(2, 10)), _b.Allocate(new Shape(2, 0, 0)), [1, 0], [0.5f]), "empty masks");
    }

    [Test]
    public void PercentileMasksRefuseMoreCellsThanTheKernelSortsAndBadPercentiles()
    {
        var maps = _b.Allocate(new Shape(1, 33, 32)); // 1056 cells > 1024
        var e = Assert.Throws<ArgumentException>(() => _b.PercentileMasks(_b.Allocate(maps.Shape), _b.Allocate(new Shape(1)), maps, [50f]))!;
        Assert.That(e.Message, Does.StartWith("percentile masks:").And.Contain("1056").And.Contain("1024"));
        var ok = _b.Allocate(new Shape(2, P, P));
        var q = Assert.Throws<ArgumentOutOfRangeException>(() => _b.PercentileMasks(_b.Allocate(ok.Shape), _b.Allocate(new Shape(2)), ok, [50f, float.NaN]))!;
        Assert.That(q.Message, Does.StartWith("percentile masks: a percentile is outside [0, 100]"));
        Assert.Throws<ArgumentOutOfRangeException>(() => _b.PercentileMasks(_b.Allocate(ok.Shape), _b.Allocate(new Shape(2)), ok, [-0.5f, 0f]));
    }

    [Test]
    public void MaskMixRefusesNonSquareMasks()
    {
        var x = _b.Allocate(new Shape(2, 3, H, W));
        var y = _b.Allocate(new Shape(2, 10));
        var e = Assert.Throws<ShapeMismatchException>(() => MaskMix(x, y, _b.Allocate(new Shape(2, 16, 8)), [1, 0], [0.5f]))!;
        Assert.That(e.Message, Does.StartWith("mask mix: masks has shape (2, 16, 8) but (2, 16, 16) was expected"));
    }

    [Test]
    public void InputMixupAndCutMixRefusePartnersOutsideTheBatch()
    {
        var x = _b.Allocate(new Shape(2, 3, H, W));
        var y = _b.Allocate(new Shape(2, 10));
        var (mixed, mt) = (_b.Allocate(x.Shape), _b.Allocate(y.Shape));
        // before, the CPU read past the batch (IndexOutOfRangeException) or mixed with a negative index
        var e = Assert.Throws<ArgumentException>(() => _b.InputMixup(mixed, mt, x, y, [0, 2], 0.5f))!;
        Assert.That(e.Message, Does.Contain("permutation entry 2 is outside 0..1"));
        Assert.Throws<ArgumentException>(() => _b.InputMixup(mixed, mt, x, y, [-1, 0], 0.5f));
        Assert.Throws<ArgumentException>(() => _b.InputMixup(mixed, mt, x, y, [0], 0.5f), "too short");
        Assert.Throws<ArgumentException>(() => _b.CutMix(mixed, mt, x, y, [1, 5], new CutBox(0, 0, 4, 4)));
        Assert.Throws<ArgumentException>(() => _b.CutMix(mixed, mt, x, y, [1, 0, 0], new CutBox(0, 0, 4, 4)), "too long");
    }

    [Test]
    public void MixUpOpsRefuseToRunInPlace()
    {
        // the kernels write image i while other blocks read it as a partner: outputs must not share memory with inputs
        var x = RandomImages(2, 3, new Rng(3));
        var y = OneHot([0, 1], 10);
        var mt = _b.Allocate(y.Shape);
        int[] perm = [1, 0];
        var e = Assert.Throws<ArgumentException>(() => _b.InputMixup(x, mt, x, y, perm, 0.5f))!;
        Assert.That(e.Message, Does.StartWith("input mixup: mixed images (2, 3, 32, 32) shares memory with images"));
        Assert.Throws<ArgumentException>(() => _b.CutMix(_b.Allocate(x.Shape), y, x, y, perm, new CutBox(0, 0, 4, 4)), "targets in place");
        // a view overlapping by one element is refused too; an adjacent one is not
        var arena = _b.Allocate(new Shape(2 * 3 * H * W * 2));
        var first = arena.View(0, x.Shape);
        first.CopyFrom(x.ToArray());
        Assert.Throws<ArgumentException>(() => _b.InputMixup(arena.View(x.Length - 1, x.Shape), mt, first, y, perm, 0.5f));
        Assert.DoesNotThrow(() => _b.InputMixup(arena.View(x.Length, x.Shape), mt, first, y, perm, 0.5f));
        var masks = _b.Allocate(new Shape(2, P, P));
        Assert.Throws<ArgumentException>(() => _b.MaskMix(_b.Allocate(x.Shape), _b.Allocate(y.Shape), masks.Reshape(new Shape(2 * P * P)).View(0, new Shape(2, 3)), x, y, masks, perm, [0.5f]),
            "fractions inside the masks");
        var maps = RandomMaps(2, new Rng(4));
        Assert.Throws<ArgumentException>(() => _b.PercentileMasks(_b.Allocate(maps.Shape), maps.Reshape(new Shape(2 * P * P)).View(5, new Shape(2)), maps, [10f, 20f]),
            "thresholds inside the maps");
        var grad = _b.Allocate(new Shape(2, 3, H, W));
        Assert.Throws<ArgumentException>(() => _b.SaliencyMaps(grad.View(0, new Shape(2, P, P)), grad), "maps inside the gradient");
    }

    [Test]
    public void CutMixTakesTheBoxFromThePartnerAndCorrectsLambda()
    {
        var rng = new Rng(9);
        const int b = 3, k = 3;
        var x = RandomImages(b, 2, rng);
        var y = OneHot([0, 1, 2], k);
        var box = new CutBox(4, 8, 20, 16); // 16×8 = 128 of 1024 pixels
        int[] perm = [2, 0, 1];
        var mixed = _b.Allocate(x.Shape);
        var targets = _b.Allocate(y.Shape);
        _b.CutMix(mixed, targets, x, y, perm, box);
        float[] xs = x.ToArray(), ms = mixed.ToArray(), t = targets.ToArray();
        for (int i = 0; i < b; i++)
            for (int c = 0; c < 2; c++)
                for (int yy = 0; yy < H; yy++)
                    for (int xx = 0; xx < W; xx++)
                    {
                        int src = box.Contains(yy, xx) ? perm[i] : i;
                        Assert.That(ms[((i * 2 + c) * H + yy) * W + xx], Is.EqualTo(xs[((src * 2 + c) * H + yy) * W + xx]));
                    }
        for (int i = 0; i < b; i++)
        {
            Assert.That(t[i * k + i], Is.EqualTo(1 - 128f / 1024).Within(1e-6f));
            Assert.That(t[i * k + perm[i]], Is.EqualTo(128f / 1024).Within(1e-6f));
        }
        Assert.Throws<ArgumentException>(() => _b.CutMix(mixed, targets, x, y, perm, new CutBox(0, 0, 33, 4)));
    }
}
