using System.Diagnostics;
using System.Text.Json.Nodes;
using NUnit.Framework;
using RlMixup.Engine.Runs;

namespace RlMixup.Tests;

/// <summary>`experiment`: a tiny grid of policies and ablations × seeds, its results, and resuming it after a kill -9.</summary>
[NonParallelizable]
public class ExperimentTests
{
    /// <summary>A grid of 3 arms × 2 seeds on tiny synthetic data: 3 epochs of 4 steps per run, a tiny agent.</summary>
    private static string[] Grid(string dir) =>
    [
        "experiment", "--policies", "none,input-mixup", "--ablations", "reward-raw", "--seeds", "3,4", "--dataset", "synthetic",
        "--max-train-images", "200", "--max-test-images", "60", "--width", "2", "--epochs", "3", "--batch", "50",
        "--agent-conv", "4,4,4", "--agent-features", "8", "--agent-policy-hidden", "4", "--agent-value-hidden", "4", "--ppo-epochs", "1",
        "--ppo-rollout-epochs", "1", "--reward-interval", "2", "--device", "cpu", "--threads", "1", "--no-live", "--out", dir,
    ];

    private static string TempDir() => Path.Combine(Path.GetTempPath(), "rlmixup-experiment-" + Guid.NewGuid().ToString("N"));

    /// <summary>metrics.jsonl without the timing fields.</summary>
    internal static string Metrics(string run) => string.Join("\n", File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(line =>
    {
        var o = JsonNode.Parse(line)!.AsObject();
        o.Remove("epoch_seconds");
        o.Remove("images_per_s");
        return o.ToJsonString();
    }));

    private static readonly string[] Runs = ["none/seed-3", "none/seed-4", "input-mixup/seed-3", "input-mixup/seed-4", "reward-raw/seed-3", "reward-raw/seed-4"];

    [Test]
    public void AGridWritesItsResultsAndResumesAfterAKillBitForBit()
    {
        string whole = TempDir(), killed = TempDir();
        try
        {
            var (code, output, err) = EvalCommandTests.Run(Grid(whole));
            Assert.That(code, Is.EqualTo(0), output + err);
            foreach (var run in Runs) Assert.That(File.ReadAllLines(Path.Combine(whole, run, "metrics.jsonl")), Has.Length.EqualTo(3), run);
            var csv = File.ReadAllLines(Path.Combine(whole, "results.csv"));
            Assert.That(csv[0], Does.StartWith("arm,seeds,final_top1_mean,final_top1_std,best_top1_mean"));
            Assert.That(csv.Skip(1).Select(l => l.Split(',')[0] + "," + l.Split(',')[1]), Is.EqualTo(new[] { "none,2", "input-mixup,2", "reward-raw,2" }));
            var md = File.ReadAllText(Path.Combine(whole, "results.md"));
            Assert.That(md, Does.Contain("| reward-raw | 2 |").And.Contain("§5.6: the reward r = v"));
            foreach (var png in new[] { "accuracy.png", "actions-reward-raw.png" })
                Assert.That(File.ReadAllBytes(Path.Combine(whole, png)).Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), png);
            Assert.That(File.Exists(Path.Combine(whole, "actions-none.png")), Is.False, "action plots for rl arms only");
            var config = RunSpecJson.Read(Path.Combine(whole, "reward-raw", "seed-4", "config.json"));
            Assert.That((config.Seed, config.Mix.Policy, config.Reward.Form), Is.EqualTo((4UL, Engine.Training.MixPolicy.Rl, Engine.Training.RewardForm.Raw)));

            // Again in place: every run is skipped and the results are the same.
            (code, output, err) = EvalCommandTests.Run(Grid(whole));
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(output.Split('\n').Count(l => l.EndsWith("done, skipped", StringComparison.Ordinal)), Is.EqualTo(6), output);
            Assert.That(File.ReadAllLines(Path.Combine(whole, "results.csv")), Is.EqualTo(csv));

            // A different grid in the same folder is refused.
            var other = Grid(whole);
            other[Array.IndexOf(other, "--seeds") + 1] = "3,5";
            (code, _, err) = EvalCommandTests.Run(other);
            Assert.That((code, err.Trim()), Is.EqualTo((2, $"error: {whole}: holds another experiment (experiment.json differs: other arms, seeds or settings); use a new --out")));

            // Killed (SIGKILL) inside the grid's third run, then run again: the same results, bit for bit.
            KillDuring(Grid(killed), Path.Combine(killed, "input-mixup", "seed-3", Engine.Training.Trainer.StateFile)); // the grid's second run
            Assert.That(File.Exists(Path.Combine(killed, "results.csv")), Is.True, "results of the runs finished before the kill");
            (code, output, err) = EvalCommandTests.Run(Grid(killed));
            Assert.That(code, Is.EqualTo(0), output + err);
            Assert.That(output, Does.Contain("none, seed 3: done, skipped").And.Contain("input-mixup, seed 3: resuming"));
            foreach (var run in Runs) Assert.That(Metrics(Path.Combine(killed, run)), Is.EqualTo(Metrics(Path.Combine(whole, run))), run);
            Assert.That(File.ReadAllLines(Path.Combine(killed, "results.csv")), Is.EqualTo(csv));
        }
        finally
        {
            foreach (var d in new[] { whole, killed }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Test]
    public void ARunsConfigJsonGivenBackReproducesTheRunBitForBit()
    {
        string a = TempDir(), b = TempDir();
        try
        {
            var (code, _, err) = EvalCommandTests.Run("train", "--dataset", "synthetic", "--max-train-images", "100", "--max-test-images", "40",
                "--width", "2", "--epochs", "2", "--batch", "20", "--agent-conv", "4,4,4", "--agent-features", "8", "--agent-policy-hidden", "4",
                "--agent-value-hidden", "4", "--ppo-epochs", "1", "--ppo-rollout-epochs", "1", "--reward-interval", "2", "--cutmix-prob", "0.5",
                "--lr-max", "0.1", "--seed", "11", "--device", "cpu", "--threads", "2", "--no-live", "--out", a);
            Assert.That(code, Is.EqualTo(0), err);
            (code, _, err) = EvalCommandTests.Run("train", "--config", Path.Combine(a, "config.json"), "--no-live", "--out", b);
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(Metrics(b), Is.EqualTo(Metrics(a)));
            var (ma, mb) = (Core.IO.Safetensors.Read(Path.Combine(a, "model.safetensors")), Core.IO.Safetensors.Read(Path.Combine(b, "model.safetensors")));
            Assert.That(mb.Tensors.Keys, Is.EquivalentTo(ma.Tensors.Keys));
            foreach (var (name, t) in ma.Tensors.Where(kv => kv.Value.Dtype == "F32"))
                Assert.That(mb.Tensors[name].ToFloats(), Is.EqualTo(t.ToFloats()), name);
            string Spec(string dir) => RunSpecJson.Serialize(RunSpecJson.Read(Path.Combine(dir, "config.json")));
            Assert.That(Spec(b), Is.EqualTo(Spec(a)), "the same specification recorded");
        }
        finally
        {
            foreach (var d in new[] { a, b }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Test]
    public void TheBestEpochsModelIsKeptBesideTheLastAndConfigRecordsTheVersion()
    {
        string dir = TempDir();
        try
        {
            var (code, _, err) = EvalCommandTests.Run("train", "--dataset", "synthetic", "--max-train-images", "100", "--max-test-images", "40",
                "--width", "2", "--epochs", "4", "--batch", "20", "--policy", "none", "--lr-max", "0.3", "--seed", "2", "--device", "cpu", "--no-live", "--out", dir);
            Assert.That(code, Is.EqualTo(0), err);
            var epochs = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
            var top1 = epochs.Select(e => e["test_top1"]!.GetValue<double>()).ToList();
            int best = top1.IndexOf(top1.Max()) + 1;
            var bestFile = Core.IO.Safetensors.Read(Path.Combine(dir, RunFolder.BestModelFile));
            var lastFile = Core.IO.Safetensors.Read(Path.Combine(dir, RunFolder.ModelFile));
            Assert.That(bestFile.Metadata["epoch"], Is.EqualTo(best.ToString()));
            Assert.That(lastFile.Metadata["epoch"], Is.EqualTo("4"));
            bool same = bestFile.Tensors["linear.weight"].ToFloats().SequenceEqual(lastFile.Tensors["linear.weight"].ToFloats());
            Assert.That(same, Is.EqualTo(best == 4), $"best epoch {best} of [{string.Join(", ", top1)}]");
            // The training state is safetensors, exact values in the dtypes Python reads as they are.
            var state = Core.IO.Safetensors.Read(Path.Combine(dir, Engine.Training.Trainer.StateFile)).Tensors;
            Assert.That((state["trainer.step"].Dtype, state["trainer.rng"].Dtype, state["reward.previous"].Dtype, state["classifier.conv1.weight"].Dtype),
                Is.EqualTo(("I64", "U64", "F64", "F32")));
            Assert.That(state["trainer.step"].ToInt64(), Is.EqualTo(new long[] { 20 }));
            if (File.Exists(PythonTorch.Python))
            {
                var (py, text) = PythonTorch.Run(["-c", "import json,struct,sys; f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]; h=json.loads(f.read(n)); " +
                    "d=f.read(); o=h['trainer.step']['data_offsets']; print(h['trainer.step']['dtype'], struct.unpack('<q', d[o[0]:o[1]])[0])",
                    Path.Combine(dir, Engine.Training.Trainer.StateFile)], Path.GetTempPath());
                Assert.That((py, text.Trim()), Is.EqualTo((0, "I64 20")));
            }
            var recorded = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!["recorded"]!.AsObject();
            Assert.That(recorded.ContainsKey("engine_version") && recorded.ContainsKey("git_commit"), Is.True);
            Assert.That(recorded["engine_version"]!.GetValue<string>(), Does.Match(@"^\d+\.\d+\.\d+"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void ASecondWriterOfALiveRunFolderIsRefusedNamingTheHolder()
    {
        string dir = TempDir();
        try
        {
            string[] train = ["train", "--dataset", "synthetic", "--max-train-images", "40", "--max-test-images", "20", "--width", "2", "--epochs", "1",
                "--batch", "20", "--policy", "none", "--device", "cpu", "--no-live", "--out", dir];
            Assert.That(EvalCommandTests.Run(train).Code, Is.EqualTo(0));
            using (RunLock.Acquire(dir))
            {
                foreach (var args in new[] { train, ["resume", dir, "--no-live"] })
                {
                    var (code, output, err) = EvalCommandTests.Run(args);
                    Assert.That(code, Is.EqualTo(2), args[0]);
                    Assert.That(err.Trim(), Does.StartWith($"error: {dir} is in use by process {Environment.ProcessId}").And.Not.Contain("\n"), args[0]);
                }
                Assert.Throws<Engine.CliException>(() => RunLock.Acquire(dir));
            }
            var (again, text, _) = EvalCommandTests.Run("resume", dir, "--no-live");
            Assert.That(again, Is.EqualTo(0), "the lock goes with its holder");
            Assert.That(text, Does.Contain("already complete"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [TestCase(new[] { "experiment", "--out", "x" }, "experiment: name at least one arm with --policies or --ablations")]
    [TestCase(new[] { "experiment", "--out", "x", "--policies", "rl,mixup" }, "--policies: 'mixup' is not one of rl, random, input-mixup, cutmix, none")]
    [TestCase(new[] { "experiment", "--out", "x", "--ablations", "gamma-0.9" }, "--ablations: 'gamma-0.9' is not one of random, agent-lr-1e-8, gamma-0.99, reward-episode-end, reward-raw")]
    [TestCase(new[] { "experiment", "--out", "x", "--policies", "rl", "--seeds", "1,x" }, "--seeds: 'x' is not a seed (a non-negative integer)")]
    [TestCase(new[] { "experiment", "--out", "x", "--policies", "rl,rl" }, "experiment: the arm 'rl' is named twice")]
    public void ABadGridIsOneErrorLine(string[] args, string message)
    {
        var (code, _, err) = EvalCommandTests.Run(args);
        Assert.That((code, err.Trim()), Is.EqualTo((2, "error: " + message)));
    }

    /// <summary>Starts the engine on <paramref name="args"/> and kills it (SIGKILL) once <paramref name="file"/> exists.</summary>
    private static void KillDuring(string[] args, string file)
    {
        using var p = EngineProcess.Start(new Dictionary<string, string?>(), args);
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!File.Exists(file) && !p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(5);
        Assert.That(p.HasExited, Is.False, "the grid ended before the kill");
        p.Kill();
        p.WaitForExit();
    }
}
