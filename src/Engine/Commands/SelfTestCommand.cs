using System.CommandLine;
using System.Text.Json;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.IO;

using RlMixup.Engine.SelfTest;

namespace RlMixup.Engine.Commands;

/// <summary>
/// <c>selftest [--device cuda|cpu] [--no-tf32] [--seed N] [--json FILE]</c>: the table of
/// <see cref="BackendSelfTest"/>, exit 0 when every row passes and 1 otherwise. <c>--device cuda</c>
/// (the default) without a usable GPU prints one line and exits 2. <c>--device cpu</c> runs the CPU
/// backend against a second CPU backend: a smoke check of the harness itself, which must pass exactly.
/// </summary>
public static class SelfTestCommand
{
    public static Command Create()
    {
        var cmd = new Command("selftest", "Check a backend against the CPU reference: every op, a PreActResNet18 training step, the RL-Mixup transform, determinism");
        var device = new Option<string>("--device") { Description = "cuda (the backend to check) or cpu (the CPU against itself: a smoke check of the harness)", DefaultValueFactory = _ => "cuda" };
        device.AcceptOnlyFromAmong("cuda", "cpu");
        var noTf32 = TrainCommands.NoTf32Option();
        var seed = new Option<ulong>("--seed") { Description = "seed of the random inputs", DefaultValueFactory = _ => 0 };
        var json = new Option<string?>("--json") { Description = "also write the table as JSON to this file" };
        cmd.Options.Add(device);
        cmd.Options.Add(noTf32);
        cmd.Options.Add(seed);
        cmd.Options.Add(json);
        cmd.SetAction(r =>
        {
            bool tf32 = !r.GetValue(noTf32);
            IBackend candidate;
            if (r.GetValue(device) == "cpu") candidate = new CpuBackend();
            else if (!Backends.TryCreateCuda(tf32, out var cuda, out string reason))
                throw new CliException($"selftest: no CUDA device or driver found ({reason}); `selftest --device cpu` checks the harness on the CPU alone");
            else candidate = cuda!;
            using (candidate)
            using (var reference = new CpuBackend())
                return Execute(candidate, reference, candidate is CpuBackend ? false : tf32, r.GetValue(seed), Console.Out, r.GetValue(json));
        });
        return cmd;
    }

    /// <summary>Runs the checks, prints the table (and writes it as JSON); 0 when all pass, 1 otherwise.</summary>
    public static int Execute(IBackend candidate, IBackend reference, bool tf32, ulong seed, TextWriter log, string? jsonPath = null,
        IReadOnlyList<SelfTestCase>? cases = null)
    {
        var report = BackendSelfTest.Run(candidate, reference, tf32, seed, cases);
        report.Print(log);
        if (jsonPath != null)
        {
            try { AtomicFile.Write(jsonPath, s => WriteJson(s, report)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException($"--json {jsonPath}: {e.Message}");
            }
            log.WriteLine($"selftest: table written to {jsonPath}");
        }
        return report.Passed ? 0 : 1;
    }

    /// <summary>The report as JSON (written by hand: no reflection, so it stays NativeAOT-safe).</summary>
    public static void WriteJson(Stream s, SelfTestReport report)
    {
        using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("candidate", report.Candidate);
        w.WriteString("reference", report.Reference);
        w.WriteBoolean("tf32", report.Tf32);
        w.WriteNumber("seed", report.Seed);
        w.WriteBoolean("passed", report.Passed);
        w.WriteNumber("failures", report.Failures);
        w.WriteString("environment", $".NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
        w.WriteStartArray("rows");
        foreach (var row in report.Rows)
        {
            w.WriteStartObject();
            w.WriteString("check", row.Check);
            w.WriteString("shape", row.Shape);
            Number(w, "max_abs_error", row.MaxAbsError);
            Number(w, "worst", row.Worst);
            w.WriteNumber("atol", row.Tolerance.Atol);
            w.WriteNumber("rtol", row.Tolerance.Rtol);
            w.WriteBoolean("pass", row.Pass);
            w.WriteString("detail", row.Detail);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    // JSON has no infinity: an output that could not be compared is written as null.
    private static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }
}
