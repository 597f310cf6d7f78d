using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace RlMixup.Core.Cuda.Native;

/// <summary>
/// Finds and loads the CUDA libraries. Every [LibraryImport] of this assembly names one of the
/// logical names below; one DllImportResolver maps each to the first real file that loads, searched
/// in a fixed order (<see cref="Candidates"/>): the environment override, then the versioned
/// sonames through the system loader, then the standard CUDA folders and LD_LIBRARY_PATH, then
/// the nvidia/*/lib folders of Python's site-packages (the pip wheels nvidia-cublas-cu12 etc.).
/// Entry points of the managed wrappers call <see cref="Require"/> first, which throws
/// <see cref="CudaLibraryNotFoundException"/> with every path tried; the resolver itself never
/// throws (a miss falls through to the runtime's own DllNotFoundException).
/// </summary>
public static class NativeLibraries
{
    /// <summary>The CUDA driver API, libcuda.so.1 (installed with the NVIDIA driver, not the toolkit).</summary>
    public const string Driver = "rlmixup-cuda";
    /// <summary>cuBLAS, libcublas.so.N (needs libcublasLt.so.N of the same folder).</summary>
    public const string Cublas = "rlmixup-cublas";
    /// <summary>cuDNN 9, libcudnn.so.9.</summary>
    public const string Cudnn = "rlmixup-cudnn";

    /// <summary>What to search for one logical library.</summary>
    internal sealed record LibrarySpec(
        string LogicalName, string DisplayName, string FileVariable,
        IReadOnlyList<string> Sonames, string? PipPackage,
        // Libraries of the same folder loaded first so that the main one's dependencies resolve
        // to them (by soname) even when that folder is not on the loader's path.
        Func<string, IReadOnlyList<string>> Companions);

    internal static readonly LibrarySpec DriverSpec = new(Driver, "CUDA driver (libcuda)", "RLMIXUP_CUDA_LIB",
        ["libcuda.so.1", "libcuda.so"], PipPackage: null, _ => []);

    internal static readonly LibrarySpec CublasSpec = new(Cublas, "cuBLAS (libcublas)", "RLMIXUP_CUBLAS_LIB",
        ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"], PipPackage: "cublas",
        soname => [soname.Replace("libcublas.", "libcublasLt.", StringComparison.Ordinal)]);

    // cuDNN 9 opens its sub-libraries (graph, engines, ops, ...) by soname at run time; loaded
    // ahead from libcudnn's own folder they are found without LD_LIBRARY_PATH. Order: dependencies
    // first. A companion that is absent or fails is skipped.
    internal static readonly LibrarySpec CudnnSpec = new(Cudnn, "cuDNN (libcudnn)", "RLMIXUP_CUDNN_LIB",
        ["libcudnn.so.9", "libcudnn.so"], PipPackage: "cudnn",
        soname => soname.EndsWith(".so.9", StringComparison.Ordinal)
            ? ["libcudnn_graph.so.9", "libcudnn_engines_runtime_compiled.so.9", "libcudnn_engines_precompiled.so.9",
               "libcudnn_heuristic.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9"]
            : []);

    /// <summary>Folder searched before everything else (after the per-library file override).</summary>
    public const string DirVariable = "RLMIXUP_CUDA_LIB_DIR";

    /// <summary>The file system and environment the search looks at; tests pass fakes.</summary>
    internal sealed record SearchEnvironment(
        Func<string, string?> GetVariable, Func<string, bool> FileExists, Func<string, bool> DirectoryExists,
        Func<string, IEnumerable<string>> ListDirectories, string Home)
    {
        public static SearchEnvironment Real { get; } = new(
            Environment.GetEnvironmentVariable, File.Exists, Directory.Exists,
            d => { try { return Directory.EnumerateDirectories(d); } catch (IOException) { return []; } catch (UnauthorizedAccessException) { return []; } },
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));
    }

    /// <summary>One thing to try: an absolute file path, or a bare soname for the system loader.</summary>
    internal readonly record struct Candidate(string Path, string? Folder)
    {
        public bool IsBareName => Folder == null;
        public override string ToString() => Path;
    }

    /// <summary>
    /// The standard folders, in search order, for this environment: the CUDA toolkit's, the
    /// distribution's, the container toolkit's, $CUDA_HOME/$CUDA_PATH, then LD_LIBRARY_PATH.
    /// </summary>
    internal static IReadOnlyList<string> StandardFolders(SearchEnvironment env)
    {
        var dirs = new List<string>
        {
            "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu",
            "/usr/lib64", "/usr/local/nvidia/lib64", "/usr/lib/wsl/lib",
        };
        foreach (var v in new[] { "CUDA_HOME", "CUDA_PATH" })
            if (env.GetVariable(v) is { Length: > 0 } root) dirs.Add(Path.Combine(root, "lib64"));
        if (env.GetVariable("LD_LIBRARY_PATH") is { Length: > 0 } ld)
            dirs.AddRange(ld.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return Distinct(dirs);
    }

    /// <summary>
    /// The site-packages and dist-packages folders of every python3.* under /usr/lib,
    /// /usr/local/lib, ~/.local/lib and $VIRTUAL_ENV/lib, in that order ($VIRTUAL_ENV first).
    /// </summary>
    internal static IReadOnlyList<string> SitePackages(SearchEnvironment env)
    {
        var roots = new List<string>();
        if (env.GetVariable("VIRTUAL_ENV") is { Length: > 0 } venv) roots.Add(Path.Combine(venv, "lib"));
        roots.Add("/usr/local/lib");
        roots.Add("/usr/lib");
        if (env.Home.Length > 0) roots.Add(Path.Combine(env.Home, ".local", "lib"));
        var result = new List<string>();
        foreach (var root in roots)
        {
            if (!env.DirectoryExists(root)) continue;
            // Newest Python first, so that a current wheel wins over a stale one.
            var pythons = env.ListDirectories(root)
                .Where(d => Path.GetFileName(d).StartsWith("python3", StringComparison.Ordinal))
                .OrderByDescending(d => PythonMinor(Path.GetFileName(d)))
                .ThenBy(d => d, StringComparer.Ordinal);
            foreach (var py in pythons)
                foreach (var kind in new[] { "site-packages", "dist-packages" })
                {
                    var sp = Path.Combine(py, kind);
                    if (env.DirectoryExists(sp)) result.Add(sp);
                }
        }
        return Distinct(result);
    }

    private static int PythonMinor(string name) =>
        name.Length > 8 && name[7] == '.' && int.TryParse(name.AsSpan(8), out var minor) ? minor : -1;

    /// <summary>
    /// Every folder searched for <paramref name="spec"/>, in order (after the file override):
    /// $RLMIXUP_CUDA_LIB_DIR, the standard folders, then site-packages/nvidia/&lt;pkg&gt;/lib.
    /// </summary>
    internal static IReadOnlyList<string> SearchFolders(LibrarySpec spec, SearchEnvironment env)
    {
        var dirs = new List<string>();
        if (env.GetVariable(DirVariable) is { Length: > 0 } dir) dirs.Add(dir);
        dirs.AddRange(StandardFolders(env));
        if (spec.PipPackage != null)
            foreach (var sp in SitePackages(env))
                dirs.Add(Path.Combine(sp, "nvidia", spec.PipPackage, "lib"));
        return Distinct(dirs);
    }

    /// <summary>
    /// The ordered list of what is tried for <paramref name="spec"/>: the file named by the
    /// library's override variable (always, even if missing, so the error names it), the sonames
    /// in $RLMIXUP_CUDA_LIB_DIR, the bare versioned sonames (the system loader: ld.so.cache and
    /// LD_LIBRARY_PATH), then each existing folder/soname of the standard and Python folders.
    /// Pure: everything it looks at comes through <paramref name="env"/>.
    /// </summary>
    internal static IReadOnlyList<Candidate> Candidates(LibrarySpec spec, SearchEnvironment env)
    {
        var list = new List<Candidate>();
        if (env.GetVariable(spec.FileVariable) is { Length: > 0 } file)
            list.Add(new Candidate(file, Path.GetDirectoryName(file) ?? ""));
        var folders = SearchFolders(spec, env);
        var overrideDir = env.GetVariable(DirVariable) is { Length: > 0 } d ? d : null;
        if (overrideDir != null)
            foreach (var so in spec.Sonames)
                list.Add(new Candidate(Path.Combine(overrideDir, so), overrideDir));
        foreach (var so in spec.Sonames)
            list.Add(new Candidate(so, null));
        foreach (var folder in folders)
        {
            if (folder == overrideDir) continue;
            foreach (var so in spec.Sonames)
            {
                var path = Path.Combine(folder, so);
                if (env.FileExists(path)) list.Add(new Candidate(path, folder));
            }
        }
        return list.DistinctBy(c => c.Path).ToList();
    }

    private static List<string> Distinct(List<string> items) =>
        items.Where(s => s.Length > 0).Select(s => s.TrimEnd('/') is { Length: > 0 } t ? t : "/").Distinct(StringComparer.Ordinal).ToList();

    // ---- loading

    private sealed record Loaded(nint Handle, string Path);

    private static readonly object Gate = new();
    private static readonly Dictionary<string, Loaded> LoadedLibraries = new(StringComparer.Ordinal);
    private static readonly Dictionary<string, CudaLibraryNotFoundException> Failures = new(StringComparer.Ordinal);
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
        SpecOf(libraryName) is { } spec && TryLoad(spec, out var loaded, out _) ? loaded.Handle : 0;

    internal static LibrarySpec? SpecOf(string logicalName) => logicalName switch
    {
        Driver => DriverSpec,
        Cublas => CublasSpec,
        Cudnn => CudnnSpec,
        _ => null,
    };

    private static LibrarySpec SpecOrThrow(string logicalName) => SpecOf(logicalName)
        ?? throw new ArgumentException($"unknown CUDA library '{logicalName}'; expected {Driver}, {Cublas} or {Cudnn}", nameof(logicalName));

    /// <summary>Loads <paramref name="logicalName"/> (one of the constants) or throws <see cref="CudaLibraryNotFoundException"/>.</summary>
    public static void Require(string logicalName)
    {
        Register();
        if (!TryLoad(SpecOrThrow(logicalName), out _, out var error)) throw error!;
    }

    /// <summary>Loads <paramref name="logicalName"/>; false with the one-line reason when nothing loads. Never throws for a missing library.</summary>
    public static bool TryRequire(string logicalName, out string reason)
    {
        Register();
        var ok = TryLoad(SpecOrThrow(logicalName), out _, out var error);
        reason = error?.Message ?? "";
        return ok;
    }

    /// <summary>True when <paramref name="logicalName"/> has already been loaded; never loads anything.</summary>
    public static bool IsLoaded(string logicalName)
    {
        lock (Gate) return LoadedLibraries.ContainsKey(logicalName);
    }

    /// <summary>The file that was loaded for <paramref name="logicalName"/>, or null when it is not loaded (yet or at all).</summary>
    public static string? LoadedPath(string logicalName)
    {
        lock (Gate) return LoadedLibraries.TryGetValue(logicalName, out var l) ? l.Path : null;
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
                if (!LoadedLibraries.TryGetValue(Driver, out var l) || !NativeLibrary.TryGetExport(l.Handle, "rlmixupSoftwareDevice", out var f))
                    return null;
                unsafe { return Marshal.PtrToStringUTF8((nint)((delegate* unmanaged<byte*>)f)()); }
            }
        }
    }

    private static bool TryLoad(LibrarySpec spec, out Loaded loaded, out CudaLibraryNotFoundException? error)
    {
        lock (Gate)
        {
            error = null;
            if (LoadedLibraries.TryGetValue(spec.LogicalName, out loaded!)) return true;
            if (Failures.TryGetValue(spec.LogicalName, out error)) return false;
            var env = SearchEnvironment.Real;
            var candidates = Candidates(spec, env);
            var folders = SearchFolders(spec, env);
            try
            {
                var (handle, path) = LoadFirst(spec, candidates, Hint(spec, folders));
                loaded = new Loaded(handle, path);
                LoadedLibraries[spec.LogicalName] = loaded;
                return true;
            }
            catch (CudaLibraryNotFoundException e)
            {
                // Remembered: the search is not repeated on every call of a process without CUDA.
                Failures[spec.LogicalName] = e;
                error = e;
                loaded = null!;
                return false;
            }
        }
    }

    internal static string Hint(LibrarySpec spec, IReadOnlyList<string> folders) =>
        $"Searched folders: {(folders.Count == 0 ? "none" : string.Join(", ", folders))}. " +
        $"Set {spec.FileVariable} to the library file or {DirVariable} to its folder.";

    /// <summary>
    /// Loads the first candidate that loads (companions of its folder first) and returns its handle
    /// and the file it came from; throws <see cref="CudaLibraryNotFoundException"/> naming every
    /// candidate (with the loader's reason for files that exist) when none does.
    /// </summary>
    internal static (nint Handle, string Path) LoadFirst(LibrarySpec spec, IReadOnlyList<Candidate> candidates, string hint)
    {
        var tried = new List<string>(candidates.Count);
        foreach (var c in candidates)
        {
            if (!c.IsBareName && !File.Exists(c.Path))
            {
                tried.Add($"{c.Path} (missing)");
                continue;
            }
            if (!c.IsBareName)
                foreach (var companion in spec.Companions(Path.GetFileName(c.Path)))
                {
                    var cp = Path.Combine(c.Folder!, companion);
                    if (File.Exists(cp)) NativeLibrary.TryLoad(cp, out _);
                }
            try
            {
                var handle = NativeLibrary.Load(c.Path);
                return (handle, c.IsBareName ? MappedFile(handle, c.Path) : c.Path);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                tried.Add(c.IsBareName ? c.Path : $"{c.Path} ({OneLine(e.Message)})");
            }
        }
        throw new CudaLibraryNotFoundException(spec.DisplayName, tried, hint);
    }

    private static string OneLine(string s)
    {
        var line = s.ReplaceLineEndings(" ").Trim();
        return line.Length > 200 ? line[..200] + "…" : line;
    }

    /// <summary>The file of a library loaded by bare soname, read from /proc/self/maps; the soname when unknown.</summary>
    private static string MappedFile(nint handle, string soname)
    {
        try
        {
            // Any exported symbol's address lies in the library's mapping.
            string? symbol = soname.StartsWith("libcuda.", StringComparison.Ordinal) ? "cuInit"
                : soname.StartsWith("libcublas.", StringComparison.Ordinal) ? "cublasCreate_v2"
                : soname.StartsWith("libcudnn.", StringComparison.Ordinal) ? "cudnnGetVersion" : null;
            if (symbol == null || !NativeLibrary.TryGetExport(handle, symbol, out var address)) return soname;
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
                return slash >= 0 ? line[slash..].Trim() : soname;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
        }
        return soname;
    }
}
