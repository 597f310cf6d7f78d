using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace RlMixup.Bench;

/// <summary>
/// A throughput column: work per operation (flops, images, bytes) divided by the measured time.
/// <paramref name="workPerOp"/> returns null when a case has no meaningful figure.
/// </summary>
public sealed class RateColumn(string id, string name, string legend, Func<BenchmarkCase, double?> workPerOp, double unitsPerSecond, bool median = true) : IColumn
{
    /// <summary>GFLOP/s from a flop count per operation.</summary>
    public static RateColumn Gflops(Func<BenchmarkCase, double?> flops, bool median = true) =>
        new(median ? "GFLOPS-median" : "GFLOPS-mean", median ? "GFLOP/s (median)" : "GFLOP/s (mean)",
            $"Billions of useful floating-point operations per second, over the {(median ? "median" : "mean")} time", flops, 1e-9, median);

    /// <summary>GB/s (10⁹ bytes per second) from a count of bytes read plus written per operation.</summary>
    public static RateColumn GigabytesPerSecond(Func<BenchmarkCase, double?> bytes) =>
        new("GBps-median", "GB/s (median)", "Bytes read plus written, 10⁹ per second, over the median time", bytes, 1e-9);

    /// <summary>Images per second from a batch size per operation.</summary>
    public static RateColumn ImagesPerSecond(int batch) =>
        new("ImagesPerSecond", "images/s", "Images processed per second, over the median time", _ => batch, 1.0);

    public string Id => id;
    public string ColumnName => name;
    public string Legend => legend;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => median ? 1 : 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats == null || workPerOp(benchmarkCase) is not double work) return "NA";
        double seconds = (median ? stats.Median : stats.Mean) * 1e-9;
        return (work / seconds * unitsPerSecond).ToString("F1");
    }
}

/// <summary>
/// In-process, few iterations (3 warm-up, 7 measured): for operations of 10 ms to seconds, where a handful of samples gives
/// a stable median and the default job would take hours. In-process also runs where no SDK is
/// installed (a self-contained publish on the GPU machine).
/// </summary>
public class ShortInProcessConfig : ManualConfig
{
    public ShortInProcessConfig(params IColumn[] columns) : this(1, columns) { }

    /// <summary>
    /// As above with <paramref name="invocations"/> calls per iteration, for operations well under a
    /// millisecond, so that one iteration lasts long enough to time reliably (tens of ms).
    /// </summary>
    public ShortInProcessConfig(int invocations, params IColumn[] columns)
    {
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
            .WithWarmupCount(3).WithIterationCount(7).WithLaunchCount(1).WithInvocationCount(invocations).WithUnrollFactor(1));
        AddColumn(columns);
    }
}
