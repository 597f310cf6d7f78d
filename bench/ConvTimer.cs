using System.Diagnostics;
using RlMixup.Core;
using RlMixup.Core.Cpu;

namespace RlMixup.Bench;

/// <summary>
/// Median ms of forward, backward-data and backward-filter for every convolution shape of
/// PreActResNet18 (batch 100, 32×32) and of the agent (batch 100 for PPO, batch 1 for Act), the
/// twin of bench/reference/torch_conv.py: where the CPU step loses or wins, layer by layer.
/// Usage: dotnet run -c Release --project bench -- conv [--width 16] [--reps 7] [--threads N] [--only l2.c1,l3] [--compare-filter] [--no-winograd-valid] [--winograd-tile 2|4] [--compare-tile] [--lane-tiles N]
/// (--only keeps the convolutions whose names start with one of the given prefixes;
/// --compare-filter adds the backward-filter time of each route, forced in turn: im2col, Winograd, direct;
/// --no-winograd-valid sends the valid (pad 0) 3×3 convolutions, the agent's, through im2col;
/// --winograd-tile forces F(2×2, 3×3) or F(4×4, 3×3) on every Winograd convolution; --compare-tile
/// times each Winograd convolution with both tiles, alternating run by run, and prints their ratio;
/// --lane-tiles sets the widest map, in F(4×4) tiles, that runs 8 images per vector).
/// </summary>
public static class ConvTimer
{
    public static IEnumerable<(string Name, int N, int C, int H, int O, int K, int Stride, int Pad)> Shapes(int w)
    {
        yield return ("conv1", 100, 3, 32, w, 3, 1, 1);
        int c = w, h = 32;
        int[] outs = [w, 2 * w, 4 * w, 8 * w];
        for (int i = 0; i < 4; i++)
        {
            int o = outs[i], st = i == 0 ? 1 : 2, ho = h / st;
            yield return ($"l{i + 1}.c1", 100, c, h, o, 3, st, 1);
            yield return ($"l{i + 1}.x3", 100, o, ho, o, 3, 1, 1);
            if (st != 1 || c != o) yield return ($"l{i + 1}.sc", 100, c, h, o, 1, st, 0);
            (c, h) = (o, ho);
        }
        yield return ("ag.1", 100, 100, 16, 200, 3, 1, 0);
        yield return ("ag.2", 100, 200, 14, 300, 3, 1, 0);
        yield return ("ag.3", 100, 300, 12, 400, 3, 1, 0);
        yield return ("act.1", 1, 100, 16, 200, 3, 1, 0);
    }

    public static int Run(string[] args)
    {
        int width = 16, reps = 7, threads = Environment.ProcessorCount;
        bool compareFilter = false, winogradValid = true, compareTile = false;
        int? tile = null, laneTiles = null;
        string[] only = [""];
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--width": width = int.Parse(Next()); break;
                case "--reps": reps = int.Parse(Next()); break;
                case "--threads": threads = int.Parse(Next()); break;
                case "--only": only = Next().Split(','); break;
                case "--lane-tiles": laneTiles = int.Parse(Next()); break;
                case "--compare-filter": compareFilter = true; break;
                case "--compare-tile": compareTile = true; break;
                case "--no-winograd-valid": winogradValid = false; break;
                case "--winograd-tile": tile = int.Parse(Next()); if (tile is not (2 or 4)) throw new ArgumentException("--winograd-tile takes 2 or 4"); break;
                default: Console.Error.WriteLine($"error: unknown option {args[i]}"); return 2;
            }
        }
        using var b = new CpuBackend(threads) { WinogradValid = winogradValid ? null : false, WinogradTile = tile };
        if (laneTiles is { } lt) b.WinogradLanesMaxTileColumns = lt;
        var rng = new Rng(1);
        var shapes = Shapes(width).Where(s => only.Any(p => s.Name.StartsWith(p, StringComparison.Ordinal))).ToList();
        if (compareTile) return CompareTiles(b, rng, shapes, reps);
        Console.WriteLine($"{"conv",-8} {"fwd ms",8} {"bwd-data",8} {"bwd-filt",8}{(compareFilter ? $" {"im2col-f",8} {"winog-f",8} {"direct-f",8}" : "")}");
        foreach (var (name, n, c, h, o, k, st, pad) in shapes)
        {
            using var t = new Operands(b, rng, n, c, h, o, k, st, pad);
            double fwd = Median(reps, t.Forward);
            double bd = Median(reps, t.BackwardData);
            double bf = Median(reps, t.BackwardFilter);
            string extra = "";
            if (compareFilter)
            {
                // Each route forced in turn: im2col, Winograd, direct (– where a route does not apply).
                b.DirectFilterGrad = false;
                b.WinogradFilterGrad = false;
                extra = $" {Median(reps, t.BackwardFilter),8:F2}";
                b.WinogradFilterGrad = true;
                int calls = b.WinogradCalls;
                double winograd = Median(reps, t.BackwardFilter);
                extra += b.WinogradCalls > calls ? $" {winograd,8:F2}" : $" {"–",8}";
                b.WinogradFilterGrad = null;
                b.DirectFilterGrad = k == 3 && st == 1 && pad == 1 ? true : null;
                extra += b.DirectFilterGrad == true ? $" {Median(reps, t.BackwardFilter),8:F2}" : $" {"–",8}";
                b.DirectFilterGrad = null;
            }
            Console.WriteLine($"{name,-8} {fwd,8:F2} {bd,8:F2} {bf,8:F2}{extra}");
        }
        return 0;
    }

    /// <summary>F(2×2) against F(4×4) on every Winograd convolution, alternating tile by tile within each rep.</summary>
    private static int CompareTiles(CpuBackend b, Rng rng, IEnumerable<(string Name, int N, int C, int H, int O, int K, int Stride, int Pad)> shapes, int reps)
    {
        Console.WriteLine($"{"conv",-8} {"F2 fwd",8} {"F4 fwd",8} {"F2 data",8} {"F4 data",8} {"F2 filt",8} {"F4 filt",8} {"F2/F4",6}  (ms, median of {reps} alternating)");
        foreach (var (name, n, c, h, o, k, st, pad) in shapes)
        {
            if (k != 3 || st != 1 || n < 2) continue;
            using var t = new Operands(b, rng, n, c, h, o, k, st, pad);
            Action[] ops = [t.Forward, t.BackwardData, t.BackwardFilter];
            var ms = new double[6][];
            for (int j = 0; j < 6; j++) ms[j] = new double[reps];
            for (int r = -1; r < reps; r++)
                for (int op = 0; op < 3; op++)
                    for (int tile = 0; tile < 2; tile++)
                    {
                        b.WinogradTile = tile == 0 ? 2 : 4;
                        long t0 = Stopwatch.GetTimestamp();
                        ops[op]();
                        if (r >= 0) ms[2 * op + tile][r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    }
            b.WinogradTile = null;
            var med = ms.Select(a => { Array.Sort(a); return a[reps / 2]; }).ToArray();
            double ratio = (med[0] + med[2] + med[4]) / (med[1] + med[3] + med[5]);
            Console.WriteLine($"{name,-8} {med[0],8:F2} {med[1],8:F2} {med[2],8:F2} {med[3],8:F2} {med[4],8:F2} {med[5],8:F2} {ratio,5:F2}x");
        }
        return 0;
    }

    /// <summary>Random input, weight and output gradient of one convolution shape, with its outputs; the three passes as actions.</summary>
    private sealed class Operands : IDisposable
    {
        private readonly Tensor _x, _w, _y, _dy, _dx, _dw;

        public Operands(CpuBackend b, Rng rng, int n, int c, int h, int o, int k, int stride, int pad)
        {
            var spec = new Conv2dSpec(stride, pad);
            _x = Random(b, rng, new Shape(n, c, h, h));
            _w = Random(b, rng, new Shape(o, c, k, k));
            var yShape = spec.OutputShape(_x.Shape, _w.Shape);
            _y = b.Allocate(yShape);
            _dy = Random(b, rng, yShape);
            _dx = b.Allocate(_x.Shape);
            _dw = b.Allocate(_w.Shape);
            Forward = () => b.Conv2dForward(_y, _x, _w, spec);
            BackwardData = () => b.Conv2dBackwardData(_dx, _dy, _w, spec);
            BackwardFilter = () => b.Conv2dBackwardFilter(_dw, _x, _dy, spec);
        }

        public Action Forward { get; }
        public Action BackwardData { get; }
        public Action BackwardFilter { get; }

        public void Dispose()
        {
            foreach (var t in new[] { _x, _w, _y, _dy, _dx, _dw }) t.Dispose();
        }
    }

    internal static Tensor Random(IBackend b, Rng rng, Shape s)
    {
        var t = b.Allocate(s);
        t.CopyFrom(Enumerable.Range(0, s.Size).Select(_ => (float)rng.Normal()).ToArray());
        return t;
    }

    internal static double Median(int reps, Action body)
    {
        body();
        var ms = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            body();
            ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(ms);
        return ms[reps / 2];
    }
}
