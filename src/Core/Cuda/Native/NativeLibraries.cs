using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace RlMixup.Core.Cuda.Native;

/// <summary>
/// Finds and loads the CUDA libraries. Every [LibraryImport] of this assembly names one of the
/// logical names below; one DllImportResolver maps each to the first candidate file that loads and
/// has an accepted version, tried in the order of <see cref="NativeLibrarySearch.Candidates"/>.
/// Before a file is loaded, its companions (cuBLASLt beside cuBLAS; cuDNN's sub-libraries and NVRTC)
/// are loaded from its folder or any searched folder, so its dependencies resolve by soname without
/// LD_LIBRARY_PATH; each companion's outcome is kept for <c>info</c>. After loading, the library's
/// own version is read through its version call (<see cref="VersionProbe"/>): a file of the wrong
/// major (cuDNN 8 where 9 is needed) is unloaded, named with both versions, and the search goes on.
/// Entry points of the managed wrappers call <see cref="Require"/> first, which throws
/// <see cref="CudaLibraryNotFoundException"/> with every path tried and why each failed; the
/// resolver itself never throws (a miss falls through to the runtime's own DllNotFoundException).
/// </summary>
public static class NativeLibraries
{
    /// <summary>The CUDA driver API, libcuda.so.1 (installed with the NVIDIA driver, not the toolkit).</summary>
    public const string Driver = "rlmixup-cuda";
    /// <summary>cuBLAS 12 or 13, libcublas.so.N (needs libcublasLt.so.N of the same release).</summary>
    public const string Cublas = "rlmixup-cublas";
    /// <summary>cuDNN 9, libcudnn.so.9.</summary>
    public const string Cudnn = "rlmixup-cudnn";

    /// <summary>Folder searched before everything else (after the per-library file override).</summary>
    public const string DirVariable = NativeLibrarySearch.DirVariable;

    /// <summary>
    /// How a loaded library tells its version: the exported symbol asked, a reader that calls it
    /// through the library's own handle (not through a [LibraryImport], whose resolution the runtime
    /// caches for good, so a rejected file would stick), and the majors accepted.
    /// </summary>
    internal sealed record VersionProbe(string Symbol, Func<nint, (int Major, string Text)> Read, IReadOnlyList<int>? Majors, string Needed);

    /// <summary>What to search for one logical library.</summary>
    /// <param name="Stem">The file name before ".so": <c>libcublas</c>.</param>
    /// <param name="SonameMajors">The soname numbers the engine accepts, newest first (libcublas.so.13, .12); tried as bare names too.</param>
    /// <param name="Companions">
    /// For a soname major, the libraries loaded before the main one, each a list of alternatives
    /// (the first found is loaded). A companion that is absent or fails is recorded and skipped.
    /// </param>
    internal sealed record LibrarySpec(
        string LogicalName, string DisplayName, string ShortName, string FileVariable, string Stem,
        IReadOnlyList<int> SonameMajors, string? PipPackage,
        Func<int, IReadOnlyList<IReadOnlyList<string>>> Companions, VersionProbe? Version)
    {
        /// <summary>libcublas.so.13, libcublas.so.12, libcublas.so: the bare names tried through the system loader.</summary>
        public IReadOnlyList<string> Sonames => [.. SonameMajors.Select(m => $"{Stem}.so.{m}"), $"{Stem}.so"];
    }

    internal static readonly LibrarySpec DriverSpec = new(Driver, "CUDA driver (libcuda)", "driver", "RLMIXUP_CUDA_LIB", "libcuda",
        [1], PipPackage: null, _ => [],
        new VersionProbe("cuDriverGetVersion", ReadDriverVersion, Majors: null, ""));

    internal static readonly LibrarySpec CublasSpec = new(Cublas, "cuBLAS (libcublas)", "cublas", "RLMIXUP_CUBLAS_LIB", "libcublas",
        [13, 12], PipPackage: "cublas", major => [[$"libcublasLt.so.{major}"]],
        new VersionProbe("cublasGetProperty", ReadCublasVersion, [13, 12], "cuBLAS 12 or 13"));

    // cuDNN 9 opens its sub-libraries (graph, engines, ops, ...) by soname at run time, and its
    // runtime-compiled engines need NVRTC; loaded ahead from the folders searched they are found
    // without LD_LIBRARY_PATH. Order: dependencies first.
    internal static readonly LibrarySpec CudnnSpec = new(Cudnn, "cuDNN (libcudnn)", "cudnn", "RLMIXUP_CUDNN_LIB", "libcudnn",
        [9], PipPackage: "cudnn",
        major => major == 9
            ? [["libnvrtc.so.13", "libnvrtc.so.12"], ["libcudnn_graph.so.9"], ["libcudnn_engines_runtime_compiled.so.9"],
               ["libcudnn_engines_precompiled.so.9"], ["libcudnn_heuristic.so.9"], ["libcudnn_ops.so.9"], ["libcudnn_cnn.so.9"], ["libcudnn_adv.so.9"]]
            : [],
        new VersionProbe("cudnnGetVersion", ReadCudnnVersion, [9], "cuDNN 9"));

    internal static readonly LibrarySpec[] All = [DriverSpec, CublasSpec, CudnnSpec];

    // ---- the version probes: C signatures from cuda.h, cublas_api.h and cudnn_graph.h

    // CUresult cuDriverGetVersion(int* driverVersion): 1000·major + 10·minor, 13000 is CUDA 13.0.
    private static unsafe (int, string) ReadDriverVersion(nint f)
    {
        int v = 0;
        int status = ((delegate* unmanaged<int*, int>)f)(&v);
        if (status != 0) throw new InvalidOperationException($"cuDriverGetVersion returned {status}");
        return (v / 1000, $"CUDA {v / 1000}.{v % 1000 / 10}");
    }

    // cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value): no handle needed;
    // MAJOR_VERSION = 0, MINOR_VERSION = 1, PATCH_LEVEL = 2 (library_types.h).
    private static unsafe (int, string) ReadCublasVersion(nint f)
    {
        var get = (delegate* unmanaged<int, int*, int>)f;
        int major = 0, minor = 0, patch = 0;
        if (get(0, &major) != 0 || get(1, &minor) != 0 || get(2, &patch) != 0)
            throw new InvalidOperationException("cublasGetProperty failed");
        return (major, $"cuBLAS {major}.{minor}.{patch}");
    }

    // size_t cudnnGetVersion(void): major·10000 + minor·100 + patch from cuDNN 9 on (90600 is
    // 9.6.0); cuDNN 8 and older encoded major·1000 + minor·100 + patch (8907 is 8.9.7).
    private static unsafe (int, string) ReadCudnnVersion(nint f)
    {
        long v = (long)((delegate* unmanaged<nuint>)f)();
        var (major, minor, patch) = v >= 10000 ? (v / 10000, v / 100 % 100, v % 100) : (v / 1000, v / 100 % 10, v % 100);
        return ((int)major, $"cuDNN {major}.{minor}.{patch}");
    }

    // ---- what happened

    /// <summary>One companion of a library: loaded from <see cref="Path"/>, or not, and why.</summary>
    public sealed record CompanionLoad(string Name, string? Path, string? Error)
    {
        public bool Loaded => Error == null;
        public override string ToString() => Loaded ? $"{Name} ({Path})" : Path == null ? $"{Name} ({Error})" : $"{Name} ({Path}: {Error})";
    }

    /// <summary>The outcome of one library's search: the file and version loaded, its companions, or the error naming every path tried.</summary>
    public sealed record LibraryLoad(string DisplayName, string ShortName, string? Path, string? Version,
        IReadOnlyList<CompanionLoad> Companions, CudaLibraryNotFoundException? Error)
    {
        public bool Loaded => Error == null;
    }

    private sealed record Loaded(nint Handle, LibraryLoad Report);

    private static readonly object Gate = new();
    private static readonly Dictionary<string, Loaded> LoadedLibraries = new(StringComparer.Ordinal);
    private static readonly Dictionary<string, LibraryLoad> Failures = new(StringComparer.Ordinal);
    private static int _registered;

    /// <summary>Installs the DllImportResolver of this assembly. Idempotent and thread-safe.</summary>
    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 0)
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
    }

    // The resolver must be installed before the first P/Invoke of any CUDA binding of this assembly,
    // including bindings whose wrappers do not call Register themselves.
#pragma warning disable CA2255 // ModuleInitializer in a library: intentional, it only installs the resolver.
    [ModuleInitializer]
    internal static void Initialize() => Register();
#pragma warning restore CA2255

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        SpecOf(libraryName) is { } spec && TryLoad(spec) is { Loaded: true } ? Handle(spec) : 0;

    internal static LibrarySpec? SpecOf(string logicalName) => All.FirstOrDefault(s => s.LogicalName == logicalName);

    private static LibrarySpec SpecOrThrow(string logicalName) => SpecOf(logicalName)
        ?? throw new ArgumentException($"unknown CUDA library '{logicalName}'; expected {Driver}, {Cublas} or {Cudnn}", nameof(logicalName));

    /// <summary>Loads <paramref name="logicalName"/> (one of the constants) or throws <see cref="CudaLibraryNotFoundException"/>.</summary>
    public static void Require(string logicalName)
    {
        Register();
        if (TryLoad(SpecOrThrow(logicalName)).Error is { } error) throw error;
    }

    /// <summary>Loads <paramref name="logicalName"/>; false with the one-line reason when nothing loads. Never throws for a missing library.</summary>
    public static bool TryRequire(string logicalName, out string reason)
    {
        Register();
        var load = TryLoad(SpecOrThrow(logicalName));
        reason = load.Error?.Message ?? "";
        return load.Loaded;
    }

    /// <summary>Searches for and loads <paramref name="logicalName"/> if not done yet, and says what happened; never throws for a missing library.</summary>
    public static LibraryLoad Status(string logicalName)
    {
        Register();
        return TryLoad(SpecOrThrow(logicalName));
    }

    /// <summary>True when <paramref name="logicalName"/> has already been loaded; never loads anything.</summary>
    public static bool IsLoaded(string logicalName)
    {
        lock (Gate) return LoadedLibraries.ContainsKey(logicalName);
    }

    /// <summary>The file that was loaded for <paramref name="logicalName"/>, or null when it is not loaded (yet or at all).</summary>
    public static string? LoadedPath(string logicalName)
    {
        lock (Gate) return LoadedLibraries.TryGetValue(logicalName, out var l) ? l.Report.Path : null;
    }

    /// <summary>
    /// The exported symbols of <see cref="NativeBindings.All"/> that the loaded library of
    /// <paramref name="logicalName"/> lacks (empty when all are there or the library is not loaded).
    /// A binding whose symbol is missing fails only when called, with EntryPointNotFoundException.
    /// </summary>
    public static IReadOnlyList<string> MissingSymbols(string logicalName)
    {
        nint handle;
        lock (Gate)
        {
            if (!LoadedLibraries.TryGetValue(logicalName, out var l)) return [];
            handle = l.Handle;
        }
        return [.. NativeBindings.All.Where(b => b.Library == logicalName && !NativeLibrary.TryGetExport(handle, b.EntryPoint, out _)).Select(b => b.EntryPoint)];
    }

    /// <summary>
    /// When the loaded CUDA driver is the project's software device (tests/SoftwareDevice: the driver
    /// API, cuBLAS and cuDNN simulated on the CPU), its description; null for a real driver or none.
    /// The software device exports <c>rlmixupSoftwareDevice</c>, which no NVIDIA library does.
    /// </summary>
    public static string? SoftwareDevice
    {
        get
        {
            lock (Gate)
            {
                if (!LoadedLibraries.TryGetValue(Driver, out var l) || !NativeLibrary.TryGetExport(l.Handle, SoftwareDeviceSymbol, out var f))
                    return null;
                unsafe { return Marshal.PtrToStringUTF8((nint)((delegate* unmanaged<byte*>)f)()); }
            }
        }
    }

    /// <summary>The software device's marker export (see <see cref="SoftwareDevice"/>).</summary>
    internal const string SoftwareDeviceSymbol = "rlmixupSoftwareDevice";

    /// <summary>Every symbol looked up by name rather than bound with [LibraryImport]: the version probes and the software device's marker.</summary>
    internal static IEnumerable<string> SymbolsLookedUp =>
        All.Where(s => s.Version != null).Select(s => s.Version!.Symbol).Append(SoftwareDeviceSymbol);

    private static nint Handle(LibrarySpec spec)
    {
        lock (Gate) return LoadedLibraries[spec.LogicalName].Handle;
    }

    private static LibraryLoad TryLoad(LibrarySpec spec)
    {
        lock (Gate)
        {
            if (LoadedLibraries.TryGetValue(spec.LogicalName, out var loaded)) return loaded.Report;
            // Remembered: the search is not repeated on every call of a process without CUDA.
            if (Failures.TryGetValue(spec.LogicalName, out var failed)) return failed;
            var env = NativeLibrarySearch.SearchEnvironment.Real;
            var folders = NativeLibrarySearch.SearchFolders(spec, env);
            var result = LoadFirst(spec, NativeLibrarySearch.Candidates(spec, env), folders, Hint(spec, folders), out nint handle);
            if (result.Loaded) LoadedLibraries[spec.LogicalName] = new Loaded(handle, result);
            else Failures[spec.LogicalName] = result;
            return result;
        }
    }

    internal static string Hint(LibrarySpec spec, IReadOnlyList<string> folders) =>
        $"Searched folders: {(folders.Count == 0 ? "none" : string.Join(", ", folders))}. " +
        $"Set {spec.FileVariable} to the library file or {DirVariable} to its folder.";

    /// <summary>
    /// Loads the first candidate that loads and has an accepted version (its companions first; for
    /// a bare name, after it, from the folder it was mapped from) and reports it; when none does,
    /// the report's error names every candidate with why it failed: missing, the loader's message,
    /// or its version against the one needed.
    /// </summary>
    internal static LibraryLoad LoadFirst(LibrarySpec spec, IReadOnlyList<NativeLibrarySearch.Candidate> candidates,
        IReadOnlyList<string> folders, string hint, out nint handle)
    {
        var tried = new List<string>(candidates.Count);
        foreach (var c in candidates)
        {
            handle = 0;
            if (!c.IsBareName && !File.Exists(c.Path))
            {
                tried.Add($"{c.Path} (missing)");
                continue;
            }
            int major = SonameMajor(spec, Path.GetFileName(c.Path));
            var companions = new List<(CompanionLoad Load, nint Handle)>();
            if (!c.IsBareName) companions = LoadCompanions(spec, major, c.Folder!, folders);
            try
            {
                handle = NativeLibrary.Load(c.Path);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                tried.Add($"{c.Path} ({LoaderReason(e.Message, c.Path)})");
                Free(companions);
                continue;
            }
            string path = c.IsBareName ? MappedFile(handle, spec) ?? c.Path : c.Path;
            string? version = null;
            if (spec.Version is { } probe)
            {
                string? refusal;
                (version, refusal) = CheckVersion(probe, handle);
                if (refusal != null)
                {
                    tried.Add($"{path} ({refusal})");
                    NativeLibrary.Free(handle);
                    Free(companions);
                    handle = 0;
                    continue;
                }
            }
            if (c.IsBareName && System.IO.Path.GetDirectoryName(path) is { Length: > 0 } mapped)
                companions = LoadCompanions(spec, major, mapped, folders);
            return new LibraryLoad(spec.DisplayName, spec.ShortName, path, version, [.. companions.Select(x => x.Load)], null);
        }
        handle = 0;
        return new LibraryLoad(spec.DisplayName, spec.ShortName, null, null, [], new CudaLibraryNotFoundException(spec.DisplayName, tried, hint));
    }

    /// <summary>The version text, and the reason to refuse the file (null when accepted).</summary>
    private static (string? Version, string? Refusal) CheckVersion(VersionProbe probe, nint handle)
    {
        if (!NativeLibrary.TryGetExport(handle, probe.Symbol, out var f))
            return (null, $"exports no {probe.Symbol}: not the library it is named after");
        try
        {
            var (major, text) = probe.Read(f);
            if (probe.Majors != null && !probe.Majors.Contains(major)) return (text, $"{text}; the engine needs {probe.Needed}");
            return (text, null);
        }
        catch (InvalidOperationException e)
        {
            return (null, e.Message);
        }
    }

    /// <summary>The soname major of a file name (9 for libcudnn.so.9.6.0); the newest accepted one for an unversioned name.</summary>
    private static int SonameMajor(LibrarySpec spec, string fileName) =>
        NativeLibrarySearch.SonameVersion(spec.Stem, fileName) is { Length: > 0 } v ? v[0] : spec.SonameMajors[0];

    /// <summary>
    /// Loads the companions of a library of soname major <paramref name="major"/> found in
    /// <paramref name="folder"/>: each from that folder if there, else from the first searched folder
    /// that has it (NVRTC lives in a wheel of its own, or in CUDA 13's merged folder).
    /// </summary>
    private static List<(CompanionLoad Load, nint Handle)> LoadCompanions(LibrarySpec spec, int major, string folder, IReadOnlyList<string> folders)
    {
        var result = new List<(CompanionLoad, nint)>();
        foreach (var alternatives in spec.Companions(major))
        {
            string? file = alternatives
                .SelectMany(name => new[] { folder }.Concat(folders).Select(d => System.IO.Path.Combine(d, name)))
                .FirstOrDefault(File.Exists);
            string name = string.Join("|", alternatives);
            if (file == null)
            {
                result.Add((new CompanionLoad(name, null, "not found"), 0));
                continue;
            }
            try
            {
                result.Add((new CompanionLoad(System.IO.Path.GetFileName(file), file, null), NativeLibrary.Load(file)));
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                result.Add((new CompanionLoad(System.IO.Path.GetFileName(file), file, LoaderReason(e.Message, file)), 0));
            }
        }
        return result;
    }

    private static void Free(List<(CompanionLoad Load, nint Handle)> companions)
    {
        foreach (var (_, h) in companions)
            if (h != 0) NativeLibrary.Free(h);
    }

    /// <summary>
    /// The loader's own words from the runtime's message: the runtime prefixes dlerror()'s text with
    /// two sentences of advice (about 220 characters), then repeats the name; what is left is e.g.
    /// "cannot open shared object file: No such file or directory" or "libcublasLt.so.13: cannot open …".
    /// </summary>
    internal static string LoaderReason(string message, string path)
    {
        const string marker = "LD_DEBUG environment variable:";
        int at = message.IndexOf(marker, StringComparison.Ordinal);
        string text = (at >= 0 ? message[(at + marker.Length)..] : message).ReplaceLineEndings(" ").Trim();
        if (text.StartsWith(path + ": ", StringComparison.Ordinal)) text = text[(path.Length + 2)..];
        return text.Length > 300 ? text[..300] + "…" : text;
    }

    /// <summary>The file of a library loaded by bare soname, read from /proc/self/maps; null when unknown.</summary>
    private static string? MappedFile(nint handle, LibrarySpec spec)
    {
        try
        {
            // Any exported symbol's address lies in the library's mapping.
            if (spec.Version is not { } probe || !NativeLibrary.TryGetExport(handle, probe.Symbol, out var address)) return null;
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                // "start-end perms offset dev inode path"
                var dash = line.IndexOf('-');
                var space = line.IndexOf(' ');
                if (dash < 0 || space < dash) continue;
                var start = ulong.Parse(line.AsSpan(0, dash), System.Globalization.NumberStyles.HexNumber);
                var end = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), System.Globalization.NumberStyles.HexNumber);
                if ((ulong)address < start || (ulong)address >= end) continue;
                var slash = line.IndexOf('/');
                return slash >= 0 ? line[slash..].Trim() : null;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
        }
        return null;
    }
}
