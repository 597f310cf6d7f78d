using NUnit.Framework;
using RlMixup.Core.Cpu;

namespace RlMixup.Tests;

/// <summary>
/// The CPU backend picks its GEMM micro-kernel at run time (AVX-512 where the CPU has it, AVX2
/// otherwise). A run must not depend on that choice: the same RL-Mixup training, once as this CPU
/// runs it and once in a child process with AVX-512 turned off, ends with the same metrics and
/// the same weights, bit for bit.
/// </summary>
[NonParallelizable]
public class CpuKernelReproducibilityTests
{
    [Test]
    public void ARunGivesTheSameBitsWithAndWithoutAvx512()
    {
        if (Gemm.Isa != GemmIsa.Avx512) Assert.Ignore($"this CPU has no AVX-512 (the engine uses {Gemm.Isa}); GemmTests cover the AVX2 kernel");
        string wide = TempDir(), narrow = TempDir();
        try
        {
            string[] Args(string dir) => ["train", "--dataset", "synthetic", "--max-train-images", "200", "--max-test-images", "40",
                "--width", "8", "--epochs", "2", "--batch", "50", "--agent-conv", "8,8,8", "--agent-features", "16",
                "--ppo-epochs", "1", "--ppo-rollout-epochs", "1", "--reward-interval", "2", "--seed", "5",
                "--device", "cpu", "--threads", "2", "--no-live", "--no-tensorboard", "--out", dir];
            var (code, _, err) = EngineProcess.Run(new Dictionary<string, string?>(), Args(wide));
            Assert.That(code, Is.EqualTo(0), err);
            (code, var stdout, err) = EngineProcess.Run(new Dictionary<string, string?> { ["DOTNET_EnableAVX512"] = "0" }, "info");
            Assert.That(stdout, Does.Contain("AVX2+FMA 6×16"), "the child process really runs the AVX2 kernel");
            (code, _, err) = EngineProcess.Run(new Dictionary<string, string?> { ["DOTNET_EnableAVX512"] = "0" }, Args(narrow));
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(ExperimentTests.Metrics(narrow), Is.EqualTo(ExperimentTests.Metrics(wide)));
            var (a, b) = (Core.IO.Safetensors.Read(Path.Combine(wide, "model.safetensors")), Core.IO.Safetensors.Read(Path.Combine(narrow, "model.safetensors")));
            foreach (var (name, t) in a.Tensors.Where(kv => kv.Value.Dtype == "F32"))
                Assert.That(b.Tensors[name].ToFloats(), Is.EqualTo(t.ToFloats()), name);
        }
        finally
        {
            foreach (var d in new[] { wide, narrow }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    private static string TempDir() => Path.Combine(Path.GetTempPath(), "rlmixup-isa-" + Guid.NewGuid().ToString("N"));
}
