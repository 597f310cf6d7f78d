using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.Cuda;
using RlMixup.Engine.Data;
using RlMixup.Engine.Training;

namespace RlMixup.Tests;

/// <summary>
/// loss.cu, optim.cu and augment.cu through host emulation, against the CPU backend (and
/// Accuracy.CountCorrect, CpuBatchSource) on random non-zero inputs, block sizes 32, 128 and 1024,
/// grids of one block, of seven blocks and KernelCatalog's.
///
/// Exact: argmax_rows and count_correct; sgd_step and adam_step over several steps (the twin's float
/// operations in its order, explicit fmas included); gather_augment (the twin's scale and shift,
/// one product and one sum per pixel) and its one-hot targets.
/// Tolerances, |got − ref| ≤ atol + rtol·|ref| (the row sums are float trees where the twin sums in
/// double or in sequence, and e^x is computed as 2^{x·log2 e}, which rounds x·log2 e once more):
///  - log_softmax_forward: 2e-6 + 1e-6·|ref| (|z| ≤ 5, K ≤ 1000: logp down to about −15);
///  - log_softmax_backward: 2e-6 + 1e-5·|ref|; soft_cross_entropy_forward: 1e-6 + 2e-6·|ref|;
///  - soft_cross_entropy_backward: 1e-7 + 1e-5·|ref| (values of order 1/rows).
/// On the device the fast ex2/lg2 add about 2 ulp to each exponential and logarithm, inside these bounds.
/// </summary>
public partial class KernelEmulationTests
{
    // ---- loss.cu

    static readonly object[] LossCases =
    [
        // rows, K, block, grid (−1: the catalog's)
        new object[] { 1, 1, 32, 0 },
        new object[] { 1, 10, 32, 1 },
        new object[] { 7, 10, 128, -1 },
        new object[] { 7, 100, 32, 0 },
        new object[] { 100, 10, 1024, -1 },
        new object[] { 100, 100, 128, 1 },
        new object[] { 13, 1000, 1024, 0 },
        new object[] { 13, 1000, 32, -1 },
    ];

    [TestCaseSource(nameof(LossCases))]
    public void LossKernelsMatchCpu(int rows, int k, int block, int grid)
    {
        using var cpu = new CpuBackend(1);
        var rng = new Random(rows * 17 + k + block + grid);
        int rowGrid = Grid(grid, () => KernelCatalog.LogSoftmaxForward(rows, k, block).GridX);
        var z = NonZero(rng, rows * k, 5);
        var dlogp = NonZero(rng, rows * k, 1);
        var targets = SoftTargets(rng, rows, k);
        float scale = 1f / rows;

        var tlogp = cpu.Allocate(new Shape(rows, k));
        cpu.LogSoftmaxForward(tlogp, Host(cpu, z, rows, k));
        var logp = tlogp.ToArray();
        var got = Fill(rows * k);
        Emu.LogSoftmaxForward(got, z, rows, k, block, rowGrid);
        Compare("log_softmax_forward", got, logp, atol: 2e-6, rtol: 1e-6);

        var tdz = cpu.Allocate(new Shape(rows, k));
        cpu.LogSoftmaxBackward(tdz, tlogp, Host(cpu, dlogp, rows, k));
        got = Fill(rows * k);
        Emu.LogSoftmaxBackward(got, logp, dlogp, rows, k, block, rowGrid);
        Compare("log_softmax_backward", got, tdz.ToArray(), atol: 2e-6, rtol: 1e-5);

        var tt = Host(cpu, targets, rows, k);
        var tloss = cpu.Allocate(new Shape(rows));
        cpu.SoftCrossEntropyForward(tloss, tlogp, tt);
        got = Fill(rows);
        Emu.SoftCrossEntropyForward(got, logp, targets, rows, k, block, rowGrid);
        Compare("soft_cross_entropy_forward", got, tloss.ToArray(), atol: 1e-6, rtol: 2e-6);

        cpu.SoftCrossEntropyBackward(tdz, tlogp, tt, scale);
        got = Fill(rows * k);
        Emu.SoftCrossEntropyBackward(got, logp, targets, rows, k, scale, block, rowGrid);
        Compare("soft_cross_entropy_backward", got, tdz.ToArray(), atol: 1e-7, rtol: 1e-5);
    }

    [TestCaseSource(nameof(LossCases))]
    public void ArgmaxAndCountCorrectMatchAccuracy(int rows, int k, int block, int grid)
    {
        var rng = new Random(rows * 3 + k + block);
        // few levels, so that rows have ties: the first maximum must win
        var z = new float[rows * k];
        for (int i = 0; i < z.Length; i++) z[i] = rng.Next(1, 5) * 0.25f - (i % 2 == 0 ? 2f : 0f);
        var labels = new byte[rows];
        for (int i = 0; i < rows; i++) labels[i] = (byte)rng.Next(k);

        var want = new int[rows];
        for (int r = 0; r < rows; r++)
            for (int c = 1; c < k; c++) if (z[r * k + c] > z[r * k + want[r]]) want[r] = c;
        // half the labels are the prediction, so the count is neither 0 nor rows
        for (int i = 0; i < rows; i += 2) labels[i] = (byte)want[i];

        var pred = new int[rows];
        Array.Fill(pred, -1);
        Emu.ArgmaxRows(pred, z, rows, k, block, Grid(grid, () => KernelCatalog.ArgmaxRows(rows, k, block).GridX));
        Assert.That(pred, Is.EqualTo(want), "argmax_rows: the first maximum of each row");
        int count = Emu.CountCorrect(pred, labels, block);
        Assert.That(count, Is.EqualTo(Accuracy.CountCorrect(z, labels, k)), "count_correct");
    }

    // ---- optim.cu

    static IEnumerable<object[]> OptimCases() => Geometries(1, 1000, 5003);

    [TestCaseSource(nameof(OptimCases))]
    public void SgdStepMatchesCpuExactly(int n, int block, int grid)
    {
        using var cpu = new CpuBackend(1);
        var rng = new Random(n + block * 3 + grid);
        grid = Grid(grid, () => KernelCatalog.SgdStep(n, block).GridX);
        foreach (bool nesterov in new[] { true, false })
        {
            var p = NonZero(rng, n, 1);
            var buf = new float[n]; // PyTorch's first step: buf = g
            var tp = Host(cpu, p, n); var tbuf = Host(cpu, buf, n);
            for (int step = 0; step < 3; step++)
            {
                var g = NonZero(rng, n, 0.1f);
                cpu.SgdStep(tp, Host(cpu, g, n), tbuf, 0.1f, 0.9f, 5e-4f, nesterov);
                Emu.SgdStep(p, g, buf, 0.1f, 0.9f, 5e-4f, nesterov, block, grid);
                Exact($"sgd param (nesterov {nesterov}, step {step})", p, tp.ToArray());
                Exact($"sgd momentum (nesterov {nesterov}, step {step})", buf, tbuf.ToArray());
            }
        }
    }

    [TestCaseSource(nameof(OptimCases))]
    public void AdamStepMatchesCpuExactly(int n, int block, int grid)
    {
        using var cpu = new CpuBackend(1);
        var rng = new Random(n * 5 + block + grid);
        grid = Grid(grid, () => KernelCatalog.AdamStep(n, block).GridX);
        var p = NonZero(rng, n, 1);
        var m = new float[n];
        var v = new float[n];
        var tp = Host(cpu, p, n); var tm = Host(cpu, m, n); var tv = Host(cpu, v, n);
        for (int step = 1; step <= 3; step++)
        {
            var g = NonZero(rng, n, 0.1f);
            cpu.AdamStep(tp, Host(cpu, g, n), tm, tv, step, 3e-4f, 0.9f, 0.999f, 1e-5f, 1e-4f);
            Emu.AdamStep(p, g, m, v, step, 3e-4f, 0.9f, 0.999f, 1e-5f, 1e-4f, block, grid);
            Exact($"adam param (step {step})", p, tp.ToArray());
            Exact($"adam m (step {step})", m, tm.ToArray());
            Exact($"adam v (step {step})", v, tv.ToArray());
        }
    }

    [TestCase(1, 0.9f, 0.999f)]
    [TestCase(7, 0.9f, 0.999f)]
    [TestCase(1000, 0.8f, 0.99f)]
    [TestCase(20_000, 0.9f, 0.999f)]
    public void AdamStepWithCatalogScalarsMatchesCpuExactly(int firstStep, float beta1, float beta2)
    {
        // The GPU backend passes KernelCatalog.AdamScalars(step, ...) instead of the step number.
        using var cpu = new CpuBackend(1);
        const int n = 777, block = 128;
        var rng = new Random(firstStep);
        var p = NonZero(rng, n, 1);
        var m = NonZero(rng, n, 0.01f);
        var v = NonZero(rng, n, 0.01f);
        for (int i = 0; i < n; i++) v[i] = Math.Abs(v[i]);
        var tp = Host(cpu, p, n); var tm = Host(cpu, m, n); var tv = Host(cpu, v, n);
        for (int step = firstStep; step < firstStep + 3; step++)
        {
            var g = NonZero(rng, n, 0.1f);
            cpu.AdamStep(tp, Host(cpu, g, n), tm, tv, step, 1e-3f, beta1, beta2, 1e-8f, 5e-4f);
            var (stepSize, bc2Sqrt) = KernelCatalog.AdamScalars(step, 1e-3f, beta1, beta2);
            Emu.AdamStepScaled(p, g, m, v, stepSize, bc2Sqrt, beta1, beta2, 1e-8f, 5e-4f, block, KernelCatalog.AdamStep(n, block).GridX);
            Exact($"adam param (step {step})", p, tp.ToArray());
            Exact($"adam m (step {step})", m, tm.ToArray());
            Exact($"adam v (step {step})", v, tv.ToArray());
        }
        Assert.Throws<ArgumentException>(() => KernelCatalog.AdamScalars(0, 1e-3f, beta1, beta2));
    }

    // ---- augment.cu

    static readonly object[] AugmentCases =
    [
        // images in the set, batch, classes, block, grid (−1: the catalog's)
        new object[] { 5, 1, 10, 32, 0 },
        new object[] { 20, 7, 10, 32, 1 },
        new object[] { 20, 7, 100, 128, -1 },
        new object[] { 30, 33, 10, 1024, 0 },
        new object[] { 30, 33, 100, 1024, -1 },
        new object[] { 12, 16, 10, 128, 5 },
    ];

    [TestCaseSource(nameof(AugmentCases))]
    public void GatherAugmentMatchesCpuBatchSourceExactly(int count, int b, int k, int block, int grid)
    {
        using var cpu = new CpuBackend(1);
        var rng = new Random(count * 7 + b + k + block);
        const int h = ImageSet.Height, w = ImageSet.Width;
        var pixels = new byte[count * ImageSet.ImageBytes];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)rng.Next(1, 256);
        var labels = new byte[count];
        for (int i = 0; i < count; i++) labels[i] = (byte)rng.Next(k);
        var indices = new int[b];
        var records = new CropFlip[b];
        var aug = new int[b * 3];
        for (int i = 0; i < b; i++)
        {
            indices[i] = rng.Next(count); // repeats allowed, as in a sampled batch
            // padding 4 and flips, plus the extremes of padding 2 on the first images
            records[i] = i switch
            {
                0 => new CropFlip(-2, -2, true),
                1 => new CropFlip(2, 2, false),
                _ => new CropFlip(rng.Next(-4, 5), rng.Next(-4, 5), rng.Next(2) == 1),
            };
            aug[i * 3] = records[i].Dx; aug[i * 3 + 1] = records[i].Dy; aug[i * 3 + 2] = records[i].Flip ? 1 : 0;
        }

        var source = new CpuBatchSource(cpu, new ImageSet(pixels, labels, k));
        var tx = cpu.Allocate(new Shape(b, 3, h, w));
        var tt = cpu.Allocate(new Shape(b, k));
        source.Fill(tx, tt, indices, records);

        var x = Fill(b * ImageSet.ImageBytes);
        var targets = Fill(b * k);
        Emu.GatherAugment(x, targets, pixels, labels, indices, aug, Normalisation.Mean, Normalisation.Std, h, w, k, block,
            Grid(grid, () => KernelCatalog.GatherAugment(b, h, w, k, block).GridX));
        Exact("augmented images", x, tx.ToArray());
        Exact("one-hot targets", targets, tt.ToArray());
    }
}
