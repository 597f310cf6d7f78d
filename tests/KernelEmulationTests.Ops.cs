using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;

namespace RlMixup.Tests;

/// <summary>
/// elementwise.cu, bias.cu and pool.cu on the software device, against the CPU backend on random
/// non-zero inputs, for block sizes 32, 128 and 1024 and grids of one block, of seven blocks and the
/// one KernelCatalog gives the GPU backend; the sizes are not multiples of the block.
///
/// Exact (the kernels do the twin's float operations in its order): every elementwise op but
/// tanh_forward, add_channel_bias, add_row_bias, row_bias_backward and both pooling kernels.
/// Tolerances, |got − ref| ≤ atol + rtol·|ref|:
///  - tanh_forward: 1e-7 + 1e-6·|ref|. Emulated, exp is exact and the error is that of the formula
///    1 − 2/(e^{2|x|}+1) (a few ulp near |x| = 0.25); the device's ex2.approx adds about 2 ulp of
///    e^{2|x|}, still well inside this bound.
///  - channel_bias_backward: 1e-5 + 1e-6·|ref|. The kernel sums in double; the twin sums each image's
///    plane in float vectors before adding it in double, which rounds at about ulp(Σ|dy| of a plane)
///    per plane (|dy| ≤ 2 here), and the totals cancel to well below the terms.
/// </summary>
public partial class KernelEmulationTests
{
    static readonly int[] Blocks = [32, 128, 1024];

    /// <summary>grid: 1, 7, or the catalog's (0).</summary>
    static IEnumerable<object[]> Geometries(params int[] sizes)
    {
        foreach (int n in sizes)
            foreach (int block in Blocks)
                foreach (int grid in new[] { 1, 7, 0 })
                    yield return [n, block, grid];
    }

    static IEnumerable<object[]> ElementwiseCases() => Geometries(1, 1000, 5003);

    static int Grid(int grid, Func<int> catalog) => grid > 0 ? grid : catalog();

    static Tensor Host(CpuBackend cpu, float[] data, params int[] shape)
    {
        var t = cpu.Allocate(new Shape(shape));
        t.CopyFrom(data);
        return t;
    }

    /// <summary>Random values in ±scale, never exactly zero (half of them negative).</summary>
    static float[] NonZero(Random rng, int n, float scale)
    {
        var a = RandomValues(rng, n, scale);
        for (int i = 0; i < n; i++) if (a[i] == 0) a[i] = scale / 3;
        return a;
    }

    // ---- elementwise.cu

    [TestCaseSource(nameof(ElementwiseCases))]
    public void ElementwiseKernelsMatchCpu(int n, int block, int grid)
    {
        using var cpu = new CpuBackend(1);
        var rng = new Random(n * 7 + block + grid);
        grid = Grid(grid, () => RlMixup.Core.Cuda.KernelCatalog.Elementwise("elementwise", n, block).GridX);
        var a = NonZero(rng, n, 3);
        var b = NonZero(rng, n, 3);
        var y0 = NonZero(rng, n, 3);
        float alpha = 0.7310586f;

        var got = Fill(n);
        Emu.Fill(got, -2.5f, block, grid);
        Assert.That(got, Has.All.EqualTo(-2.5f), "fill");

        var tb = Host(cpu, b, n);
        var ta = Host(cpu, a, n);
        var ty = cpu.Allocate(new Shape(n));
        cpu.Add(ty, ta, tb);
        got = Fill(n);
        Emu.Add(got, a, b, block, grid);
        Exact("add", got, ty.ToArray());

        ty.CopyFrom(y0);
        cpu.Axpy(ty, alpha, ta);
        got = (float[])y0.Clone();
        Emu.Axpy(got, alpha, a, block, grid);
        Exact("axpy", got, ty.ToArray());

        ty.CopyFrom(y0);
        cpu.Scale(ty, alpha);
        got = (float[])y0.Clone();
        Emu.Scale(got, alpha, block, grid);
        Exact("scale", got, ty.ToArray());

        cpu.ReluForward(ty, ta);
        var relu = ty.ToArray();
        got = Fill(n);
        Emu.ReluForward(got, a, block, grid);
        Exact("relu forward", got, relu);

        var tdx = cpu.Allocate(new Shape(n));
        cpu.ReluBackward(tdx, ty, tb);
        got = Fill(n);
        Emu.ReluBackward(got, relu, b, block, grid);
        Exact("relu backward", got, tdx.ToArray());

        cpu.TanhForward(ty, ta);
        var tanh = ty.ToArray();
        got = Fill(n);
        Emu.TanhForward(got, a, block, grid);
        Compare("tanh forward", got, tanh, atol: 1e-7, rtol: 1e-6);

        cpu.TanhBackward(tdx, ty, tb);
        got = Fill(n);
        Emu.TanhBackward(got, tanh, b, block, grid);
        Exact("tanh backward", got, tdx.ToArray());
    }

    [Test]
    public void TanhForwardCoversTheWholeRange()
    {
        // Both branches (|x| below and above 0.25), the switch point, tiny values and saturation.
        float[] x = [0f, 1e-30f, -1e-7f, 1e-3f, -0.1f, 0.2499999f, 0.25f, -0.25f, 0.3f, 0.5f, -1f, 2f, 5f, -9f, 10f, 20f, -45f, 100f, float.MaxValue, -float.MaxValue];
        var want = x.Select(MathF.Tanh).ToArray();
        var got = Fill(x.Length);
        Emu.TanhForward(got, x, 32);
        Compare("tanh", got, want, atol: 1e-7, rtol: 1e-6);
        Assert.That(got[0], Is.EqualTo(0f));
        Assert.That(got[^2], Is.EqualTo(1f));
        Assert.That(got[^1], Is.EqualTo(-1f));
    }

    // ---- bias.cu

    static readonly object[] ChannelCases =
    [
        // N, C, H·W, block, grid (−1: the catalog's)
        new object[] { 1, 1, 1, 32, 0 },
        new object[] { 3, 5, 49, 32, 1 },
        new object[] { 3, 5, 49, 128, -1 },
        new object[] { 7, 16, 64, 1024, 0 },
        new object[] { 7, 16, 64, 128, 3 },
        new object[] { 10, 64, 16, 1024, -1 },
        new object[] { 2, 3, 1031, 32, 0 },
    ];

    [TestCaseSource(nameof(ChannelCases))]
    public void ChannelBiasMatchesCpu(int n, int c, int hw, int block, int grid)
    {
        using var cpu = new CpuBackend(1);
        var rng = new Random(n * 31 + c * 7 + hw + block);
        var y0 = NonZero(rng, n * c * hw, 2);
        var bias = NonZero(rng, c, 1);
        var dbias0 = NonZero(rng, c, 1); // accumulated into

        int fwdGrid = Grid(grid, () => RlMixup.Core.Cuda.KernelCatalog.AddChannelBias(n, c, hw, block).GridX);
        var ty = Host(cpu, y0, n, c, 1, hw);
        cpu.AddChannelBias(ty, Host(cpu, bias, c));
        var got = (float[])y0.Clone();
        Emu.AddChannelBias(got, bias, n, c, hw, block, fwdGrid);
        Exact("add_channel_bias", got, ty.ToArray());

        int bwdGrid = Grid(grid, () => RlMixup.Core.Cuda.KernelCatalog.ChannelBiasBackward(n, c, hw, block).GridX);
        var tdb = Host(cpu, dbias0, c);
        cpu.ChannelBiasBackward(tdb, Host(cpu, y0, n, c, 1, hw));
        got = (float[])dbias0.Clone();
        Emu.ChannelBiasBackward(got, y0, n, c, hw, block, bwdGrid);
        Compare("channel_bias_backward", got, tdb.ToArray(), atol: 1e-5, rtol: 1e-6);
    }

    static readonly object[] RowCases =
    [
        // N, out, block, grid (−1: the catalog's)
        new object[] { 1, 1, 32, 0 },
        new object[] { 64, 10, 32, 1 },
        new object[] { 64, 10, 128, -1 },
        new object[] { 100, 100, 1024, 0 },
        new object[] { 33, 257, 32, -1 },
        new object[] { 33, 257, 128, 1 },
        new object[] { 5, 1500, 1024, 0 },
    ];

    [TestCaseSource(nameof(RowCases))]
    public void RowBiasMatchesLinearBias(int n, int outs, int block, int grid)
    {
        using var cpu = new CpuBackend(1);
        var rng = new Random(n * 13 + outs + block);
        const int fin = 3;
        var x = NonZero(rng, n * fin, 1);
        var w = NonZero(rng, outs * fin, 1);
        var b = NonZero(rng, outs, 1);
        var dy = NonZero(rng, n * outs, 1);
        var db0 = NonZero(rng, outs, 1);

        // The bias part of LinearForward: y = x·wᵀ (no bias) then the row-bias kernel, against y with the bias.
        var tx = Host(cpu, x, n, fin); var tw = Host(cpu, w, outs, fin);
        var noBias = cpu.Allocate(new Shape(n, outs));
        var withBias = cpu.Allocate(new Shape(n, outs));
        cpu.LinearForward(noBias, tx, tw, null);
        cpu.LinearForward(withBias, tx, tw, Host(cpu, b, outs));
        var got = noBias.ToArray();
        Emu.AddRowBias(got, b, n, outs, block, Grid(grid, () => RlMixup.Core.Cuda.KernelCatalog.AddRowBias(n, outs, block).GridX));
        Exact("add_row_bias", got, withBias.ToArray());

        // The bias part of LinearBackward: db += Σ_n dy.
        var tdb = Host(cpu, db0, outs);
        cpu.LinearBackward(null, null, tdb, Host(cpu, dy, n, outs), tx, tw);
        got = (float[])db0.Clone();
        Emu.RowBiasBackward(got, dy, n, outs, block, Grid(grid, () => RlMixup.Core.Cuda.KernelCatalog.RowBiasBackward(n, outs, block).GridX));
        Exact("row_bias_backward", got, tdb.ToArray());
    }

    // ---- pool.cu

    static readonly object[] PoolCases =
    [
        // N, C, H, W, block, grid (−1: the catalog's)
        new object[] { 1, 1, 1, 1, 32, 0 },
        new object[] { 3, 7, 4, 4, 32, 1 },
        new object[] { 3, 7, 4, 4, 128, -1 },
        new object[] { 10, 64, 4, 4, 1024, 0 },
        new object[] { 10, 64, 4, 4, 128, -1 },
        new object[] { 2, 5, 7, 9, 32, -1 },
        new object[] { 2, 5, 7, 9, 1024, 1 },
    ];

    [TestCaseSource(nameof(PoolCases))]
    public void GlobalAvgPoolMatchesCpuExactly(int n, int c, int h, int w, int block, int grid)
    {
        using var cpu = new CpuBackend(1);
        var rng = new Random(n * 5 + c + h * w + block);
        int rows = n * c, hw = h * w;
        var x = NonZero(rng, rows * hw, 3);
        var dy = NonZero(rng, rows, 3);

        var ty = cpu.Allocate(new Shape(n, c));
        cpu.GlobalAvgPoolForward(ty, Host(cpu, x, n, c, h, w));
        var got = Fill(rows);
        Emu.GlobalAvgPoolForward(got, x, rows, hw, block, Grid(grid, () => RlMixup.Core.Cuda.KernelCatalog.GlobalAvgPoolForward(rows, hw, block).GridX));
        Exact("pool forward", got, ty.ToArray());

        var tdx = cpu.Allocate(new Shape(n, c, h, w));
        cpu.GlobalAvgPoolBackward(tdx, Host(cpu, dy, n, c));
        got = Fill(rows * hw);
        Emu.GlobalAvgPoolBackward(got, dy, rows, hw, block, Grid(grid, () => RlMixup.Core.Cuda.KernelCatalog.GlobalAvgPoolBackward(rows, hw, block).GridX));
        Exact("pool backward", got, tdx.ToArray());
    }
}
