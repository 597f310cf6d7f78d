using System.Text.Json.Serialization;
using RlMixup.Models;
using RlMixup.Ppo;
using RlMixup.Engine.Training;
using RlMixup.Engine.Data;

namespace RlMixup.Engine.Runs;

/// <summary>
/// Everything a training run is configured by, in one typed record: the run (epochs, batch, seed),
/// the data, the model, the optimiser and its schedule, the mix-up policy and its parameters, the
/// agent and PPO, the reward, and the device. The defaults are the paper's CIFAR-100 setup
/// (docs/method.md). A run's <c>config.json</c> is this record (<see cref="RunSpecJson"/>), every
/// field is a command-line flag (<see cref="RunFlags"/>), and train, resume, eval, visualize, bench
/// and experiment all read a run through it. A new hyper-parameter is one field here and one flag
/// there. The properties have setters, not init accessors, because System.Text.Json's source
/// generator gives a missing init-only property its type's default (0, null) instead of the
/// initialiser's; with setters a hand-written config.json names only the keys it changes. Treat a
/// spec as immutable all the same: derive variants with <c>with</c>.
/// </summary>
public sealed record RunSpec
{
    public int Epochs { get; set; } = 300;
    /// <summary>Images per step; the agent's observation has this many channels.</summary>
    public int Batch { get; set; } = 100;
    /// <summary>Seeds the initialisation, the shuffles, the augmentation and the mixing (and, plus 1, the agent).</summary>
    public ulong Seed { get; set; }
    /// <summary>A safetensors file the classifier starts from instead of its seeded initialisation (which is still drawn).</summary>
    public string? InitWeights { get; set; }

    public DataSpec Data { get; set; } = new();
    public ModelSpec Model { get; set; } = new();
    public OptimSpec Optim { get; set; } = new();
    public MixSpec Mix { get; set; } = new();
    public AgentSpec Agent { get; set; } = new();
    public RewardSpec Reward { get; set; } = new();
    public DeviceSpec Device { get; set; } = new();

    /// <summary>Every value outside its range, naming the key as config.json writes it (empty when valid).</summary>
    public IReadOnlyList<RunSpecProblem> Problems()
    {
        var p = new List<RunSpecProblem>();
        void Need(bool ok, string key, object? value, string rule)
        {
            if (!ok) p.Add(new RunSpecProblem(key, Show(value), rule));
        }
        foreach (var (key, group) in new (string, object?)[] { ("data", Data), ("model", Model), ("optim", Optim), ("mix", Mix), ("agent", Agent), ("reward", Reward), ("device", Device) })
            if (group == null) p.Add(new RunSpecProblem(key, "null", "must be an object"));
        if (p.Count > 0) return p;
        Need(Epochs >= 1, "epochs", Epochs, "must be at least 1");
        Need(Batch >= 1, "batch", Batch, "must be at least 1");
        Need(Data.Dataset is "cifar10" or "cifar100" or "synthetic", "data.dataset", Data.Dataset, "must be cifar10, cifar100 or synthetic");
        Need(Data.MaxTrainImages is null or >= 1, "data.max_train_images", Data.MaxTrainImages, "must be at least 1");
        Need(Data.MaxTestImages is null or >= 1, "data.max_test_images", Data.MaxTestImages, "must be at least 1");
        Need(Data.ValFromTrain is null or >= 1, "data.val_from_train", Data.ValFromTrain, "must be at least 1");
        Need(Data.CropPad is >= 0 and <= 8, "data.crop_pad", Data.CropPad, "must be in 0..8");
        Need(Model.Width >= 1, "model.width", Model.Width, "must be at least 1");
        Need(Positive(Optim.LrMax), "optim.lr_max", Optim.LrMax, "must be a positive number");
        Need(Optim.LrStart is null || Positive(Optim.LrStart.Value) && Optim.LrStart <= Optim.LrMax, "optim.lr_start", Optim.LrStart, "must be positive and at most lr_max");
        Need(Optim.LrEnd is null || Positive(Optim.LrEnd.Value) && Optim.LrEnd <= Optim.LrMax, "optim.lr_end", Optim.LrEnd, "must be positive and at most lr_max");
        Need(Optim.PctStart is >= 0 and <= 1, "optim.pct_start", Optim.PctStart, "must be in [0, 1]");
        Need(Optim.Momentum is >= 0 and < 1, "optim.momentum", Optim.Momentum, "must be in [0, 1)");
        Need(Optim.WeightDecay is >= 0 and < 1, "optim.weight_decay", Optim.WeightDecay, "must be in [0, 1)");
        Need(Mix.Patches is 16 or 8, "mix.patches", Mix.Patches, "must be 16 (the paper) or 8 (the authors' code)");
        Need(Mix.Actions >= 2, "mix.actions", Mix.Actions, "must be at least 2");
        Need(Positive(Mix.Alpha), "mix.alpha", Mix.Alpha, "must be a positive number");
        Need(Positive(Mix.MixupAlpha), "mix.mixup_alpha", Mix.MixupAlpha, "must be a positive number");
        Need(Positive(Mix.CutmixAlpha), "mix.cutmix_alpha", Mix.CutmixAlpha, "must be a positive number");
        Need(Mix.CutmixProb is >= 0 and <= 1, "mix.cutmix_prob", Mix.CutmixProb, "must be in [0, 1]");
        Need(Agent.Conv.Length >= 1 && Agent.Conv.All(c => c >= 1), "agent.conv", Agent.Conv, "must be one or more positive channel counts");
        Need(Agent.Features >= 1, "agent.features", Agent.Features, "must be at least 1");
        Need(Agent.PolicyHidden.All(c => c >= 1), "agent.policy_hidden", Agent.PolicyHidden, "must be positive widths");
        Need(Agent.ValueHidden.All(c => c >= 1), "agent.value_hidden", Agent.ValueHidden, "must be positive widths");
        Need(Positive(Agent.LearningRate), "agent.learning_rate", Agent.LearningRate, "must be a positive number");
        Need(Agent.NEpochs >= 1, "agent.n_epochs", Agent.NEpochs, "must be at least 1");
        Need(Agent.RolloutEpochs >= 1, "agent.rollout_epochs", Agent.RolloutEpochs, "must be at least 1");
        Need(Agent.Minibatch >= 1, "agent.minibatch", Agent.Minibatch, "must be at least 1");
        Need(Agent.Gamma is > 0 and <= 2, "agent.gamma", Agent.Gamma, "must be in (0, 2]");
        Need(Agent.GaeLambda is >= 0 and <= 1, "agent.gae_lambda", Agent.GaeLambda, "must be in [0, 1]");
        Need(Positive(Agent.ClipRange), "agent.clip_range", Agent.ClipRange, "must be a positive number");
        Need(Agent.EntCoef >= 0 && double.IsFinite(Agent.EntCoef), "agent.ent_coef", Agent.EntCoef, "must be 0 or more");
        Need(Agent.VfCoef >= 0 && double.IsFinite(Agent.VfCoef), "agent.vf_coef", Agent.VfCoef, "must be 0 or more");
        Need(Positive(Agent.MaxGradNorm), "agent.max_grad_norm", Agent.MaxGradNorm, "must be a positive number");
        Need(Agent.TargetKl is null || Positive(Agent.TargetKl.Value), "agent.target_kl", Agent.TargetKl, "must be a positive number or null");
        Need(Positive(Agent.AdamEps), "agent.adam_eps", Agent.AdamEps, "must be a positive number");
        Need(Reward.Interval >= 1, "reward.interval", Reward.Interval, "must be at least 1");
        Need(Reward.ValFraction is > 0 and <= 1, "reward.val_fraction", Reward.ValFraction, "must be in (0, 1]");
        Need(Reward.Kind == RewardKind.Accuracy || Mix.Policy == MixPolicy.Rl, "reward.kind", Names.Of(Reward.Kind),
            $"grad-sim rewards the rl policy only, not {Names.Of(Mix.Policy)}");
        Need(Device.Name is "cpu" or "cuda" or "auto", "device.name", Device.Name, "must be cpu, cuda or auto");
        Need(Device.Threads is null or >= 1, "device.threads", Device.Threads, "must be at least 1");
        return p;
    }

    /// <summary>
    /// This spec when it is valid; otherwise a <see cref="CliException"/> with the first problem (and
    /// how many there are), prefixed by <paramref name="source"/> when given. A key that
    /// <paramref name="flag"/> maps to a command-line flag is named by the flag ("--lr-max -1: …"),
    /// any other as config.json spells it ("optim.lr_max = -1: …").
    /// </summary>
    public RunSpec Validated(string? source, Func<string, string?>? flag = null)
    {
        var p = Problems();
        if (p.Count == 0) return this;
        string first = flag?.Invoke(p[0].Key) is string f ? $"{f} {p[0].Value}: {p[0].Rule}" : p[0].ToString();
        string more = p.Count > 1 ? $" (and {p.Count - 1} more problem{(p.Count > 2 ? "s" : "")})" : "";
        throw new CliException(source == null ? first + more : $"{source}: {first}{more}");
    }

    private static bool Positive(double v) => v > 0 && double.IsFinite(v);

    private static string Show(object? v) => v switch
    {
        null => "null",
        int[] a => $"[{string.Join(", ", a)}]",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}

/// <summary>One value out of its range: the config.json key, the value as written, and the rule it breaks.</summary>
public sealed record RunSpecProblem(string Key, string Value, string Rule)
{
    public override string ToString() => $"{Key} = {Value}: {Rule}";
}

/// <summary>The data: which dataset, from where, how much of it, and the training augmentation.</summary>
public sealed record DataSpec
{
    /// <summary>cifar100, cifar10 or synthetic.</summary>
    public string Dataset { get; set; } = "cifar100";
    /// <summary>The folder holding the dataset (not read for synthetic data).</summary>
    public string Folder { get; set; } = "data";
    /// <summary>Use only the first N training images.</summary>
    public int? MaxTrainImages { get; set; }
    /// <summary>Use only the first N test images.</summary>
    public int? MaxTestImages { get; set; }
    /// <summary>Reward on N held-out training images (chosen by the seed) instead of the test set, as any honest comparison should.</summary>
    public int? ValFromTrain { get; set; }
    /// <summary>Random-crop zero padding (2, the authors' code; 4 is common).</summary>
    public int CropPad { get; set; } = 2;
    /// <summary>Horizontal flips with p = 0.5.</summary>
    public bool Flip { get; set; } = true;
    /// <summary>The seed synthetic data is generated from (null: the run's seed).</summary>
    public ulong? SyntheticSeed { get; set; }

    /// <summary>The training augmentation these settings describe.</summary>
    [JsonIgnore] public Augmentation Augmentation => new(CropPad, Flip);
}

/// <summary>The classifier: PreActResNet18 of this width.</summary>
public sealed record ModelSpec
{
    public int Width { get; set; } = 64;
    /// <summary>He et al.'s final BN-ReLU before the pooling (off: the CIFAR variant of the paper's table).</summary>
    public bool FinalBnRelu { get; set; }
}

/// <summary>SGD and its one-cycle schedule (PyTorch's OneCycleLR, cosine, stepped per batch).</summary>
public sealed record OptimSpec
{
    public double LrMax { get; set; } = 0.2;
    /// <summary>The first step's learning rate (null: lr_max / 50, the paper's 0.004).</summary>
    public double? LrStart { get; set; }
    /// <summary>The last step's learning rate (null: lr_start / 2, the paper's 0.002).</summary>
    public double? LrEnd { get; set; }
    /// <summary>The share of the steps spent rising to lr_max.</summary>
    public double PctStart { get; set; } = 1.0 / 3;
    public double Momentum { get; set; } = 0.9;
    public bool Nesterov { get; set; } = true;
    /// <summary>Cycle the momentum 0.85 ↔ 0.95 against the learning rate, as PyTorch's OneCycleLR does by default.</summary>
    public bool CycleMomentum { get; set; }
    public double WeightDecay { get; set; } = 1e-4;

    [JsonIgnore] public double Start => LrStart ?? LrMax / 50;
    [JsonIgnore] public double End => LrEnd ?? Start / 2;
}

/// <summary>The mix-up policy and its parameters.</summary>
public sealed record MixSpec
{
    public MixPolicy Policy { get; set; } = MixPolicy.Rl;
    /// <summary>Saliency cells per side: 16 (the paper) or 8 (the authors' code).</summary>
    public int Patches { get; set; } = 16;
    /// <summary>Discrete actions; action a selects the percentile 99·a/(actions − 1).</summary>
    public int Actions { get; set; } = 10;
    /// <summary>Dirichlet(α, α) of RL-Mixup's (λ1, λ2).</summary>
    public double Alpha { get; set; } = 0.5;
    /// <summary>One (λ1, λ2) per image instead of one per batch.</summary>
    public bool DirichletPerImage { get; set; }
    /// <summary>Beta(α, α) of input mixup (1: the usual CIFAR choice).</summary>
    public double MixupAlpha { get; set; } = 1.0;
    /// <summary>Beta(α, α) of CutMix's λ.</summary>
    public double CutmixAlpha { get; set; } = 1.0;
    /// <summary>The share of batches CutMix mixes; the others train clean (1: every batch; 0.5: Yun et al. and the authors' code).</summary>
    public double CutmixProb { get; set; } = 1.0;
    /// <summary>Whether the saliency pass (training-mode BN) updates the BN running statistics (the authors' code: yes).</summary>
    public bool SaliencyUpdatesBnStats { get; set; } = true;

    /// <summary>The percentile action a selects: linspace(0, 99, actions)[a].</summary>
    public float Percentile(int action) => 99f * action / (Actions - 1);
}

/// <summary>The agent's network (the paper's Table 3) and PPO (Stable-Baselines3's names and defaults; the paper's n_steps, n_epochs and γ).</summary>
public sealed record AgentSpec
{
    // PPO's defaults live in PpoConfig, the networks' in ActorCriticSizes.Paper: one place each.
    private static readonly PpoConfig D = new();

    public int[] Conv { get; set; } = [.. ActorCriticSizes.Paper.ConvChannels];
    public int Features { get; set; } = ActorCriticSizes.Paper.Features;
    public int[] PolicyHidden { get; set; } = [.. ActorCriticSizes.Paper.PolicyHidden];
    public int[] ValueHidden { get; set; } = [.. ActorCriticSizes.Paper.ValueHidden];
    /// <summary>Adam's learning rate (SB3's learning_rate).</summary>
    public double LearningRate { get; set; } = D.LearningRate;
    /// <summary>Passes over the rollout per update (SB3's n_epochs).</summary>
    public int NEpochs { get; set; } = D.NEpochs;
    /// <summary>Epochs of steps per rollout: n_steps = rollout_epochs × steps per epoch (the paper: 2).</summary>
    public int RolloutEpochs { get; set; } = 2;
    /// <summary>SB3's batch_size: observations per PPO minibatch.</summary>
    public int Minibatch { get; set; } = D.BatchSize;
    public double Gamma { get; set; } = D.Gamma;
    public double GaeLambda { get; set; } = D.GaeLambda;
    public double ClipRange { get; set; } = D.ClipRange;
    public double EntCoef { get; set; } = D.EntCoef;
    public double VfCoef { get; set; } = D.VfCoef;
    public double MaxGradNorm { get; set; } = D.MaxGradNorm;
    public double? TargetKl { get; set; } = D.TargetKl;
    public bool NormalizeAdvantage { get; set; } = D.NormalizeAdvantage;
    public double AdamEps { get; set; } = D.AdamEps;

    /// <summary>The agent's network sizes.</summary>
    [JsonIgnore] public ActorCriticSizes Sizes => new(Conv, Features, PolicyHidden, ValueHidden);

    /// <summary>PPO's configuration for a run of <paramref name="stepsPerEpoch"/> steps per epoch, seeded from the run's seed.</summary>
    public PpoConfig Ppo(int stepsPerEpoch, ulong runSeed) => new()
    {
        NSteps = RolloutEpochs * stepsPerEpoch, BatchSize = Minibatch, NEpochs = NEpochs, Gamma = Gamma, GaeLambda = GaeLambda,
        ClipRange = ClipRange, EntCoef = EntCoef, VfCoef = VfCoef, MaxGradNorm = MaxGradNorm, LearningRate = LearningRate,
        TargetKl = TargetKl, NormalizeAdvantage = NormalizeAdvantage, AdamEps = AdamEps, Seed = runSeed + 1,
    };
}

/// <summary>The agent's reward.</summary>
public sealed record RewardSpec
{
    /// <summary>accuracy (eq. 5, the paper) or grad-sim (the authors' code: the cosine of the clean and mixed saliency maps, every step).</summary>
    public RewardKind Kind { get; set; } = RewardKind.Accuracy;
    /// <summary>eq5: r = (k/K)(v − V); raw: r = v (the paper's §5.6 variant).</summary>
    public RewardForm Form { get; set; } = RewardForm.Eq5;
    /// <summary>Steps between accuracy rewards.</summary>
    public int Interval { get; set; } = 50;
    /// <summary>The share of the held-out set sampled, afresh, for each reward.</summary>
    public double ValFraction { get; set; } = 0.1;
    /// <summary>Reward only at the end of each episode (epoch), as the §5.6 ablation does.</summary>
    public bool AtEpisodeEnd { get; set; }
}

/// <summary>Where the run computes.</summary>
public sealed record DeviceSpec
{
    /// <summary>cpu, cuda or auto (CUDA when usable, else the CPU).</summary>
    public string Name { get; set; } = "auto";
    /// <summary>TF32 tensor cores for GEMMs and convolutions (CUDA).</summary>
    public bool Tf32 { get; set; } = true;
    /// <summary>CPU worker threads (null: every core).</summary>
    public int? Threads { get; set; }
}
