using RlMixup.Core;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Engine.SelfTest;

/// <summary>
/// How far a candidate's output may be from the reference's. Elementwise (the default), the error of
/// an output is <c>worst = max_i |a_i − b_i| / (atol·S + rtol·|b_i|)</c>, with a the candidate, b the
/// reference and S = max_j |b_j| the output's scale (1 when b is all zero), so atol is a fraction of
/// the output's largest value and one tolerance fits outputs of any magnitude. <see cref="Normwise"/>
/// tolerances bound the whole output instead (all the outputs of a check's group as one vector:
/// every weight gradient together), <c>worst = (‖a − b‖₂ / ‖b‖₂) / rtol</c>: a whole TF32
/// network step moves single elements far (a ReLU whose input TF32 rounding moves across zero, a
/// gradient that cancels to almost nothing) while the output as a whole stays close. The check
/// passes when worst ≤ 1. A zero tolerance demands bitwise-equal values. Non-finite values must
/// match exactly.
/// </summary>
public readonly record struct Tolerance(double Atol, double Rtol, bool Normwise = false)
{
    public static readonly Tolerance Exact = new(0, 0);
    public bool IsExact => Atol == 0 && Rtol == 0;
    public override string ToString() => IsExact ? "exact" : Normwise ? $"‖a−b‖/‖b‖ ≤ {Rtol:0.#E+0}" : $"atol {Atol:0.#E+0}·S, rtol {Rtol:0.#E+0}";
}

/// <summary>One line of the self-test table.</summary>
public sealed record SelfTestRow(string Check, string Shape, double MaxAbsError, double Worst, Tolerance Tolerance, string Detail)
{
    public bool Pass => Worst <= 1;
}

/// <summary>
/// The table of one candidate against the reference. <see cref="ContextLost"/> is set when a check
/// left the candidate's device context with a sticky error (a kernel fault): the run stopped there,
/// and <see cref="CasesNotRun"/> checks were never run.
/// </summary>
public sealed record SelfTestReport(string Candidate, string Reference, bool Tf32, ulong Seed, IReadOnlyList<SelfTestRow> Rows,
    string? ContextLost = null, int CasesNotRun = 0)
{
    public bool Passed => ContextLost == null && Rows.All(r => r.Pass);
    public int Failures => Rows.Count(r => !r.Pass);

    public void Print(TextWriter w)
    {
        var table = new SelfTestTable(w, Rows.Select(r => r.Check), Rows.Select(r => r.Shape));
        table.Header(Candidate, Reference, Tf32, Seed);
        foreach (var r in Rows) table.Row(r);
        table.Summary(this);
    }
}

/// <summary>
/// The self-test's text table, written one row at a time: the column widths are fixed from the
/// checks' names and shapes before the first row, so each row can be printed (and flushed) as soon
/// as its check has run, and a crash or a timeout keeps every row before it.
/// </summary>
public sealed class SelfTestTable(TextWriter w, IEnumerable<string> checks, IEnumerable<string> shapes)
{
    private readonly int _opW = Math.Max(5, checks.Select(c => c.Length).DefaultIfEmpty(0).Max());
    private readonly int _shapeW = Math.Max(5, shapes.Select(s => s.Length).DefaultIfEmpty(0).Max());
    private const int TolW = 24;

    /// <summary>A table for <paramref name="cases"/>: the check column fits each case's name with a group suffix.</summary>
    public static SelfTestTable For(TextWriter w, IReadOnlyList<SelfTestCase> cases) =>
        new(w, cases.Select(c => c.Op + ": running statistics").Append("determinism: candidate twice, same seed"), cases.Select(c => c.Shape));

    public void Header(string candidate, string reference, bool tf32, ulong seed)
    {
        w.WriteLine($"selftest: candidate {candidate} (TF32 {(tf32 ? "on" : "off")}) against reference {reference}, seed {seed}");
        w.WriteLine("  worst = max_i |a_i − b_i| / (atol·S + rtol·|b_i|), a candidate, b reference, S = max |b|; PASS when worst ≤ 1");
        w.WriteLine($"{"check".PadRight(_opW)}  {"shape".PadRight(_shapeW)}  {"max |a−b|",10}  {"worst",9}  {"tolerance".PadRight(TolW)}  result");
        w.WriteLine(new string('-', _opW + _shapeW + TolW + 40));
        w.Flush();
    }

    public void Row(SelfTestRow r)
    {
        string line = $"{r.Check.PadRight(_opW)}  {r.Shape.PadRight(_shapeW)}  {Num(r.MaxAbsError),10}  {Num(r.Worst),9}  {r.Tolerance.ToString().PadRight(TolW)}  {(r.Pass ? "PASS" : "FAIL")}";
        w.WriteLine(r.Detail.Length == 0 ? line : $"{line}  {r.Detail}");
        w.Flush();
    }

    public void Summary(SelfTestReport report)
    {
        if (report.ContextLost != null)
            w.WriteLine($"selftest: {report.ContextLost}; {report.CasesNotRun} check(s) not run" +
                (report.Failures > 0 ? $"; FAILED: {string.Join(", ", report.Rows.Where(r => !r.Pass).Select(r => r.Check))}" : ""));
        else
            w.WriteLine(report.Passed
                ? $"selftest: all {report.Rows.Count} checks passed"
                : $"selftest: {report.Failures} of {report.Rows.Count} checks FAILED: {string.Join(", ", report.Rows.Where(r => !r.Pass).Select(r => r.Check))}");
        w.Flush();
    }

    private static string Num(double v) => double.IsPositiveInfinity(v) ? "inf" : v == 0 ? "0" : v.ToString(v < 1e-3 || v >= 1e4 ? "0.00E+0" : "0.0000");
}

/// <summary>
/// Compares a candidate <see cref="IBackend"/> (the CUDA backend) with the CPU reference: every op of
/// the interface on fresh seeded random inputs (<see cref="SelfTestCases"/>), then a whole
/// PreActResNet18 training step and the whole RL-Mixup batch transform, then determinism (the
/// candidate run twice on the same seed must give bitwise-identical outputs). Each check builds its
/// inputs on the host from an Rng seeded by (seed, check), so both backends see the same numbers.
/// Rows are handed to <c>onRow</c> as each check finishes. After each check the candidate is
/// synchronised: a sticky device error (<see cref="CudaException.LosesContext"/>) there, or thrown
/// by the check, ends the run with "context lost after CHECK", since every later check would fail
/// with the same error and hide which one caused it.
/// </summary>
public static class BackendSelfTest
{
    /// <summary>Runs every check; <paramref name="tf32"/> says the candidate uses TF32 (looser GEMM and convolution tolerances).</summary>
    public static SelfTestReport Run(IBackend candidate, IBackend reference, bool tf32, ulong seed, IReadOnlyList<SelfTestCase>? cases = null,
        Action<SelfTestRow>? onRow = null)
    {
        cases ??= SelfTestCases.All();
        var rows = new List<SelfTestRow>();
        void Add(SelfTestRow row)
        {
            rows.Add(row);
            onRow?.Invoke(row);
        }
        var firstRuns = new List<(SelfTestCase Case, ulong Seed, List<Output>? Outputs)>();
        for (int i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
            ulong caseSeed = c.Seed(seed);
            var expected = Execute(c, reference, caseSeed);
            List<Output>? actual = null;
            string? error = null;
            CudaException? fault = null;
            try { actual = Execute(c, candidate, caseSeed); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                error = $"{e.GetType().Name}: {OneLine(e.Message)}";
                if (e is CudaException { LosesContext: true } ce) fault = ce;
            }
            fault ??= StickyError(candidate);
            if (fault != null && actual != null) { actual = null; error = $"the device faulted: {OneLine(fault.Message)}"; }
            firstRuns.Add((c, caseSeed, actual));
            var tol = tf32 ? c.Tf32 : c.Fp32;
            foreach (var group in expected.Select(o => o.Group).Distinct())
            {
                string check = group.Length == 0 ? c.Op : $"{c.Op}: {group}";
                if (actual == null) { Add(new SelfTestRow(check, c.Shape, double.PositiveInfinity, double.PositiveInfinity, tol, error!)); continue; }
                double maxAbs = 0, worst = 0;
                string worstName = "";
                var groupOutputs = expected.Where(o => o.Group == group).ToList();
                if (tol.Normwise && !tol.IsExact)
                {
                    // The group as one vector: every weight gradient together, say.
                    var byName = actual.ToDictionary(o => o.Name);
                    bool complete = groupOutputs.All(e => byName.ContainsKey(e.Name));
                    var (m, w) = complete
                        ? Compare([.. groupOutputs.SelectMany(e => byName[e.Name].Values)], [.. groupOutputs.SelectMany(e => e.Values)], tol)
                        : (double.PositiveInfinity, double.PositiveInfinity);
                    Add(new SelfTestRow(check, c.Shape, m, w, tol, ""));
                    continue;
                }
                foreach (var e in groupOutputs)
                {
                    var a = actual.FirstOrDefault(o => o.Name == e.Name);
                    var (m, w) = a == null ? (double.PositiveInfinity, double.PositiveInfinity) : Compare(a.Values, e.Values, tol);
                    maxAbs = Math.Max(maxAbs, m);
                    if (w > worst || worstName.Length == 0) { worst = Math.Max(worst, w); worstName = e.Label; }
                }
                Add(new SelfTestRow(check, c.Shape, maxAbs, worst, tol, groupOutputs.Count > 1 && worst > 0 ? $"worst: {worstName}" : ""));
            }
            if (fault != null)
                return new SelfTestReport(candidate.Name, reference.Name, tf32, seed, rows,
                    $"context lost after {c.Op} ({c.Shape}): {fault.Status}", cases.Count - i - 1);
        }
        Add(Determinism(candidate, firstRuns));
        return new SelfTestReport(candidate.Name, reference.Name, tf32, seed, rows);
    }

    /// <summary>The candidate's sticky device error, if it has one now (its stream synchronised); null for a healthy device or the CPU.</summary>
    private static CudaException? StickyError(IBackend candidate)
    {
        try { candidate.Synchronize(); }
        catch (CudaException e) when (e.LosesContext) { return e; }
        catch (CudaException) { }
        return null;
    }

    /// <summary>(max |a−b|, worst) of candidate a against reference b under <paramref name="tol"/> (see <see cref="Tolerance"/>).</summary>
    public static (double MaxAbs, double Worst) Compare(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Tolerance tol)
    {
        if (a.Length != b.Length) return (double.PositiveInfinity, double.PositiveInfinity);
        if (tol.Normwise && !tol.IsExact) return CompareNormwise(a, b, tol);
        double scale = 0;
        foreach (float v in b) if (float.IsFinite(v)) scale = Math.Max(scale, Math.Abs(v));
        if (scale == 0) scale = 1;
        double maxAbs = 0, worst = 0;
        for (int i = 0; i < a.Length; i++)
        {
            float x = a[i], y = b[i];
            if (!float.IsFinite(y) || !float.IsFinite(x))
            {
                bool same = (float.IsNaN(x) && float.IsNaN(y)) || x == y;
                if (!same) { maxAbs = double.PositiveInfinity; worst = double.PositiveInfinity; }
                continue;
            }
            double diff = Math.Abs((double)x - y);
            if (diff == 0) continue;
            maxAbs = Math.Max(maxAbs, diff);
            double denom = tol.Atol * scale + tol.Rtol * Math.Abs(y);
            worst = Math.Max(worst, denom == 0 ? double.PositiveInfinity : diff / denom);
        }
        return (maxAbs, worst);
    }

    private static (double MaxAbs, double Worst) CompareNormwise(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Tolerance tol)
    {
        double diff2 = 0, ref2 = 0, maxAbs = 0;
        for (int i = 0; i < a.Length; i++)
        {
            float x = a[i], y = b[i];
            if (!float.IsFinite(x) || !float.IsFinite(y))
            {
                if (!((float.IsNaN(x) && float.IsNaN(y)) || x == y)) return (double.PositiveInfinity, double.PositiveInfinity);
                continue;
            }
            double d = (double)x - y;
            diff2 += d * d;
            ref2 += (double)y * y;
            maxAbs = Math.Max(maxAbs, Math.Abs(d));
        }
        if (diff2 == 0) return (0, 0);
        double rel = ref2 == 0 ? double.PositiveInfinity : Math.Sqrt(diff2 / ref2);
        return (maxAbs, rel / tol.Rtol);
    }

    private static SelfTestRow Determinism(IBackend candidate, List<(SelfTestCase Case, ulong Seed, List<Output>? Outputs)> firstRuns)
    {
        const string check = "determinism: candidate twice, same seed";
        long values = 0;
        foreach (var (c, caseSeed, first) in firstRuns)
        {
            if (first == null) continue;   // already a FAIL row
            List<Output> second;
            try { second = Execute(c, candidate, caseSeed); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return new SelfTestRow(check, "every check", double.PositiveInfinity, double.PositiveInfinity, Tolerance.Exact, $"{c.Op}: {OneLine(e.Message)}");
            }
            foreach (var o in first)
            {
                var again = second.First(s => s.Name == o.Name).Values;
                for (int k = 0; k < o.Values.Length; k++)
                    if (BitConverter.SingleToInt32Bits(o.Values[k]) != BitConverter.SingleToInt32Bits(again[k]))
                        return new SelfTestRow(check, "every check", Math.Abs((double)o.Values[k] - again[k]), double.PositiveInfinity, Tolerance.Exact,
                            $"{c.Op}: {o.Label}[{k}] differs between two runs");
                values += o.Values.Length;
            }
        }
        return new SelfTestRow(check, "every check", 0, 0, Tolerance.Exact, $"{values} values bitwise identical");
    }

    private static List<Output> Execute(SelfTestCase c, IBackend backend, ulong seed)
    {
        using var ctx = new SelfTestContext(backend, new Rng(seed));
        c.Run(ctx);
        return ctx.Outputs;
    }

    private static string OneLine(string s) => string.Join(" ", s.Split((char[])['\r', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()));
}

/// <summary>An output of a check: its name ("group:name" puts it in its own row) and values read back to the host.</summary>
public sealed record Output(string Name, float[] Values)
{
    public string Group => Name.Contains(':') ? Name[..Name.IndexOf(':')] : "";
    public string Label => Name.Contains(':') ? Name[(Name.IndexOf(':') + 1)..] : Name;
}

/// <summary>
/// One check of the table: <see cref="Run"/> builds its inputs from the context's Rng, runs on the
/// context's backend and records outputs; <see cref="Fp32"/> applies when the candidate runs in full
/// float32, <see cref="Tf32"/> when TF32 tensor cores are allowed.
/// </summary>
public sealed record SelfTestCase(string Op, string Shape, Tolerance Fp32, Tolerance Tf32, Action<SelfTestContext> Run)
{
    public SelfTestCase(string op, string shape, Tolerance both, Action<SelfTestContext> run) : this(op, shape, both, both, run) { }

    /// <summary>
    /// The Rng seed of this check for run seed <paramref name="seed"/>: independent streams per check,
    /// all from one seed, and each check's own whatever other checks run with it (<c>--filter</c>
    /// reruns a failing check on exactly the inputs it failed on).
    /// </summary>
    public ulong Seed(ulong seed)
    {
        ulong h = 0xCBF29CE484222325UL;   // FNV-1a of the check's name and shape
        foreach (char ch in Op + "\u0001" + Shape) h = (h ^ ch) * 0x100000001B3UL;
        return seed * 0x9E3779B97F4A7C15UL + h * 0xBF58476D1CE4E5B9UL + 1;
    }

    /// <summary>
    /// Whether <c>--filter</c> <paramref name="pattern"/> selects this check: comma-separated terms,
    /// each a case-insensitive substring of "Op shape" or, with '*', a wildcard pattern of it.
    /// </summary>
    public bool Matches(string pattern)
    {
        string name = $"{Op} {Shape}";
        foreach (var term in pattern.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!term.Contains('*')) { if (name.Contains(term, StringComparison.OrdinalIgnoreCase)) return true; continue; }
            var rx = "^" + string.Join(".*", term.Split('*').Select(System.Text.RegularExpressions.Regex.Escape)) + "$";
            if (System.Text.RegularExpressions.Regex.IsMatch(name, rx, System.Text.RegularExpressions.RegexOptions.IgnoreCase)) return true;
        }
        return false;
    }
}

/// <summary>What a check sees: the backend, the seeded Rng, tensor helpers, and the outputs it records.</summary>
public sealed class SelfTestContext(IBackend backend, Rng rng) : IDisposable
{
    private readonly List<Tensor> _owned = [];
    public IBackend B { get; } = backend;
    public Rng Rng { get; } = rng;
    public List<Output> Outputs { get; } = [];

    /// <summary>Uniform values in ±[0.05, 1]·scale: random signs, never zero.</summary>
    public float[] Random(int n, float scale = 1f)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u = Rng.NextDouble();
            v[i] = (float)((Rng.NextULong() >> 63 == 0 ? 1 : -1) * (0.05 + 0.95 * u) * scale);
        }
        return v;
    }

    /// <summary>Soft targets (n, k): positive rows summing to 1.</summary>
    public float[] SoftTargets(int n, int k)
    {
        var v = new float[n * k];
        for (int i = 0; i < n; i++)
        {
            double sum = 0;
            for (int j = 0; j < k; j++) sum += v[i * k + j] = (float)(0.05 + Rng.NextDouble());
            for (int j = 0; j < k; j++) v[i * k + j] = (float)(v[i * k + j] / sum);
        }
        return v;
    }

    /// <summary>A tensor on the backend holding <paramref name="host"/>.</summary>
    public Tensor T(Shape shape, float[] host)
    {
        var t = Zeros(shape);
        t.CopyFrom(host);
        return t;
    }

    /// <summary>A random tensor (see <see cref="Random"/>).</summary>
    public Tensor R(Shape shape, float scale = 1f) => T(shape, Random(shape.Size, scale));

    public Tensor Zeros(Shape shape)
    {
        var t = B.Allocate(shape);
        _owned.Add(t);
        return t;
    }

    /// <summary>Records a tensor's values (read back to the host) as output <paramref name="name"/>.</summary>
    public void Record(string name, Tensor t) => Outputs.Add(new Output(name, t.ToArray()));
    public void Record(string name, float[] values) => Outputs.Add(new Output(name, values));

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
    }
}
