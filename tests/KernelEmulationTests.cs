using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Mixup;

namespace RlMixup.Tests;

/// <summary>
/// The CUDA kernels of src/Kernels, run on the software device (KernelEmulator), against their CPU
/// twins in MixupReference, on random inputs over several shapes and several block and grid sizes
/// (blocks smaller and larger than the work, not powers of two; grids smaller and larger than B).
///
/// Exact: masks, thresholds and pixel fractions (integer counts over H·W). The kernels use the
/// reference's arithmetic (explicit fma in the percentile, the same summation order in the pooling),
/// so they must give the same bits.
/// Tolerances, |got − ref| ≤ atol + rtol·|ref|:
///  - saliency maps: 1e-9 + 1e-6·|ref|. The cell means are summed in the reference's order, but the
///    image total is a double block reduction in another order, which may move the float 1/total by
///    an ulp; maps are ≤ 1.
///  - mixed images and targets: 1e-6 + 1e-6·|ref|. The emulation computes the same float expressions;
///    on the GPU, a·b + c·d may be contracted into an fma, which moves the result by about an ulp of
///    the inputs (|x| ≤ 2 here, ulp 2.4e-7).
/// </summary>
public partial class KernelEmulationTests
{
    static KernelEmulator Emu => KernelEmulator.Instance;

    // ---- saliency_maps

    static readonly object[] SaliencyCases =
    [
        // B, C, H, W, p, block, grid (0 = one block per image)
        new object[] { 1, 1, 32, 32, 16, 32, 0 },
        new object[] { 1, 3, 32, 32, 8, 1024, 0 },
        new object[] { 7, 3, 32, 32, 16, 64, 3 },
        new object[] { 7, 1, 16, 24, 8, 256, 16 },
        new object[] { 7, 3, 16, 24, 4, 33, 2 },
        new object[] { 100, 3, 32, 32, 16, 256, 0 },
        new object[] { 100, 3, 32, 32, 8, 96, 37 },
        new object[] { 100, 1, 16, 24, 4, 32, 250 },
    ];

    [TestCaseSource(nameof(SaliencyCases))]
    public void SaliencyMapsMatchReference(int b, int c, int h, int w, int p, int block, int grid)
    {
        var rng = new Random(b * 1000 + c * 100 + h + w + p);
        var grad = new float[b * c * h * w];
        int image = c * h * w;
        for (int i = 0; i < b; i++)
        {
            // magnitudes spread over six decades; image 2 is all zero (→ uniform map)
            float scale = i == 2 ? 0f : MathF.Pow(10, (float)(rng.NextDouble() * 6 - 3));
            for (int e = 0; e < image; e++) grad[i * image + e] = scale * (float)(rng.NextDouble() * 2 - 1);
        }
        var s = new float[b * h * w];
        var want = new float[b * p * p];
        MixupReference.ChannelL2(s, grad, b, c, h, w);
        MixupReference.PoolNormalize(want, s, b, h, w, p);

        var got = Fill(b * p * p);
        Emu.SaliencyMaps(got, grad, b, c, h, w, p, block, grid);
        Compare("maps", got, want, atol: 1e-9, rtol: 1e-6);
    }

    // ---- percentile_masks

    static readonly object[] PercentileCases =
    [
        // B, cells, block, grid, ties (values quantised to few levels)
        new object[] { 1, 256, 32, 0, false },
        new object[] { 1, 16, 1024, 0, true },
        new object[] { 7, 256, 64, 3, true },
        new object[] { 7, 64, 256, 20, false },
        new object[] { 7, 36, 33, 0, true },     // not a power of two: padded with +inf
        new object[] { 7, 1000, 1024, 2, true },
        new object[] { 100, 256, 256, 0, true },
        new object[] { 100, 256, 128, 41, false },
        new object[] { 100, 64, 32, 130, true },
        new object[] { 100, 16, 64, 0, false },
    ];

    [TestCaseSource(nameof(PercentileCases))]
    public void PercentileMasksMatchReferenceExactly(int b, int cells, int block, int grid, bool ties)
    {
        var rng = new Random(b * 7 + cells * 13 + block);
        var maps = new float[b * cells];
        for (int e = 0; e < maps.Length; e++)
        {
            float v = (float)rng.NextDouble();
            maps[e] = ties ? MathF.Floor(v * 6) / 256f : v / cells;
        }
        var q = RandomPercentiles(rng, b);

        var wantMasks = new float[b * cells];
        var wantT = new float[b];
        MixupReference.PercentileMasks(wantMasks, wantT, maps, q, b, cells);
        var gotMasks = Fill(b * cells);
        var gotT = Fill(b);
        Emu.PercentileMasks(gotMasks, gotT, maps, q, b, cells, block, grid);
        Exact("thresholds", gotT, wantT);
        Exact("masks", gotMasks, wantMasks);
    }

    // ---- mask_mix

    static readonly object[] MaskMixCases =
    [
        // B, C, H, W, p, K, per-image λ, block, grid
        new object[] { 1, 3, 32, 32, 16, 10, false, 32, 0 },
        new object[] { 1, 1, 16, 24, 4, 100, true, 1024, 3 },
        new object[] { 7, 3, 32, 32, 8, 100, true, 64, 3 },
        new object[] { 7, 1, 16, 24, 8, 10, false, 256, 20 },
        new object[] { 7, 3, 16, 24, 4, 100, true, 1024, 0 },
        new object[] { 100, 3, 32, 32, 16, 10, false, 256, 0 },
        new object[] { 100, 3, 32, 32, 8, 100, true, 96, 33 },
        new object[] { 100, 1, 32, 32, 4, 10, true, 32, 128 },
    ];

    [TestCaseSource(nameof(MaskMixCases))]
    public void MaskMixMatchesReference(int b, int c, int h, int w, int p, int k, bool perImage, int block, int grid)
    {
        var rng = new Random(b * 31 + c * 7 + h * 3 + w + p * 11 + k);
        int cells = p * p;
        var x = RandomValues(rng, b * c * h * w, 2);
        var targets = SoftTargets(rng, b, k);
        var perm = Permutation(rng, b);
        var lambda1 = new float[perImage ? b : 1];
        for (int i = 0; i < lambda1.Length; i++) lambda1[i] = (float)rng.NextDouble();
        // masks as the pipeline makes them: percentile masks of random maps, q from the action grid
        var maps = RandomValues(rng, b * cells, 1);
        var q = RandomPercentiles(rng, b);
        var masks = new float[b * cells];
        MixupReference.PercentileMasks(masks, new float[b], maps, q, b, cells);

        var up = new float[b * h * w];
        var wantMixed = new float[x.Length];
        var wantTargets = new float[b * k];
        var wantFractions = new float[b * 3];
        MixupReference.UpsampleNearest(up, masks, b, p, h, w);
        MixupReference.Mix(wantMixed, x, up, perm, lambda1, b, c, h, w);
        MixupReference.SoftLabels(wantTargets, wantFractions, targets, up, perm, lambda1, b, k, h * w);

        var gotMixed = Fill(x.Length);
        var gotTargets = Fill(b * k);
        var gotFractions = Fill(b * 3);
        Emu.MaskMix(gotMixed, gotTargets, gotFractions, x, targets, masks, perm, lambda1, b, c, h, w, p, k, block, grid);
        Exact("fractions", gotFractions, wantFractions);
        Compare("mixed", gotMixed, wantMixed, atol: 1e-6, rtol: 1e-6);
        Compare("targets", gotTargets, wantTargets, atol: 1e-6, rtol: 1e-6);
    }

    [Test]
    public void MaskMixWithAllOnesMasksIsInputMixup()
    {
        const int b = 7, c = 3, h = 32, w = 32, p = 8, k = 10;
        var rng = new Random(5);
        var x = RandomValues(rng, b * c * h * w, 2);
        var targets = SoftTargets(rng, b, k);
        var perm = Permutation(rng, b);
        float lambda = 0.3f;
        var masks = new float[b * p * p];
        Emu.PercentileMasks(masks, new float[b], RandomValues(rng, b * p * p, 1), new float[b], b, p * p, 64); // q = 0: all ones
        Assert.That(masks, Has.All.EqualTo(1f));

        var mixed = Fill(x.Length);
        var mixedTargets = Fill(b * k);
        var fractions = Fill(b * 3);
        Emu.MaskMix(mixed, mixedTargets, fractions, x, targets, masks, perm, [lambda], b, c, h, w, p, k, 128);
        var wantMixed = Fill(x.Length);
        var wantTargets = Fill(b * k);
        Emu.InputMixup(wantMixed, wantTargets, x, targets, perm, lambda, b, c * h * w, k, 128);
        Exact("mixed", mixed, wantMixed);
        Compare("targets", mixedTargets, wantTargets, atol: 1e-7, rtol: 1e-6);
        for (int i = 0; i < b; i++) Assert.That(fractions[i * 3], Is.EqualTo(1f), "f_inter of all-ones masks");
    }

    // ---- input_mixup and cutmix

    static readonly object[] BaselineCases =
    [
        // B, C, H, W, K, block, grid
        new object[] { 1, 1, 32, 32, 10, 32, 0 },
        new object[] { 7, 3, 16, 24, 100, 1024, 2 },
        new object[] { 7, 1, 32, 32, 10, 96, 20 },
        new object[] { 100, 3, 32, 32, 100, 256, 0 },
        new object[] { 100, 3, 16, 24, 10, 64, 33 },
    ];

    [TestCaseSource(nameof(BaselineCases))]
    public void InputMixupMatchesReference(int b, int c, int h, int w, int k, int block, int grid)
    {
        var rng = new Random(b + c + h * w + k + block);
        var x = RandomValues(rng, b * c * h * w, 2);
        var targets = SoftTargets(rng, b, k);
        var perm = Permutation(rng, b);
        float lambda = (float)rng.NextDouble();
        var wantMixed = new float[x.Length];
        var wantTargets = new float[b * k];
        MixupReference.InputMixup(wantMixed, wantTargets, x, targets, perm, lambda, b, k);
        var gotMixed = Fill(x.Length);
        var gotTargets = Fill(b * k);
        Emu.InputMixup(gotMixed, gotTargets, x, targets, perm, lambda, b, c * h * w, k, block, grid);
        Compare("mixed", gotMixed, wantMixed, atol: 1e-6, rtol: 1e-6);
        Compare("targets", gotTargets, wantTargets, atol: 1e-6, rtol: 1e-6);
    }

    [TestCaseSource(nameof(BaselineCases))]
    public void CutMixMatchesReference(int b, int c, int h, int w, int k, int block, int grid)
    {
        var rng = new Random(b * 3 + c + h * w + k + block);
        var x = RandomValues(rng, b * c * h * w, 2);
        var targets = SoftTargets(rng, b, k);
        var perm = Permutation(rng, b);
        CutBox[] boxes =
        [
            CutBox.Sample(new Rng((ulong)rng.Next()), rng.NextDouble(), h, w),
            new(0, 0, h, w),          // the whole image
            new(3, 5, 3, 9),          // empty
            new(h - 4, w - 7, h, w),  // at the corner
        ];
        foreach (var box in boxes)
        {
            var wantMixed = new float[x.Length];
            var wantTargets = new float[b * k];
            MixupReference.CutMix(wantMixed, wantTargets, x, targets, perm, box, b, c, h, w, k);
            var gotMixed = Fill(x.Length);
            var gotTargets = Fill(b * k);
            Emu.CutMix(gotMixed, gotTargets, x, targets, perm, box.Y0, box.X0, box.Y1, box.X1, b, c, h, w, k, block, grid);
            Exact($"mixed {box}", gotMixed, wantMixed);
            Compare($"targets {box}", gotTargets, wantTargets, atol: 1e-6, rtol: 1e-6);
        }
    }

    // ---- helpers

    /// <summary>An output buffer pre-filled with NaN, so that an element the kernel never writes fails.</summary>
    static float[] Fill(int n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return a;
    }

    static float[] RandomValues(Random rng, int n, float scale)
    {
        var a = new float[n];
        for (int e = 0; e < n; e++) a[e] = scale * (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    /// <summary>Soft rows that sum to 1; every third row one-hot.</summary>
    static float[] SoftTargets(Random rng, int b, int k)
    {
        var t = new float[b * k];
        for (int i = 0; i < b; i++)
        {
            if (i % 3 == 0) { t[i * k + rng.Next(k)] = 1; continue; }
            float sum = 0;
            for (int j = 0; j < k; j++) sum += t[i * k + j] = (float)rng.NextDouble();
            for (int j = 0; j < k; j++) t[i * k + j] /= sum;
        }
        return t;
    }

    static int[] Permutation(Random rng, int b)
    {
        var perm = Enumerable.Range(0, b).ToArray();
        rng.Shuffle(perm);
        return perm;
    }

    /// <summary>Mostly the action grid q = 11·a; also the ends 0 and 100 and arbitrary values.</summary>
    static float[] RandomPercentiles(Random rng, int b)
    {
        var q = new float[b];
        for (int i = 0; i < b; i++)
            q[i] = (i % 5) switch
            {
                0 => 0f,
                1 => 100f,
                2 => (float)(rng.NextDouble() * 100),
                _ => 11f * rng.Next(10),
            };
        return q;
    }

    static void Exact(string what, float[] got, float[] want)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length));
        int bad = -1;
        double maxErr = 0;
        for (int e = 0; e < got.Length; e++)
        {
            double d = Math.Abs((double)got[e] - want[e]);
            if (!(d == 0)) { bad = bad < 0 ? e : bad; maxErr = double.IsNaN(d) ? double.NaN : Math.Max(maxErr, d); }
        }
        TestContext.Out.WriteLine($"{what}: exact, max abs error {maxErr:G3} over {got.Length}");
        if (bad >= 0) Assert.Fail($"{what}: element {bad} is {got[bad]:R}, reference {want[bad]:R}");
    }

    static void Compare(string what, float[] got, float[] want, double atol, double rtol)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length));
        double maxErr = 0;
        int worst = -1;
        for (int e = 0; e < got.Length; e++)
        {
            double d = Math.Abs((double)got[e] - want[e]);
            if (double.IsNaN(d)) Assert.Fail($"{what}: element {e} is {got[e]}, reference {want[e]}");
            if (d > maxErr) { maxErr = d; worst = e; }
            if (d > atol + rtol * Math.Abs(want[e]))
                Assert.Fail($"{what}: element {e} is {got[e]:R}, reference {want[e]:R} (|diff| {d:G3} > {atol} + {rtol}·|ref|)");
        }
        TestContext.Out.WriteLine($"{what}: max abs error {maxErr:G3} over {got.Length}" + (worst >= 0 ? $" (at {worst})" : ""));
    }
}
