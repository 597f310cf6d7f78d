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

/// <summary>Checkpoints and `resume`: an interrupted, resumed run is bit for bit the uninterrupted one.</summary>
[NonParallelizable]
public class ResumeTests
{
    private static readonly RunSpec Tiny = new()
    {
        Epochs = 3, Batch = 20, Model = new ModelSpec { Width = 2 }, Seed = 5, Reward = new RewardSpec { Interval = 5 },
        Data = new DataSpec { Dataset = "synthetic", MaxTrainImages = 100, MaxTestImages = 40 }, Device = new DeviceSpec { Name = "cpu" },
        Agent = new AgentSpec { Minibatch = 10, NEpochs = 2, Conv = [8, 8, 8], Features = 16, PolicyHidden = [8], ValueHidden = [8] },
    };

    private static Dataset Data() => SyntheticData.Generate(train: 100, test: 40, classes: 10, seed: Tiny.Seed);

    private static string TempDir() => Path.Combine(Path.GetTempPath(), "rlmixup-resume-" + Guid.NewGuid().ToString("N"));

    /// <summary>metrics.jsonl without the timing fields.</summary>
    private static string[] Metrics(string dir) => [.. File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(line =>
    {
        var o = JsonNode.Parse(line)!.AsObject();
        o.Remove("epoch_seconds");
        o.Remove("images_per_s");
        return o.ToJsonString();
    })];

    private static (string Name, float[] Data)[] Weights(string dir) =>
        [.. Safetensors.Read(Path.Combine(dir, "model.safetensors")).Tensors.Where(kv => kv.Value.Dtype == "F32")
            .OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value.ToFloats()))];

    private static void ResumeFromDisk(string dir, int? stopAfterEpoch)
    {
        var (config, data) = ResumeCommand.Load(dir);
        using var b = new CpuBackend(2);
        new TrainingRun(b, data, config, dir, TextWriter.Null) .Resume(stopAfterEpoch);
    }

    [Test]
    public void ResumeKeepsTheValidationHoldOut()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlmixup-resume-val-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (var b = new CpuBackend(2))
                new TrainingRun(b, Data(), Tiny with { Data = Tiny.Data with { ValFromTrain = 20 } }, dir, TextWriter.Null).Run(stopAfterEpoch: 1);
            var (config, data) = ResumeCommand.Load(dir);
            Assert.That(config.Data.ValFromTrain, Is.EqualTo(20));
            Assert.That(data.Train.Count, Is.EqualTo(100), "the full training set is reloaded, then split again by seed");
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void ResumeReadsTheRewardBackAndDefaultsToAccuracy()
    {
        string dir = TempDir();
        try
        {
            using (var b = new CpuBackend(2))
                new TrainingRun(b, Data(), Tiny with { Reward = Tiny.Reward with { Kind = RewardKind.GradSim } }, dir, TextWriter.Null).Run(stopAfterEpoch: 1);
            string configPath = Path.Combine(dir, "config.json");
            var json = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
            Assert.That((string?)json["reward"]!["kind"], Is.EqualTo("grad-sim"));
            Assert.That(ResumeCommand.Load(dir).Spec.Reward.Kind, Is.EqualTo(RewardKind.GradSim));
            json["reward"]!.AsObject().Remove("kind"); // a config that leaves the reward at its default
            File.WriteAllText(configPath, json.ToJsonString());
            Assert.That(ResumeCommand.Load(dir).Spec.Reward.Kind, Is.EqualTo(RewardKind.Accuracy));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void InterruptedAndResumedRunEqualsTheUninterruptedOneBitForBit()
    {
        string whole = TempDir(), cut = TempDir();
        try
        {
            using (var b = new CpuBackend(2)) new TrainingRun(b, Data(), Tiny, whole, TextWriter.Null).Run();
            using (var b = new CpuBackend(2)) new TrainingRun(b, Data(), Tiny, cut, TextWriter.Null).Run(stopAfterEpoch: 1);
            Assert.That(Trainer.StateEpoch(cut), Is.EqualTo(1));
            Assert.That(File.ReadAllLines(Path.Combine(cut, "metrics.jsonl")), Has.Length.EqualTo(1));

            // After epoch 1 the agent's rollout is half collected; after epoch 2 it was just updated.
            ResumeFromDisk(cut, stopAfterEpoch: 2);
            Assert.That(Trainer.StateEpoch(cut), Is.EqualTo(2));
            ResumeFromDisk(cut, stopAfterEpoch: null);

            Assert.That(Metrics(cut), Is.EqualTo(Metrics(whole)).AsCollection);
            Assert.That(Metrics(whole), Has.Length.EqualTo(3));
            var (w, c) = (Weights(whole), Weights(cut));
            Assert.That(c.Select(t => t.Name), Is.EqualTo(w.Select(t => t.Name)).AsCollection);
            for (int i = 0; i < w.Length; i++) Assert.That(c[i].Data, Is.EqualTo(w[i].Data).AsCollection, w[i].Name);
            Assert.That(File.ReadAllBytes(Path.Combine(cut, Trainer.StateFile)), Is.EqualTo(File.ReadAllBytes(Path.Combine(whole, Trainer.StateFile))),
                "the whole state, agent included");
            Assert.That(Directory.GetFiles(cut, "*.tmp*"), Is.Empty);
        }
        finally
        {
            foreach (var d in new[] { whole, cut }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Test]
    public void MetricsWrittenAfterTheLastCheckpointAreDroppedAndALaggingModelFileRewritten()
    {
        string dir = TempDir();
        try
        {
            using (var b = new CpuBackend(2)) new TrainingRun(b, Data(), Tiny with { Epochs = 2 }, dir, TextWriter.Null).Run(stopAfterEpoch: 1);
            string metrics = Path.Combine(dir, "metrics.jsonl"), model = Path.Combine(dir, "model.safetensors");
            var epoch1 = File.ReadAllBytes(model);
            // as if killed after epoch 2 appended its metrics but before its checkpoint was renamed, and with a half-written line
            File.AppendAllText(metrics, File.ReadAllLines(metrics)[0].Replace("\"epoch\":1", "\"epoch\":2") + "\n{\"epoch\":3,");
            File.Delete(model);
            File.WriteAllBytes(Path.Combine(dir, Trainer.StateFile + ".tmp-1-0123"), [1, 2]);
            ResumeFromDisk(dir, stopAfterEpoch: 1);
            Assert.That(File.ReadAllLines(metrics), Has.Length.EqualTo(1));
            Assert.That(File.ReadAllBytes(model), Is.EqualTo(epoch1), "model.safetensors rebuilt from state.safetensors");
            Assert.That(Directory.GetFiles(dir, "*tmp*"), Is.Empty, "a killed write's temporary file is removed");
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
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
    public void ResumingAFinishedRunSaysSoAndExitsZero()
    {
        string dir = TempDir();
        try
        {
            var (code, _, err) = Cli("train", "--dataset", "synthetic", "--epochs", "2", "--width", "2", "--batch", "20",
                "--max-train-images", "100", "--max-test-images", "40", "--policy", "random", "--device", "cpu", "--out", dir);
            Assert.That(code, Is.EqualTo(0), err);
            var before = File.ReadAllText(Path.Combine(dir, "metrics.jsonl"));
            (code, var output, err) = Cli("resume", dir);
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(output, Does.Contain("already complete"));
            Assert.That(File.ReadAllText(Path.Combine(dir, "metrics.jsonl")), Is.EqualTo(before));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void MissingOrCorruptRunFolderIsOneErrorLineAndExitCode2()
    {
        string dir = TempDir();
        var (code, output, err) = Cli("resume", dir);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim(), Does.StartWith("error: resume").And.Contain("no such run folder").And.Not.Contain("\n"));
        Assert.That(output, Is.Empty);
        try
        {
            Directory.CreateDirectory(dir);
            (code, _, err) = Cli("resume", dir);
            Assert.That((code, err.Trim().Split('\n').Length), Is.EqualTo((2, 1)));
            Assert.That(err, Does.Contain("config.json"));

            File.WriteAllText(Path.Combine(dir, "config.json"), "{}");
            File.WriteAllBytes(Path.Combine(dir, Trainer.StateFile), [1, 2, 3]);
            (code, _, err) = Cli("resume", dir);
            Assert.That((code, err.Trim().Split('\n').Length), Is.EqualTo((2, 1)), err);
            Assert.That(err, Does.Contain(Trainer.StateFile));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
