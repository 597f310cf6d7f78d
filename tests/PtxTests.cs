using NUnit.Framework;
using RlMixup.Core.Cuda;

namespace RlMixup.Tests;

/// <summary>
/// Every src/Kernels/*.cu is embedded in RlMixup.Core as PTX (src/Core/Ptx.targets); KernelCatalogTests
/// holds the PTX's entries to the kernels of the sources.
/// </summary>
public class PtxTests
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

    [Test]
    public void EmbeddedModulesAreExactlyTheKernelSources()
    {
        var sources = SourceNames(KernelDirOrIgnore());
        Assert.That(PtxModules.Names, Is.EqualTo(sources),
            "embedded ptx/<name>.ptx resources must match src/Kernels/*.cu one to one");
    }

    [Test]
    public void EveryModuleTargetsTheArchitectureTheBackendRequires()
    {
        var t = PtxModules.Target;
        foreach (var name in PtxModules.Names)
            Assert.That(PtxModules.Load(name), Does.Contain($"\n.target sm_{t.Major}{t.Minor}\n"), name);
    }

    [Test]
    public void LoadNamesTheMissingModule()
    {
        var ex = Assert.Throws<ArgumentException>(() => PtxModules.Load("no_such_module"));
        Assert.That(ex!.Message, Does.Contain("no_such_module"));
    }
}
