using System.Reflection;

namespace RlMixup.Core.Cuda;

/// <summary>
/// The PTX of the CUDA kernels, one module per <c>src/Kernels/&lt;name&gt;.cu</c>, embedded in this
/// assembly as the resource <c>ptx/&lt;name&gt;.ptx</c>: the committed copy from <c>src/Core/Cuda/ptx/</c>,
/// the PTX CI assembles with ptxas (see <c>src/Core/Ptx.targets</c>).
/// The text is what <c>cuModuleLoadData</c> takes; the driver JIT-compiles it for the GPU at hand.
/// </summary>
public static class PtxModules
{
    private const string Prefix = "ptx/";
    private const string Suffix = ".ptx";

    private static readonly Assembly Owner = typeof(PtxModules).Assembly;

    /// <summary>
    /// The architecture the PTX is generated for (<c>.target sm_80</c>, clang's --cuda-gpu-arch): the
    /// driver can JIT it for this compute capability and later ones, not for older GPUs.
    /// </summary>
    public static ComputeCapability Target { get; } = new(8, 0);

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
