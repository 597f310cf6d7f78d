using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Json;
using NUnit.Framework;

namespace RlMixup.Tests;

/// <summary>
/// NVIDIA's ABI as ../shared/cuda-abi/cuda12.6-cudnn9.6.json records it (facts extracted from the
/// CUDA 12.6.3 and cuDNN 9.6.0 headers: every exported function's parameters with their C type,
/// size and kind; every enum constant's value; struct sizes and field offsets), and the checks that
/// hold a declaration against it. The kinds are the JSON's: pointer, integer, enum, float, double,
/// struct.
/// </summary>
public sealed class CudaAbi
{
    public sealed record Param(string Name, string Kind, int Size, string Type);
    public sealed record Function(string Name, IReadOnlyList<Param> Params, string Returns, int ReturnSize);
    public sealed record Struct(string Name, int Size, IReadOnlyDictionary<string, int> Offsets);

    public IReadOnlyDictionary<string, Function> Functions { get; }
    public IReadOnlyDictionary<string, long> Enums { get; }
    public IReadOnlyDictionary<string, Struct> Structs { get; }

    private CudaAbi(IReadOnlyDictionary<string, Function> f, IReadOnlyDictionary<string, long> e, IReadOnlyDictionary<string, Struct> s) =>
        (Functions, Enums, Structs) = (f, e, s);

    public static CudaAbi Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        var functions = new Dictionary<string, Function>(StringComparer.Ordinal);
        foreach (var f in root.GetProperty("functions").EnumerateObject())
        {
            var ps = f.Value.GetProperty("params").EnumerateArray()
                .Select(p => new Param(p.GetProperty("name").GetString()!, p.GetProperty("kind").GetString()!, p.GetProperty("size").GetInt32(),
                    p.GetProperty("type").GetString()!)).ToList();
            functions[f.Name] = new Function(f.Name, ps, f.Value.GetProperty("returns").GetString()!, f.Value.GetProperty("returns_size").GetInt32());
        }
        var enums = root.GetProperty("enums").EnumerateObject().ToDictionary(e => e.Name, e => e.Value.GetInt64(), StringComparer.Ordinal);
        var structs = root.GetProperty("structs").EnumerateObject().ToDictionary(s => s.Name,
            s => new Struct(s.Name, s.Value.GetProperty("size").GetInt32(),
                s.Value.GetProperty("fields").EnumerateObject().ToDictionary(x => x.Name, x => x.Value.GetInt32(), StringComparer.Ordinal)),
            StringComparer.Ordinal);
        return new CudaAbi(functions, enums, structs);
    }

    /// <summary>The facts beside the checkout (../shared/cuda-abi), or Assert.Ignore with the reason.</summary>
    public static CudaAbi LoadOrIgnore()
    {
        string? env = Environment.GetEnvironmentVariable("RLMIXUP_CUDA_ABI");
        if (!string.IsNullOrEmpty(env) && File.Exists(env)) return Load(env);
        string root = PythonTorch.RepoRootOrIgnore();
        string path = Path.GetFullPath(Path.Combine(root, "..", "shared", "cuda-abi", "cuda12.6-cudnn9.6.json"));
        if (!File.Exists(path)) Assert.Ignore($"NVIDIA's ABI facts are not at {path} (set RLMIXUP_CUDA_ABI to the file)");
        return Load(path);
    }

    /// <summary>"returns:SIZE|kind:size|…" of a header function: what a function pointer to it must match.</summary>
    public string Signature(string name)
    {
        var f = Functions[name];
        return string.Join("|", f.Params.Select(p => $"{p.Kind}:{p.Size}").Prepend($"returns:{f.ReturnSize}"));
    }

    // ---- the C# side

    /// <summary>The kind and size a C# parameter or return type has in the C ABI.</summary>
    public static (string Kind, int Size) KindOf(Type t)
    {
        if (t.IsByRef || t.IsPointer || t.IsFunctionPointer || t.IsUnmanagedFunctionPointer) return ("pointer", 8);
        if (t == typeof(void)) return ("void", 0);
        if (t.IsEnum) return ("enum", Marshal.SizeOf(Enum.GetUnderlyingType(t)));
        if (t == typeof(float)) return ("float", 4);
        if (t == typeof(double)) return ("double", 8);
        if (t == typeof(nint)) return ("pointer", 8);
        if (t == typeof(nuint)) return ("integer", 8);
        if (t.IsPrimitive) return ("integer", Marshal.SizeOf(t));
        // A one-field handle struct has the kind of its field: CUstream(nint) is a pointer,
        // CUdeviceptr(ulong) and CUdevice(int) are integers.
        var fields = t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        if (t.IsValueType && fields.Length == 1) return KindOf(fields[0].FieldType);
        return ("struct", Unsafe.SizeOf<byte>() * Marshal.SizeOf(t));
    }

    /// <summary>Every [LibraryImport] (or [DllImport]) method of the type (any visibility), with its entry point.</summary>
    public static IEnumerable<(MethodInfo Method, string EntryPoint)> Imports(Type t)
    {
        foreach (var m in t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
        {
            if (m.Name.Contains('<')) continue; // the stubs the LibraryImport generator emits
            if (m.GetCustomAttribute<LibraryImportAttribute>() is { } li) yield return (m, li.EntryPoint ?? m.Name);
            else if (m.GetCustomAttribute<DllImportAttribute>() is { } di) yield return (m, di.EntryPoint ?? m.Name);
        }
    }

    /// <summary>What is wrong with the [LibraryImport] declarations of <paramref name="t"/>: one line per problem.</summary>
    public List<string> CheckImports(Type t)
    {
        var problems = new List<string>();
        foreach (var (m, entry) in Imports(t))
        {
            string where = $"{t.Name}.{m.Name} ({entry})";
            if (!Functions.TryGetValue(entry, out var f))
            {
                problems.Add($"{where}: NVIDIA's headers export no function '{entry}'");
                continue;
            }
            var ps = m.GetParameters();
            if (ps.Length != f.Params.Count)
            {
                problems.Add($"{where}: {ps.Length} parameters, the header has {f.Params.Count} ({string.Join(", ", f.Params.Select(p => p.Type + " " + p.Name))})");
                continue;
            }
            for (int i = 0; i < ps.Length; i++)
            {
                var (kind, size) = KindOf(ps[i].ParameterType);
                var want = f.Params[i];
                // A device address is a CUdeviceptr (unsigned long long) in the driver API and a
                // `T*` in cuBLAS and cuDNN; the bindings use CUdeviceptr for both, which the x86-64
                // ABI passes the same way (one 8-byte integer register or stack slot).
                bool deviceAddress = ps[i].ParameterType == typeof(RlMixup.Core.Cuda.Native.CUdeviceptr) && want.Kind == "pointer";
                if ((kind != want.Kind && !deviceAddress) || size != want.Size)
                    problems.Add($"{where}: parameter {i} '{ps[i].Name}' is {kind} of {size} bytes, the header's '{want.Type} {want.Name}' is {want.Kind} of {want.Size}");
                else if (Normalise(ps[i].Name) != Normalise(want.Name))
                    problems.Add($"{where}: parameter {i} is named '{ps[i].Name}', the header's is '{want.Name}' (swapped or misplaced?)");
            }
            var (rk, rs) = KindOf(m.ReturnType);
            if (rs != f.ReturnSize) problems.Add($"{where}: returns {rk} of {rs} bytes, the header's {f.Returns} is {f.ReturnSize}");
        }
        return problems;
    }

    /// <summary>Parameter names compared without case and underscores (padH is pad_h).</summary>
    static string Normalise(string? name) => (name ?? "").Replace("_", "").ToLowerInvariant();

    /// <summary>What is wrong with the members of a C# enum that mirrors C constants of the same names.</summary>
    public List<string> CheckEnum(Type e, IReadOnlySet<string>? notInHeaders = null)
    {
        var problems = new List<string>();
        foreach (var name in Enum.GetNames(e))
        {
            long value = Convert.ToInt64(Enum.Parse(e, name));
            if (!Enums.TryGetValue(name, out long want))
            {
                if (notInHeaders?.Contains(name) != true) problems.Add($"{e.Name}.{name}: no such constant in NVIDIA's headers");
            }
            else if (want != value) problems.Add($"{e.Name}.{name} = {value}, the header's is {want}");
        }
        return problems;
    }

    /// <summary>What is wrong with a C# struct that mirrors the C struct <paramref name="cName"/> (fields in order, compared by name case-insensitively).</summary>
    public List<string> CheckStruct(Type t, string cName)
    {
        var problems = new List<string>();
        if (!Structs.TryGetValue(cName, out var s)) return [$"{t.Name}: NVIDIA's headers have no struct '{cName}'"];
        int size = Marshal.SizeOf(t);
        if (size != s.Size) problems.Add($"{t.Name}: {size} bytes, {cName} has {s.Size}");
        foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            string name = f.Name.TrimStart('<').Split('>')[0];
            var cField = s.Offsets.Keys.FirstOrDefault(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
            if (cField == null)
            {
                problems.Add($"{t.Name}.{name}: {cName} has no such field");
                continue;
            }
            int offset = (int)Marshal.OffsetOf(t, f.Name);
            if (offset != s.Offsets[cField]) problems.Add($"{t.Name}.{name} at offset {offset}, {cName}.{cField} is at {s.Offsets[cField]}");
        }
        return problems;
    }

    // ---- the software device's side

    /// <summary>What is wrong with the software device's exports ("name|ret kind:size|kind:size|..." lines).</summary>
    public List<string> CheckExports(IEnumerable<string> exports)
    {
        var problems = new List<string>();
        foreach (var line in exports)
        {
            var parts = line.Split('|');
            string name = parts[0];
            if (!Functions.TryGetValue(name, out var f))
            {
                problems.Add($"software device exports '{name}', which NVIDIA's headers do not");
                continue;
            }
            var ret = parts[1].Split(':');
            if (int.Parse(ret[1]) != f.ReturnSize) problems.Add($"software device {name}: returns {parts[1]}, the header's {f.Returns} is {f.ReturnSize} bytes");
            var ps = parts.Skip(2).Select(p => p.Split(':')).ToList();
            if (ps.Count != f.Params.Count)
            {
                problems.Add($"software device {name}: {ps.Count} parameters, the header has {f.Params.Count}");
                continue;
            }
            for (int i = 0; i < ps.Count; i++)
                if (ps[i][0] != f.Params[i].Kind || int.Parse(ps[i][1]) != f.Params[i].Size)
                    problems.Add($"software device {name}: parameter {i} is {ps[i][0]} of {ps[i][1]} bytes, the header's '{f.Params[i].Type} {f.Params[i].Name}' is {f.Params[i].Kind} of {f.Params[i].Size}");
        }
        return problems;
    }
}
