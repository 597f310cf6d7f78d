using System.Reflection;

namespace RlMixup.Core.Cuda;

/// <summary>
/// The PTX of the CUDA kernels, one module per <c>src/Kernels/&lt;name&gt;.cu</c>, embedded in this
/// assembly as the resource <c>ptx/&lt;name&gt;.ptx</c> (see <c>src/Core/Ptx.targets</c>: compiled by
/// clang when the build machine has it, otherwise the committed copy from <c>src/Core/Cuda/ptx/</c>).
/// The text is what <c>cuModuleLoadData</c> takes; the driver JIT-compiles it for the GPU at hand.
/// </summary>
public static class PtxModules
{
    private const string Prefix = "ptx/";
    private const string Suffix = ".ptx";

    private static readonly Assembly Owner = typeof(PtxModules).Assembly;

    /// <summary>The embedded module names (the .cu file names without extension), sorted ordinally.</summary>
    public static IReadOnlyList<string> Names { get; } = Owner.GetManifestResourceNames()
        .Where(r => r.StartsWith(Prefix, StringComparison.Ordinal) && r.EndsWith(Suffix, StringComparison.Ordinal))
        .Select(r => r[Prefix.Length..^Suffix.Length])
        .Order(StringComparer.Ordinal)
        .ToArray();

    /// <summary>The PTX text of module <paramref name="name"/> (e.g. "mix" for src/Kernels/mix.cu).</summary>
    /// <exception cref="ArgumentException">No module of that name is embedded.</exception>
    public static string Load(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        using var stream = Owner.GetManifestResourceStream(Prefix + name + Suffix)
            ?? throw new ArgumentException(
                $"no embedded PTX module '{name}' (resource {Prefix}{name}{Suffix}); embedded modules: " +
                (Names.Count == 0 ? "none" : string.Join(", ", Names)) +
                $". Modules come from src/Kernels/<name>.cu at build time.", nameof(name));
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
