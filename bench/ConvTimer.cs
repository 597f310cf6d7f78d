using System.Diagnostics;
using RlMixup.Core;
using RlMixup.Core.Cpu;

namespace RlMixup.Bench;

/// <summary>
/// Median ms of forward, backward-data and backward-filter for every convolution shape of
/// PreActResNet18 (batch 100, 32×32) and of the agent (batch 100 for PPO, batch 1 for Act), the
/// twin of bench/reference/torch_conv.py: where the CPU step loses or wins, layer by layer.
/// Usage: dotnet run -c Release --project bench -- conv [--width 16] [--reps 7] [--threads N] [--compare-filter] [--no-winograd-valid]
/// (--compare-filter adds the backward-filter time of each route, forced in turn: im2col, Winograd, direct;
/// --no-winograd-valid sends the valid (pad 0) 3×3 convolutions, the agent's, through im2col).
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
        bool compareFilter = false, winogradValid = true;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--width": width = int.Parse(Next()); break;
                case "--reps": reps = int.Parse(Next()); break;
                case "--threads": threads = int.Parse(Next()); break;
                case "--compare-filter": compareFilter = true; break;
                case "--no-winograd-valid": winogradValid = false; break;
                default: Console.Error.WriteLine($"error: unknown option {args[i]}"); return 2;
            }
        }
        using var b = new CpuBackend(threads) { WinogradValid = winogradValid ? null : false };
        var rng = new Rng(1);
        Console.WriteLine($"{"conv",-8} {"fwd ms",8} {"bwd-data",8} {"bwd-filt",8}{(compareFilter ? $" {"im2col-f",8} {"winog-f",8} {"direct-f",8}" : "")}");
        foreach (var (name, n, c, h, o, k, st, pad) in Shapes(width))
        {
            var spec = new Conv2dSpec(st, pad);
            var x = Random(b, rng, new Shape(n, c, h, h));
            var wt = Random(b, rng, new Shape(o, c, k, k));
            var yShape = spec.OutputShape(x.Shape, wt.Shape);
            var y = b.Allocate(yShape);
            var dy = Random(b, rng, yShape);
            var dx = b.Allocate(x.Shape);
            var dw = b.Allocate(wt.Shape);
            double fwd = Median(reps, () => b.Conv2dForward(y, x, wt, spec));
            double bd = Median(reps, () => b.Conv2dBackwardData(dx, dy, wt, spec));
            double bf = Median(reps, () => b.Conv2dBackwardFilter(dw, x, dy, spec));
            string extra = "";
            if (compareFilter)
            {
                // Each route forced in turn: im2col, Winograd, direct (– where a route does not apply).
                b.DirectFilterGrad = false;
                b.WinogradFilterGrad = false;
                extra = $" {Median(reps, () => b.Conv2dBackwardFilter(dw, x, dy, spec)),8:F2}";
                b.WinogradFilterGrad = true;
                int calls = b.WinogradCalls;
                double winograd = Median(reps, () => b.Conv2dBackwardFilter(dw, x, dy, spec));
                extra += b.WinogradCalls > calls ? $" {winograd,8:F2}" : $" {"–",8}";
                b.WinogradFilterGrad = null;
                b.DirectFilterGrad = k == 3 && st == 1 && pad == 1 ? true : null;
                extra += b.DirectFilterGrad == true ? $" {Median(reps, () => b.Conv2dBackwardFilter(dw, x, dy, spec)),8:F2}" : $" {"–",8}";
                b.DirectFilterGrad = null;
            }
            Console.WriteLine($"{name,-8} {fwd,8:F2} {bd,8:F2} {bf,8:F2}{extra}");
            foreach (var t in new[] { x, wt, y, dy, dx, dw }) t.Dispose();
        }
        return 0;
    }

    private static Tensor Random(IBackend b, Rng rng, Shape s)
    {
        var t = b.Allocate(s);
        t.CopyFrom(Enumerable.Range(0, s.Size).Select(_ => (float)rng.Normal()).ToArray());
        return t;
    }

    private static double Median(int reps, Action body)
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
