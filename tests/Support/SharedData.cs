using NUnit.Framework;

namespace RlMixup.Tests;

/// <summary>Finds the read-only data folder that sits beside the project (../shared/data).</summary>
public static class SharedData
{
    /// <summary>The CIFAR-10 subset folder, or Assert.Ignore with the reason when it is absent.</summary>
    public static string Cifar10SubsetOrIgnore()
    {
        var env = Environment.GetEnvironmentVariable("RLMIXUP_CIFAR10_SUBSET");
        if (!string.IsNullOrEmpty(env) && File.Exists(Path.Combine(env, "data_batch_1.bin"))) return env;
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir != null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "RlMixup.sln"))) continue;
            var candidate = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "cifar10-subset"));
            if (File.Exists(Path.Combine(candidate, "data_batch_1.bin"))) return candidate;
            Assert.Ignore($"CIFAR-10 subset not found at {candidate} (set RLMIXUP_CIFAR10_SUBSET to its folder to run this test)");
        }
        Assert.Ignore("CIFAR-10 subset not found: RlMixup.sln is not above the test directory and RLMIXUP_CIFAR10_SUBSET is unset");
        return "";
    }
}
