using System.Diagnostics;
using RlMixup.Core;
using RlMixup.Models;

namespace RlMixup.Ppo;

/// <summary>
/// PPO-Clip with Stable-Baselines3 semantics for one environment whose observations are (C, H, W)
/// maps and whose actions are D independent categoricals of K classes (MultiDiscrete([K]*D)).
/// The agent knows nothing about mix-up. The environment seam, driven by the caller:
/// <code>
///   var obs = env.Reset();
///   while (training)
///   {
///       int[] a = agent.Act(obs);              // samples a ~ π(·|obs); records obs, a, V(obs), log π(a|obs)
///       (obs, r, done) = env.Step(a);          // obs: the NEXT observation (after a reset when done)
///       agent.Observe(r, done);                // records the reward; done marks the end of an episode
///       if (agent.RolloutFull)
///           stats = agent.Update(done ? null : obs);   // GAE with V(obs) as bootstrap, then n_epochs of minibatches
///   }
/// </code>
/// Act and Observe alternate strictly. Update needs the observation that follows the rollout's last
/// step to bootstrap from, unless that step ended an episode (as in RL-Mixup, where a rollout is two
/// whole epochs of the classifier), where it may be null.
/// One seeded <see cref="Rng"/> feeds initialisation, action sampling and minibatch shuffling, so a
/// run is reproducible from <see cref="PpoConfig.Seed"/>; Save/Load (PpoAgent.Checkpoint.cs) restore
/// it with the weights, Adam's state and a partly collected rollout at any step boundary.
/// </summary>
public sealed partial class PpoAgent : IDisposable
{
    private readonly IBackend _b;
    private readonly Rng _rng;
    private readonly RolloutBuffer _buffer;
    private readonly float[] _pendingObs;
    private readonly int[] _pendingAction;
    private float _pendingValue, _pendingLogProb;
    private bool _hasPending;
    private bool _lastEpisodeStart = true; // SB3's _last_episode_starts starts at ones
    private bool _lastDone;
    private Tensor _actInput;
    private Tensor? _batchObs, _dLogits, _dValues;

    public PpoAgent(IBackend backend, PpoConfig config, Shape observationShape, int actionDims, int actionClasses, ActorCriticSizes? sizes = null)
    {
        config.Validate();
        if (observationShape.Rank != 3) throw new ShapeMismatchException($"ppo: observations must be (C, H, W), got {observationShape}");
        _b = backend;
        Config = config;
        ObservationShape = observationShape;
        ActionDims = actionDims;
        ActionClasses = actionClasses;
        Store = new ParameterStore();
        Network = new ActorCritic(Store, observationShape[0], actionDims, actionClasses, sizes);
        _rng = new Rng(config.Seed);
        Store.Materialize(backend, _rng);
        Optimizer = new Adam(Store, (float)config.LearningRate, eps: (float)config.AdamEps);
        _buffer = new RolloutBuffer(config.NSteps, observationShape.Size, actionDims);
        _pendingObs = new float[observationShape.Size];
        _pendingAction = new int[actionDims];
        _actInput = backend.Allocate(new Shape(1, observationShape[0], observationShape[1], observationShape[2]));
    }

    public PpoConfig Config { get; }
    public Shape ObservationShape { get; }
    public int ActionDims { get; }
    public int ActionClasses { get; }
    public ParameterStore Store { get; }
    public ActorCritic Network { get; }
    public Adam Optimizer { get; }
    public RolloutBuffer Buffer => _buffer;
    /// <summary>Updates completed so far.</summary>
    public int Updates { get; private set; }
    /// <summary>True when the rollout holds n_steps steps: call <see cref="Update"/> before acting again.</summary>
    public bool RolloutFull => _buffer.Full;

    /// <summary>
    /// Samples an action for <paramref name="observation"/> ((C,H,W) or (1,C,H,W), any backend) and
    /// records the step; the reward comes with the next <see cref="Observe"/>.
    /// </summary>
    public int[] Act(Tensor observation)
    {
        if (_hasPending) throw new InvalidOperationException("ppo: Act called twice without Observe");
        if (_buffer.Full) throw new InvalidOperationException("ppo: the rollout is full; call Update first");
        var (logits, value) = Evaluate(observation, _pendingObs);
        MultiCategorical.Sample(logits, ActionClasses, _rng, _pendingAction);
        _pendingValue = value;
        _pendingLogProb = (float)MultiCategorical.LogProb(logits, _pendingAction, ActionClasses);
        _hasPending = true;
        return (int[])_pendingAction.Clone();
    }

    /// <summary>Completes the step begun by <see cref="Act"/>: its reward, and whether it ended an episode.</summary>
    public void Observe(float reward, bool done)
    {
        if (!_hasPending) throw new InvalidOperationException("ppo: Observe called without a preceding Act");
        _buffer.Add(_pendingObs, _pendingAction, reward, _lastEpisodeStart, _pendingValue, _pendingLogProb);
        _lastEpisodeStart = done;
        _lastDone = done;
        _hasPending = false;
    }

    /// <summary>An action without recording anything: the mode when <paramref name="deterministic"/>, else a sample (which advances the Rng).</summary>
    public int[] Predict(Tensor observation, bool deterministic)
    {
        var (logits, _) = Evaluate(observation, new float[ObservationShape.Size]);
        var a = new int[ActionDims];
        if (deterministic) MultiCategorical.Mode(logits, ActionClasses, a);
        else MultiCategorical.Sample(logits, ActionClasses, _rng, a);
        return a;
    }

    /// <summary>V(observation).</summary>
    public float PredictValue(Tensor observation) => Evaluate(observation, new float[ObservationShape.Size]).Value;

    private (float[] Logits, float Value) Evaluate(Tensor observation, float[] hostObs)
    {
        if (observation.Length != ObservationShape.Size)
            throw new ShapeMismatchException($"ppo: observation of shape {observation.Shape}, expected {ObservationShape}");
        observation.CopyTo(hostObs);
        _actInput.CopyFrom(hostObs);
        var (logits, values) = Network.Forward(_actInput);
        return (logits.ToArray(), values.ToArray()[0]);
    }

    /// <summary>
    /// SB3's PPO.train() on the full rollout: GAE, then n_epochs passes over minibatches in a fresh
    /// random order (from the agent's Rng), each one gradient step of
    /// loss = pgLoss + ent_coef·entropyLoss + vf_coef·vLoss with the gradient clipped to max_grad_norm.
    /// Empties the rollout.
    /// </summary>
    public PpoUpdateStats Update(Tensor? nextObservation)
    {
        if (!_buffer.Full) throw new InvalidOperationException($"ppo: Update needs a full rollout ({_buffer.Position} of {_buffer.BufferSize} steps)");
        if (!_lastDone && nextObservation == null)
            throw new ArgumentNullException(nameof(nextObservation), "ppo: the rollout's last step did not end an episode, so Update needs the next observation to bootstrap from");
        var sw = Stopwatch.StartNew();
        float lastValue = nextObservation != null ? PredictValue(nextObservation) : 0f;
        _buffer.ComputeReturnsAndAdvantage(lastValue, _lastDone, Config.Gamma, Config.GaeLambda);

        var pg = new List<double>(); var vl = new List<double>(); var el = new List<double>(); var cf = new List<double>();
        var kls = new List<double>();
        double loss = double.NaN;
        int epochsRun = 0, steps = 0;
        bool stop = false;
        for (int epoch = 0; epoch < Config.NEpochs && !stop; epoch++)
        {
            kls.Clear();
            int[] order = _rng.Permutation(_buffer.BufferSize);
            for (int start = 0; start < order.Length; start += Config.BatchSize)
            {
                var idx = order.AsSpan(start, Math.Min(Config.BatchSize, order.Length - start));
                var mb = Minibatch(idx);
                pg.Add(mb.PgLoss); vl.Add(mb.VLoss); el.Add(mb.EntropyLoss); cf.Add(mb.ClipFraction); kls.Add(mb.ApproxKl);
                loss = mb.Loss;
                if (Config.TargetKl is double target && mb.ApproxKl > 1.5 * target) { stop = true; break; }
                Store.ZeroGrad();
                Network.Backward(_dLogits!, _dValues!);
                ClipGradNorm(Config.MaxGradNorm);
                Optimizer.Step();
                steps++;
            }
            epochsRun++;
        }
        double ev = ExplainedVariance(_buffer.Values, _buffer.Returns);
        _buffer.Reset();
        Updates++;
        return new PpoUpdateStats(pg.Average(), vl.Average(), el.Average(), kls.Average(), cf.Average(), ev, loss,
            epochsRun, steps, stop, sw.Elapsed.TotalSeconds);
    }

    private readonly record struct MinibatchLosses(double PgLoss, double VLoss, double EntropyLoss, double Loss, double ApproxKl, double ClipFraction);

    /// <summary>
    /// Forward of one minibatch, its losses, and the loss gradient with respect to the network's
    /// outputs, left in _dLogits (m, D·K) and _dValues (m, 1) for the backward pass.
    /// </summary>
    private MinibatchLosses Minibatch(ReadOnlySpan<int> idx)
    {
        int m = idx.Length, obsSize = ObservationShape.Size, row = ActionDims * ActionClasses;
        var obs = new float[m * obsSize];
        for (int i = 0; i < m; i++) _buffer.Observation(idx[i]).CopyTo(obs.AsSpan(i * obsSize, obsSize));
        var shape = new Shape(m, ObservationShape[0], ObservationShape[1], ObservationShape[2]);
        EnsureTensor(ref _batchObs, shape).CopyFrom(obs);
        var (logitsT, valuesT) = Network.Forward(_batchObs!);
        float[] logits = logitsT.ToArray(), values = valuesT.ToArray();

        var logp = new double[m]; var ent = new double[m]; var adv = new double[m];
        for (int i = 0; i < m; i++)
        {
            var z = logits.AsSpan(i * row, row);
            logp[i] = MultiCategorical.LogProb(z, _buffer.Action(idx[i]), ActionClasses);
            ent[i] = MultiCategorical.Entropy(z, ActionDims, ActionClasses);
            adv[i] = _buffer.Advantages[idx[i]];
        }
        if (Config.NormalizeAdvantage && m > 1)
        {
            double mean = adv.Average(), ss = 0;
            foreach (double a in adv) ss += (a - mean) * (a - mean);
            double std = Math.Sqrt(ss / (m - 1)); // unbiased, as torch's .std()
            for (int i = 0; i < m; i++) adv[i] = (adv[i] - mean) / (std + 1e-8);
        }

        var grads = PpoLoss.Compute(logp, CollectOld(idx), adv, values, CollectReturns(idx), ent, Config);
        var dLogits = new float[m * row];
        for (int i = 0; i < m; i++)
            MultiCategorical.Backward(dLogits.AsSpan(i * row, row), logits.AsSpan(i * row, row), _buffer.Action(idx[i]), ActionClasses,
                grads.DLogProb[i], grads.DEntropy[i]);
        EnsureTensor(ref _dLogits, new Shape(m, row)).CopyFrom(dLogits);
        EnsureTensor(ref _dValues, new Shape(m, 1)).CopyFrom(grads.DValues);
        return new MinibatchLosses(grads.PgLoss, grads.VLoss, grads.EntropyLoss, grads.Loss, grads.ApproxKl, grads.ClipFraction);
    }

    private double[] CollectOld(ReadOnlySpan<int> idx)
    {
        var a = new double[idx.Length];
        for (int i = 0; i < a.Length; i++) a[i] = _buffer.LogProbs[idx[i]];
        return a;
    }

    private double[] CollectReturns(ReadOnlySpan<int> idx)
    {
        var a = new double[idx.Length];
        for (int i = 0; i < a.Length; i++) a[i] = _buffer.Returns[idx[i]];
        return a;
    }

    private Tensor EnsureTensor(ref Tensor? t, Shape shape)
    {
        return Tensor.Ensure(ref t, _b, shape);
    }

    /// <summary>
    /// torch.nn.utils.clip_grad_norm_: the L2 norm of the whole gradient arena (in double here); when
    /// max_norm/(norm + 1e-6) &lt; 1 every gradient is scaled by that factor. Returns the norm.
    /// </summary>
    private double ClipGradNorm(double maxNorm)
    {
        var g = Store.Grads!.ToArray();
        double ss = 0;
        foreach (float v in g) ss += (double)v * v;
        double norm = Math.Sqrt(ss), coef = maxNorm / (norm + 1e-6);
        if (coef < 1) _b.Scale(Store.Grads!, (float)coef);
        return norm;
    }

    /// <summary>SB3's explained_variance: 1 − Var(y − ŷ)/Var(y), population variances; NaN when Var(y) = 0.</summary>
    public static double ExplainedVariance(ReadOnlySpan<float> predicted, ReadOnlySpan<float> target)
    {
        int n = target.Length;
        double my = 0, md = 0;
        for (int i = 0; i < n; i++) { my += target[i]; md += target[i] - predicted[i]; }
        my /= n; md /= n;
        double vy = 0, vd = 0;
        for (int i = 0; i < n; i++)
        {
            double dy = target[i] - my, dd = target[i] - predicted[i] - md;
            vy += dy * dy; vd += dd * dd;
        }
        return vy == 0 ? double.NaN : 1 - vd / vy;
    }

    public void Dispose()
    {
        _actInput.Dispose();
        _batchObs?.Dispose(); _dLogits?.Dispose(); _dValues?.Dispose();
    }
}
