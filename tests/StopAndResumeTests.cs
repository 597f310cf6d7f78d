using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using NUnit.Framework;
using RlMixup.Core.Cpu;
using RlMixup.Core.IO;
using RlMixup.Engine;
using RlMixup.Engine.Data;
using RlMixup.Engine.Training;
using RlMixup.Models;
using RlMixup.Ppo;

using RlMixup.Engine.Runs;
using RlMixup.Engine.Commands;

namespace RlMixup.Tests;

/// <summary>
/// Stopping a run after any step (the Ctrl-C path, driven by a cancellation token) and resuming it:
/// the result is bit for bit the run that was never stopped. Also the per-step progress snapshots,
/// the plain progress lines and a real SIGINT sent to the CLI process.
/// </summary>
[NonParallelizable]
public partial class StopAndResumeTests
{
    // 100 images of batch 20: 5 steps per epoch; the rollout is 10 steps, so the PPO update is global step 10;
    // a reward every 3 steps puts rewards inside epochs.
    private static readonly RunSpec Tiny = new()
    {
        Epochs = 3, Batch = 20, Model = new ModelSpec { Width = 2 }, Seed = 7, Reward = new RewardSpec { Interval = 3 },
        Data = new DataSpec { Dataset = "synthetic", MaxTrainImages = 100, MaxTestImages = 40 }, Device = new DeviceSpec { Name = "cpu" },
        Agent = new AgentSpec { Minibatch = 10, NEpochs = 2, Conv = [8, 8, 8], Features = 16, PolicyHidden = [8], ValueHidden = [8] },
    };

    private static Dataset Data() => SyntheticData.Generate(train: 100, test: 40, classes: 10, seed: Tiny.Seed);

    private static string TempDir() => Path.Combine(Path.GetTempPath(), "rlmixup-stop-" + Guid.NewGuid().ToString("N"));

    private string _whole = "";

    [OneTimeSetUp]
    public void UninterruptedRun()
    {
        _whole = TempDir();
        Assert.That(Train(_whole, resume: false, stopAfterGlobalStep: null), Is.False);
    }

    [OneTimeTearDown]
    public void RemoveUninterruptedRun()
    {
        if (Directory.Exists(_whole)) Directory.Delete(_whole, true);
    }

    /// <summary>Trains (or resumes) the tiny run in <paramref name="dir"/>, asking it to stop once global step s is done; true when it stopped early.</summary>
    private static bool Train(string dir, bool resume, long? stopAfterGlobalStep, RunSpec? fresh = null)
    {
        using var b = new CpuBackend(2);
        using var stop = new CancellationTokenSource();
        var (config, data) = resume ? ResumeCommand.Load(dir) : (fresh ?? Tiny, Data());
        var run = new TrainingRun(b, data, config, dir, TextWriter.Null)
        {
            Stop = stop.Token,
            Progress = p => { if (p.GlobalStep == stopAfterGlobalStep) stop.Cancel(); },
        };
        if (resume) run.Resume(); else run.Run();
        return run.Interrupted;
    }

    /// <summary>metrics.jsonl without the timing fields.</summary>
    private static string[] Metrics(string dir) => [.. File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(line =>
    {
        var o = JsonNode.Parse(line)!.AsObject();
        o.Remove("epoch_seconds");
        o.Remove("images_per_s");
        return o.ToJsonString();
    })];

    /// <summary>An I64 entry of the run's training state.</summary>
    private static long Entry(string dir, string name) => CheckpointReader.Read(Path.Combine(dir, Trainer.StateFile)).I64(name);

    // Global steps after which the run is stopped, one stop per run segment, then resumed to the end.
    [TestCase(new long[] { 1 }, TestName = "after the first step of epoch 1")]
    [TestCase(new long[] { 3 }, TestName = "mid epoch 1, just after a reward")]
    [TestCase(new long[] { 5 }, TestName = "after the last step of epoch 1 (an epoch-boundary checkpoint)")]
    [TestCase(new long[] { 9 }, TestName = "mid-rollout, one step before the PPO update")]
    [TestCase(new long[] { 2, 7, 12, 14 }, TestName = "stopped four times, in every epoch")]
    public void StoppedAfterAnyStepAndResumedEqualsTheUninterruptedRunBitForBit(long[] stops)
    {
        string dir = TempDir();
        try
        {
            bool resume = false;
            foreach (long s in stops)
            {
                Assert.That(Train(dir, resume, s), Is.True, $"a stop after global step {s} ends the run early");
                long epochsDone = s / 5, stepsInto = s % 5;
                Assert.That(Trainer.StateEpoch(dir), Is.EqualTo(epochsDone));
                Assert.That(Entry(dir, "trainer.step"), Is.EqualTo(s));
                Assert.That(Entry(dir, "checkpoint.format"), Is.EqualTo(stepsInto == 0 ? 1 : 2));
                if (stepsInto > 0) Assert.That(Entry(dir, "epoch.steps_done"), Is.EqualTo(stepsInto));
                Assert.That(File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")), Has.Length.EqualTo(epochsDone));
                resume = true;
            }
            Assert.That(Train(dir, resume: true, stopAfterGlobalStep: null), Is.False);

            Assert.That(Metrics(dir), Has.Length.EqualTo(3));
            Assert.That(Metrics(dir), Is.EqualTo(Metrics(_whole)).AsCollection);
            Assert.That(File.ReadAllBytes(Path.Combine(dir, Trainer.StateFile)), Is.EqualTo(File.ReadAllBytes(Path.Combine(_whole, Trainer.StateFile))),
                "the whole final state: classifier, momentum, Rng, reward and agent");
            Assert.That(File.ReadAllBytes(Path.Combine(dir, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(_whole, "model.safetensors"))));
            Assert.That(Directory.GetFiles(dir, "*.tmp*"), Is.Empty);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void AGradSimRunStoppedMidEpochAndResumedEqualsTheUninterruptedRun()
    {
        // grad-sim rewards every step, so the checkpoint after step 7 holds a partial reward sum of 2 steps.
        var gradSim = Tiny with { Epochs = 2, Reward = Tiny.Reward with { Kind = RewardKind.GradSim } };
        string whole = TempDir(), dir = TempDir();
        try
        {
            Assert.That(Train(whole, resume: false, stopAfterGlobalStep: null, gradSim), Is.False);
            Assert.That(Train(dir, resume: false, stopAfterGlobalStep: 7, gradSim), Is.True);
            Assert.That(Entry(dir, "epoch.rewards"), Is.EqualTo(2));
            Assert.That(Train(dir, resume: true, stopAfterGlobalStep: null), Is.False);
            Assert.That(Metrics(dir), Has.Length.EqualTo(2));
            Assert.That(Metrics(dir), Is.EqualTo(Metrics(whole)).AsCollection);
            Assert.That(File.ReadAllBytes(Path.Combine(dir, Trainer.StateFile)), Is.EqualTo(File.ReadAllBytes(Path.Combine(whole, Trainer.StateFile))));
        }
        finally
        {
            foreach (var d in new[] { whole, dir }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Test]
    public void AMidEpochCheckpointOutOfRangeIsRefusedWithTheFileNamed()
    {
        string dir = TempDir();
        try
        {
            Assert.That(Train(dir, resume: false, stopAfterGlobalStep: 7), Is.True);
            string path = Path.Combine(dir, Trainer.StateFile);
            var file = Safetensors.Read(path);
            var tensors = file.Tensors.Values.Select(t => t.Name == "epoch.steps_done" ? SafeTensor.FromInt64(t.Name, [1], [9]) : t).ToList();
            Safetensors.WriteAtomic(path, tensors, file.Metadata);
            var e = Assert.Throws<InvalidDataException>(() => Train(dir, resume: true, stopAfterGlobalStep: null))!;
            Assert.That(e.Message, Does.Contain(path).And.Contain("step 9 of epoch 2"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void EveryStepPublishesAProgressSnapshot()
    {
        var seen = new List<StepProgress>();
        using var b = new CpuBackend(2);
        using var trainer = new Trainer(b, Data(), Tiny with { Epochs = 2 }) { Progress = seen.Add };
        var first = trainer.RunEpoch(1);
        var second = trainer.RunEpoch(2);
        Assert.That(seen.Select(p => p.GlobalStep), Is.EqualTo(Enumerable.Range(1, 10).Select(i => (long)i)).AsCollection);
        Assert.That(seen.Select(p => (p.Epoch, p.Step)), Is.EqualTo(Enumerable.Range(0, 10).Select(i => (1 + i / 5, 1 + i % 5))).AsCollection);
        Assert.That(seen.All(p => p.Epochs == 2 && p.StepsPerEpoch == 5), Is.True);
        Assert.That(seen.Select(p => p.ActionHistogram.Sum()), Is.EqualTo(seen.Select(p => p.Step * Tiny.Batch)).AsCollection,
            "one action per image so far in the epoch");
        Assert.That(seen[4].ActionHistogram, Is.EqualTo(first.ActionHistogram).AsCollection);
        Assert.That(seen[4].TrainLoss, Is.EqualTo(first.TrainLoss), "the last snapshot's running loss is the epoch's");
        Assert.That(seen[9].TrainLoss, Is.EqualTo(second.TrainLoss));
        Assert.That(seen.Take(5).All(p => double.IsNaN(p.LastTestTop1)), Is.True, "no test top-1 before the first epoch ends");
        Assert.That(seen.Skip(5).All(p => p.LastTestTop1 == first.TestTop1), Is.True);
        Assert.That(seen[0].ActionHistogram, Is.Not.SameAs(seen[1].ActionHistogram), "each snapshot owns its copy");
    }

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (Engine.Cli.Run(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    [Test]
    public void RedirectedOutputGetsPlainProgressLines()
    {
        string dir = TempDir();
        try
        {
            // 200 images of batch 20: 10 steps per epoch, a line every step but the last, then the epoch's line.
            var (code, output, err) = Cli("train", "--dataset", "synthetic", "--epochs", "1", "--width", "2", "--batch", "20",
                "--max-train-images", "200", "--max-test-images", "40", "--policy", "cutmix", "--device", "cpu", "--out", dir);
            Assert.That(code, Is.EqualTo(0), err);
            var lines = output.Split('\n').Where(l => l.StartsWith("  epoch 1/1 step ", StringComparison.Ordinal)).ToList();
            Assert.That(lines.Select(l => l.Split(' ')[5]), Is.EqualTo(Enumerable.Range(1, 9).Select(i => $"{i}/10")).AsCollection);
            Assert.That(lines[2], Does.Contain("(global step 3): loss ").And.Contain(", lr ").And.Contain(" images/s, elapsed "));
            Assert.That(output, Does.Contain("epoch 1/1: loss"));
            Assert.That(output, Does.Not.Contain("\u001b["), "no terminal control sequences when redirected");
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    /// <summary>Whether this process ignores SIGINT (Linux: bit 1 of SigIgn in /proc/self/status); a child started from it inherits that.</summary>
    private static bool SigintIgnored()
    {
        if (!OperatingSystem.IsLinux()) return false;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line != null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << 1)) != 0;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>
    /// Starts the built engine on a 3-epoch synthetic run of 2000 images and sends SIGINT after the second
    /// progress line; with <paramref name="twice"/>, a second SIGINT as soon as the engine has said on
    /// stderr that it is stopping (so that the two signals are not merged into one by the kernel).
    /// </summary>
    private static (int ExitCode, List<string> Output, string Err, int ProgressLines) TrainAndInterrupt(string dir, int batch, int width, bool twice)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) Assert.Ignore("sending SIGINT needs a POSIX system");
        if (SigintIgnored()) Assert.Ignore("SIGINT is ignored in this process (e.g. started with & from a non-interactive shell), and the engine would inherit that");
        string dll = typeof(Engine.Cli).Assembly.Location;
        if (!File.Exists(Path.ChangeExtension(dll, ".runtimeconfig.json"))) Assert.Ignore($"{dll} has no runtimeconfig beside it: it cannot be started on its own");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "train", "--dataset", "synthetic", "--epochs", "3", "--width", $"{width}", "--batch", $"{batch}",
            "--max-train-images", "2000", "--max-test-images", "40", "--policy", "random", "--device", "cpu", "--out", dir }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        using var stopping = new ManualResetEventSlim();
        var err = Task.Run(() =>
        {
            var text = new System.Text.StringBuilder();
            while (p.StandardError.ReadLine() is { } line)
            {
                text.AppendLine(line);
                if (line.StartsWith("stopping after the current step", StringComparison.Ordinal)) stopping.Set();
            }
            return text.ToString();
        });
        var output = new List<string>();
        int progressLines = 0;
        while (p.StandardOutput.ReadLine() is { } line)
        {
            output.Add(line);
            if (!line.StartsWith("  epoch ", StringComparison.Ordinal) || ++progressLines != 2) continue;
            Assert.That(Kill(p.Id, 2), Is.EqualTo(0), "kill(pid, SIGINT)");
            if (!twice) continue;
            Assert.That(stopping.Wait(120_000), Is.True, "the engine says it is stopping");
            Assert.That(Kill(p.Id, 2), Is.EqualTo(0), "the second kill(pid, SIGINT)");
        }
        if (!p.WaitForExit(120_000)) { p.Kill(); Assert.Fail("the process did not end after SIGINT"); }
        return (p.ExitCode, output, err.Result, progressLines);
    }

    [Test]
    public void SigintStopsTheProcessWithACheckpointExitCode130AndResumeFinishes()
    {
        string dir = TempDir();
        try
        {
            var (exit, output, stderr, progressLines) = TrainAndInterrupt(dir, batch: 20, width: 2, twice: false);
            string stdout = string.Join("\n", output);
            Assert.That(progressLines, Is.GreaterThanOrEqualTo(2), stdout + stderr);
            Assert.That(exit, Is.EqualTo(130), stdout + stderr);
            Assert.That(output.Count(l => l.Contains($"continue with: rlmixup resume {dir}")), Is.EqualTo(1), stdout);
            Assert.That(output[^1], Does.StartWith("stopped ").And.Contain(Trainer.StateFile));
            Assert.That(stdout + stderr, Does.Not.Contain("   at ").And.Not.Contain("Exception"), "no stack trace");
            Assert.That(stderr, Does.Contain("stopping after the current step"));
            Assert.That(output, Has.None.StartWith("done in"));
            int done = Trainer.StateEpoch(dir) ?? -1;
            Assert.That(done, Is.InRange(0, 2));

            var (code, resumed, resumeErr) = Cli("resume", dir, "--no-live");
            Assert.That(code, Is.EqualTo(0), resumeErr);
            Assert.That(resumed, Does.Contain("resuming ").And.Contain("done in"));
            Assert.That(File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!["epoch"]!.GetValue<int>()),
                Is.EqualTo(new[] { 1, 2, 3 }).AsCollection);
            Assert.That(Trainer.StateEpoch(dir), Is.EqualTo(3));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void ASecondSigintEndsTheProcessAtOnceAndLeavesNoDamagedFile()
    {
        string dir = TempDir();
        try
        {
            // 10 steps of 200 images per epoch at width 4: a step takes far longer than the round trip of the
            // first signal's message, so the second signal arrives while the step after the second is running.
            var (exit, output, stderr, _) = TrainAndInterrupt(dir, batch: 200, width: 4, twice: true);
            string all = string.Join("\n", output) + stderr;
            Assert.That(exit, Is.EqualTo(130), "ended by SIGINT (128 + 2)\n" + all);
            Assert.That(all, Does.Not.Contain("   at ").And.Not.Contain("Exception"), "no stack trace");
            Assert.That(output, Has.None.StartWith("stopped ").And.None.StartWith("done in"), "it ended before finishing the step\n" + all);
            Assert.That(Trainer.StateEpoch(dir), Is.Null, "no checkpoint: the first epoch did not end");
            var files = Directory.GetFiles(dir).Select(Path.GetFileName).ToList();
            Assert.That(files.Count(f => f!.StartsWith("events.out.tfevents.", StringComparison.Ordinal)), Is.EqualTo(1), "the TensorBoard file, opened at the start");
            Assert.That(files.Where(f => !f!.StartsWith("events.out.tfevents.", StringComparison.Ordinal)),
                Is.EquivalentTo(new[] { "config.json", "metrics.jsonl", RunLock.LockFile, RunLock.OwnerFile }),
                "nothing half-written besides the files the run opened at its start");
            var (code, _, resumeErr) = Cli("resume", dir, "--no-live");
            Assert.That(code, Is.EqualTo(2));
            Assert.That(resumeErr, Does.Contain("no checkpoint"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
