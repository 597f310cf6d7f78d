using System.CommandLine;
using System.CommandLine.Invocation;
using System.Globalization;
using RlMixup.Engine.Training;

namespace RlMixup.Engine.Runs;

/// <summary>
/// Every <see cref="RunSpec"/> field as a command-line flag, in one table: its group in --help, its
/// config.json key, and how it sets the spec. <c>--config FILE</c> loads a base spec (a run's
/// config.json or a hand-written one); the flags given override it; then the whole spec is checked,
/// a bad value being one line that names the flag. Flags that are not given leave the base untouched,
/// so the defaults shown in --help are the base spec's.
/// </summary>
public sealed class RunFlags
{
    public const string Run = "Run", Data = "Data", Model = "Model", Optim = "Optimiser and schedule", Mix = "Mix-up",
        Agent = "Agent and PPO (Stable-Baselines3's names)", Reward = "Reward (policy rl)", Device = "Device", Output = "Output";

    private readonly List<Flag> _flags = [];
    private readonly RunSpec _shown;

    /// <summary>--config FILE: the base specification, from a config.json.</summary>
    public Option<string?> Config { get; } = new("--config") { Description = "start from this config.json (a run's, or hand-written); flags override it" };

    /// <param name="shown">The spec whose values --help shows as defaults.</param>
    /// <param name="except">config.json keys not offered as flags (a command that fixes them).</param>
    public RunFlags(RunSpec shown, params string[] except)
    {
        _shown = shown;
        var d = shown;
        Int(Run, "--epochs", "epochs", "epochs (the schedule keeps pct_start of them rising)", d.Epochs, (s, v) => s with { Epochs = v });
        Int(Run, "--batch", "batch", "images per step (the agent's observation has this many channels)", d.Batch, (s, v) => s with { Batch = v });
        Value<ulong>(Run, "--seed", "seed", "random seed (the agent's is seed + 1)", d.Seed, (s, v) => s with { Seed = v });
        Text(Run, "--init-weights", "init_weights", "start the classifier from these weights (safetensors, PyTorch state-dict names)", null,
            (s, v) => s with { InitWeights = Path.GetFullPath(v) });

        Choice(Data, "--dataset", "data.dataset", "the dataset", d.Data.Dataset, Engine.Data.Dataset.Names, (s, v) => s with { Data = s.Data with { Dataset = v } });
        Text(Data, "--data", "data.folder", "folder holding the dataset (not read for synthetic)", d.Data.Folder, (s, v) => s with { Data = s.Data with { Folder = v } });
        Int(Data, "--max-train-images", "data.max_train_images", "use only the first N training images", d.Data.MaxTrainImages,
            (s, v) => s with { Data = s.Data with { MaxTrainImages = v } });
        Int(Data, "--max-test-images", "data.max_test_images", "use only the first N test images", d.Data.MaxTestImages,
            (s, v) => s with { Data = s.Data with { MaxTestImages = v } });
        Int(Data, "--val-from-train", "data.val_from_train", "reward on N held-out training images instead of the test set", d.Data.ValFromTrain,
            (s, v) => s with { Data = s.Data with { ValFromTrain = v } });
        Int(Data, "--crop-pad", "data.crop_pad", "random-crop zero padding", d.Data.CropPad, (s, v) => s with { Data = s.Data with { CropPad = v } });
        Switch(Data, "--no-flip", "data.flip", "no random horizontal flips", s => s with { Data = s.Data with { Flip = false } });
        Value<ulong>(Data, "--data-seed", "data.synthetic_seed", "the seed synthetic data is generated from (default: the run's seed)", d.Data.SyntheticSeed,
            (s, v) => s with { Data = s.Data with { SyntheticSeed = v } });

        Int(Model, "--width", "model.width", "PreActResNet18 width", d.Model.Width, (s, v) => s with { Model = s.Model with { Width = v } });
        Switch(Model, "--final-bn-relu", "model.final_bn_relu", "He et al.'s final BN-ReLU before the pooling", s => s with { Model = s.Model with { FinalBnRelu = true } });

        Double(Optim, "--lr-max", "optim.lr_max", "peak learning rate of the one-cycle schedule", d.Optim.LrMax, (s, v) => s with { Optim = s.Optim with { LrMax = v } });
        Double(Optim, "--lr-start", "optim.lr_start", "first learning rate (default lr-max/50)", d.Optim.LrStart, (s, v) => s with { Optim = s.Optim with { LrStart = v } });
        Double(Optim, "--lr-end", "optim.lr_end", "last learning rate (default lr-start/2)", d.Optim.LrEnd, (s, v) => s with { Optim = s.Optim with { LrEnd = v } });
        Double(Optim, "--pct-start", "optim.pct_start", "share of the steps rising to lr-max", d.Optim.PctStart, (s, v) => s with { Optim = s.Optim with { PctStart = v } });
        Double(Optim, "--momentum", "optim.momentum", "SGD momentum", d.Optim.Momentum, (s, v) => s with { Optim = s.Optim with { Momentum = v } });
        Switch(Optim, "--no-nesterov", "optim.nesterov", "plain momentum instead of Nesterov's", s => s with { Optim = s.Optim with { Nesterov = false } });
        Switch(Optim, "--cycle-momentum", "optim.cycle_momentum", "cycle the momentum 0.95 → 0.85 → 0.95 against the learning rate (PyTorch's OneCycleLR default)",
            s => s with { Optim = s.Optim with { CycleMomentum = true } });
        Double(Optim, "--wd", "optim.weight_decay", "weight decay", d.Optim.WeightDecay, (s, v) => s with { Optim = s.Optim with { WeightDecay = v } });

        Choice(Mix, "--policy", "mix.policy", "the mix-up policy", Names.Of(d.Mix.Policy), Names.All<MixPolicy>(),
            (s, v) => s with { Mix = s.Mix with { Policy = Names.Parse<MixPolicy>(v, "--policy") } });
        Int(Mix, "--patches", "mix.patches", "saliency cells per side: 16 (the paper) or 8 (the authors' code)", d.Mix.Patches, (s, v) => s with { Mix = s.Mix with { Patches = v } });
        Int(Mix, "--actions", "mix.actions", "discrete actions; action a selects the percentile 99·a/(actions − 1)", d.Mix.Actions, (s, v) => s with { Mix = s.Mix with { Actions = v } });
        Double(Mix, "--alpha", "mix.alpha", "Dirichlet(α, α) of RL-Mixup's weights", d.Mix.Alpha, (s, v) => s with { Mix = s.Mix with { Alpha = v } });
        Switch(Mix, "--dirichlet-per-image", "mix.dirichlet_per_image", "one (λ1, λ2) per image instead of per batch", s => s with { Mix = s.Mix with { DirichletPerImage = true } });
        Double(Mix, "--mixup-alpha", "mix.mixup_alpha", "Beta(α, α) of input mixup", d.Mix.MixupAlpha, (s, v) => s with { Mix = s.Mix with { MixupAlpha = v } });
        Double(Mix, "--cutmix-alpha", "mix.cutmix_alpha", "Beta(α, α) of CutMix's λ", d.Mix.CutmixAlpha, (s, v) => s with { Mix = s.Mix with { CutmixAlpha = v } });
        Double(Mix, "--cutmix-prob", "mix.cutmix_prob", "share of batches CutMix mixes (0.5: Yun et al. and the authors' code)", d.Mix.CutmixProb,
            (s, v) => s with { Mix = s.Mix with { CutmixProb = v } });
        Switch(Mix, "--saliency-frozen-bn", "mix.saliency_updates_bn_stats", "the saliency pass leaves the BN running statistics alone",
            s => s with { Mix = s.Mix with { SaliencyUpdatesBnStats = false } });

        Ints(Agent, "--agent-conv", "agent.conv", "the agent's valid 3×3 convolutions' channels", d.Agent.Conv, (s, v) => s with { Agent = s.Agent with { Conv = v } });
        Int(Agent, "--agent-features", "agent.features", "the agent's feature width", d.Agent.Features, (s, v) => s with { Agent = s.Agent with { Features = v } });
        Ints(Agent, "--agent-policy-hidden", "agent.policy_hidden", "the policy MLP's widths", d.Agent.PolicyHidden, (s, v) => s with { Agent = s.Agent with { PolicyHidden = v } });
        Ints(Agent, "--agent-value-hidden", "agent.value_hidden", "the value MLP's widths", d.Agent.ValueHidden, (s, v) => s with { Agent = s.Agent with { ValueHidden = v } });
        Double(Agent, "--ppo-lr", "agent.learning_rate", "Adam's learning rate (learning_rate)", d.Agent.LearningRate, (s, v) => s with { Agent = s.Agent with { LearningRate = v } });
        Int(Agent, "--ppo-epochs", "agent.n_epochs", "passes over the rollout per update (n_epochs)", d.Agent.NEpochs, (s, v) => s with { Agent = s.Agent with { NEpochs = v } });
        Int(Agent, "--ppo-rollout-epochs", "agent.rollout_epochs", "epochs per rollout (n_steps = this × steps per epoch)", d.Agent.RolloutEpochs,
            (s, v) => s with { Agent = s.Agent with { RolloutEpochs = v } });
        Int(Agent, "--ppo-minibatch", "agent.minibatch", "observations per minibatch (batch_size)", d.Agent.Minibatch, (s, v) => s with { Agent = s.Agent with { Minibatch = v } });
        Double(Agent, "--gamma", "agent.gamma", "discount (the paper: 1.001)", d.Agent.Gamma, (s, v) => s with { Agent = s.Agent with { Gamma = v } });
        Double(Agent, "--gae-lambda", "agent.gae_lambda", "GAE λ", d.Agent.GaeLambda, (s, v) => s with { Agent = s.Agent with { GaeLambda = v } });
        Double(Agent, "--clip-range", "agent.clip_range", "ε of the clipped surrogate", d.Agent.ClipRange, (s, v) => s with { Agent = s.Agent with { ClipRange = v } });
        Double(Agent, "--ent-coef", "agent.ent_coef", "entropy loss weight", d.Agent.EntCoef, (s, v) => s with { Agent = s.Agent with { EntCoef = v } });
        Double(Agent, "--vf-coef", "agent.vf_coef", "value loss weight", d.Agent.VfCoef, (s, v) => s with { Agent = s.Agent with { VfCoef = v } });
        Double(Agent, "--max-grad-norm", "agent.max_grad_norm", "gradient clipping norm", d.Agent.MaxGradNorm, (s, v) => s with { Agent = s.Agent with { MaxGradNorm = v } });
        Double(Agent, "--target-kl", "agent.target_kl", "stop an update once a minibatch's approx KL exceeds 1.5 × this", d.Agent.TargetKl,
            (s, v) => s with { Agent = s.Agent with { TargetKl = v } });
        Switch(Agent, "--no-normalize-advantage", "agent.normalize_advantage", "do not normalise advantages per minibatch",
            s => s with { Agent = s.Agent with { NormalizeAdvantage = false } });
        Double(Agent, "--adam-eps", "agent.adam_eps", "Adam's ε (SB3: 1e-5)", d.Agent.AdamEps, (s, v) => s with { Agent = s.Agent with { AdamEps = v } });

        Choice(Reward, "--reward", "reward.kind", "accuracy (eq. 5) or grad-sim (every step, the clean and mixed saliency maps' cosine)",
            Names.Of(d.Reward.Kind), Names.All<RewardKind>(), (s, v) => s with { Reward = s.Reward with { Kind = Names.Parse<RewardKind>(v, "--reward") } });
        Choice(Reward, "--reward-form", "reward.form", "eq5: r = (k/K)(v − V); raw: r = v (§5.6)", Names.Of(d.Reward.Form), Names.All<RewardForm>(),
            (s, v) => s with { Reward = s.Reward with { Form = Names.Parse<RewardForm>(v, "--reward-form") } });
        Int(Reward, "--reward-interval", "reward.interval", "steps between accuracy rewards", d.Reward.Interval, (s, v) => s with { Reward = s.Reward with { Interval = v } });
        Double(Reward, "--reward-val-fraction", "reward.val_fraction", "share of the held-out set sampled for each reward", d.Reward.ValFraction,
            (s, v) => s with { Reward = s.Reward with { ValFraction = v } });
        Switch(Reward, "--reward-at-episode-end", "reward.at_episode_end", "reward only on each epoch's last step (§5.6)",
            s => s with { Reward = s.Reward with { AtEpisodeEnd = true } });

        Choice(Device, "--device", "device.name", "cpu, cuda or auto (CUDA when usable, else the CPU)", d.Device.Name, Backends.DeviceNames,
            (s, v) => s with { Device = s.Device with { Name = v } });
        Switch(Device, "--no-tf32", "device.tf32", "CUDA: full float32 GEMMs and convolutions (no TF32 tensor cores)", s => s with { Device = s.Device with { Tf32 = false } });
        Int(Device, "--threads", "device.threads", "CPU worker threads (default: every core)", d.Device.Threads, (s, v) => s with { Device = s.Device with { Threads = v } });

        _flags.RemoveAll(f => except.Contains(f.Key));
    }

    /// <summary>The flags, --config first.</summary>
    public IEnumerable<Option> Options => [Config, .. _flags.Select(f => f.Option)];

    /// <summary>The help group of each option this table owns.</summary>
    public IEnumerable<(Option Option, string Group)> Groups => [(Config, Run), .. _flags.Select(f => (f.Option, f.Group))];

    /// <summary>The spec a parse describes: --config (or <paramref name="baseSpec"/>), the flags given applied on top, checked.</summary>
    public RunSpec Resolve(ParseResult r, RunSpec baseSpec)
    {
        var spec = r.GetValue(Config) is string path ? RunSpecJson.Read(path) : baseSpec;
        var given = new Dictionary<string, string>();
        foreach (var f in _flags)
            if (r.GetResult(f.Option) is { Implicit: false })
            {
                spec = f.Apply(spec, r);
                given[f.Key] = f.Option.Name;
            }
        return spec.Validated(given.Count == 0 && r.GetValue(Config) is string c ? c : null, key => given.GetValueOrDefault(key));
    }

    /// <summary>The flag that sets a config.json key, or null.</summary>
    public string? FlagOf(string key) => _flags.FirstOrDefault(f => f.Key == key)?.Option.Name;

    private sealed record Flag(string Group, string Key, Option Option, Func<RunSpec, ParseResult, RunSpec> Apply);

    private static string? Show<T>(T? v) => v switch
    {
        null => null,
        double x => x.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    private static string Describe(string help, string? shown) => shown == null ? help : $"{help} [default: {shown}]";

    private void Value<T>(string group, string name, string key, string help, T? shown, Func<RunSpec, T, RunSpec> set) where T : struct
    {
        var o = new Option<T?>(name) { Description = Describe(help, Show(shown)) };
        _flags.Add(new Flag(group, key, o, (s, r) => r.GetValue(o) is T v ? set(s, v) : s));
    }

    private void Int(string group, string name, string key, string help, int? shown, Func<RunSpec, int, RunSpec> set) => Value(group, name, key, help, shown, set);

    private void Double(string group, string name, string key, string help, double? shown, Func<RunSpec, double, RunSpec> set) => Value(group, name, key, help, shown, set);

    private void Switch(string group, string name, string key, string help, Func<RunSpec, RunSpec> set)
    {
        var o = new Option<bool>(name) { Description = help };
        _flags.Add(new Flag(group, key, o, (s, r) => r.GetValue(o) ? set(s) : s));
    }

    private void Text(string group, string name, string key, string help, string? shown, Func<RunSpec, string, RunSpec> set)
    {
        var o = new Option<string?>(name) { Description = Describe(help, shown) };
        _flags.Add(new Flag(group, key, o, (s, r) => r.GetValue(o) is string v ? set(s, v) : s));
    }

    private void Choice(string group, string name, string key, string help, string shown, IEnumerable<string> choices, Func<RunSpec, string, RunSpec> set)
    {
        var o = new Option<string?>(name) { Description = Describe(help, shown), HelpName = string.Join("|", choices) };
        o.AcceptOnlyFromAmong([.. choices]);
        _flags.Add(new Flag(group, key, o, (s, r) => r.GetValue(o) is string v ? set(s, v) : s));
    }

    private void Ints(string group, string name, string key, string help, int[] shown, Func<RunSpec, int[], RunSpec> set)
    {
        var o = new Option<string?>(name) { Description = Describe(help + " (comma-separated)", string.Join(",", shown)) };
        _flags.Add(new Flag(group, key, o, (s, r) =>
        {
            if (r.GetValue(o) is not string v) return s;
            var parts = v.Split(',', StringSplitOptions.TrimEntries);
            var values = new int[parts.Length];
            for (int i = 0; i < parts.Length; i++)
                if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[i]))
                    throw new CliException($"{name}: '{parts[i]}' is not an integer (expected a comma-separated list such as {string.Join(",", shown)})");
            return set(s, values);
        }));
    }
}

/// <summary>
/// --help with the options in named groups for the commands registered here (the run-specification
/// flags by <see cref="RunFlags"/>'s groups, the command's own options under "Output"), each with its
/// description and default; other commands keep System.CommandLine's help.
/// </summary>
public sealed class GroupedHelp(CommandLineAction fallback) : SynchronousCommandLineAction
{
    private static readonly Dictionary<Command, Dictionary<Option, string>> Registered = [];

    /// <summary>Gives <paramref name="command"/> the grouped help (takes effect once <see cref="Install(RootCommand)"/> ran).</summary>
    public static void Register(Command command, IEnumerable<(Option Option, string Group)> groups)
    {
        lock (Registered) Registered[command] = groups.ToDictionary(g => g.Option, g => g.Group);
    }

    /// <summary>Routes the root's --help through the grouped help.</summary>
    public static void Install(RootCommand root)
    {
        var help = root.Options.OfType<System.CommandLine.Help.HelpOption>().FirstOrDefault();
        if (help?.Action is { } action and not GroupedHelp) help.Action = new GroupedHelp(action);
    }

    public override int Invoke(ParseResult parseResult)
    {
        var command = parseResult.CommandResult.Command;
        Dictionary<Option, string>? groups;
        lock (Registered) Registered.TryGetValue(command, out groups);
        if (groups == null) return fallback is SynchronousCommandLineAction s ? s.Invoke(parseResult) : 0;
        var w = parseResult.InvocationConfiguration.Output;
        w.WriteLine($"Description:\n  {command.Description}\n");
        string args = string.Concat(command.Arguments.Select(a => $" <{a.Name}>"));
        w.WriteLine($"Usage:\n  rlmixup {command.Name}{args} [options]\n");
        foreach (var a in command.Arguments) w.WriteLine($"Arguments:\n  <{a.Name}>  {a.Description}\n");
        var rows = command.Options.Where(o => !o.Hidden)
            .Select(o => (Group: groups.TryGetValue(o, out var g) ? g : RunFlags.Output, Name: Label(o), o.Description)).ToList();
        int width = rows.Max(r => r.Name.Length) + 2;
        foreach (var group in rows.Select(r => r.Group).Distinct())
        {
            w.WriteLine($"{group}:");
            foreach (var r in rows.Where(r => r.Group == group)) w.WriteLine($"  {r.Name.PadRight(width)}{r.Description}");
            w.WriteLine();
        }
        return 0;
    }

    private static string Label(Option o)
    {
        string names = string.Join(", ", new[] { o.Name }.Concat(o.Aliases));
        return o.ValueType == typeof(bool) ? names : $"{names} <{o.HelpName ?? "value"}>";
    }
}
