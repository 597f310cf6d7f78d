using System.Runtime.InteropServices;
using NUnit.Framework;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Tests;

/// <summary>
/// The engine on a machine without CUDA: the test process itself runs on the software device, so
/// these start the engine as a child process whose library search finds nothing (an empty
/// RLMIXUP_CUDA_LIB_DIR and no system driver). Skipped where the system has a CUDA driver.
/// </summary>
[NonParallelizable]
public class NoCudaTests
{
    private static Dictionary<string, string?> NoCuda(string empty) => new()
    {
        [NativeLibraries.DirVariable] = empty,
        ["RLMIXUP_CUDA_LIB"] = null, ["RLMIXUP_CUBLAS_LIB"] = null, ["RLMIXUP_CUDNN_LIB"] = null, ["LD_LIBRARY_PATH"] = null,
    };

    private static string EmptyFolderOrIgnore()
    {
        if (NativeLibrary.TryLoad("libcuda.so.1", out var h))
        {
            NativeLibrary.Free(h);
            Assert.Ignore("this machine has a CUDA driver: the checks of a machine without one do not apply");
        }
        string dir = Path.Combine(Path.GetTempPath(), "rlmixup-nocuda-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    [Test]
    public void CudaIsOneClearErrorAutoFallsBackAndInfoSaysWhy()
    {
        string empty = EmptyFolderOrIgnore();
        try
        {
            var env = NoCuda(empty);
            var (rc, stdout, stderr) = EngineProcess.Run(env, "info");
            Assert.That(rc, Is.EqualTo(0), stderr);
            Assert.That(stdout.Split('\n').Single(l => l.StartsWith("backend cuda", StringComparison.Ordinal)),
                Does.StartWith("backend cuda not available: no CUDA driver found"));

            (rc, stdout, stderr) = EngineProcess.Run(env, "selftest");
            Assert.That(rc, Is.EqualTo(2));
            Assert.That(stdout, Is.Empty);
            Assert.That(stderr.Trim(), Does.StartWith("error: selftest: the CUDA backend is not available: no CUDA driver found (tried ")
                .And.Contain("libcuda.so.1 (cannot open shared object file").And.Not.Contains("\n"));

            (rc, _, stderr) = EngineProcess.Run(env, "train", "--dataset", "synthetic", "--device", "cuda", "--epochs", "1");
            Assert.That(rc, Is.EqualTo(2));
            Assert.That(stderr.Trim(), Does.StartWith("error: --device cuda: the CUDA backend is not available: no CUDA driver found").And.Contain("libcuda").And.Not.Contains("\n"));

            string run = Path.Combine(empty, "run");
            (rc, stdout, stderr) = EngineProcess.Run(env, "train", "--dataset", "synthetic", "--device", "auto", "--epochs", "1", "--width", "2",
                "--batch", "20", "--max-train-images", "40", "--max-test-images", "20", "--policy", "none", "--out", run, "--no-live");
            Assert.That(rc, Is.EqualTo(0), stderr);
            Assert.That(stdout, Does.StartWith("device: running on the CPU (no CUDA driver found"));
        }
        finally { Directory.Delete(empty, true); }
    }
}
