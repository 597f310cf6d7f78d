using System.CommandLine;
using System.Text.Json.Nodes;
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Engine;
using RlMixup.Engine.Data;
using RlMixup.Engine.Runs;
using RlMixup.Engine.Training;
using RlMixup.Models;

namespace RlMixup.Tests;

/// <summary>The run specification: config.json round trips, one-line errors, every field a flag, and the options it adds doing what they say.</summary>
public class RunSpecTests
{
    /// <summary>A spec that differs from the defaults everywhere, with doubles whose shortest form is long.</summary>
    private static readonly RunSpec Odd = new()
    {
        Epochs = 7, Batch = 33, Seed = ulong.MaxValue - 1, InitWeights = "/tmp/w.safetensors",
        Data = new DataSpec { Dataset = "cifar10", Folder = "/data/x", MaxTrainImages = 123, MaxTestImages = 45, ValFromTrain = 6, CropPad = 4, Flip = false, SyntheticSeed = 9 },
        Model = new ModelSpec { Width = 12, FinalBnRelu = true },
        Optim = new OptimSpec { LrMax = 0.1 + 0.2, LrStart = 1.0 / 3 * 1e-3, LrEnd = 2.2250738585072014E-308, PctStart = 0.3, Momentum = 0.85, Nesterov = false, CycleMomentum = true, WeightDecay = 5e-4 },
        Mix = new MixSpec { Policy = MixPolicy.Cutmix, Patches = 8, Actions = 5, Alpha = 0.7, DirichletPerImage = true, MixupAlpha = 0.4, CutmixAlpha = 0.6, CutmixProb = 0.5, SaliencyUpdatesBnStats = false },
        Agent = new AgentSpec { Conv = [3, 4], Features = 5, PolicyHidden = [6], ValueHidden = [], LearningRate = 1e-8, NEpochs = 3, RolloutEpochs = 1, Minibatch = 7, Gamma = 0.99, GaeLambda = 0.9, ClipRange = 0.1, EntCoef = 0.01, VfCoef = 0.25, MaxGradNorm = 1, TargetKl = 0.015, NormalizeAdvantage = false, AdamEps = 1e-7 },
        Reward = new RewardSpec { Kind = RewardKind.Accuracy, Form = RewardForm.Raw, Interval = 25, ValFraction = 0.2, AtEpisodeEnd = true },
        Device = new DeviceSpec { Name = "cuda", Tf32 = false, Threads = 3 },
    };

    [Test]
    public void ConfigJsonRoundTripsBitForBit()
    {
        foreach (var spec in new[] { new RunSpec(), Odd })
        {
            string json = RunSpecJson.Serialize(spec);
            var back = RunSpecJson.Deserialize(json, "test");
            Assert.That(RunSpecJson.Serialize(back), Is.EqualTo(json));
            Assert.That(BitConverter.DoubleToInt64Bits(back.Optim.LrMax), Is.EqualTo(BitConverter.DoubleToInt64Bits(spec.Optim.LrMax)));
            Assert.That(BitConverter.DoubleToInt64Bits(back.Optim.LrStart ?? 0), Is.EqualTo(BitConverter.DoubleToInt64Bits(spec.Optim.LrStart ?? 0)));
            Assert.That(BitConverter.DoubleToInt64Bits(back.Optim.LrEnd ?? 0), Is.EqualTo(BitConverter.DoubleToInt64Bits(spec.Optim.LrEnd ?? 0)));
            Assert.That(back.Seed, Is.EqualTo(spec.Seed));
            Assert.That(back.Agent.Conv, Is.EqualTo(spec.Agent.Conv));
            Assert.That(back with { Agent = spec.Agent }, Is.EqualTo(spec), "every other field equal");
        }
    }

    [Test]
    public void ARunsConfigJsonWithItsRecordedBlockIsAValidConfig()
    {
        string json = RunSpecJson.Serialize(Odd, new Dictionary<string, object?> { ["device"] = "cuda (H200)", ["steps_per_epoch"] = 500 });
        Assert.That(JsonNode.Parse(json)!["recorded"]!["steps_per_epoch"]!.GetValue<int>(), Is.EqualTo(500));
        Assert.That(RunSpecJson.Serialize(RunSpecJson.Deserialize(json, "run")), Is.EqualTo(RunSpecJson.Serialize(Odd)));
    }

    [Test]
    public void AHandWrittenConfigNeedsOnlyTheKeysItChanges()
    {
        var spec = RunSpecJson.Deserialize("""{ "epochs": 10, "optim": { "lr_max": 0.1 }, "mix": { "policy": "input-mixup" } }""", "hand.json");
        Assert.That(spec, Is.EqualTo(new RunSpec { Epochs = 10, Optim = new OptimSpec { LrMax = 0.1 }, Mix = new MixSpec { Policy = MixPolicy.InputMixup }, Agent = spec.Agent }));
    }

    [TestCase("""{ "epochs": 10, "optim": { "lr_maxx": 0.1 } }""", "hand.json: unknown key 'optim.lr_maxx'")]
    [TestCase("""{ "epoch": 10 }""", "hand.json: unknown key 'epoch'")]
    [TestCase("""{ "epochs": "ten" }""", "hand.json: epochs: a value of the wrong type for this key")]
    [TestCase("""{ "optim": { "lr_max": -0.1 } }""", "hand.json: optim.lr_max = -0.1: must be a positive number")]
    [TestCase("""{ "mix": { "policy": "InputMixup" } }""", "hand.json: mix.policy: 'InputMixup' is not one of rl, random, input-mixup, cutmix, none")]
    [TestCase("""{ "mix": { "cutmix_prob": 1.5 }, "epochs": 0 }""", "hand.json: epochs = 0: must be at least 1 (and 1 more problem)")]
    [TestCase("""[1, 2]""", "hand.json: not a JSON object")]
    [TestCase("""{ "data": null }""", "hand.json: data = null: must be an object")]
    [TestCase("""{ "epochs": 10""", "hand.json: ")]
    public void ABadConfigIsOneClearLine(string json, string message)
    {
        var e = Assert.Throws<CliException>(() => RunSpecJson.Deserialize(json, "hand.json"))!;
        Assert.That(e.Message, Does.StartWith(message));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void OnePolicySpellingEverywhere()
    {
        Assert.That(Names.All<MixPolicy>(), Is.EqualTo(new[] { "rl", "random", "input-mixup", "cutmix", "none" }));
        Assert.That(Names.All<RewardKind>(), Is.EqualTo(new[] { "accuracy", "grad-sim" }));
        Assert.That(Names.All<RewardForm>(), Is.EqualTo(new[] { "eq5", "raw" }));
        Assert.That(RunSpecJson.Serialize(new RunSpec { Mix = new MixSpec { Policy = MixPolicy.InputMixup } }), Does.Contain("\"policy\": \"input-mixup\""));
    }

    /// <summary>Every leaf key of config.json, dotted (data.crop_pad, …).</summary>
    private static IEnumerable<string> Keys(JsonObject o, string prefix = "")
    {
        foreach (var (k, v) in o)
            if (v is JsonObject child) foreach (var key in Keys(child, prefix + k + ".")) yield return key;
            else yield return prefix + k;
    }

    [Test]
    public void EveryConfigKeyIsAFlag()
    {
        var flags = new RunFlags(new RunSpec());
        var keys = Keys(JsonNode.Parse(RunSpecJson.Serialize(new RunSpec()))!.AsObject()).ToList();
        Assert.That(keys, Has.Count.GreaterThan(50));
        Assert.That(keys.Where(k => flags.FlagOf(k) == null), Is.Empty, "config.json keys without a flag");
    }

    private static RunSpec Parse(RunSpec baseSpec, params string[] args)
    {
        var flags = new RunFlags(baseSpec);
        var cmd = new RootCommand();
        foreach (var o in flags.Options) cmd.Options.Add(o);
        var r = cmd.Parse(args);
        Assert.That(r.Errors, Is.Empty);
        return flags.Resolve(r, baseSpec);
    }

    [Test]
    public void FlagsOverrideTheConfigFileAndOnlyWhatTheyName()
    {
        string path = Path.Combine(Path.GetTempPath(), $"rlmixup-spec-{Guid.NewGuid():N}.json");
        try
        {
            RunSpecJson.Write(path, Odd with { Device = Odd.Device with { Name = "cpu" } });
            var spec = Parse(new RunSpec(), "--config", path, "--lr-max", "0.05", "--policy", "rl", "--no-nesterov", "--agent-conv", "9,10", "--gamma", "0.99");
            var expected = Odd with
            {
                Device = Odd.Device with { Name = "cpu" }, Optim = Odd.Optim with { LrMax = 0.05 }, Mix = Odd.Mix with { Policy = MixPolicy.Rl },
                Agent = Odd.Agent with { Conv = [9, 10], Gamma = 0.99 },
            };
            Assert.That(RunSpecJson.Serialize(spec), Is.EqualTo(RunSpecJson.Serialize(expected)));
            Assert.That(RunSpecJson.Serialize(Parse(new RunSpec())), Is.EqualTo(RunSpecJson.Serialize(new RunSpec())), "no flag, no change");
        }
        finally { File.Delete(path); }
    }

    [TestCase(new[] { "--lr-max", "-1" }, "--lr-max -1: must be a positive number")]
    [TestCase(new[] { "--cutmix-prob", "2" }, "--cutmix-prob 2: must be in [0, 1]")]
    [TestCase(new[] { "--reward", "grad-sim", "--policy", "cutmix" }, "--reward grad-sim: grad-sim rewards the rl policy only, not cutmix")]
    [TestCase(new[] { "--agent-conv", "3,x" }, "--agent-conv: 'x' is not an integer")]
    public void ABadFlagValueNamesTheFlag(string[] args, string message)
    {
        var e = Assert.Throws<CliException>(() => Parse(new RunSpec(), args))!;
        Assert.That(e.Message, Does.StartWith(message));
    }

    [Test]
    public void TrainHelpGroupsTheFlags()
    {
        var output = new StringWriter();
        var old = Console.Out;
        Console.SetOut(output);
        try { Assert.That(Cli.Run(["train", "--help"]), Is.EqualTo(0)); }
        finally { Console.SetOut(old); }
        string help = output.ToString();
        foreach (var group in new[] { "Run:", "Data:", "Model:", "Optimiser and schedule:", "Mix-up:", "Agent and PPO", "Reward (policy rl):", "Device:", "Output:" })
            Assert.That(help, Does.Contain("\n" + group), group);
        Assert.That(help, Does.Contain("--ppo-rollout-epochs").And.Contain("--reward-form <eq5|raw>").And.Contain("--lr-max <value>").And.Contain("[default: 0.2]"));
        Assert.That(help.IndexOf("--gamma", StringComparison.Ordinal), Is.GreaterThan(help.IndexOf("Agent and PPO", StringComparison.Ordinal)));
    }

    [Test]
    public void TheScheduleAndOptimiserFollowTheSpec()
    {
        var spec = new RunSpec { Epochs = 3, Optim = new OptimSpec { LrMax = 0.4, LrStart = 0.01, LrEnd = 0.001, Momentum = 0.7, Nesterov = false } };
        var schedule = RunFactory.Schedule(spec, stepsPerEpoch: 10);
        Assert.That(schedule.LearningRate(0), Is.EqualTo(0.01).Within(1e-15));
        Assert.That(schedule.LearningRate(29), Is.EqualTo(0.001).Within(1e-15));
        Assert.That(schedule.Momentum(5), Is.EqualTo(0.7).Within(1e-15), "the momentum flag reaches the optimiser");
        using var b = new CpuBackend(1);
        var (store, _) = RunFactory.Classifier(b, spec with { Model = new ModelSpec { Width = 2 } }, 10, new Rng(1));
        Assert.That(RunFactory.Optimizer(spec, store, schedule).Nesterov, Is.False);
        var defaults = RunFactory.Schedule(new RunSpec { Epochs = 3 }, 10);
        Assert.That((defaults.InitialLr, defaults.MinLr), Is.EqualTo((0.004, 0.002)), "the paper's 0.004 → 0.2 → 0.002");
    }

    [Test]
    public void FinalBnReluAddsTheFinalBatchNorm()
    {
        using var b = new CpuBackend(1);
        var (store, _) = RunFactory.Classifier(b, new RunSpec { Model = new ModelSpec { Width = 2, FinalBnRelu = true } }, 10, new Rng(1));
        var (plain, _) = RunFactory.Classifier(b, new RunSpec { Model = new ModelSpec { Width = 2 } }, 10, new Rng(1));
        Assert.That(store.Parameters.Select(p => p.Name), Has.Member("bn.weight"));
        Assert.That(plain.Parameters.Select(p => p.Name), Has.No.Member("bn.weight"));
    }

    [Test]
    public void RewardFormsAndEpisodeEnd()
    {
        var raw = new RewardTracker(50, RewardForm.Raw);
        Assert.That(raw.Reward(0.3, 1, 4), Is.EqualTo(0.3));
        Assert.That(raw.Reward(0.25, 2, 4), Is.EqualTo(0.25));
        var end = new RewardTracker(50, RewardForm.Eq5, atEpisodeEnd: true);
        Assert.That(end.IsRewardStep(50, episodeEnd: false), Is.False);
        Assert.That(end.IsRewardStep(37, episodeEnd: true), Is.True);
    }

    [Test]
    public void AnRlRunRewardedAtEpisodeEndGetsOneRewardPerEpoch()
    {
        var spec = new RunSpec
        {
            Epochs = 1, Batch = 20, Model = new ModelSpec { Width = 2 }, Reward = new RewardSpec { AtEpisodeEnd = true, Form = RewardForm.Raw },
            Agent = new AgentSpec { Minibatch = 10, NEpochs = 1, Conv = [4, 4, 4], Features = 8, PolicyHidden = [4], ValueHidden = [4], RolloutEpochs = 1 },
        };
        using var b = new CpuBackend(1);
        using var trainer = new Trainer(b, SyntheticData.Generate(train: 100, test: 40, classes: 10, seed: 1), spec);
        Assert.That(trainer.Agent!.Config.NSteps, Is.EqualTo(5), "a rollout of one epoch");
        var r = trainer.RunEpoch(1);
        Assert.That(r.Rewards, Is.EqualTo(1));
        Assert.That(r.RewardMean, Is.InRange(0.0, 1.0), "r = v, an accuracy");
        Assert.That(r.Ppo, Is.Not.Null, "the one-epoch rollout is full after the epoch");
    }

    [Test]
    public void CutmixProbabilityZeroTrainsOnTheCleanBatch()
    {
        using var b = new CpuBackend(1);
        var store = new ParameterStore();
        var model = new PreActResNet18(store, 2, 10);
        store.Materialize(b, new Rng(1));
        using var x = b.Allocate(new Shape(4, 3, 32, 32));
        using var y = b.Allocate(new Shape(4, 10));
        var never = new BatchMixer(b, model, new MixSpec { Policy = MixPolicy.Cutmix, CutmixProb = 0 }, new Rng(2), null).Mix(x, y);
        Assert.That(never.Images, Is.SameAs(x));
        Assert.That(never.Draws, Is.Null);
        var always = new BatchMixer(b, model, new MixSpec { Policy = MixPolicy.Cutmix }, new Rng(2), null).Mix(x, y);
        Assert.That(always.Draws!.Box, Is.Not.Null);
        int mixed = 0;
        var half = new BatchMixer(b, model, new MixSpec { Policy = MixPolicy.Cutmix, CutmixProb = 0.5 }, new Rng(3), null);
        for (int i = 0; i < 200; i++) if (half.Mix(x, y).Draws != null) mixed++;
        Assert.That(mixed, Is.InRange(70, 130), "about half the batches are mixed");
    }
}
