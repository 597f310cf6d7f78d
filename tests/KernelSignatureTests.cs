using System.Text.RegularExpressions;
using NUnit.Framework;
using RlMixup.Core.Cuda;

namespace RlMixup.Tests;

/// <summary>
/// The kernels' C signatures in src/Kernels/*.cu against <see cref="KernelCatalog"/>: the catalog is
/// what every launch is validated against (<see cref="KernelLaunch"/>), and the driver reads each
/// argument with the size the kernel declares, so a catalog entry that says int where the kernel
/// takes size_t, or float* where it takes int*, would make a launch read garbage on a GPU. The PTX
/// tests only see .u64/.u32/.f32 and cannot tell a pointer from a size_t or an int* from a float*;
/// this reads the C declarations themselves.
/// </summary>
public class KernelSignatureTests
{
    /// <summary>
    /// Kernels of the sources deliberately left out of the catalog, with the reason. None: every
    /// extern "C" __global__ kernel is described (argmax_rows and count_correct are not launched by
    /// the backend yet, but they are described so that a launch of them is checked like the others).
    /// </summary>
    private static readonly Dictionary<string, string> NotInCatalog = [];

    private static string KernelDir()
    {
        // the .cu sources are copied next to the test assembly (RlMixup.Tests.csproj, LinkBase="Kernels")
        var dir = Path.Combine(AppContext.BaseDirectory, "Kernels");
        Assert.That(Directory.GetFiles(dir, "*.cu"), Is.Not.Empty, $"no .cu sources in {dir}");
        return dir;
    }

    private static List<CudaSignatures.Kernel> SourceKernels(out Dictionary<string, string> macros)
    {
        var dir = KernelDir();
        var all = new List<CudaSignatures.Kernel>();
        macros = [];
        foreach (var cu in Directory.GetFiles(dir, "*.cu").Order(StringComparer.Ordinal))
        {
            var unit = CudaSignatures.ReadUnit(cu);
            all.AddRange(CudaSignatures.Parse(Path.GetFileNameWithoutExtension(cu), unit));
            foreach (var (name, body) in CudaSignatures.ObjectMacros(unit)) macros.TryAdd(name, body);
        }
        return all;
    }

    [Test]
    public void EveryKernelOfTheSourcesIsInTheCatalogAndNoOther()
    {
        var source = SourceKernels(out _);
        var fromSource = source.Select(k => (k.Module, k.Name)).Where(k => !NotInCatalog.ContainsKey(k.Name)).ToList();
        var fromCatalog = KernelCatalog.All.Select(k => (k.Module, k.Entry)).ToList();
        Assert.That(source.Select(k => k.Name), Is.Unique, "an extern \"C\" kernel name is one PTX symbol: it may be declared once");
        Assert.That(fromCatalog.Except(fromSource), Is.Empty, "catalog kernels that no .cu declares (module, entry)");
        Assert.That(fromSource.Except(fromCatalog), Is.Empty, "kernels of the .cu sources missing from the catalog (module, entry)");
        Assert.That(NotInCatalog.Keys, Is.SubsetOf(source.Select(k => k.Name)), "every listed exception names a real kernel");
    }

    [Test]
    public void CatalogParametersHaveTheSourcesCountKindsAndNamesInOrder()
    {
        var source = SourceKernels(out _).ToDictionary(k => k.Name);
        Assert.Multiple(() =>
        {
            foreach (var k in KernelCatalog.All)
            {
                if (!source.TryGetValue(k.Entry, out var decl)) continue; // reported by the test above
                var declared = decl.Parameters;
                foreach (var p in declared.Where(p => p.Kind == null))
                    Assert.Fail($"{decl.Module}.cu {k.Entry}: parameter '{p.Name}' has C type '{p.Type}', which no KernelParamKind stands for");
                Assert.That(k.Parameters.Count, Is.EqualTo(declared.Count),
                    $"{k.Entry}: the catalog has {k.Parameters.Count} parameters, {decl.Module}.cu declares {declared.Count} ({string.Join(", ", declared)})");
                for (int i = 0; i < Math.Min(k.Parameters.Count, declared.Count); i++)
                {
                    Assert.That(k.Parameters[i].Kind, Is.EqualTo(declared[i].Kind),
                        $"{k.Entry} parameter {i} '{declared[i].Name}': C type '{declared[i].Type}'");
                    Assert.That(k.Parameters[i].Name, Is.EqualTo(declared[i].Name), $"{k.Entry} parameter {i}: name");
                }
            }
        });
    }

    [Test]
    public void TheCatalogsLimitsAreTheSourcesMacros()
    {
        SourceKernels(out var macros);
        Assert.Multiple(() =>
        {
            Assert.That(CudaSignatures.IntMacro(macros, "K_MAX_THREADS"), Is.EqualTo(KernelCatalog.MaxThreads));
            Assert.That(CudaSignatures.IntMacro(macros, "K_MAX_GRID"), Is.EqualTo(KernelCatalog.MaxGrid));
            Assert.That(CudaSignatures.IntMacro(macros, "SALIENCY_MAX_CELLS"), Is.EqualTo(KernelCatalog.SaliencyMaxCells));
            Assert.That(CudaSignatures.IntMacro(macros, "SALIENCY_MAX_BAND"), Is.EqualTo(KernelCatalog.SaliencyMaxBand));
            Assert.That(CudaSignatures.IntMacro(macros, "MASK_MAX_CELLS"), Is.EqualTo(KernelCatalog.MaskMaxCells));
        });
    }

    // ---- the parser itself: what it reads, and what it refuses to guess

    [Test]
    public void TheParserReadsQualifiersMacrosBlocksAndLaunchBounds()
    {
        const string source = """
            #define INDEX_T size_t
            #define PIXEL unsigned char
            // extern "C" __global__ void commented_out(float* x);
            /* extern "C" __global__ void also_commented(double x); */
            extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) first(float* __restrict__ y, const float* x, // (n)
                                                                                 INDEX_T n, float alpha) {
                if (n > 0) { y[0] = x[0] * alpha; }
            }
            extern "C" {
            __global__ __launch_bounds__(256, 2) void second(const PIXEL* images, const int *idx, int B,
                                                              unsigned long long count) { }
            __global__ void third() { }
            }
            __device__ float helper(float v) { return v; }
            """;
        var kernels = CudaSignatures.Parse("m", source);
        Assert.That(kernels.Select(k => k.Name), Is.EqualTo(new[] { "first", "second", "third" }));
        Assert.That(kernels[0].Parameters.Select(p => (p.Name, p.Kind)), Is.EqualTo(new (string, KernelParamKind?)[]
        {
            ("y", KernelParamKind.F32Ptr), ("x", KernelParamKind.F32Ptr), ("n", KernelParamKind.U64), ("alpha", KernelParamKind.F32),
        }));
        Assert.That(kernels[1].Parameters.Select(p => (p.Name, p.Kind)), Is.EqualTo(new (string, KernelParamKind?)[]
        {
            ("images", KernelParamKind.U8Ptr), ("idx", KernelParamKind.I32Ptr), ("B", KernelParamKind.I32), ("count", KernelParamKind.U64),
        }));
        Assert.That(kernels[2].Parameters, Is.Empty);
    }

    [Test]
    public void TypesWithoutAKindAreReportedNotGuessed()
    {
        var k = CudaSignatures.Parse("m", """extern "C" __global__ void k(double d, long l, unsigned u, bool b, float** pp, int64_t i) { }""").Single();
        Assert.That(k.Parameters.Select(p => p.Kind), Is.All.Null, string.Join(", ", k.Parameters));
        Assert.That(k.Parameters.Select(p => p.Type), Is.EqualTo(new[] { "double", "long", "unsigned", "bool", "float**", "int64_t" }));
    }

    [TestCase("template <typename T> __global__ void t(T* x) { }", "template")]
    [TestCase("__global__ void plain(float* x) { }", "not extern \"C\"")]
    [TestCase("#define KERNEL(name) extern \"C\" __global__ void name(float* x) { }\nKERNEL(made)", "macro")]
    [TestCase("#define ARGS float* x, int n\nextern \"C\" __global__ void k(ARGS) { }", "ARGS")]
    [TestCase("#define DIM(t) t\nextern \"C\" __global__ void k(DIM(int) n) { }", "DIM")]
    [TestCase("#if A\n#define IDX int\n#else\n#define IDX size_t\n#endif\nextern \"C\" __global__ void k(IDX n) { }", "IDX")]
    public void DeclarationsTheParserCannotReadFailLoudly(string source, string named)
    {
        var e = Assert.Throws<FormatException>(() => CudaSignatures.Parse("m", source))!;
        Assert.That(e.Message, Does.Contain(named));
    }
}

/// <summary>
/// A reader of CUDA kernel declarations, enough for src/Kernels: comments, line continuations and
/// local #includes; object-like #defines are expanded inside parameter lists; kernels may be declared
/// `extern "C" __global__ ...` or inside an `extern "C" { }` block, with `__launch_bounds__(...)` or
/// `__attribute__((...))` anywhere before the name. What it cannot read faithfully (a templated or
/// C++-mangled kernel, a kernel or a parameter list produced by a macro, a macro defined two ways)
/// throws <see cref="FormatException"/> rather than being guessed.
/// </summary>
internal static partial class CudaSignatures
{
    public sealed record Param(string Type, string Name, KernelParamKind? Kind)
    {
        public override string ToString() => $"{Type} {Name}";
    }

    public sealed record Kernel(string Module, string Name, IReadOnlyList<Param> Parameters);

    /// <summary>A .cu file with its local #include "..." files inlined (once each), as the compiler sees it.</summary>
    public static string ReadUnit(string path)
    {
        var seen = new HashSet<string>();
        string Read(string file)
        {
            if (!seen.Add(Path.GetFullPath(file))) return "";
            var text = File.ReadAllText(file);
            return IncludeRegex().Replace(text, m =>
            {
                var inc = Path.Combine(Path.GetDirectoryName(file)!, m.Groups[1].Value);
                return File.Exists(inc) ? Read(inc) : m.Value;
            });
        }
        return Read(path);
    }

    /// <summary>Every extern "C" __global__ kernel of <paramref name="source"/>, in order.</summary>
    public static List<Kernel> Parse(string module, string source)
    {
        var code = Clean(source);
        var macros = Macros(code, out var functionLike);
        foreach (var (name, bodies) in macros)
            if (bodies.Any(b => GlobalToken().IsMatch(b)))
                throw new FormatException($"{module}: macro {name} declares a kernel; the signature reader does not expand kernel-declaring macros");
        foreach (var (name, body) in functionLike)
            if (GlobalToken().IsMatch(body))
                throw new FormatException($"{module}: macro {name} declares a kernel; the signature reader does not expand kernel-declaring macros");
        var text = PreprocessorLine().Replace(code, m => new string(' ', m.Length));
        var externBlocks = ExternBlocks(text);
        var kernels = new List<Kernel>();
        foreach (Match g in GlobalToken().Matches(text))
        {
            int at = g.Index;
            string before = text[..at].TrimEnd();
            bool externC = ExternBefore().IsMatch(before) || externBlocks.Any(b => at > b.Open && at < b.Close);
            if (TemplateBefore().IsMatch(before))
                throw new FormatException($"{module}: a template __global__ kernel near offset {at}: its PTX name is mangled and the signature reader does not instantiate templates");
            var (name, paramText) = ReadDeclaration(module, text, at + g.Length);
            if (!externC)
                throw new FormatException($"{module}: kernel {name} is not extern \"C\": its PTX entry name is C++-mangled and cuModuleGetFunction would not find '{name}'");
            kernels.Add(new Kernel(module, name, ReadParameters(module, name, paramText, macros, functionLike)));
        }
        return kernels;
    }

    /// <summary>The object-like macros of a unit with a single definition (name → body).</summary>
    public static IEnumerable<(string Name, string Body)> ObjectMacros(string source) =>
        Macros(Clean(source), out _).Where(m => m.Value.Distinct().Count() == 1).Select(m => (m.Key, m.Value[0]));

    /// <summary>The integer value of a macro whose body is an integer literal.</summary>
    public static int IntMacro(IReadOnlyDictionary<string, string> macros, string name)
    {
        if (!macros.TryGetValue(name, out var body)) throw new FormatException($"no #define {name} in the kernel sources");
        return int.Parse(body.Trim().TrimEnd('u', 'U', 'l', 'L'));
    }

    // ---- internals

    private static string Clean(string source)
    {
        var joined = source.Replace("\r\n", "\n").Replace("\\\n", " ");
        // comments become spaces of the same length (offsets stay meaningful); string literals are kept
        return CommentOrString().Replace(joined, m => m.Value.StartsWith('"') ? m.Value : Regex.Replace(m.Value, "[^\n]", " "));
    }

    private static Dictionary<string, List<string>> Macros(string code, out Dictionary<string, string> functionLike)
    {
        var objectLike = new Dictionary<string, List<string>>();
        functionLike = [];
        foreach (Match m in DefineRegex().Matches(code))
        {
            string name = m.Groups[1].Value, body = m.Groups[3].Value.Trim();
            if (m.Groups[2].Success) functionLike[name] = body;
            else
            {
                if (!objectLike.TryGetValue(name, out var list)) objectLike[name] = list = [];
                list.Add(body);
            }
        }
        return objectLike;
    }

    private static List<(int Open, int Close)> ExternBlocks(string text)
    {
        var blocks = new List<(int, int)>();
        foreach (Match m in ExternBlockOpen().Matches(text))
        {
            int open = m.Index + m.Length - 1, depth = 0;
            for (int i = open; i < text.Length; i++)
            {
                if (text[i] == '{') depth++;
                else if (text[i] == '}' && --depth == 0) { blocks.Add((open, i)); break; }
            }
        }
        return blocks;
    }

    /// <summary>From just after __global__: skips the return type and attributes, returns the name and the text between its parentheses.</summary>
    private static (string Name, string Params) ReadDeclaration(string module, string text, int i)
    {
        while (true)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            var id = Identifier().Match(text, i);
            if (!id.Success || id.Index != i) throw new FormatException($"{module}: cannot read the kernel declaration at offset {i}");
            i += id.Length;
            int j = i;
            while (j < text.Length && char.IsWhiteSpace(text[j])) j++;
            if (j >= text.Length || text[j] != '(') continue; // a type word or a qualifier (void, static, ...)
            int close = Balanced(module, text, j);
            if (id.Value is "__launch_bounds__" or "__attribute__" or "__declspec") { i = close + 1; continue; }
            return (id.Value, text[(j + 1)..close]);
        }
    }

    private static int Balanced(string module, string text, int open)
    {
        int depth = 0;
        for (int i = open; i < text.Length; i++)
        {
            if (text[i] == '(') depth++;
            else if (text[i] == ')' && --depth == 0) return i;
        }
        throw new FormatException($"{module}: unbalanced parentheses after offset {open}");
    }

    private static readonly HashSet<string> Qualifiers = ["const", "volatile", "__restrict__", "__restrict", "restrict", "__grid_constant__"];

    private static List<Param> ReadParameters(string module, string kernel, string paramText, Dictionary<string, List<string>> macros,
        Dictionary<string, string> functionLike)
    {
        var result = new List<Param>();
        if (paramText.Trim() is "" or "void") return result;
        foreach (var raw in SplitTopLevel(paramText))
        {
            string p = raw;
            for (int pass = 0; ; pass++)
            {
                if (pass > 16) throw new FormatException($"{module} {kernel}: macro expansion of '{raw.Trim()}' does not end");
                bool changed = false;
                p = Identifier().Replace(p, m =>
                {
                    if (functionLike.ContainsKey(m.Value))
                        throw new FormatException($"{module} {kernel}: parameter '{raw.Trim()}' uses the function-like macro {m.Value}, which the signature reader does not expand");
                    if (!macros.TryGetValue(m.Value, out var bodies)) return m.Value;
                    if (bodies.Distinct().Count() > 1)
                        throw new FormatException($"{module} {kernel}: parameter '{raw.Trim()}' uses macro {m.Value}, defined {bodies.Count} different ways (under #if branches); the signature reader does not evaluate conditions");
                    changed = true;
                    return " " + bodies[0] + " ";
                });
                if (!changed) break;
            }
            if (p.Contains(','))
                throw new FormatException($"{module} {kernel}: parameter '{raw.Trim()}' expands to several parameters through a macro (ARGS-style lists are not read)");
            var tokens = TypeToken().Matches(p).Select(m => m.Value).Where(t => !Qualifiers.Contains(t)).ToList();
            string name = tokens.Count >= 2 && tokens[^1] != "*" ? tokens[^1] : "";
            if (name.Length > 0) tokens.RemoveAt(tokens.Count - 1);
            string type = string.Join(" ", tokens).Replace(" *", "*");
            result.Add(new Param(type, name, KindOf(type)));
        }
        return result;
    }

    private static List<string> SplitTopLevel(string s)
    {
        var parts = new List<string>();
        int depth = 0, start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] is '(' or '<' or '[') depth++;
            else if (s[i] is ')' or '>' or ']') depth--;
            else if (s[i] == ',' && depth == 0) { parts.Add(s[start..i]); start = i + 1; }
        }
        parts.Add(s[start..]);
        return parts;
    }

    /// <summary>The kind a C type is passed as; null for a type the catalog has no kind for.</summary>
    private static KernelParamKind? KindOf(string type) => type switch
    {
        "float*" => KernelParamKind.F32Ptr,
        "int*" or "signed int*" or "int32_t*" => KernelParamKind.I32Ptr,
        "unsigned char*" or "uint8_t*" => KernelParamKind.U8Ptr,
        "float" => KernelParamKind.F32,
        "int" or "signed int" or "signed" or "int32_t" => KernelParamKind.I32,
        // size_t is unsigned long on the 64-bit targets PTX is built for (and the host emulation)
        "size_t" or "unsigned long" or "unsigned long long" or "uint64_t" or "unsigned long int" or "unsigned long long int" => KernelParamKind.U64,
        _ => null,
    };

    [GeneratedRegex(@"^[ \t]*#[ \t]*include[ \t]*""([^""]+)""[^\n]*$", RegexOptions.Multiline)]
    private static partial Regex IncludeRegex();

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/|""(?:\\.|[^""\\\n])*""", RegexOptions.Singleline)]
    private static partial Regex CommentOrString();

    [GeneratedRegex(@"^[ \t]*#[ \t]*define[ \t]+(\w+)(\([^)]*\))?([^\n]*)$", RegexOptions.Multiline)]
    private static partial Regex DefineRegex();

    [GeneratedRegex(@"^[ \t]*#[^\n]*$", RegexOptions.Multiline)]
    private static partial Regex PreprocessorLine();

    [GeneratedRegex(@"\b__global__\b")]
    private static partial Regex GlobalToken();

    [GeneratedRegex(@"extern\s+""C""\s*$")]
    private static partial Regex ExternBefore();

    [GeneratedRegex(@"template\s*<[^;{}]*>\s*$")]
    private static partial Regex TemplateBefore();

    [GeneratedRegex(@"extern\s+""C""\s*\{")]
    private static partial Regex ExternBlockOpen();

    [GeneratedRegex(@"[A-Za-z_]\w*")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"[A-Za-z_]\w*|\*")]
    private static partial Regex TypeToken();
}
