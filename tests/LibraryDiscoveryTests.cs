using NUnit.Framework;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Tests;

/// <summary>
/// The library search on the layout of the GPU machines, really loaded: a fake PyTorch venv with
/// CUDA 13's pip wheels (cuBLAS in <c>nvidia/cu13/lib</c>, cuDNN in <c>nvidia/cudnn/lib</c>), whose
/// python3 is first on the PATH, VIRTUAL_ENV unset. The libraries are the software device's, linked
/// under the wheels' file names; python3 and the cuDNN sub-libraries are empty stubs, enough for the
/// search and for a companion that fails to load with the loader's reason. The engine runs as a
/// child process, so its search sees only this environment.
/// </summary>
[NonParallelizable]
public class LibraryDiscoveryTests
{
    private string _root = "";

    [SetUp]
    public void Layout()
    {
        SoftwareDevice.RequireOrIgnore();
        _root = Path.Combine(Path.GetTempPath(), "rlmixup-cu13-venv-" + Guid.NewGuid().ToString("N"));
        string venv = Path.Combine(_root, "venv"), sp = Path.Combine(venv, "lib", "python3.12", "site-packages");
        string swdev = Path.Combine(SoftwareDevice.Folder, "libswdev.so");
        Directory.CreateDirectory(Path.Combine(venv, "bin"));
        File.WriteAllText(Path.Combine(venv, "bin", "python3"), "");
        File.WriteAllText(Path.Combine(venv, "pyvenv.cfg"), "home = /usr/bin\ninclude-system-site-packages = false\n");
        foreach (var (folder, name) in new[] { ("cu13", "libcublas.so.13"), ("cu13", "libcublasLt.so.13"), ("cu13", "libnvrtc.so.13"), ("cudnn", "libcudnn.so.9") })
        {
            string dir = Path.Combine(sp, "nvidia", folder, "lib");
            Directory.CreateDirectory(dir);
            // Links, so that every name resolves to one library and one device state.
            File.CreateSymbolicLink(Path.Combine(dir, name), swdev);
        }
        File.WriteAllBytes(Path.Combine(sp, "nvidia", "cudnn", "lib", "libcudnn_graph.so.9"), [0x7F, (byte)'E', (byte)'L', (byte)'F']);
        // The driver comes with the NVIDIA driver, not a wheel: named by its own variable.
        Directory.CreateDirectory(Path.Combine(_root, "driver"));
        File.CreateSymbolicLink(Path.Combine(_root, "driver", "libcuda.so.1"), swdev);
    }

    [TearDown]
    public void Clean()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    private Dictionary<string, string?> Environment(params (string, string?)[] extra)
    {
        var env = new Dictionary<string, string?>
        {
            ["PATH"] = $"{Path.Combine(_root, "venv", "bin")}:{System.Environment.GetEnvironmentVariable("PATH")}",
            ["VIRTUAL_ENV"] = null, ["CONDA_PREFIX"] = null, ["LD_LIBRARY_PATH"] = null,
            [NativeLibraries.DirVariable] = null, ["RLMIXUP_CUBLAS_LIB"] = null, ["RLMIXUP_CUDNN_LIB"] = null,
            ["RLMIXUP_CUDA_LIB"] = Path.Combine(_root, "driver", "libcuda.so.1"),
            ["HOME"] = _root,
        };
        foreach (var (k, v) in extra) env[k] = v;
        return env;
    }

    private string Sp => Path.Combine(_root, "venv", "lib", "python3.12", "site-packages");

    private static string Line(string output, string label) =>
        output.Split('\n').Single(l => l.StartsWith(label.PadRight(13), StringComparison.Ordinal));

    [Test]
    public void EveryLibraryIsFoundInTheWheelsAndLoadedWithVirtualEnvUnset()
    {
        var (rc, stdout, stderr) = EngineProcess.Run(Environment(), "info", "--verbose");
        Assert.That(rc, Is.EqualTo(0), stderr);
        TestContext.Out.WriteLine(stdout);
        Assert.Multiple(() =>
        {
            Assert.That(Line(stdout, "driver"), Does.StartWith("driver       CUDA 12.6 (").And.EndWith("/driver/libcuda.so.1)"));
            Assert.That(Line(stdout, "cublas"), Is.EqualTo($"cublas       cuBLAS 12.6.4 ({Sp}/nvidia/cu13/lib/libcublas.so.13)"));
            Assert.That(Line(stdout, "cublas parts"), Does.StartWith("cublas parts 1 of 1 companions loaded"));
            Assert.That(Line(stdout, "cudnn"), Is.EqualTo($"cudnn        cuDNN 9.6.0 ({Sp}/nvidia/cudnn/lib/libcudnn.so.9)"));
            // NVRTC from CUDA 13's merged folder; the stub sub-library fails with the loader's words; the absent ones are named.
            Assert.That(Line(stdout, "cudnn parts"), Does.StartWith("cudnn parts  1 of 8 companions loaded; failed: ")
                .And.Contain($"libcudnn_graph.so.9 ({Sp}/nvidia/cudnn/lib/libcudnn_graph.so.9: file too short)")
                .And.Contain("libcudnn_adv.so.9 (not found)")
                .And.Contain($"loaded: libnvrtc.so.13 ({Sp}/nvidia/cu13/lib/libnvrtc.so.13)"));
            foreach (var lib in new[] { "driver", "cublas", "cudnn" })
                Assert.That(Line(stdout, lib + " binds"), Does.Match(@"all \d+ bound symbols exported"));
            Assert.That(Line(stdout, "device"), Does.StartWith("device       RL-Mixup software device (CPU simulation): compute capability 9.0"));
            Assert.That(stdout, Does.Contain("backend cuda available: cuda:0"));
        });

        // And the backend works from there: a few checks of the self-test.
        (rc, stdout, stderr) = EngineProcess.Run(Environment(), "selftest", "--filter", "Gemm,Conv2dForward");
        Assert.That(rc, Is.EqualTo(0), stdout + stderr);
        Assert.That(stdout, Does.Match(@"selftest: all \d+ checks passed"));
    }

    [Test]
    public void AWrongMajorVersionIsOneLineNamingBothAndDoesNotHideTheOtherLibraries()
    {
        var (rc, stdout, stderr) = EngineProcess.Run(Environment(("RLMIXUP_SOFTWARE_DEVICE_CUDNN_VERSION", "8907")), "info");
        Assert.That(rc, Is.EqualTo(0), stderr);
        Assert.Multiple(() =>
        {
            Assert.That(Line(stdout, "cudnn"), Does.StartWith("cudnn        cuDNN (libcudnn) not found; tried ")
                .And.Contain($"{Sp}/nvidia/cudnn/lib/libcudnn.so.9 (cuDNN 8.9.7; the engine needs cuDNN 9)")
                .And.Not.Contain("\n"));
            Assert.That(Line(stdout, "driver"), Does.StartWith("driver       CUDA 12.6"), "the driver has its own line");
            Assert.That(Line(stdout, "cublas"), Does.StartWith("cublas       cuBLAS 12.6.4"), "cuBLAS has its own line");
            Assert.That(Line(stdout, "device"), Does.StartWith("device       RL-Mixup software device"), "the device is still described");
            Assert.That(stdout.Split('\n').Single(l => l.StartsWith("backend cuda", StringComparison.Ordinal)),
                Does.StartWith("backend cuda not available: cuDNN (libcudnn) not found; tried "));
        });
        (rc, stdout, stderr) = EngineProcess.Run(Environment(("RLMIXUP_SOFTWARE_DEVICE_CUDNN_VERSION", "8907")), "selftest");
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(stdout, Is.Empty);
        Assert.That(stderr.Trim(), Does.StartWith("error: selftest: the CUDA backend is not available: cuDNN (libcudnn) not found; tried ")
            .And.Contain("the engine needs cuDNN 9").And.Not.Contain("\n").And.Not.Contain("no CUDA device"));
    }

    [Test]
    public void TheBindingsPlanListsTheCandidatesOfThisMachineAndEverySymbol()
    {
        string plan = Path.Combine(_root, "plan.json");
        var (rc, _, stderr) = EngineProcess.Run(Environment(), "info", "--bindings", plan);
        Assert.That(rc, Is.EqualTo(0), stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(plan));
        var libraries = doc.RootElement.GetProperty("libraries").EnumerateArray().ToDictionary(l => l.GetProperty("name").GetString()!);
        Assert.That(libraries.Keys, Is.EquivalentTo(new[] { "driver", "cublas", "cudnn" }));
        var cublas = libraries["cublas"];
        Assert.That(cublas.GetProperty("candidates").EnumerateArray().Select(c => c.GetProperty("path").GetString()),
            Does.Contain($"{Sp}/nvidia/cu13/lib/libcublas.so.13"));
        Assert.That(cublas.GetProperty("version_symbol").GetString(), Is.EqualTo("cublasGetProperty"));
        var symbols = libraries.Values.SelectMany(l => l.GetProperty("symbols").EnumerateArray().Select(s => s.GetString()!)).ToHashSet();
        Assert.That(symbols, Is.EquivalentTo(NativeBindings.All.Select(b => b.EntryPoint)));
        Assert.That(symbols, Does.Contain("cuLaunchKernel").And.Contain("cublasSgemm_v2").And.Contain("cudnnConvolutionForward"));
    }
}
