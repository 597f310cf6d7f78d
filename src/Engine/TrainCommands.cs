using System.CommandLine;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Data;
using RlMixup.Engine.Display;
using RlMixup.Engine.Training;
using RlMixup.Models;

namespace RlMixup.Engine;

/// <summary>The `demo` and `train` commands.</summary>
public static class TrainCommands
{
    /// <summary>
    /// The CPU demo: synthetic data, policy rl, reduced so that it finishes in well under 3 minutes
    /// on 2 cores — width 8, 4 epochs of 50 batches, and a narrower agent (conv 32-48-64, features
    /// 128, MLPs 64-64) with 5 PPO epochs per update. Everything else is the paper's.
    /// </summary>
    public static readonly TrainConfig CpuDemo = new()
    {
        Epochs = 4, Width = 8, Policy = MixPolicy.Rl,
        AgentSizes = new ActorCriticSizes([32, 48, 64], 128, [64, 64], [64, 64]),
        Ppo = new Ppo.PpoConfig { NEpochs = 5 },
    };

    /// <summary>
    /// The GPU demo: the same synthetic data and policy at the paper's width (64) and agent, 10 epochs
    /// of 50 batches (seconds per epoch on a current GPU).
    /// </summary>
    public static readonly TrainConfig CudaDemo = new() { Epochs = 10, Width = 64, Policy = MixPolicy.Rl };

    public static Command Demo()
    {
        var cmd = new Command("demo", "Train RL-Mixup on the embedded synthetic dataset (on a GPU at full width; on the CPU reduced in width, epochs and agent, finishing in a few minutes)");
        var outOpt = OutOption();
        var seedOpt = new Option<ulong>("--seed") { Description = "random seed", DefaultValueFactory = _ => 0 };
        var noLive = NoLiveOption();
        var device = DeviceOption();
        var noTf32 = NoTf32Option();
        cmd.Options.Add(outOpt);
        cmd.Options.Add(seedOpt);
        cmd.Options.Add(device);
        cmd.Options.Add(noTf32);
        cmd.Options.Add(noLive);
        cmd.SetAction(r =>
        {
            ulong seed = r.GetValue(seedOpt);
            string requested = r.GetValue(device)!;
            IBackend backend;
            TrainConfig config;
            IBackend? cuda = null;
            string reason = "";
            if (requested != "cpu" && Backends.TryCreateCuda(!r.GetValue(noTf32), out cuda, out reason))
            {
                (backend, config) = (cuda!, CudaDemo with { Seed = seed });
                Console.WriteLine($"demo: running on {backend.Name} at full width ({config.Width}, {config.Epochs} epochs, the paper's agent)");
            }
            else if (requested == "cuda")
                throw new CliException($"--device cuda: no CUDA device or driver found ({reason}); use --device cpu or auto");
            else
            {
                (backend, config) = (new CpuBackend(), CpuDemo with { Seed = seed });
                Console.WriteLine(requested == "cpu"
                    ? "demo: running on the CPU with a reduced configuration"
                    : $"demo: running on the CPU with a reduced configuration ({reason})");
            }
            using (backend)
            {
                var data = SyntheticData.Generate(train: 5000, test: 1000, classes: 10, seed: config.Seed);
                return Run(backend, data, config, r.GetValue(outOpt), !r.GetValue(noTf32), r.GetValue(noLive));
            }
        });
        return cmd;
    }

    /// <summary>--device cpu|cuda|auto (auto: CUDA when a device and the libraries are usable, else the CPU).</summary>
    public static Option<string> DeviceOption(string defaultValue = "auto")
    {
        var device = new Option<string>("--device") { Description = "cpu, cuda or auto (CUDA when usable, else the CPU)", DefaultValueFactory = _ => defaultValue };
        device.AcceptOnlyFromAmong(Backends.DeviceNames);
        return device;
    }

    /// <summary>--no-tf32: full float32 GEMMs and convolutions on the GPU (TF32 tensor cores are used by default).</summary>
    public static Option<bool> NoTf32Option() =>
        new("--no-tf32") { Description = "CUDA: keep GEMMs and convolutions in full float32 (no TF32 tensor cores)" };

    public static Command Train() => Build("train", "Train a classifier with a mix-up policy (Algorithm 1 for --policy rl)", fixedDataset: null);

    /// <summary>`cifar100` / `cifar10`: the paper's setup (300 epochs, width 64, policy rl) on that dataset, fetched when missing.</summary>
    public static Command Paper(string dataset) =>
        Build(dataset, $"The paper's setup on {dataset.ToUpperInvariant()} (300 epochs, width 64, policy rl); fetches the dataset when it is missing", dataset);

    public static Command Download()
    {
        var cmd = new Command("download", "Fetch a dataset's official archive, check its MD5 and unpack it into the data folder");
        var which = new Argument<string>("dataset") { Description = "cifar10 or cifar100" };
        which.AcceptOnlyFromAmong("cifar10", "cifar100");
        var dataDir = new Option<string>("--data") { Description = "data folder", DefaultValueFactory = _ => "data" };
        cmd.Arguments.Add(which);
        cmd.Options.Add(dataDir);
        cmd.SetAction(r =>
        {
            Console.WriteLine($"{r.GetValue(which)} is in {Fetch(r.GetValue(which)!, r.GetValue(dataDir)!)}");
            return 0;
        });
        return cmd;
    }

    private static string Fetch(string dataset, string dataRoot)
    {
        Directory.CreateDirectory(dataRoot);
        var bar = Data.ProgressBar.Console(Console.Out);
        return new Downloader().FetchAsync(DatasetArchive.Find(dataset), dataRoot, bar).GetAwaiter().GetResult();
    }

    private static Command Build(string commandName, string description, string? fixedDataset)
    {
        var cmd = new Command(commandName, description);
        var dataset = new Option<string>("--dataset") { Description = "cifar100, cifar10 or synthetic", DefaultValueFactory = _ => "cifar100" };
        dataset.AcceptOnlyFromAmong([.. Dataset.Names]);
        var dataDir = new Option<string>("--data") { Description = "folder holding the dataset (not needed for synthetic)", DefaultValueFactory = _ => "data" };
        var policy = new Option<string>("--policy") { Description = "rl, random, input-mixup, cutmix or none", DefaultValueFactory = _ => "rl" };
        policy.AcceptOnlyFromAmong("rl", "random", "input-mixup", "cutmix", "none");
        var epochs = Positive("--epochs", "number of epochs (the one-cycle schedule keeps pct_start = 1/3)", 300);
        var batch = Positive("--batch", "batch size (the agent's observation has this many channels)", 100);
        var width = Positive("--width", "PreActResNet18 width", 64);
        var device = DeviceOption();
        var noTf32 = NoTf32Option();
        var seed = new Option<ulong>("--seed") { Description = "random seed", DefaultValueFactory = _ => 0 };
        var patches = new Option<int>("--patches") { Description = "saliency cells per side: 16 (paper) or 8", DefaultValueFactory = _ => 16 };
        patches.AcceptOnlyFromAmong("16", "8");
        var alpha = new Option<double>("--alpha") { Description = "Dirichlet(α, α) of RL-Mixup's weights", DefaultValueFactory = _ => 0.5 };
        var perImage = new Option<bool>("--dirichlet-per-image") { Description = "one (λ1, λ2) per image instead of per batch" };
        var cropPad = new Option<int>("--crop-pad") { Description = "random-crop zero padding: 2 (default) or 4", DefaultValueFactory = _ => 2 };
        cropPad.AcceptOnlyFromAmong("2", "4");
        var maxTrain = new Option<int?>("--max-train-images") { Description = "use only the first N training images" };
        var maxTest = new Option<int?>("--max-test-images") { Description = "use only the first N test images" };
        var valFromTrain = new Option<int?>("--val-from-train") { Description = "reward on N held-out training images instead of the test set" };
        var reward = new Option<string>("--reward")
        {
            Description = "the agent's reward (policy rl only): accuracy (eq. 5, every 50 steps) or grad-sim (cosine of the clean and mixed batch's saliency maps, every step)",
            DefaultValueFactory = _ => "accuracy",
        };
        reward.AcceptOnlyFromAmong("accuracy", "grad-sim");
        var lrMax = new Option<double>("--lr-max") { Description = "peak learning rate of the one-cycle schedule (it starts at lr-max/50 and ends at lr-max/100)", DefaultValueFactory = _ => 0.2 };
        var threads = new Option<int?>("--threads") { Description = "CPU worker threads (default: every core)" };
        var initWeights = new Option<string?>("--init-weights") { Description = "start the classifier from these weights (safetensors, PyTorch state-dict names) instead of its seeded initialisation" };
        var trace = new Option<string?>("--trace") { Description = "record the first --trace-steps steps (batches, mix draws, loss; state and gradients at --trace-full steps) into this folder for scripts/replay_torch.py" };
        var traceSteps = new Option<int>("--trace-steps") { Description = "steps recorded by --trace", DefaultValueFactory = _ => 10 };
        var traceFull = new Option<string>("--trace-full") { Description = "comma-separated steps at which --trace also records the state, the momentum and every gradient", DefaultValueFactory = _ => "1,10,100,500" };
        var stepStats = new Option<int?>("--step-stats") { Description = "every N steps, append the gradient norm, per-layer parameter norms, the smallest BN scale and the dead-ReLU fraction to steps.jsonl" };
        var outOpt = OutOption();
        var noLive = NoLiveOption();
        foreach (var o in new Option[] { stepStats, valFromTrain, dataset, dataDir, policy, reward, epochs, batch, width, device, noTf32, threads, seed, patches, alpha, perImage, cropPad, lrMax, maxTrain, maxTest, initWeights, trace, traceSteps, traceFull, outOpt, noLive })
            if (fixedDataset == null || o != dataset) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            bool gradSim = r.GetValue(reward) == "grad-sim";
            if (gradSim && r.GetValue(policy) != "rl")
                throw new CliException($"--reward grad-sim: only the rl policy is rewarded, not --policy {r.GetValue(policy)}");
            if (!(r.GetValue(alpha) > 0)) throw new CliException($"--alpha must be positive, got {r.GetValue(alpha)}");
            if (!(r.GetValue(lrMax) > 0) || !double.IsFinite(r.GetValue(lrMax))) throw new CliException($"--lr-max must be a positive number, got {r.GetValue(lrMax)}");
            if (r.GetValue(stepStats) is int ss && ss < 1) throw new CliException($"--step-stats must be at least 1, got {ss}");
            if (r.GetValue(threads) is int t && t < 1) throw new CliException($"--threads must be at least 1, got {t}");
            if (r.GetValue(initWeights) is string iw && !File.Exists(iw)) throw new CliException($"--init-weights {iw}: no such file");
            StepTrace? stepTrace = null;
            if (r.GetValue(trace) is string traceDir)
            {
                if (r.GetValue(traceSteps) < 1) throw new CliException($"--trace-steps must be at least 1, got {r.GetValue(traceSteps)}");
                var full = new List<long>();
                foreach (var part in r.GetValue(traceFull)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    full.Add(long.TryParse(part, out long k) && k >= 1 ? k : throw new CliException($"--trace-full: '{part}' is not a step number (1 or more)"));
                stepTrace = new StepTrace(traceDir, r.GetValue(traceSteps), full);
            }
            using var backend = Backends.Create(r.GetValue(device)!, !r.GetValue(noTf32), Console.Out, r.GetValue(threads));
            string name = fixedDataset ?? r.GetValue(dataset)!;
            ulong s = r.GetValue(seed);
            string root = r.GetValue(dataDir)!;
            if (fixedDataset != null && !Directory.Exists(name == "cifar10" ? Dataset.Cifar10Folder(root) : Dataset.Cifar100Folder(root)))
                Fetch(name, root);
            var data = Dataset.Load(name, root, r.GetValue(maxTrain), r.GetValue(maxTest), s);
            var config = new TrainConfig
            {
                Epochs = r.GetValue(epochs), BatchSize = r.GetValue(batch), Width = r.GetValue(width), Seed = s,
                Policy = ParsePolicy(r.GetValue(policy)!),
                Mix = new MixOptions { Patches = r.GetValue(patches), Alpha = r.GetValue(alpha), DirichletPerImage = r.GetValue(perImage) },
                Augmentation = new Augmentation(r.GetValue(cropPad)),
                ValFromTrain = r.GetValue(valFromTrain),
                Reward = gradSim ? RewardKind.GradSim : RewardKind.Accuracy,
                MaxLr = r.GetValue(lrMax),
                InitWeights = r.GetValue(initWeights) is string w ? Path.GetFullPath(w) : null,
            };
            return Run(backend, data, config, r.GetValue(outOpt), !r.GetValue(noTf32), r.GetValue(noLive), name, name == "synthetic" ? null : r.GetValue(dataDir), stepTrace, r.GetValue(stepStats));
        });
        return cmd;
    }

    private static MixPolicy ParsePolicy(string p) => p switch
    {
        "rl" => MixPolicy.Rl, "random" => MixPolicy.Random, "input-mixup" => MixPolicy.InputMixup,
        "cutmix" => MixPolicy.CutMix, "none" => MixPolicy.None,
        _ => throw new CliException($"unknown policy '{p}'"),
    };

    private static Option<int> Positive(string name, string description, int defaultValue)
    {
        var o = new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        o.Validators.Add(res => { if (res.GetValueOrDefault<int>() < 1) res.AddError($"{name} must be at least 1"); });
        return o;
    }

    private static Option<string?> OutOption() =>
        new("--out") { Description = "run folder (default runs/<dataset>-<policy>-<timestamp>)" };

    /// <summary>--no-live: plain progress lines even on an interactive terminal (they are the default when output is redirected).</summary>
    public static Option<bool> NoLiveOption() =>
        new("--no-live") { Description = "print plain progress lines instead of the live panel (automatic when output is redirected)" };

    private static int Run(IBackend backend, Dataset data, TrainConfig config, string? outDir, bool tf32, bool plain, string? datasetName = null, string? dataFolder = null,
        StepTrace? trace = null, int? stepStats = null)
    {
        string folder = outDir ?? Path.Combine("runs",
            $"{datasetName ?? data.Name}-{config.Policy.ToString().ToLowerInvariant()}-{DateTime.Now:yyyyMMdd-HHmmss}");
        try
        {
            Directory.CreateDirectory(folder);
            string probe = Path.Combine(folder, ".write-test");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--out {folder}: cannot write there ({e.Message})");
        }
        return RunWatcher.Run(folder, plain, (log, onStep, stop) =>
        {
            var run = new TrainingRun(backend, data, config, folder, log) { DataFolder = dataFolder, Tf32 = tf32, Progress = onStep, Stop = stop, Trace = trace, StepStatsEvery = stepStats };
            run.Run();
            return run.Interrupted;
        });
    }
}

/// <summary>A user error: printed as one line, exit code 2.</summary>
public sealed class CliException(string message) : Exception(message);
