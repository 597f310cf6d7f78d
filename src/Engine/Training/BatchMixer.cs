using RlMixup.Core;
using RlMixup.Core.Mixup;
using RlMixup.Models;
using RlMixup.Ppo;
using RlMixup.Engine.Runs;

namespace RlMixup.Engine.Training;

/// <summary>The mix-up policies compared on the same engine and budget (method notes, "Policies to compare").</summary>
public enum MixPolicy
{
    /// <summary>RL-Mixup: the PPO agent picks each image's percentile from the batch's saliency maps.</summary>
    Rl,
    /// <summary>The same saliency masks with actions drawn uniformly every step (the paper's §5.5, R-Mix).</summary>
    Random,
    /// <summary>Zhang et al.'s input mixup with one Beta(α, α) draw per batch.</summary>
    InputMixup,
    /// <summary>CutMix with one box per batch, λ corrected by the box's area.</summary>
    Cutmix,
    /// <summary>Plain training on the clean batch.</summary>
    None,
}

/// <summary>
/// What one batch turned into: the classifier's training input, what the agent saw and chose, and the
/// mix's random draws (null for the clean batch).
/// </summary>
public sealed record MixedBatch(Tensor Images, Tensor Targets, Tensor? Observation, int[]? Actions, MixDraws? Draws = null);

/// <summary>
/// The random draws of one mix, kept so that a step can be replayed elsewhere: the partner of each
/// image, the mixing weights (input mixup's λ, RL-Mixup's λ1 per batch or per image), the CutMix box,
/// and the saliency policies' cell masks (B,p,p), owned by the mixer and overwritten by the next mix.
/// </summary>
public sealed record MixDraws(int[] Partner, float[]? Lambda, CutBox? Box, Tensor? Masks);

/// <summary>
/// Steps 1–3 of Algorithm 1 for one batch: the saliency pass (forward, then ∂loss/∂input only,
/// with no weight gradient computed), the (B, p, p) maps, the agent's (or a random) action per
/// image, the percentile masks, a random partner permutation, one Dirichlet draw, and the mix
/// with its soft labels. The baselines skip the saliency pass.
/// Random draws happen in a fixed order from the trainer's Rng — actions (random policy), the
/// permutation, then λ (then the CutMix box) — so a run is reproducible from its seed.
/// </summary>
public sealed class BatchMixer
{
    private readonly IBackend _b;
    private readonly PreActResNet18 _model;
    private readonly Rng _rng;
    private readonly PpoAgent? _agent;
    private readonly SoftTargetLoss _saliencyLoss = new();
    private Tensor? _mixed, _mixedTargets, _maps, _masks, _thresholds, _fractions;

    public BatchMixer(IBackend backend, PreActResNet18 model, MixSpec options, Rng rng, PpoAgent? agent)
    {
        if (options.Policy == MixPolicy.Rl && agent == null) throw new ArgumentException("the rl policy needs a PPO agent");
        if (options.Actions < 2) throw new ArgumentOutOfRangeException(nameof(options), "at least two actions are needed");
        _b = backend;
        _model = model;
        Policy = options.Policy;
        Options = options;
        _rng = rng;
        _agent = agent;
    }

    public MixPolicy Policy { get; }
    public MixSpec Options { get; }

    /// <summary>Mixes a clean, augmented batch x (B,3,H,W) with soft targets (B,K).</summary>
    public MixedBatch Mix(Tensor x, Tensor targets)
    {
        int n = x.Shape.N;
        switch (Policy)
        {
            case MixPolicy.None:
                return new MixedBatch(x, targets, null, null);
            case MixPolicy.InputMixup:
            {
                var (mixed, mixedTargets) = Outputs(x, targets);
                int[] perm = _rng.Permutation(n);
                float lambda = (float)_rng.Beta(Options.MixupAlpha, Options.MixupAlpha);
                _b.InputMixup(mixed, mixedTargets, x, targets, perm, lambda);
                return new MixedBatch(mixed, mixedTargets, null, null, new MixDraws(perm, [lambda], null, null));
            }
            case MixPolicy.Cutmix:
            {
                // Yun et al.: a uniform draw decides first whether the batch is mixed (no draw when every batch is).
                if (Options.CutmixProb < 1 && !(_rng.NextDouble() < Options.CutmixProb)) return new MixedBatch(x, targets, null, null);
                var (mixed, mixedTargets) = Outputs(x, targets);
                int[] perm = _rng.Permutation(n);
                double lambda = _rng.Beta(Options.CutmixAlpha, Options.CutmixAlpha);
                var box = CutBox.Sample(_rng, lambda, x.Shape.H, x.Shape.W);
                _b.CutMix(mixed, mixedTargets, x, targets, perm, box);
                return new MixedBatch(mixed, mixedTargets, null, null, new MixDraws(perm, [(float)lambda], box, null));
            }
            default:
                return SaliencyMix(x, targets);
        }
    }

    private MixedBatch SaliencyMix(Tensor x, Tensor targets)
    {
        var maps = Saliency(x, targets);
        return MaskAndMix(x, targets, maps, ChooseActions(maps));
    }

    /// <summary>
    /// Step 1: the (B, p, p) saliency maps of the clean batch: ∂loss/∂input with training-mode BN and
    /// no weight gradient, reduced to the channel L2 and pooled to p×p cells, each map summing to 1.
    /// The returned tensor is owned by the mixer and overwritten by the next call.
    /// </summary>
    public Tensor Saliency(Tensor x, Tensor targets)
    {
        int n = x.Shape.N, p = Options.Patches;
        MixupReference.CheckCells(x.Shape.H, x.Shape.W, p);
        var logits = _model.Forward(x, Options.SaliencyUpdatesBnStats ? Mode.Train : Mode.TrainFrozenStats);
        _saliencyLoss.Forward(logits, targets);
        var inputGrad = _model.Backward(_saliencyLoss.Backward(), weightGrads: false, inputGrad: true)!;
        var maps = Ensure(ref _maps, new Shape(n, p, p));
        _b.SaliencyMaps(maps, inputGrad);
        return maps;
    }

    /// <summary>Step 2: one action per image, the agent's (recorded in its rollout) or uniform (the random policy).</summary>
    public int[] ChooseActions(Tensor maps)
    {
        int n = maps.Shape.N;
        int[] actions = Policy == MixPolicy.Rl
            ? _agent!.Act(maps)
            : [.. Enumerable.Range(0, n).Select(_ => _rng.NextInt(Options.Actions))];
        if (actions.Length != n) throw new InvalidOperationException($"the agent returned {actions.Length} actions for a batch of {n}");
        return actions;
    }

    /// <summary>
    /// Step 3: masks from the actions' percentiles, a partner permutation, (λ1, λ2) ~ Dirichlet(α, α)
    /// (per batch, or per image), and the mix with its soft labels.
    /// </summary>
    public MixedBatch MaskAndMix(Tensor x, Tensor targets, Tensor maps, int[] actions)
    {
        int n = x.Shape.N;
        if (actions.Length != n) throw new ArgumentException($"{actions.Length} actions for a batch of {n}");
        var masks = Ensure(ref _masks, maps.Shape);
        var thresholds = Ensure(ref _thresholds, new Shape(n));
        _b.PercentileMasks(masks, thresholds, maps, [.. actions.Select(Options.Percentile)]);
        int[] perm = _rng.Permutation(n);
        float[] lambda1 = [.. Enumerable.Range(0, Options.DirichletPerImage ? n : 1).Select(_ => (float)_rng.Beta(Options.Alpha, Options.Alpha))];
        var (mixed, mixedTargets) = Outputs(x, targets);
        _b.MaskMix(mixed, mixedTargets, Ensure(ref _fractions, new Shape(n, 3)), x, targets, masks, perm, lambda1);
        return new MixedBatch(mixed, mixedTargets, maps, actions, new MixDraws(perm, lambda1, null, masks));
    }

    private (Tensor Mixed, Tensor Targets) Outputs(Tensor x, Tensor targets) =>
        (Ensure(ref _mixed, x.Shape), Ensure(ref _mixedTargets, targets.Shape));

    private Tensor Ensure(ref Tensor? t, Shape shape)
    {
        return Tensor.Ensure(ref t, _b, shape);
    }
}
