using NUnit.Framework;
using RlMixup.Engine;

namespace RlMixup.Tests;

/// <summary>The train command end to end: a tiny run writes every output; bad input gives one line and exit code 2.</summary>
[NonParallelizable]
public class CliTrainTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (Cli.Run(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    [Test]
    public void TinySyntheticRunWritesTheRunFolder()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlmixup-cli-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (code, output, err) = Run("train", "--dataset", "synthetic", "--epochs", "2", "--width", "2", "--batch", "20",
                "--max-train-images", "100", "--max-test-images", "40", "--policy", "random", "--device", "cpu", "--out", dir);
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(output, Does.Contain("epoch 2/2").And.Contain("run folder"));
            foreach (var f in new[] { "config.json", "metrics.jsonl", "curves.png", "actions.png", "model.safetensors" })
                Assert.That(File.Exists(Path.Combine(dir, f)), f);
            Assert.That(File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")), Has.Length.EqualTo(2));
            Assert.That(Directory.GetFiles(dir, "*.tmp*"), Is.Empty, "no temporary files left behind");
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    /// <summary>A missing CIFAR is fetched as torchvision's download=True does; with RLMIXUP_OFFLINE=1 it is one line instead, and nothing is created.</summary>
    [Test, NonParallelizable]
    public void AMissingDatasetIsFetchedUnlessOffline()
    {
        string root = Path.Combine(Path.GetTempPath(), "rlmixup-missing-" + Guid.NewGuid().ToString("N"));
        string? old = Environment.GetEnvironmentVariable("RLMIXUP_OFFLINE");
        Environment.SetEnvironmentVariable("RLMIXUP_OFFLINE", "1");
        try
        {
            var (code, _, err) = Run("train", "--dataset", "cifar10", "--data", root, "--epochs", "1");
            Assert.That((code, err.Trim()), Is.EqualTo((2, $"error: cifar10 is not in {root} and downloads are off (RLMIXUP_OFFLINE); put the dataset there, or unset RLMIXUP_OFFLINE to fetch it")));
            Assert.That(Directory.Exists(root), Is.False);
        }
        finally { Environment.SetEnvironmentVariable("RLMIXUP_OFFLINE", old); }
    }

    [TestCase("train --epochs 0", "--epochs 0: must be at least 1")]
    [TestCase("train --policy best", "--policy")]
    [TestCase("train --device tpu", "--device")]
    [TestCase("train --dataset synthetic --alpha -1", "--alpha -1: must be a positive number")]
    [TestCase("train --dataset synthetic --policy cutmix --reward grad-sim", "--reward grad-sim: grad-sim rewards the rl policy only, not cutmix")]
    [TestCase("cifar10 --policy none --reward grad-sim", "--reward grad-sim: grad-sim rewards the rl policy only, not none")]
    [TestCase("train --reward loss", "--reward")]
    public void BadInputGivesOneErrorLineAndExitCode2(string args, string expected)
    {
        var (code, _, err) = Run(args.Split(' '));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain(expected));
        Assert.That(err, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public void UnwritableOutIsRefused()
    {
        string file = Path.GetTempFileName(); // a file where a folder is expected
        try
        {
            var (code, _, err) = Run("train", "--dataset", "synthetic", "--epochs", "1", "--out", Path.Combine(file, "run"));
            Assert.That(code, Is.EqualTo(2));
            Assert.That(err, Does.StartWith("error: --out"));
        }
        finally { File.Delete(file); }
    }

    [Test]
    public void ADivergingRunStopsAtOnceWithOneLine()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlmixup-diverge-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (code, output, err) = Run("train", "--dataset", "synthetic", "--epochs", "3", "--width", "2", "--batch", "20", "--max-train-images", "100",
                "--max-test-images", "20", "--policy", "none", "--device", "cpu", "--lr-max", "1e30", "--step-stats", "1", "--out", dir, "--no-live");
            Assert.That(code, Is.EqualTo(1));
            Assert.That(err.Trim(), Does.StartWith("error: epoch 1, step ").And.Contain("training diverged").And.Contain("--lr-max, 1E+30")
                .And.Not.Contains("\n").And.Not.Contains("   at "));
            Assert.That(output, Does.Not.Contain("epoch 1/3:"), "stopped in the first epoch, not at its end");
            foreach (var line in File.ReadAllLines(Path.Combine(dir, "steps.jsonl")))
                Assert.DoesNotThrow(() => System.Text.Json.JsonDocument.Parse(line).Dispose(), "step statistics stay valid JSON (null for inf and NaN)");
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
