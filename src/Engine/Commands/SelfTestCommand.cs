using System.CommandLine;
using System.Text.Json;
using RlMixup.Core;
using RlMixup.Core.Cpu;

using RlMixup.Engine.SelfTest;

namespace RlMixup.Engine.Commands;

/// <summary>
/// <c>selftest [--device cuda|cpu] [--no-tf32] [--seed N] [--filter PATTERN] [--json FILE]</c>: the
/// table of <see cref="BackendSelfTest"/>, each row printed (and flushed) as its check finishes,
/// and with <c>--json</c> each row appended to a JSON-lines file as it finishes, so a crash or a
/// timeout keeps every row before it. Exit 0 when every row passes, 1 when one fails, 3 when a
/// check left the device with a sticky error ("context lost after CHECK": the run stops there).
/// <c>--device cuda</c> (the default) without a usable CUDA backend prints one line naming what is
/// missing and exits 2. <c>--device cpu</c> runs the CPU backend against a second CPU backend: a
/// smoke check of the harness itself, which must pass exactly.
/// </summary>
public static class SelfTestCommand
{
    /// <summary>The exit code of a run stopped by a sticky device error.</summary>
    public const int ContextLostExitCode = 3;

    public static Command Create()
    {
        var cmd = new Command("selftest", "Check a backend against the CPU reference: every op, a PreActResNet18 training step, the RL-Mixup transform, determinism");
        var device = new Option<string>("--device") { Description = "cuda (the backend to check) or cpu (the CPU against itself: a smoke check of the harness)", DefaultValueFactory = _ => "cuda" };
        device.AcceptOnlyFromAmong("cuda", "cpu");
        var noTf32 = TrainCommands.NoTf32Option();
        var seed = new Option<ulong>("--seed") { Description = "seed of the random inputs (each check's own inputs depend on it and on the check alone)", DefaultValueFactory = _ => 0 };
        var filter = new Option<string?>("--filter") { Description = "run only the checks whose \"op shape\" contains one of these comma-separated terms (case-insensitive; '*' is a wildcard)" };
        var json = new Option<string?>("--json") { Description = "also write the rows as JSON lines to this file, each as its check finishes (a header line, one line per row, the cuDNN plans, a summary line)" };
        cmd.Options.Add(device);
        cmd.Options.Add(noTf32);
        cmd.Options.Add(seed);
        cmd.Options.Add(filter);
        cmd.Options.Add(json);
        cmd.SetAction(r =>
        {
            bool tf32 = !r.GetValue(noTf32);
            var cases = SelfTestCases.All();
            if (r.GetValue(filter) is { } pattern)
            {
                cases = [.. cases.Where(c => c.Matches(pattern))];
                if (cases.Count == 0) throw new CliException($"--filter {pattern}: no check matches (see the check and shape columns of a full run)");
            }
            string? jsonPath = r.GetValue(json);
            if (jsonPath != null) CheckWritable(jsonPath);
            IBackend candidate;
            if (r.GetValue(device) == "cpu") candidate = new CpuBackend();
            else if (!Backends.TryCreateCuda(tf32, out var cuda, out string reason))
                throw new CliException($"selftest: the CUDA backend is not available: {reason}; `selftest --device cpu` checks the harness on the CPU alone");
            else candidate = cuda!;
            using (candidate)
            using (var reference = new CpuBackend())
                return Execute(candidate, reference, candidate is CpuBackend ? false : tf32, r.GetValue(seed), Console.Out, jsonPath, cases);
        });
        return cmd;
    }

    private static void CheckWritable(string path)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir)) throw new CliException($"--json {path}: the folder {dir} does not exist");
    }

    /// <summary>
    /// Runs the checks, printing each row as it finishes (and appending it to the JSON-lines file);
    /// 0 when all pass, 1 when one fails, <see cref="ContextLostExitCode"/> when the device faulted.
    /// </summary>
    public static int Execute(IBackend candidate, IBackend reference, bool tf32, ulong seed, TextWriter log, string? jsonPath = null,
        IReadOnlyList<SelfTestCase>? cases = null)
    {
        cases ??= SelfTestCases.All();
        var table = SelfTestTable.For(log, cases);
        table.Header(candidate.Name, reference.Name, tf32, seed);
        using var lines = jsonPath == null ? null : OpenJsonLines(jsonPath);
        lines?.Header(candidate.Name, reference.Name, tf32, seed, cases.Count);
        var report = BackendSelfTest.Run(candidate, reference, tf32, seed, cases, row =>
        {
            table.Row(row);
            lines?.Row(row);
        });
        table.Summary(report);
        if (candidate is RlMixup.Core.Cuda.CudaBackend cuda && report.ContextLost == null)
        {
            var plans = cuda.ConvolutionPlans;
            PrintPlans(log, plans);
            lines?.Plans(plans);
        }
        if (lines != null)
        {
            lines.Summary(report);
            log.WriteLine($"selftest: rows written to {jsonPath} (JSON lines)");
        }
        return report.ContextLost != null ? ContextLostExitCode : report.Passed ? 0 : 1;
    }

    private static SelfTestJsonLines OpenJsonLines(string path)
    {
        try { return new SelfTestJsonLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--json {path}: {e.Message}");
        }
    }

    private static string ShortAlgo(string name) => name.Replace("CUDNN_CONVOLUTION_FWD_ALGO_", "").Replace("CUDNN_CONVOLUTION_BWD_DATA_ALGO_", "")
        .Replace("CUDNN_CONVOLUTION_BWD_FILTER_ALGO_", "") is var s && char.IsDigit(s[0]) ? "ALGO_" + s : s;

    /// <summary>The cuDNN plans the run made: per convolution shape and direction, the algorithm, the math type on the descriptor and the workspace.</summary>
    public static void PrintPlans(TextWriter w, IReadOnlyList<RlMixup.Core.Cuda.ConvPlanInfo> plans)
    {
        if (plans.Count == 0) return;
        w.WriteLine($"cuDNN plans ({plans.Count}): geometry, direction, TF32 → algorithm, math type on the descriptor, workspace (of the rows cuDNN listed)");
        int width = plans.Max(p => p.Geometry.Length);
        foreach (var p in plans.OrderBy(p => p.Geometry, StringComparer.Ordinal).ThenBy(p => p.Key.Direction).ThenBy(p => p.Key.Tf32))
            w.WriteLine($"  {p.Geometry.PadRight(width)}  {p.Key.Direction,-14} TF32 {(p.Key.Tf32 ? "on " : "off")} → " +
                $"{ShortAlgo(p.AlgoName),-22} {p.MathType.ToString().Replace("CUDNN_", ""),-15} {p.WorkspaceBytes,10} B  (of {p.Rows.Count})");
        w.Flush();
    }
}
