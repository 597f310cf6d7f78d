using System.Text.Json;
using RlMixup.Core.Cuda;

namespace RlMixup.Engine.SelfTest;

/// <summary>
/// The self-test as JSON lines, one object per line, each written and flushed when it is known:
/// <c>{"type":"header",…}</c>, then <c>{"type":"row",…}</c> per check row, then on CUDA
/// <c>{"type":"conv_plan",…}</c> per cuDNN plan, then <c>{"type":"summary",…}</c>. A run that dies keeps
/// every complete line before it; a reader takes the lines that parse. Written by hand with
/// Utf8JsonWriter (no reflection: NativeAOT-safe).
/// </summary>
public sealed class SelfTestJsonLines : IDisposable
{
    private readonly FileStream _file;

    public SelfTestJsonLines(string path)
    {
        _file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read);
    }

    public void Header(string candidate, string reference, bool tf32, ulong seed, int checks) => Line(w =>
    {
        w.WriteString("type", "header");
        w.WriteString("candidate", candidate);
        w.WriteString("reference", reference);
        w.WriteBoolean("tf32", tf32);
        w.WriteNumber("seed", seed);
        w.WriteNumber("checks", checks);
        w.WriteString("environment", $".NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
    });

    public void Row(SelfTestRow row) => Line(w =>
    {
        w.WriteString("type", "row");
        w.WriteString("check", row.Check);
        w.WriteString("shape", row.Shape);
        Number(w, "max_abs_error", row.MaxAbsError);
        Number(w, "worst", row.Worst);
        w.WriteNumber("atol", row.Tolerance.Atol);
        w.WriteNumber("rtol", row.Tolerance.Rtol);
        w.WriteBoolean("normwise", row.Tolerance.Normwise);
        w.WriteBoolean("pass", row.Pass);
        w.WriteString("detail", row.Detail);
    });

    public void Plans(IReadOnlyList<ConvPlanInfo> plans)
    {
        foreach (var p in plans)
            Line(w =>
            {
                w.WriteString("type", "conv_plan");
                w.WriteString("geometry", p.Geometry);
                w.WriteString("direction", p.Key.Direction.ToString());
                w.WriteBoolean("tf32", p.Key.Tf32);
                w.WriteNumber("algo", p.Algo);
                w.WriteString("algo_name", p.AlgoName);
                w.WriteString("math_type", p.MathType.ToString());
                w.WriteNumber("workspace_bytes", p.WorkspaceBytes);
                w.WriteStartArray("rows");
                foreach (var r in p.Rows)
                {
                    w.WriteStartObject();
                    w.WriteNumber("algo", r.Algo);
                    w.WriteString("status", r.Status.ToString());
                    w.WriteNumber("time_ms", r.TimeMs);
                    w.WriteNumber("workspace_bytes", r.WorkspaceBytes);
                    w.WriteBoolean("deterministic", r.Determinism == Core.Cuda.Native.CudnnDeterminism.CUDNN_DETERMINISTIC);
                    w.WriteString("math_type", r.MathType.ToString());
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
    }

    public void Summary(SelfTestReport report) => Line(w =>
    {
        w.WriteString("type", "summary");
        w.WriteBoolean("passed", report.Passed);
        w.WriteNumber("rows", report.Rows.Count);
        w.WriteNumber("failures", report.Failures);
        w.WriteString("context_lost", report.ContextLost);
        w.WriteNumber("checks_not_run", report.CasesNotRun);
        w.WriteStartArray("failed");
        foreach (var r in report.Rows.Where(r => !r.Pass)) w.WriteStringValue(r.Check);
        w.WriteEndArray();
    });

    private void Line(Action<Utf8JsonWriter> body)
    {
        using (var w = new Utf8JsonWriter(_file, new JsonWriterOptions { Indented = false }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        _file.Write("\n"u8);
        _file.Flush(flushToDisk: false);
    }

    // JSON has no infinity: an output that could not be compared is written as null.
    private static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }

    public void Dispose() => _file.Dispose();
}
