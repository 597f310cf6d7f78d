using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using RlMixup.Core.Cpu;

namespace RlMixup.Bench;

/// <summary>One GEMM problem: C (m×n) = op(A)·op(B) + beta·C on the given number of threads.</summary>
public sealed record GemmCase(string Name, bool TransA, bool TransB, int M, int N, int K, float Beta, int Threads = 1)
{
    public double Flops => 2.0 * M * N * K;
    // BenchmarkDotNet prints parameters with ToString: keep it short and unique.
    public override string ToString() => Name;
}

/// <summary>
/// Gemm.Sgemm at the PreActResNet18 im2col shapes (per image, CIFAR 32×32), plus 1024³ on one
/// and two threads, and the same problems through OpenBLAS when libopenblas.so.0 is installed
/// (Debian: libopenblas0-pthread), as an anchor. Run with
///   dotnet run -c Release -- --filter '*Gemm*' --job short
/// The GFLOP/s columns divide 2·m·n·k by the mean and the median time.
/// </summary>
[Config(typeof(GemmConfig))]
public unsafe class GemmBenchmarks
{
    public static IEnumerable<GemmCase> Cases()
    {
        // Width 64 (channels 64/128/256/512 at HW 1024/256/64/16), then width 16 (channels / 4).
        foreach (int w in new[] { 64, 16 })
        {
            int[] ch = [w, 2 * w, 4 * w, 8 * w];
            int[] hw = [1024, 256, 64, 16];
            yield return new($"w{w} fwd stem", false, false, w, 1024, 27, 0f);
            for (int s = 0; s < 4; s++)
                yield return new($"w{w} fwd L{s + 1}", false, false, ch[s], hw[s], ch[s] * 9, 0f);
            if (w == 64)
                for (int s = 1; s < 4; s++)   // 1×1 stride-2 shortcuts
                    yield return new($"w{w} fwd 1x1 L{s + 1}", false, false, ch[s], hw[s], ch[s - 1], 0f);
            for (int s = 0; s < 4; s++)       // dcol (9Cin × HW) = Wᵀ · dy
                yield return new($"w{w} bwdD L{s + 1}", true, false, ch[s] * 9, hw[s], ch[s], 0f);
            for (int s = 0; s < 4; s++)       // dW (Cout × 9Cin) += dy · colᵀ
                yield return new($"w{w} bwdF L{s + 1}", false, true, ch[s], ch[s] * 9, hw[s], 1f);
        }
        yield return new("linear 100x512x10", false, true, 100, 10, 512, 0f);
        yield return new("1024^3 t1", false, false, 1024, 1024, 1024, 0f, 1);
        yield return new("1024^3 t2", false, false, 1024, 1024, 1024, 0f, 2);
    }

    [ParamsSource(nameof(Cases))]
    public GemmCase Case { get; set; } = null!;

    /// <summary>The micro-kernel: both are measured side by side where the CPU has AVX-512.</summary>
    [ParamsSource(nameof(Kernels))]
    public GemmIsa Isa { get; set; }

    public static IEnumerable<GemmIsa> Kernels() =>
        new[] { GemmIsa.Avx2, GemmIsa.Avx512 }.Where(k => k <= Gemm.Isa);

    float* a, b, c;
    int lda, ldb, ldc;

    [GlobalSetup]
    public void Setup()
    {
        var (m, n, k) = (Case.M, Case.N, Case.K);
        lda = Case.TransA ? m : k; ldb = Case.TransB ? k : n; ldc = n;
        a = Alloc((long)m * k); b = Alloc((long)k * n); c = Alloc((long)m * n);
        var rng = new Random(42);
        for (long i = 0; i < (long)m * k; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        for (long i = 0; i < (long)k * n; i++) b[i] = (float)(rng.NextDouble() * 2 - 1);

        Gemm.Sgemm(Isa, Case.TransA, Case.TransB, m, n, k, 1f, a, lda, b, ldb, 0f, c, ldc, Case.Threads);
        Validate("Sgemm");
        if (OpenBlas.Available && Isa == Gemm.Isa)
        {
            OpenBlas.SetThreads(Case.Threads);
            new Span<float>(c, m * n).Clear();
            OpenBlasRun(0f);
            Validate("OpenBLAS");
        }
    }

    /// <summary>Checks 2000 random entries of C = op(A)·op(B) against a float64 dot product.</summary>
    void Validate(string who)
    {
        var rng = new Random(7);
        for (int t = 0; t < 2000; t++)
        {
            int i = rng.Next(Case.M), j = rng.Next(Case.N);
            double s = 0, mag = 0;
            for (int p = 0; p < Case.K; p++)
            {
                double x = Case.TransA ? a[(long)p * lda + i] : a[(long)i * lda + p];
                double y = Case.TransB ? b[(long)j * ldb + p] : b[(long)p * ldb + j];
                s += x * y; mag += Math.Abs(x * y);
            }
            double got = c[(long)i * ldc + j];
            if (Math.Abs(got - s) > 1e-5 * mag + 1e-30)
                throw new InvalidOperationException($"{who} {Case}: C[{i},{j}] = {got}, want {s}");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(a); NativeMemory.AlignedFree(b); NativeMemory.AlignedFree(c);
    }

    static float* Alloc(long floats) => (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, floats) * sizeof(float), 64);

    [Benchmark(Baseline = true)]
    public void Sgemm() =>
        Gemm.Sgemm(Isa, Case.TransA, Case.TransB, Case.M, Case.N, Case.K, 1f, a, lda, b, ldb, Case.Beta, c, ldc, Case.Threads);

    /// <summary>Only run when libopenblas.so.0 loads (see GemmConfig's filter).</summary>
    [Benchmark]
    public void OpenBlasSgemm() => OpenBlasRun(Case.Beta);

    void OpenBlasRun(float beta) =>
        OpenBlas.cblas_sgemm(OpenBlas.RowMajor, Case.TransA ? OpenBlas.Trans : OpenBlas.NoTrans,
            Case.TransB ? OpenBlas.Trans : OpenBlas.NoTrans, Case.M, Case.N, Case.K, 1f, a, lda, b, ldb, beta, c, ldc);
}

public sealed class GemmConfig : ManualConfig
{
    /// <summary>2·m·n·k of the case.</summary>
    private static double? Flops(BenchmarkCase c) => c.Parameters["Case"] is GemmCase g ? g.Flops : null;

    public GemmConfig()
    {
        AddColumn(RateColumn.Gflops(Flops, median: false), RateColumn.Gflops(Flops, median: true));
        // Leave the OpenBLAS benchmark out entirely when the library is not installed, and run it
        // once per case (with the engine's own kernel), not once per kernel.
        AddFilter(new SimpleFilter(bc => bc.Descriptor.WorkloadMethod.Name != nameof(GemmBenchmarks.OpenBlasSgemm)
            || (OpenBlas.Available && bc.Parameters["Isa"] is GemmIsa isa && isa == Gemm.Isa)));
        WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared,
            BenchmarkDotNet.Order.MethodOrderPolicy.Declared));
    }
}

/// <summary>Optional OpenBLAS binding; never required.</summary>
static unsafe partial class OpenBlas
{
    const string Lib = "libopenblas.so.0";
    internal const int RowMajor = 101, NoTrans = 111, Trans = 112;

    internal static readonly bool Available = NativeLibrary.TryLoad(Lib, out _);

    [LibraryImport(Lib)]
    internal static partial void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
        float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Lib)]
    private static partial void openblas_set_num_threads(int n);

    internal static void SetThreads(int n) { if (Available) openblas_set_num_threads(n); }
}
