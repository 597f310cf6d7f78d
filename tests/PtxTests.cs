using System.Text.RegularExpressions;
using NUnit.Framework;
using RlMixup.Core.Cuda;

namespace RlMixup.Tests;

/// <summary>
/// Every src/Kernels/*.cu is embedded in RlMixup.Core as PTX (src/Core/Ptx.targets), and that PTX
/// has an entry for each extern "C" __global__ kernel the source declares.
/// </summary>
public partial class PtxTests
{
    /// <summary>src/Kernels of the checkout above the test binaries, or null when tests run outside one.</summary>
    private static string? KernelDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RlMixup.sln")))
                return Path.Combine(dir.FullName, "src", "Kernels");
        return null;
    }

    private static string KernelDirOrIgnore()
    {
        var dir = KernelDir();
        if (dir == null) Assert.Ignore("RlMixup.sln is not above the test directory: cannot find src/Kernels");
        return dir!;
    }

    private static string[] SourceNames(string kernelDir) => !Directory.Exists(kernelDir) ? [] :
        Directory.GetFiles(kernelDir, "*.cu").Select(f => Path.GetFileNameWithoutExtension(f)!).Order(StringComparer.Ordinal).ToArray();

    public static IEnumerable<string> KernelSources() => KernelDir() is { } dir ? SourceNames(dir) : [];

    [Test]
    public void EmbeddedModulesAreExactlyTheKernelSources()
    {
        var sources = SourceNames(KernelDirOrIgnore());
        Assert.That(PtxModules.Names, Is.EqualTo(sources),
            "embedded ptx/<name>.ptx resources must match src/Kernels/*.cu one to one");
    }

    [TestCaseSource(nameof(KernelSources))]
    public void ModuleIsPtxWithAnEntryPerKernel(string name)
    {
        var source = File.ReadAllText(Path.Combine(KernelDirOrIgnore(), name + ".cu"));
        var ptx = PtxModules.Load(name);

        // Header: "//" comment lines (and blank lines), then the .version directive.
        var firstDirective = ptx.Split('\n').Select(l => l.Trim()).First(l => l.Length > 0 && !l.StartsWith("//", StringComparison.Ordinal));
        Assert.That(ptx, Does.StartWith("//"), $"{name}.ptx should open with the generator's comment");
        Assert.That(firstDirective, Does.StartWith(".version "), $"{name}.ptx: first directive after the comments");

        var kernels = KernelNames(source);
        Assert.That(kernels, Is.Not.Empty, $"{name}.cu declares no extern \"C\" __global__ kernel");
        Assert.Multiple(() =>
        {
            foreach (var kernel in kernels)
                Assert.That(Regex.IsMatch(ptx, $@"\.entry\s+{Regex.Escape(kernel)}\s*\("), Is.True,
                    $"{name}.ptx has no '.entry {kernel}' (is {name}.ptx stale? scripts/ptx.sh update)");
        });
    }

    [Test]
    public void LoadNamesTheMissingModule()
    {
        var ex = Assert.Throws<ArgumentException>(() => PtxModules.Load("no_such_module"));
        Assert.That(ex!.Message, Does.Contain("no_such_module"));
    }

    [Test]
    public void KernelNamesAreReadFromDeclarations()
    {
        const string source = """
            // extern "C" __global__ void commented_out(float* x);
            /* extern "C" __global__ void also_commented(float* x); */
            extern "C" __global__ void plain_forward(float* out, const float* inp, int n) { }
            extern "C" __global__ __launch_bounds__(256, 2) void bounded_backward(float* dinp) { }
            extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) bounds_after_void(float* masks,  // (B,cells)
                                                                              int n) { }
            extern "C"
            __global__ void
            split_lines(int n) { }
            __device__ float helper(float x) { return x; }
            """;
        Assert.That(KernelNames(source), Is.EqualTo(new[] { "plain_forward", "bounded_backward", "bounds_after_void", "split_lines" }));
    }

    /// <summary>Names of the extern "C" __global__ kernels declared in a .cu source (comments ignored).</summary>
    internal static List<string> KernelNames(string source)
    {
        var code = Comments().Replace(source, " ");
        return KernelDeclaration().Matches(code).Select(m => m.Groups[1].Value).Distinct().ToList();
    }

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex Comments();

    // extern "C" __global__ [attributes] void [__launch_bounds__(...)] name(
    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+(?:[^;{}]*?\s)?void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(")]
    private static partial Regex KernelDeclaration();
}
