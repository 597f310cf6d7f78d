namespace RlMixup.Ppo;

/// <summary>
/// PPO-Clip hyper-parameters, one field per Stable-Baselines3 argument (same names, in C# casing).
/// The defaults are the paper's (§3.2, Appendix A): SB3's defaults except n_steps (= 2 epochs of
/// 500 batches on CIFAR), batch_size 100, n_epochs 20 and γ = 1.001.
/// </summary>
public sealed record PpoConfig
{
    /// <summary>n_steps: environment steps per rollout; an update runs when the rollout is full.</summary>
    public int NSteps { get; init; } = 1000;
    /// <summary>batch_size: minibatch size of the update (the last minibatch is smaller when it does not divide n_steps).</summary>
    public int BatchSize { get; init; } = 100;
    /// <summary>n_epochs: passes over the rollout per update, each in a fresh random order.</summary>
    public int NEpochs { get; init; } = 20;
    /// <summary>gamma: discount. The paper uses 1.001 (&gt; 1: later rewards weigh slightly more).</summary>
    public double Gamma { get; init; } = 1.001;
    /// <summary>gae_lambda: GAE(λ) trade-off.</summary>
    public double GaeLambda { get; init; } = 0.95;
    /// <summary>clip_range: ε of the clipped surrogate.</summary>
    public double ClipRange { get; init; } = 0.2;
    /// <summary>ent_coef: weight of the entropy loss (0: the entropy is logged but not trained).</summary>
    public double EntCoef { get; init; } = 0.0;
    /// <summary>vf_coef: weight of the value loss.</summary>
    public double VfCoef { get; init; } = 0.5;
    /// <summary>max_grad_norm: the global L2 norm the gradient is clipped to.</summary>
    public double MaxGradNorm { get; init; } = 0.5;
    /// <summary>learning_rate: Adam's (constant) learning rate.</summary>
    public double LearningRate { get; init; } = 3e-4;
    /// <summary>target_kl: stop the update early once a minibatch's approx KL exceeds 1.5·target_kl (null: never).</summary>
    public double? TargetKl { get; init; }
    /// <summary>normalize_advantage: (A − mean)/(std + 1e-8) per minibatch, std unbiased as torch's .std().</summary>
    public bool NormalizeAdvantage { get; init; } = true;
    /// <summary>Adam's eps: SB3's PPO passes 1e-5 (PyTorch's default is 1e-8).</summary>
    public double AdamEps { get; init; } = 1e-5;
    /// <summary>Seed of the agent's one Rng: initialisation, then action sampling and minibatch shuffles.</summary>
    public ulong Seed { get; init; }

    public void Validate()
    {
        if (NSteps < 1) throw new ArgumentOutOfRangeException(nameof(NSteps), $"n_steps must be ≥ 1, got {NSteps}");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), $"batch_size must be ≥ 1, got {BatchSize}");
        if (NEpochs < 1) throw new ArgumentOutOfRangeException(nameof(NEpochs), $"n_epochs must be ≥ 1, got {NEpochs}");
        if (!(ClipRange > 0)) throw new ArgumentOutOfRangeException(nameof(ClipRange), $"clip_range must be > 0, got {ClipRange}");
        if (!(MaxGradNorm > 0)) throw new ArgumentOutOfRangeException(nameof(MaxGradNorm), $"max_grad_norm must be > 0, got {MaxGradNorm}");
        if (!(LearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(LearningRate), $"learning_rate must be > 0, got {LearningRate}");
        if (GaeLambda is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(GaeLambda), $"gae_lambda must lie in [0, 1], got {GaeLambda}");
        if (TargetKl is <= 0) throw new ArgumentOutOfRangeException(nameof(TargetKl), $"target_kl must be > 0 or null, got {TargetKl}");
    }
}

/// <summary>
/// What one update logs (SB3's train/* keys). Losses, clip fraction and entropy loss are means over
/// every minibatch of every epoch that ran; ApproxKl is the mean over the last epoch's minibatches
/// (as SB3, whose list is reset per epoch); ExplainedVariance compares the rollout's values with its
/// returns, 1 − Var(returns − values)/Var(returns) (NaN when the returns are constant).
/// </summary>
public sealed record PpoUpdateStats(
    double PolicyLoss,
    double ValueLoss,
    double EntropyLoss,
    double ApproxKl,
    double ClipFraction,
    double ExplainedVariance,
    double Loss,
    int EpochsRun,
    int GradientSteps,
    bool StoppedEarly,
    double UpdateSeconds);
