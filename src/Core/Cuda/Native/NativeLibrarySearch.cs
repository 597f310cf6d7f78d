namespace RlMixup.Core.Cuda.Native;

/// <summary>
/// Where the CUDA libraries are looked for: a pure function of the environment and the file system
/// (<see cref="SearchEnvironment"/>), so tests can build any machine's layout. The order:
/// <list type="number">
/// <item>the library's file variable (<c>RLMIXUP_CUDNN_LIB</c>, …), always listed, so an error names it;</item>
/// <item><c>$RLMIXUP_CUDA_LIB_DIR</c>;</item>
/// <item>the bare sonames, for the system loader (ld.so.cache, LD_LIBRARY_PATH, RUNPATH);</item>
/// <item>the CUDA toolkit's and the distribution's folders, <c>$CUDA_HOME</c>/<c>$CUDA_PATH</c>, LD_LIBRARY_PATH,
///   <c>$CONDA_PREFIX/lib</c>;</item>
/// <item>the NVIDIA pip wheels in every site-packages folder of the Python environments found:
///   <c>nvidia/&lt;lib&gt;/lib</c> (CUDA 12's wheels: <c>nvidia-cublas-cu12</c>, and <c>nvidia-cudnn-cu12/cu13</c>),
///   <c>nvidia/cu13/lib</c> and <c>nvidia/cu12/lib</c> (CUDA 13's merged wheels, <c>nvidia-cublas</c> 13).</item>
/// </list>
/// Python environments: <c>$VIRTUAL_ENV</c>; the prefix of the first <c>python3</c> on the PATH (a venv
/// is recognised by the <c>pyvenv.cfg</c> beside its <c>bin/</c>, so an activated-looking PATH is enough
/// when <c>VIRTUAL_ENV</c> is unset); <c>$CONDA_PREFIX</c>; <c>/usr/local</c>, <c>/usr</c>, <c>~/.local</c>.
/// Within a folder the newest soname comes first (<see cref="Order"/>).
/// </summary>
internal static class NativeLibrarySearch
{
    /// <summary>Folder searched before everything else (after the per-library file override).</summary>
    public const string DirVariable = "RLMIXUP_CUDA_LIB_DIR";

    /// <summary>The merged lib folders of NVIDIA's CUDA 13 (and later 12.x) wheels, searched after the library's own.</summary>
    public static readonly string[] MergedWheelFolders = ["cu13", "cu12"];

    /// <summary>The file system and environment the search looks at; tests pass fakes.</summary>
    internal sealed record SearchEnvironment(
        Func<string, string?> GetVariable, Func<string, bool> FileExists, Func<string, bool> DirectoryExists,
        Func<string, IEnumerable<string>> ListDirectories, Func<string, IEnumerable<string>> ListFiles, string Home)
    {
        public static SearchEnvironment Real { get; } = new(
            Environment.GetEnvironmentVariable, File.Exists, Directory.Exists,
            d => Listing(() => Directory.EnumerateDirectories(d)),
            d => Listing(() => Directory.EnumerateFiles(d)),
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

        private static IEnumerable<string> Listing(Func<IEnumerable<string>> list)
        {
            try { return list().ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { return []; }
        }
    }

    /// <summary>One thing to try: an absolute file path, or a bare soname for the system loader.</summary>
    internal readonly record struct Candidate(string Path, string? Folder)
    {
        public bool IsBareName => Folder == null;
        public override string ToString() => Path;
    }

    /// <summary>
    /// The standard folders, in search order: the CUDA toolkit's, the distribution's, the container
    /// toolkit's, WSL's, $CUDA_HOME/$CUDA_PATH, LD_LIBRARY_PATH, then $CONDA_PREFIX/lib (conda's
    /// cudatoolkit, cudnn and libcublas packages put the libraries there).
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
        if (env.GetVariable("CONDA_PREFIX") is { Length: > 0 } conda) dirs.Add(Path.Combine(conda, "lib"));
        return Distinct(dirs);
    }

    /// <summary>
    /// The prefixes of the Python environments, in search order: $VIRTUAL_ENV, the environment of
    /// the first python3 on the PATH (its bin/'s parent: a venv when pyvenv.cfg is there, else the
    /// installation's prefix), $CONDA_PREFIX, /usr/local, /usr and ~/.local.
    /// </summary>
    internal static IReadOnlyList<string> PythonPrefixes(SearchEnvironment env)
    {
        var prefixes = new List<string>();
        if (env.GetVariable("VIRTUAL_ENV") is { Length: > 0 } venv) prefixes.Add(venv);
        if (PythonOnPath(env) is { } python) prefixes.Add(python.Prefix);
        if (env.GetVariable("CONDA_PREFIX") is { Length: > 0 } conda) prefixes.Add(conda);
        prefixes.Add("/usr/local");
        prefixes.Add("/usr");
        if (env.Home.Length > 0) prefixes.Add(Path.Combine(env.Home, ".local"));
        return Distinct(prefixes);
    }

    /// <summary>The first python3 on the PATH: its prefix (bin/'s parent) and whether that is a venv (pyvenv.cfg); null when none.</summary>
    internal static (string Prefix, bool IsVenv)? PythonOnPath(SearchEnvironment env)
    {
        if (env.GetVariable("PATH") is not { Length: > 0 } path) return null;
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!env.FileExists(Path.Combine(dir, "python3"))) continue;
            var prefix = Path.GetDirectoryName(dir.TrimEnd('/'));
            if (string.IsNullOrEmpty(prefix)) return null;
            return (prefix, env.FileExists(Path.Combine(prefix, "pyvenv.cfg")));
        }
        return null;
    }

    /// <summary>
    /// The site-packages and dist-packages folders of every python3.* under each prefix's lib/, in
    /// the order of <see cref="PythonPrefixes"/>, the newest Python first within a prefix.
    /// </summary>
    internal static IReadOnlyList<string> SitePackages(SearchEnvironment env)
    {
        var result = new List<string>();
        foreach (var prefix in PythonPrefixes(env))
        {
            var lib = Path.Combine(prefix, "lib");
            if (!env.DirectoryExists(lib)) continue;
            var pythons = env.ListDirectories(lib)
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

    /// <summary>The wheel folders of one site-packages folder for <paramref name="pipPackage"/>: its own, then CUDA 13's and 12's merged ones.</summary>
    internal static IEnumerable<string> WheelFolders(string sitePackages, string pipPackage) =>
        new[] { pipPackage }.Concat(MergedWheelFolders).Select(p => Path.Combine(sitePackages, "nvidia", p, "lib"));

    /// <summary>
    /// Every folder searched for <paramref name="spec"/>, in order (after the file override):
    /// $RLMIXUP_CUDA_LIB_DIR, the standard folders, then the wheel folders of every site-packages.
    /// </summary>
    internal static IReadOnlyList<string> SearchFolders(NativeLibraries.LibrarySpec spec, SearchEnvironment env)
    {
        var dirs = new List<string>();
        if (env.GetVariable(DirVariable) is { Length: > 0 } dir) dirs.Add(dir);
        dirs.AddRange(StandardFolders(env));
        if (spec.PipPackage != null)
            foreach (var sp in SitePackages(env))
                dirs.AddRange(WheelFolders(sp, spec.PipPackage));
        return Distinct(dirs);
    }

    /// <summary>
    /// The ordered list of what is tried for <paramref name="spec"/>: the file named by the
    /// library's override variable (always, even if missing, so the error names it), the sonames
    /// in $RLMIXUP_CUDA_LIB_DIR (always), the bare sonames (the system loader), then each file of
    /// the library in each existing folder, newest soname first (<see cref="Order"/>).
    /// </summary>
    internal static IReadOnlyList<Candidate> Candidates(NativeLibraries.LibrarySpec spec, SearchEnvironment env)
    {
        var list = new List<Candidate>();
        if (env.GetVariable(spec.FileVariable) is { Length: > 0 } file)
            list.Add(new Candidate(file, Path.GetDirectoryName(file) ?? ""));
        var overrideDir = env.GetVariable(DirVariable) is { Length: > 0 } d ? d.TrimEnd('/') : null;
        if (overrideDir != null)
        {
            foreach (var so in spec.Sonames) list.Add(new Candidate(Path.Combine(overrideDir, so), overrideDir));
            foreach (var f in FilesOf(spec, overrideDir, env)) list.Add(new Candidate(f, overrideDir));
        }
        foreach (var so in spec.Sonames) list.Add(new Candidate(so, null));
        foreach (var folder in SearchFolders(spec, env))
        {
            if (folder == overrideDir || !env.DirectoryExists(folder)) continue;
            foreach (var f in FilesOf(spec, folder, env)) list.Add(new Candidate(f, folder));
        }
        return list.DistinctBy(c => c.Path).ToList();
    }

    /// <summary>The files of <paramref name="spec"/>'s library in <paramref name="folder"/> (<c>stem.so</c>, <c>stem.so.N[.M…]</c>), in <see cref="Order"/>.</summary>
    internal static IEnumerable<string> FilesOf(NativeLibraries.LibrarySpec spec, string folder, SearchEnvironment env)
    {
        var names = env.ListFiles(folder).Select(Path.GetFileName).OfType<string>()
            .Where(n => SonameVersion(spec.Stem, n) != null);
        return Order(spec, names).Select(n => Path.Combine(folder, n));
    }

    /// <summary>
    /// The order of one folder's files of a library: the accepted soname majors in the spec's order
    /// (newest first), then any other major, newest first; within a major the soname itself
    /// (<c>libcudnn.so.9</c>) before fuller versions (<c>libcudnn.so.9.6.0</c>, newest first); the
    /// unversioned development link (<c>libcudnn.so</c>) last.
    /// </summary>
    internal static IEnumerable<string> Order(NativeLibraries.LibrarySpec spec, IEnumerable<string> names)
    {
        var majors = spec.SonameMajors.ToList();
        return names
            .Select(n => (Name: n, Version: SonameVersion(spec.Stem, n)!))
            .OrderBy(x => x.Version.Length == 0 ? 2 : majors.Contains(x.Version[0]) ? 0 : 1)
            .ThenBy(x => x.Version.Length == 0 ? 0 : majors.Contains(x.Version[0]) ? majors.IndexOf(x.Version[0]) : -x.Version[0])
            .ThenBy(x => x.Version.Length)
            .ThenByDescending(x => x.Version, VersionComparer.Instance)
            .Select(x => x.Name);
    }

    /// <summary>[] for <c>stem.so</c>, [9, 6, 0] for <c>stem.so.9.6.0</c>; null for any other name.</summary>
    internal static int[]? SonameVersion(string stem, string name)
    {
        string prefix = stem + ".so";
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) return null;
        if (name.Length == prefix.Length) return [];
        if (name[prefix.Length] != '.') return null;
        var parts = name[(prefix.Length + 1)..].Split('.');
        var version = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], System.Globalization.NumberStyles.None, null, out version[i])) return null;
        return version;
    }

    private sealed class VersionComparer : IComparer<int[]>
    {
        public static readonly VersionComparer Instance = new();
        public int Compare(int[]? a, int[]? b)
        {
            a ??= [];
            b ??= [];
            for (int i = 0; i < Math.Min(a.Length, b.Length); i++)
                if (a[i] != b[i]) return a[i].CompareTo(b[i]);
            return a.Length.CompareTo(b.Length);
        }
    }

    internal static List<string> Distinct(List<string> items) =>
        items.Where(s => s.Length > 0).Select(s => s.TrimEnd('/') is { Length: > 0 } t ? t : "/").Distinct(StringComparer.Ordinal).ToList();
}
