using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlMixup.Bench;

/// <summary>
/// This CPU's measured FMA peak: independent chains of fused multiply-adds held in registers, on
/// 256-bit and (where the CPU has it) 512-bit vectors, on one thread and on every thread at once.
/// It is the ceiling the GFLOP/s of docs/performance.md are divided by.
/// Usage: dotnet run -c Release --project bench -- peak [--seconds 1] [--threads N] [--rounds 5]
/// </summary>
public static class PeakTimer
{
    public static int Run(string[] args)
    {
        double seconds = 1; int threads = Environment.ProcessorCount, rounds = 5;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(Next()); break;
                case "--rounds": rounds = int.Parse(Next()); break;
                default: Console.Error.WriteLine($"error: unknown option {args[i]}"); return 2;
            }
        }
        Console.WriteLine($"FMA peak, median of {rounds} rounds of {seconds} s; {Environment.ProcessorCount} logical CPUs");
        Console.WriteLine($"{"vector",-8} {"threads",7} {"GFLOP/s",9} {"per thread",10}");
        var widths = new List<(string Name, Func<long, float> Body, int Lanes)> { ("256-bit", Chains256, 8) };
        if (Avx512F.IsSupported) widths.Add(("512-bit", Chains512, 16));
        foreach (var (name, body, lanes) in widths)
            foreach (int t in threads > 1 ? new[] { 1, threads } : new[] { 1 })
            {
                var rates = new double[rounds];
                for (int r = 0; r < rounds; r++) rates[r] = Measure(body, lanes, t, seconds);
                Array.Sort(rates);
                double g = rates[rounds / 2];
                Console.WriteLine($"{name,-8} {t,7} {g,9:F1} {g / t,10:F1}");
            }
        return 0;
    }

    const int Chains = 12;           // independent accumulators: latency 4 × 2 pipes, with room

    static double Measure(Func<long, float> body, int lanes, int threads, double seconds)
    {
        long iters = 1 << 20;
        while (true)   // calibrate on one thread to about a tenth of the time
        {
            var sw = Stopwatch.StartNew();
            body(iters);
            if (sw.Elapsed.TotalSeconds > seconds / 10) { iters = (long)(iters * seconds / sw.Elapsed.TotalSeconds); break; }
            iters *= 2;
        }
        var start = Stopwatch.StartNew();
        var sink = new float[threads];
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => sink[t] = body(iters));
        double s = start.Elapsed.TotalSeconds;
        return 2.0 * Chains * lanes * iters * threads / s / 1e9;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Chains256(long iters)
    {
        Vector256<float> m = Vector256.Create(0.999999f), a = Vector256.Create(1e-7f);
        Vector256<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (long i = 0; i < iters; i++)
        {
            c0 = Fma.MultiplyAdd(c0, m, a); c1 = Fma.MultiplyAdd(c1, m, a); c2 = Fma.MultiplyAdd(c2, m, a);
            c3 = Fma.MultiplyAdd(c3, m, a); c4 = Fma.MultiplyAdd(c4, m, a); c5 = Fma.MultiplyAdd(c5, m, a);
            c6 = Fma.MultiplyAdd(c6, m, a); c7 = Fma.MultiplyAdd(c7, m, a); c8 = Fma.MultiplyAdd(c8, m, a);
            c9 = Fma.MultiplyAdd(c9, m, a); c10 = Fma.MultiplyAdd(c10, m, a); c11 = Fma.MultiplyAdd(c11, m, a);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Chains512(long iters)
    {
        Vector512<float> m = Vector512.Create(0.999999f), a = Vector512.Create(1e-7f);
        Vector512<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (long i = 0; i < iters; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(c0, m, a); c1 = Avx512F.FusedMultiplyAdd(c1, m, a); c2 = Avx512F.FusedMultiplyAdd(c2, m, a);
            c3 = Avx512F.FusedMultiplyAdd(c3, m, a); c4 = Avx512F.FusedMultiplyAdd(c4, m, a); c5 = Avx512F.FusedMultiplyAdd(c5, m, a);
            c6 = Avx512F.FusedMultiplyAdd(c6, m, a); c7 = Avx512F.FusedMultiplyAdd(c7, m, a); c8 = Avx512F.FusedMultiplyAdd(c8, m, a);
            c9 = Avx512F.FusedMultiplyAdd(c9, m, a); c10 = Avx512F.FusedMultiplyAdd(c10, m, a); c11 = Avx512F.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}
