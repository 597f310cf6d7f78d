using System.Diagnostics;
using RlMixup.Core.Cpu;

namespace RlMixup.Bench;

/// <summary>
/// Median ms and GFLOP/s of single GEMM shapes, C (m×n) = op(A)·op(B) with k the shared dimension:
/// a quick look at one product without BenchmarkDotNet's minutes (GemmBenchmarks is the careful one).
/// Usage: dotnet run -c Release --project bench -- gemm [--threads 1] [--reps 7] [--isa avx2|avx512] M,N,K[,tA,tB] ...
/// (tA, tB: t for transposed, n for not; default n,n). Example, the width-64 stride-2 convolution of
/// layer 4 (forward, backward-data, backward-filter): 512,400,2304 2304,400,512,t,n 512,2304,400,n,t
/// </summary>
public static unsafe class GemmTimer
{
    public static int Run(string[] args)
    {
        int threads = 1, reps = 7;
        GemmIsa isa = Gemm.Isa;
        var shapes = new List<(int M, int N, int K, bool TA, bool TB)>();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--threads": threads = int.Parse(Next()); break;
                case "--reps": reps = int.Parse(Next()); break;
                case "--isa": isa = Next() switch { "avx2" => GemmIsa.Avx2, "avx512" => GemmIsa.Avx512, var s => throw new ArgumentException($"unknown --isa {s}") }; break;
                default:
                    var p = args[i].Split(',');
                    if (p.Length is not (3 or 5)) { Console.Error.WriteLine($"error: a shape is M,N,K or M,N,K,tA,tB, got {args[i]}"); return 2; }
                    shapes.Add((int.Parse(p[0]), int.Parse(p[1]), int.Parse(p[2]), p.Length == 5 && p[3] == "t", p.Length == 5 && p[4] == "t"));
                    break;
            }
        }
        if (isa > Gemm.Isa) { Console.Error.WriteLine($"error: this CPU has no {isa} kernel"); return 2; }
        Console.WriteLine($"{isa} kernel, {threads} thread(s), median of {reps}");
        foreach (var (m, n, k, ta, tb) in shapes)
        {
            var a = new float[m * k];
            var b = new float[k * n];
            var c = new float[m * n];
            var rng = new Random(1);
            for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble();
            for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble();
            var ms = new double[reps];
            fixed (float* pa = a, pb = b, pc = c)
                for (int r = -1; r < reps; r++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    Gemm.Sgemm(isa, ta, tb, m, n, k, 1f, pa, ta ? m : k, pb, tb ? k : n, 0f, pc, n, threads);
                    if (r >= 0) ms[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
            Array.Sort(ms);
            double med = ms[reps / 2];
            Console.WriteLine($"{$"{m}×{n}×{k}{(ta ? " Aᵀ" : "")}{(tb ? " Bᵀ" : "")}",-22} {med,8:F3} ms {2.0 * m * n * k / med / 1e6,7:F1} GFLOP/s");
        }
        return 0;
    }
}
