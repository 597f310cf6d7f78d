using System.Diagnostics;
using RlMixup.Core;
using RlMixup.Core.Cpu;

namespace RlMixup.Bench;

/// <summary>
/// Median ms of the memory-bound operations around PreActResNet18's convolutions, for every
/// batch-norm shape of the model (batch 100, 32×32): training batch norm forward and backward, the
/// ReLU that follows it, forward and backward, and the residual add. Where the step's time outside
/// the convolutions goes.
/// Usage: dotnet run -c Release --project bench -- norm [--width 16] [--reps 9] [--threads N]
/// </summary>
public static class NormTimer
{
    /// <summary>(name, channels, map side, how many batch norms of the model have this shape).</summary>
    public static IEnumerable<(string Name, int C, int H, int Count)> Shapes(int w)
    {
        // Each stage's first block normalises its input (previous width and map), the rest the stage's own.
        yield return ("l1", w, 32, 4);
        yield return ("l2.in", w, 32, 1);
        yield return ("l2", 2 * w, 16, 3);
        yield return ("l3.in", 2 * w, 16, 1);
        yield return ("l3", 4 * w, 8, 3);
        yield return ("l4.in", 4 * w, 8, 1);
        yield return ("l4", 8 * w, 4, 3);
    }

    public static int Run(string[] args)
    {
        int width = 16, reps = 9, threads = Environment.ProcessorCount;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--width": width = int.Parse(Next()); break;
                case "--reps": reps = int.Parse(Next()); break;
                case "--threads": threads = int.Parse(Next()); break;
                default: Console.Error.WriteLine($"error: unknown option {args[i]}"); return 2;
            }
        }
        using var b = new CpuBackend(threads);
        var rng = new Rng(1);
        Console.WriteLine($"{"shape",-7} {"count",5} {"bn-fwd",8} {"relu-fwd",8} {"add",8} {"relu-bwd",8} {"bn-bwd",8}  (ms per op)");
        var total = new double[5];
        foreach (var (name, c, h, count) in Shapes(width))
        {
            var s = new Shape(100, c, h, h);
            var x = ConvTimer.Random(b, rng, s); var dy = ConvTimer.Random(b, rng, s);
            var y = b.Allocate(s); var r = b.Allocate(s); var dx = b.Allocate(s); var sum = b.Allocate(s);
            var cs = new Shape(c);
            var gamma = ConvTimer.Random(b, rng, cs); var beta = ConvTimer.Random(b, rng, cs);
            var rm = b.Allocate(cs); var rv = b.Allocate(cs); b.Fill(rv, 1f);
            var sm = b.Allocate(cs); var si = b.Allocate(cs); var dg = b.Allocate(cs); var db = b.Allocate(cs);
            double[] t =
            [
                ConvTimer.Median(reps, () => b.BatchNormForwardTraining(y, x, gamma, beta, rm, rv, sm, si, 0.1f, 1e-5f, true)),
                ConvTimer.Median(reps, () => b.ReluForward(r, y)),
                ConvTimer.Median(reps, () => b.Add(sum, r, x)),
                ConvTimer.Median(reps, () => b.ReluBackward(dx, r, dy)),
                ConvTimer.Median(reps, () => b.BatchNormBackward(dy, dg, db, dx, x, gamma, sm, si, 1e-5f)),
            ];
            for (int k = 0; k < t.Length; k++) total[k] += count * t[k];
            Console.WriteLine($"{name,-7} {count,5} {t[0],8:F3} {t[1],8:F3} {t[2],8:F3} {t[3],8:F3} {t[4],8:F3}");
            foreach (var u in new[] { x, dy, y, r, dx, sum, gamma, beta, rm, rv, sm, si, dg, db }) u.Dispose();
        }
        Console.WriteLine($"{"model",-7} {16,5} {total[0],8:F2} {total[1],8:F2} {total[2],8:F2} {total[3],8:F2} {total[4],8:F2}  (sum over the model's batch norms; all: {total.Sum():F2} ms)");
        return 0;
    }
}
