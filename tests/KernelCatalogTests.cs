using System.Text.RegularExpressions;
using NUnit.Framework;
using RlMixup.Core.Cuda;

namespace RlMixup.Tests;

/// <summary>
/// KernelCatalog (generated from src/Kernels at build time): the embedded PTX, compiled from the same
/// sources, has exactly its kernels with its parameter types (a stale committed PTX fails here before
/// CI's scripts/ptx.sh check), and the launch geometry keeps to the hardware limits, covers every
/// element of a grid-stride loop and refuses what a kernel cannot run.
/// </summary>
public partial class KernelCatalogTests
{
    [Test]
    public void CatalogListsExactlyTheKernelsOfTheSources()
    {
        var declared = new List<(string, string)>();
        foreach (var module in PtxModules.Names)
            foreach (var entry in PtxEntries(PtxModules.Load(module)).Keys) declared.Add((module, entry));
        var catalog = KernelCatalog.All.Select(k => (k.Module, k.Entry)).ToList();
        Assert.That(catalog, Is.Unique, "one descriptor per kernel");
        Assert.That(catalog, Is.EquivalentTo(declared), "catalog (module, entry) pairs vs the .entry directives of the embedded PTX");
        Assert.That(KernelCatalog.All, Has.Count.EqualTo(28));
    }

    [Test]
    public void CatalogParametersMatchThePtx()
    {
        Assert.Multiple(() =>
        {
            foreach (var k in KernelCatalog.All)
            {
                var entries = PtxEntries(PtxModules.Load(k.Module));
                Assert.That(entries.ContainsKey(k.Entry), Is.True, $"{k.Module}.ptx has no entry {k.Entry}");
                if (!entries.TryGetValue(k.Entry, out var types)) continue;
                Assert.That(k.Parameters.Select(p => p.PtxType), Is.EqualTo(types), $"{k.Entry}: parameter types in order");
                Assert.That(k.Parameters.Select(p => p.Name), Is.Unique, $"{k.Entry}: parameter names");
            }
        });
    }

    static IEnumerable<long> Sizes() => [1, 2, 31, 32, 33, 255, 256, 257, 1000, 5003, 1 << 20, (1L << 20) + 1, 16_777_217, 3L << 31];

    [Test]
    public void ElementwiseGeometryCoversEveryElement()
    {
        foreach (int block in new[] { 1, 32, 96, 128, 256, 1000, 1024 })
            foreach (long n in Sizes())
            {
                var g = KernelCatalog.Elementwise("add", n, block);
                Assert.That(g.BlockX, Is.EqualTo(block));
                Assert.That(g.GridX, Is.InRange(1, KernelCatalog.MaxGrid), $"n {n}, block {block}");
                Assert.That(g.DynamicSharedBytes, Is.Zero);
                // one element per thread unless capped; a grid-stride loop covers the rest either way
                long threads = (long)g.GridX * g.BlockX;
                if (g.GridX < KernelCatalog.MaxGrid) Assert.That(threads, Is.GreaterThanOrEqualTo(n).And.LessThan(n + block), $"n {n}, block {block}");
                Assert.That(Iterations(n, threads) * threads, Is.GreaterThanOrEqualTo(n));
            }
    }

    static long Iterations(long n, long threads) => (n + threads - 1) / threads;

    [Test]
    public void EveryKernelHasAGeometryWithinTheLimits()
    {
        const int b = 100, c = 3, h = 32, w = 32, k = 10;
        LaunchGeometry[] all =
        [
            KernelCatalog.SaliencyMaps(b, c, h, w, 16), KernelCatalog.PercentileMasks(b, 256), KernelCatalog.MaskMix(b, c, h, w, 16, k, 1),
            KernelCatalog.InputMixup(b, c * h * w, k), KernelCatalog.CutMix(b, c, h, w, k, 3, 4, 20, 30),
            KernelCatalog.Fill(7), KernelCatalog.Add(7), KernelCatalog.Axpy(7), KernelCatalog.Scale(7), KernelCatalog.ReluForward(7),
            KernelCatalog.ReluBackward(7), KernelCatalog.TanhForward(7), KernelCatalog.TanhBackward(7),
            KernelCatalog.AddChannelBias(b, 64, 256), KernelCatalog.ChannelBiasBackward(b, 64, 256), KernelCatalog.AddRowBias(b, k),
            KernelCatalog.RowBiasBackward(b, k), KernelCatalog.GlobalAvgPoolForward(b * 512, 16), KernelCatalog.GlobalAvgPoolBackward(b * 512, 16),
            KernelCatalog.LogSoftmaxForward(b, k), KernelCatalog.LogSoftmaxBackward(b, k), KernelCatalog.SoftCrossEntropyForward(b, k),
            KernelCatalog.SoftCrossEntropyBackward(b, k), KernelCatalog.ArgmaxRows(b, k), KernelCatalog.CountCorrect(b),
            KernelCatalog.SgdStep(11_000_000), KernelCatalog.AdamStep(11_000_000, step: 3), KernelCatalog.GatherAugment(b, h, w, k),
        ];
        Assert.That(all, Has.Length.EqualTo(KernelCatalog.All.Count), "one geometry per kernel");
        foreach (var g in all)
        {
            Assert.That(g.BlockX, Is.InRange(1, KernelCatalog.MaxThreads));
            Assert.That(g.GridX, Is.InRange(1, int.MaxValue));
            Assert.That(g.DynamicSharedBytes, Is.Zero);
        }
        // per-image, per-row and per-channel kernels: one block each
        Assert.That(KernelCatalog.SaliencyMaps(b, c, h, w, 16).GridX, Is.EqualTo(b));
        Assert.That(KernelCatalog.LogSoftmaxForward(b, k).GridX, Is.EqualTo(b));
        Assert.That(KernelCatalog.LogSoftmaxForward(100_000, k).GridX, Is.EqualTo(KernelCatalog.MaxGrid));
        Assert.That(KernelCatalog.ChannelBiasBackward(b, 64, 256).GridX, Is.EqualTo(64));
        Assert.That(KernelCatalog.CountCorrect(1_000_000).GridX, Is.EqualTo(1));
        // per-thread kernels cover their items
        Assert.That(KernelCatalog.ArgmaxRows(1000, k, 128).GridX * 128L, Is.GreaterThanOrEqualTo(1000));
        Assert.That(KernelCatalog.RowBiasBackward(b, 1500, 128).GridX * 128L, Is.GreaterThanOrEqualTo(1500));
        Assert.That(KernelCatalog.GatherAugment(b, h, w, k, 256).GridX * 256L, Is.GreaterThanOrEqualTo((long)b * 3 * h * w + b * k));
        Assert.That(KernelCatalog.GlobalAvgPoolForward(b * 512, 16, 256).GridX * 256L, Is.GreaterThanOrEqualTo(b * 512));
    }

    [Test]
    public void GridMathForSomeShapes()
    {
        Assert.Multiple(() =>
        {
            // ceil(n / block), capped at MaxGrid
            Assert.That(KernelCatalog.Add(1000, 256), Is.EqualTo(new LaunchGeometry(4, 256, 0)));
            Assert.That(KernelCatalog.Add(1024, 256).GridX, Is.EqualTo(4));
            Assert.That(KernelCatalog.Add(1025, 256).GridX, Is.EqualTo(5));
            Assert.That(KernelCatalog.Fill(1, 1024).GridX, Is.EqualTo(1));
            Assert.That(KernelCatalog.Scale(65535L * 256, 256).GridX, Is.EqualTo(65535));
            Assert.That(KernelCatalog.Scale(65535L * 256 + 1, 256).GridX, Is.EqualTo(KernelCatalog.MaxGrid));
            Assert.That(KernelCatalog.SgdStep(3L << 31, 512).GridX, Is.EqualTo(KernelCatalog.MaxGrid));
            // batch 100 of CIFAR images: 100·3·32·32 pixels and 100·10 targets
            Assert.That(KernelCatalog.GatherAugment(100, 32, 32, 10, 256), Is.EqualTo(new LaunchGeometry(1204, 256, 0)));
            // conv bias of a (100, 64, 32, 32) activation: per element forward, per channel backward
            Assert.That(KernelCatalog.AddChannelBias(100, 64, 1024, 256).GridX, Is.EqualTo(25600));
            Assert.That(KernelCatalog.ChannelBiasBackward(100, 64, 1024, 256), Is.EqualTo(new LaunchGeometry(64, 256, 0)));
            Assert.That(KernelCatalog.ChannelBiasBackward(1, 70_000, 1, 32).GridX, Is.EqualTo(KernelCatalog.MaxGrid));
            // pooling of (100, 512, 4, 4): a thread per plane forward, per element backward
            Assert.That(KernelCatalog.GlobalAvgPoolForward(51200, 16, 256).GridX, Is.EqualTo(200));
            Assert.That(KernelCatalog.GlobalAvgPoolBackward(51200, 16, 256).GridX, Is.EqualTo(3200));
            // linear bias (100, 10): per element forward, per column backward
            Assert.That(KernelCatalog.AddRowBias(100, 10, 128).GridX, Is.EqualTo(8));
            Assert.That(KernelCatalog.RowBiasBackward(100, 10, 128).GridX, Is.EqualTo(1));
            // loss: one block per row; argmax one thread per row; count one block
            Assert.That(KernelCatalog.SoftCrossEntropyBackward(100, 10, 32), Is.EqualTo(new LaunchGeometry(100, 32, 0)));
            Assert.That(KernelCatalog.ArgmaxRows(10_000, 10, 256).GridX, Is.EqualTo(40));
            Assert.That(KernelCatalog.CountCorrect(10_000, 1024), Is.EqualTo(new LaunchGeometry(1, 1024, 0)));
        });
    }

    [Test]
    public void AdamScalarsAreTheBiasCorrections()
    {
        var (stepSize, bc2Sqrt) = KernelCatalog.AdamScalars(1, 1e-3f, 0.9f, 0.999f);
        Assert.That(stepSize, Is.EqualTo((float)(1e-3f / (1 - (double)0.9f))));
        Assert.That(bc2Sqrt, Is.EqualTo((float)Math.Sqrt(1 - (double)0.999f)));
        // far into training both corrections vanish
        (stepSize, bc2Sqrt) = KernelCatalog.AdamScalars(100_000, 1e-3f, 0.9f, 0.999f);
        Assert.That(stepSize, Is.EqualTo(1e-3f));
        Assert.That(bc2Sqrt, Is.EqualTo(1f));
        var ex = Assert.Throws<ArgumentException>(() => KernelCatalog.AdamScalars(0, 1e-3f, 0.9f, 0.999f));
        Assert.That(ex!.Message, Does.StartWith("adam_step:"));
    }

    static IEnumerable<TestCaseData> Rejected()
    {
        yield return Case("add", () => KernelCatalog.Add(0));
        yield return Case("fill", () => KernelCatalog.Fill(10, 0));
        yield return Case("tanh_forward", () => KernelCatalog.TanhForward(10, 1025));
        yield return Case("saliency_maps", () => KernelCatalog.SaliencyMaps(1, 3, 32, 32, 6));
        yield return Case("saliency_maps", () => KernelCatalog.SaliencyMaps(1, 3, 64, 64, 64));
        yield return Case("percentile_masks", () => KernelCatalog.PercentileMasks(1, 2048));
        yield return Case("mask_mix", () => KernelCatalog.MaskMix(4, 3, 32, 32, 8, 10, 3));
        yield return Case("input_mixup", () => KernelCatalog.InputMixup(0, 10, 10));
        yield return Case("cutmix", () => KernelCatalog.CutMix(2, 3, 32, 32, 10, 0, 0, 33, 5));
        yield return Case("add_channel_bias", () => KernelCatalog.AddChannelBias(2, 0, 16));
        yield return Case("channel_bias_backward", () => KernelCatalog.ChannelBiasBackward(100_000, 3, 100_000));
        yield return Case("add_row_bias", () => KernelCatalog.AddRowBias(2, 10, 2048));
        yield return Case("row_bias_backward", () => KernelCatalog.RowBiasBackward(0, 10));
        yield return Case("global_avg_pool_forward", () => KernelCatalog.GlobalAvgPoolForward(10, 0));
        yield return Case("global_avg_pool_backward", () => KernelCatalog.GlobalAvgPoolBackward(0, 16));
        yield return Case("log_softmax_forward", () => KernelCatalog.LogSoftmaxForward(10, 0));
        yield return Case("log_softmax_backward", () => KernelCatalog.LogSoftmaxBackward(0, 10));
        yield return Case("soft_cross_entropy_forward", () => KernelCatalog.SoftCrossEntropyForward(10, 10, -1));
        yield return Case("soft_cross_entropy_backward", () => KernelCatalog.SoftCrossEntropyBackward(10, 10, 4096));
        yield return Case("argmax_rows", () => KernelCatalog.ArgmaxRows(0, 10));
        yield return Case("count_correct", () => KernelCatalog.CountCorrect(0));
        yield return Case("sgd_step", () => KernelCatalog.SgdStep(0));
        yield return Case("adam_step", () => KernelCatalog.AdamStep(10, step: 0));
        yield return Case("gather_augment", () => KernelCatalog.GatherAugment(4, 32, 32, 0));
    }

    static TestCaseData Case(string op, Func<LaunchGeometry> geometry) => new TestCaseData(op, geometry).SetArgDisplayNames(op);

    [TestCaseSource(nameof(Rejected))]
    public void PreconditionsAreRejectedWithTheOpName(string op, Func<LaunchGeometry> geometry)
    {
        var ex = Assert.Throws<ArgumentException>(() => geometry());
        Assert.That(ex!.Message, Does.StartWith(op + ":"));
    }

    // ---- helpers

    /// <summary>entry name → the PTX types of its parameters, in order.</summary>
    static Dictionary<string, List<string>> PtxEntries(string ptx)
    {
        var result = new Dictionary<string, List<string>>();
        foreach (Match m in EntryRegex().Matches(ptx))
            result[m.Groups[1].Value] = ParamRegex().Matches(m.Groups[2].Value).Select(p => p.Groups[1].Value).ToList();
        return result;
    }

    static string? SourceDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RlMixup.sln"))) return Path.Combine(dir.FullName, "src", "Kernels");
        return null;
    }

    [GeneratedRegex(@"\.entry\s+(\w+)\s*\(([^)]*)\)")]
    private static partial Regex EntryRegex();

    [GeneratedRegex(@"\.param\s+(\.\w+)")]
    private static partial Regex ParamRegex();
}
