using RlMixup.Core;

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

/// <summary>The table of one candidate against the reference.</summary>
public sealed record SelfTestReport(string Candidate, string Reference, bool Tf32, ulong Seed, IReadOnlyList<SelfTestRow> Rows)
{
    public bool Passed => Rows.All(r => r.Pass);
    public int Failures => Rows.Count(r => !r.Pass);

    public void Print(TextWriter w)
    {
        w.WriteLine($"selftest: candidate {Candidate} (TF32 {(Tf32 ? "on" : "off")}) against reference {Reference}, seed {Seed}");
        w.WriteLine("  worst = max_i |a_i − b_i| / (atol·S + rtol·|b_i|), a candidate, b reference, S = max |b|; PASS when worst ≤ 1");
        int opW = Math.Max(5, Rows.Max(r => r.Check.Length)), shapeW = Math.Max(5, Rows.Max(r => r.Shape.Length));
        int tolW = Math.Max(9, Rows.Max(r => r.Tolerance.ToString().Length));
        w.WriteLine($"{"check".PadRight(opW)}  {"shape".PadRight(shapeW)}  {"max |a−b|",10}  {"worst",9}  {"tolerance".PadRight(tolW)}  result");
        w.WriteLine(new string('-', opW + shapeW + tolW + 40));
        foreach (var r in Rows)
        {
            string line = $"{r.Check.PadRight(opW)}  {r.Shape.PadRight(shapeW)}  {Num(r.MaxAbsError),10}  {Num(r.Worst),9}  {r.Tolerance.ToString().PadRight(tolW)}  {(r.Pass ? "PASS" : "FAIL")}";
            w.WriteLine(r.Detail.Length == 0 ? line : $"{line}  {r.Detail}");
        }
        w.WriteLine(Passed
            ? $"selftest: all {Rows.Count} checks passed"
            : $"selftest: {Failures} of {Rows.Count} checks FAILED: {string.Join(", ", Rows.Where(r => !r.Pass).Select(r => r.Check))}");
    }

    private static string Num(double v) => double.IsPositiveInfinity(v) ? "inf" : v == 0 ? "0" : v.ToString(v < 1e-3 || v >= 1e4 ? "0.00E+0" : "0.0000");
}

/// <summary>
/// Compares a candidate <see cref="IBackend"/> (the CUDA backend) with the CPU reference: every op of
/// the interface on fresh seeded random inputs (<see cref="SelfTestCases"/>), then a whole
/// PreActResNet18 training step and the whole RL-Mixup batch transform, then determinism (the
/// candidate run twice on the same seed must give bitwise-identical outputs). Each check builds its
/// inputs on the host from an Rng seeded by (seed, check), so both backends see the same numbers.
/// </summary>
public static class BackendSelfTest
{
    /// <summary>Runs every check; <paramref name="tf32"/> says the candidate uses TF32 (looser GEMM and convolution tolerances).</summary>
    public static SelfTestReport Run(IBackend candidate, IBackend reference, bool tf32, ulong seed, IReadOnlyList<SelfTestCase>? cases = null)
    {
        cases ??= SelfTestCases.All();
        var rows = new List<SelfTestRow>();
        var firstRuns = new List<(SelfTestCase Case, List<Output>? Outputs)>();
        for (int i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
            var expected = Execute(c, reference, CaseSeed(seed, i));
            List<Output>? actual = null;
            string? error = null;
            try { actual = Execute(c, candidate, CaseSeed(seed, i)); }
            catch (Exception e) when (e is not OutOfMemoryException) { error = $"{e.GetType().Name}: {OneLine(e.Message)}"; }
            firstRuns.Add((c, actual));
            var tol = tf32 ? c.Tf32 : c.Fp32;
            foreach (var group in expected.Select(o => o.Group).Distinct())
            {
                string check = group.Length == 0 ? c.Op : $"{c.Op}: {group}";
                if (actual == null) { rows.Add(new SelfTestRow(check, c.Shape, double.PositiveInfinity, double.PositiveInfinity, tol, error!)); continue; }
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
                    rows.Add(new SelfTestRow(check, c.Shape, m, w, tol, ""));
                    continue;
                }
                foreach (var e in groupOutputs)
                {
                    var a = actual.FirstOrDefault(o => o.Name == e.Name);
                    var (m, w) = a == null ? (double.PositiveInfinity, double.PositiveInfinity) : Compare(a.Values, e.Values, tol);
                    maxAbs = Math.Max(maxAbs, m);
                    if (w > worst || worstName.Length == 0) { worst = Math.Max(worst, w); worstName = e.Label; }
                }
                rows.Add(new SelfTestRow(check, c.Shape, maxAbs, worst, tol, groupOutputs.Count > 1 && worst > 0 ? $"worst: {worstName}" : ""));
            }
        }
        rows.Add(Determinism(candidate, seed, cases, firstRuns));
        return new SelfTestReport(candidate.Name, reference.Name, tf32, seed, rows);
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

    private static SelfTestRow Determinism(IBackend candidate, ulong seed, IReadOnlyList<SelfTestCase> cases, List<(SelfTestCase Case, List<Output>? Outputs)> firstRuns)
    {
        const string check = "determinism: candidate twice, same seed";
        long values = 0;
        for (int i = 0; i < cases.Count; i++)
        {
            var first = firstRuns[i].Outputs;
            if (first == null) continue;   // already a FAIL row
            List<Output> second;
            try { second = Execute(cases[i], candidate, CaseSeed(seed, i)); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return new SelfTestRow(check, "every check", double.PositiveInfinity, double.PositiveInfinity, Tolerance.Exact, $"{cases[i].Op}: {OneLine(e.Message)}");
            }
            foreach (var o in first)
            {
                var again = second.First(s => s.Name == o.Name).Values;
                for (int k = 0; k < o.Values.Length; k++)
                    if (BitConverter.SingleToInt32Bits(o.Values[k]) != BitConverter.SingleToInt32Bits(again[k]))
                        return new SelfTestRow(check, "every check", Math.Abs((double)o.Values[k] - again[k]), double.PositiveInfinity, Tolerance.Exact,
                            $"{cases[i].Op}: {o.Label}[{k}] differs between two runs");
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

    /// <summary>The Rng seed of check <paramref name="index"/>: independent streams per check, all from one seed.</summary>
    private static ulong CaseSeed(ulong seed, int index) => seed * 0x9E3779B97F4A7C15UL + (ulong)index * 0xBF58476D1CE4E5B9UL + 1;

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
