using System.Diagnostics;
using System.Text.Json.Nodes;
using NUnit.Framework;

namespace RlMixup.Tests;

/// <summary>
/// A full disk in the middle of a run: one clear line, a non-zero exit, and the previous checkpoint
/// intact and resumable to the same result as a run that never hit it. The test mounts a small tmpfs,
/// which needs root on Linux (CI runs as root); elsewhere it is skipped with the reason.
/// </summary>
[NonParallelizable]
public class DiskFullTests
{
    private static string[] Train(string dir) =>
    [
        "train", "--dataset", "synthetic", "--max-train-images", "100", "--max-test-images", "40", "--width", "2", "--epochs", "3",
        "--batch", "20", "--policy", "none", "--device", "cpu", "--threads", "1", "--no-live", "--out", dir,
    ];

    private static (int Code, string Output) Sh(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    private static string Metrics(string dir) => string.Join("\n", File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(line =>
    {
        var o = JsonNode.Parse(line)!.AsObject();
        o.Remove("epoch_seconds");
        o.Remove("images_per_s");
        return o.ToJsonString();
    }));

    [Test]
    public void AFullDiskIsOneLineAndTheLastCheckpointResumes()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("mounting a size-limited tmpfs needs Linux");
        if (Environment.UserName != "root") Assert.Ignore("mounting a size-limited tmpfs needs root (CI runs as root)");
        string root = Path.Combine(Path.GetTempPath(), "rlmixup-full-" + Guid.NewGuid().ToString("N"));
        string whole = root + "-whole", oneEpoch = root + "-one", mount = root + "-tmpfs", moved = root + "-moved";
        try
        {
            // The uninterrupted run, and how many pages one epoch's files take.
            Assert.That(EvalCommandTests.Run(Train(whole)).Code, Is.EqualTo(0));
            var first = Train(oneEpoch);
            first[Array.IndexOf(first, "--epochs") + 1] = "1";
            Assert.That(EvalCommandTests.Run(first).Code, Is.EqualTo(0));
            long pages = Directory.GetFiles(oneEpoch).Sum(f => (new FileInfo(f).Length + 4095) / 4096);
            long state = new FileInfo(Path.Combine(oneEpoch, Engine.Training.Trainer.StateFile)).Length;
            // Room for epoch 1 and a little more, not for a second copy of the checkpoint beside the first.
            long size = (pages + 2) * 4096 + state / 2 / 4096 * 4096;
            Directory.CreateDirectory(mount);
            var (code, output) = Sh("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", mount);
            if (code != 0) Assert.Ignore($"cannot mount a tmpfs here: {output.Trim()}");
            try
            {
                string dir = Path.Combine(mount, "run");
                var (exit, stdout, err) = EvalCommandTests.Run(Train(dir));
                Assert.That(exit, Is.EqualTo(1), stdout + err);
                var lines = err.Trim().Split('\n');
                Assert.That(lines, Has.Length.EqualTo(1), err);
                Assert.That(lines[0], Does.StartWith("error: the disk is full").And.Contain("the last checkpoint").And.Contain($"rlmixup resume {dir}"));
                Assert.That(Directory.GetFiles(dir, "*.tmp*").Concat(Directory.GetFiles(dir, ".*.tmp")), Is.Empty, "no temporary file left behind");
                Sh("cp", "-a", dir, moved);
            }
            finally { Sh("umount", mount); }

            // On a disk with room, the run resumes from its last checkpoint and ends as if nothing had happened.
            var (resumed, text, resumeErr) = EvalCommandTests.Run("resume", moved, "--no-live");
            Assert.That(resumed, Is.EqualTo(0), text + resumeErr);
            Assert.That(Metrics(moved), Is.EqualTo(Metrics(whole)));
        }
        finally
        {
            foreach (var d in new[] { whole, oneEpoch, mount, moved }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }
}
