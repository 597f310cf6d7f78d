using System.Diagnostics;
using RlMixup.Core;
using RlMixup.Engine.Data;
using RlMixup.Models;
using RlMixup.Ppo;
using RlMixup.Engine.Runs;

namespace RlMixup.Engine.Training;

/// <summary>A non-finite training loss: the run stops at once with one line (exit code 1), keeping its last checkpoint.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>
/// A snapshot after one training step: epoch k of K, the step within the epoch and the global step
/// (both 1-based), the epoch's mean training loss so far, the learning rate, the test top-1 of the
/// last finished epoch (NaN before the first), the epoch's action counts so far (a copy) and the
/// throughput of the epoch so far.
/// </summary>
public sealed record StepProgress(int Epoch, int Epochs, int Step, int StepsPerEpoch, long GlobalStep, double TrainLoss,
    double LearningRate, double LastTestTop1, int[] ActionHistogram, double ImagesPerSecond);

/// <summary>One epoch's summary: what metrics.jsonl records.</summary>
public sealed record EpochResult(int Epoch, double TrainLoss, double TestTop1, double LearningRate, int[] ActionHistogram,
    double RewardMean, int Rewards, PpoUpdateStats? Ppo, double Seconds, double ImagesPerSecond)
{
    /// <summary>Test top-5 and the mean clean test cross-entropy (as `eval` computes them).</summary>
    public double TestTop5 { get; init; } = double.NaN;
    public double TestLoss { get; init; } = double.NaN;
}

/// <summary>
/// Algorithm 1 of the paper. Per batch, in this order: the clean augmented batch → saliency →
/// observation → action → masks → mix (BatchMixer) → train step on the mixed batch (SGD-Nesterov,
/// one-cycle lr per batch) → every RewardInterval steps the reward on a fresh sample of the
/// held-out set, otherwise 0 (with the grad-sim reward: every step, the cosine of the clean and the
/// mixed batch's saliency maps, <see cref="GradSimReward"/>) → the step is handed to the agent (done on the last batch of an
/// epoch) → PPO update when the rollout (two epochs) is full. Top-1 on the whole test set after
/// every epoch.
/// </summary>
public sealed partial class Trainer : IDisposable
{
    private readonly IBackend _b;
    private readonly Rng _rng;
    private readonly DataLoader _train;
    private readonly IBatchSource _heldOut, _test;
    private readonly Tensor _evalX, _evalY;
    private readonly SoftTargetLoss _loss = new();
    private readonly RewardTracker _reward;
    private long _step;
    /// <summary>The epoch in progress, between its first and last step; null at an epoch boundary.</summary>
    private EpochProgress? _epoch;
    private Tensor? _mixedMaps;
    private float[] _cleanMapsHost = [], _mixedMapsHost = [];

    public Trainer(IBackend backend, Dataset data, RunSpec spec)
    {
        if (spec.Problems() is [var problem, ..]) throw new ArgumentException($"run configuration: {problem}");
        ImageSet? heldOut = null;
        if (spec.Data.ValFromTrain is int n)
        {
            if (n < 1 || n >= data.Train.Count)
                throw new ArgumentException($"--val-from-train {n}: must be between 1 and {data.Train.Count - 1} for {data.Train.Count} training images");
            (var rest, heldOut) = Split.HoldOut(data.Train, n, spec.Seed);
            data = data with { Train = rest };
        }
        _b = backend;
        Config = spec;
        Data = data;
        _rng = new Rng(spec.Seed);
        (Store, Model) = RunFactory.Classifier(backend, spec, data.Classes, _rng);
        _train = DataLoader.Training(BatchSources.Create(backend, data.Train), spec.Batch, spec.Data.Augmentation);
        if (_train.BatchesPerEpoch < 1)
            throw new ArgumentException($"{data.Name}: {data.Train.Count} training images make no full batch of {spec.Batch}");
        _test = BatchSources.Create(backend, data.Test);
        _heldOut = heldOut == null ? _test : BatchSources.Create(backend, heldOut);
        Schedule = RunFactory.Schedule(spec, _train.BatchesPerEpoch);
        Sgd = RunFactory.Optimizer(spec, Store, Schedule);
        if (spec.Mix.Policy == MixPolicy.Rl) Agent = RunFactory.Agent(backend, spec, _train.BatchesPerEpoch);
        Mixer = new BatchMixer(backend, Model, spec.Mix, _rng, Agent);
        _reward = new RewardTracker(spec.Reward.Interval, spec.Reward.Form, spec.Reward.AtEpisodeEnd);
        _evalX = backend.Allocate(new Shape(spec.Batch, 3, ImageSet.Height, ImageSet.Width));
        _evalY = backend.Allocate(new Shape(spec.Batch, data.Classes));
    }

    /// <summary>The run's specification.</summary>
    public RunSpec Config { get; }
    public Dataset Data { get; }
    public ParameterStore Store { get; }
    public PreActResNet18 Model { get; }
    public Sgd Sgd { get; }
    public OneCycleSchedule Schedule { get; }
    public PpoAgent? Agent { get; }
    public BatchMixer Mixer { get; }
    public int BatchesPerEpoch => _train.BatchesPerEpoch;

    /// <summary>Records the first steps for a replay elsewhere (see <see cref="StepTrace"/>); null records nothing.</summary>
    public StepTrace? Trace { get; set; }

    /// <summary>Writes training-dynamics diagnostics every few steps (see <see cref="StepStats"/>); null writes none.</summary>
    public StepStats? Stats { get; set; }

    /// <summary>
    /// Handed the scalars of every step (classifier/loss, classifier/lr, classifier/images_per_s), of
    /// every reward (reward/reward) and of every PPO update (Stable-Baselines3's train/* names), with
    /// the global step; null hands out none. TensorBoard's event file is written from them.
    /// </summary>
    public Action<long, IReadOnlyList<(string Tag, double Value)>>? Scalars { get; set; }

    /// <summary>Called after every training step with a snapshot of the epoch so far (on the training thread; keep it cheap).</summary>
    public Action<StepProgress>? Progress { get; set; }

    /// <summary>Top-1 on the test set after the last finished epoch (NaN before the first); shown by progress displays.</summary>
    public double LastTestTop1 { get; set; } = double.NaN;

    /// <summary>Steps already run in the epoch in progress, or null at an epoch boundary.</summary>
    public int? StepsIntoEpoch => _epoch?.Done;

    /// <summary>Runs epoch k (1-based) of Algorithm 1 and evaluates on the test set.</summary>
    public EpochResult RunEpoch(int epoch) => RunEpoch(epoch, CancellationToken.None)!;

    /// <summary>
    /// Runs epoch k (1-based) of Algorithm 1, or the rest of it when the trainer holds that epoch's
    /// progress (stopped, or restored from a mid-epoch checkpoint), and evaluates on the test set.
    /// <paramref name="stop"/> is looked at after every step but the epoch's last: when it is set the
    /// epoch stops there, its progress is kept (see <see cref="SaveState"/>) and the result is null.
    /// </summary>
    public EpochResult? RunEpoch(int epoch, CancellationToken stop)
    {
        if (_epoch != null && _epoch.Epoch != epoch)
            throw new InvalidOperationException($"epoch {_epoch.Epoch} is in progress ({_epoch.Done} steps run); cannot run epoch {epoch}");
        // The shuffle is drawn before the epoch's first batch, each batch's augmentation just before it.
        var e = _epoch ??= new EpochProgress(epoch, _train.Plan(_rng), Config.Mix.Actions);
        int steps = _train.BatchesPerEpoch, first = e.Done;
        var clock = Stopwatch.StartNew();
        bool gradSim = Agent != null && Config.Reward.Kind == RewardKind.GradSim;
        var stepClock = new Stopwatch();
        while (e.Done < steps)
        {
            stepClock.Restart();
            var batch = _train.FillBatch(e.Plan, e.Done, _rng);
            _step++;
            var trace = Trace is { } tr && tr.Records(_step) ? tr : null;
            trace?.Before(_step, Store, Sgd);
            var mixed = Mixer.Mix(batch.X, batch.Targets);
            if (mixed.Actions != null) foreach (int a in mixed.Actions) e.Histogram[a]++;

            Schedule.Apply(Sgd, (int)(_step - 1));
            Store.ZeroGrad();
            float loss = _loss.Forward(Model.Forward(mixed.Images, Mode.Train), mixed.Targets);
            if (!float.IsFinite(loss))
                throw new TrainingDivergedException(
                    $"epoch {epoch}, step {e.Done + 1} of {steps} (global step {_step}): the training loss is {loss}: training diverged. " +
                    $"The checkpoint of the last finished epoch is kept; lower the peak learning rate (--lr-max, {Config.Optim.LrMax}) and train again");
            e.LossSum += loss;
            var mixedInputGrad = Model.Backward(_loss.Backward(), inputGrad: gradSim);
            double gradSimReward = gradSim ? GradSim(mixed.Observation!, mixedInputGrad!) : 0;
            if (Stats is { } stats && stats.Records(_step)) stats.Write(_step, Sgd.LearningRate, loss, Store, Model);
            Sgd.Step();
            trace?.After(_step, batch, mixed, loss, Sgd, Store, Model, Config);
            e.Done++;
            double stepSeconds = stepClock.Elapsed.TotalSeconds;
            Scalars?.Invoke(_step, [("classifier/loss", loss), ("classifier/lr", Sgd.LearningRate),
                ("classifier/images_per_s", stepSeconds > 0 ? Config.Batch / stepSeconds : 0)]);

            if (Agent != null)
            {
                double r = 0;
                if (gradSim)
                {
                    r = gradSimReward;
                    e.RewardSum += r;
                    e.Rewards++;
                }
                else if (_reward.IsRewardStep(_step, episodeEnd: e.Done == steps))
                {
                    r = _reward.Reward(SampleTop1(), epoch, Config.Epochs);
                    e.RewardSum += r;
                    e.Rewards++;
                }
                if (r != 0 || gradSim || _reward.IsRewardStep(_step, episodeEnd: e.Done == steps)) Scalars?.Invoke(_step, [("reward/reward", r)]);
                Agent.Observe((float)r, done: e.Done == steps);
                if (Agent.RolloutFull)
                {
                    e.Ppo = Agent.Update(null);
                    if (Scalars != null) Scalars(_step, PpoScalars(e.Ppo));
                }
            }
            if (Progress != null)
            {
                double s = clock.Elapsed.TotalSeconds;
                Progress(new StepProgress(epoch, Config.Epochs, e.Done, steps, _step, e.LossSum / e.Done, Sgd.LearningRate, LastTestTop1,
                    [.. e.Histogram], s > 0 ? (e.Done - first) * Config.Batch / s : 0));
            }
            if (e.Done < steps && stop.IsCancellationRequested)
            {
                e.Seconds += clock.Elapsed.TotalSeconds;
                return null;
            }
        }
        _epoch = null;
        double seconds = e.Seconds + clock.Elapsed.TotalSeconds;
        var test = Evaluation.Run(Model, _test, [.. Enumerable.Range(0, _test.Count)], _evalX, _evalY);
        LastTestTop1 = test.Top1;
        return new EpochResult(epoch, e.LossSum / steps, test.Top1, Sgd.LearningRate, e.Histogram, e.Rewards > 0 ? e.RewardSum / e.Rewards : 0, e.Rewards, e.Ppo,
            seconds, steps * Config.Batch / seconds) { TestTop5 = test.Top5, TestLoss = test.CrossEntropy };
    }

    /// <summary>An update's statistics under Stable-Baselines3's logger keys.</summary>
    private List<(string, double)> PpoScalars(PpoUpdateStats u) =>
    [
        ("train/policy_gradient_loss", u.PolicyLoss), ("train/value_loss", u.ValueLoss), ("train/entropy_loss", u.EntropyLoss),
        ("train/approx_kl", u.ApproxKl), ("train/clip_fraction", u.ClipFraction), ("train/loss", u.Loss),
        ("train/explained_variance", u.ExplainedVariance), ("train/n_updates", Agent!.Updates * Agent.Config.NEpochs),
        ("train/clip_range", Agent.Config.ClipRange), ("train/learning_rate", Agent.Config.LearningRate),
    ];

    /// <summary>
    /// The grad-sim reward of a step: the mixed batch's input gradient pooled into (B,p,p) maps exactly
    /// as the saliency pass pools the clean one, both downloaded, the mean per-image cosine on the host.
    /// </summary>
    private double GradSim(Tensor cleanMaps, Tensor mixedInputGrad)
    {
        Tensor.Ensure(ref _mixedMaps, _b, cleanMaps.Shape);
        _b.SaliencyMaps(_mixedMaps, mixedInputGrad);
        if (_cleanMapsHost.Length != cleanMaps.Length) { _cleanMapsHost = new float[cleanMaps.Length]; _mixedMapsHost = new float[cleanMaps.Length]; }
        cleanMaps.CopyTo(_cleanMapsHost);
        _mixedMaps.CopyTo(_mixedMapsHost);
        return GradSimReward.Mean(_cleanMapsHost, _mixedMapsHost, cleanMaps.Shape.N);
    }

    /// <summary>v of eq. 5: top-1 on a fresh uniform sample (without replacement) of the held-out set.</summary>
    private double SampleTop1()
    {
        int n = Math.Max(1, (int)Math.Round(Config.Reward.ValFraction * _heldOut.Count));
        int[] perm = _rng.Permutation(_heldOut.Count);
        return Top1(_heldOut, perm.AsSpan(0, n).ToArray());
    }

    /// <summary>Top-1 of the classifier in eval mode, without mixing, over the given images.</summary>
    public double Top1(IBatchSource source, int[] indices) => Evaluation.Run(Model, source, indices, _evalX, _evalY).Top1;

    public void Dispose()
    {
        Agent?.Dispose();
        _mixedMaps?.Dispose();
        _train.Dispose();
        // the datasets' device copies, on a GPU
        (_train.Source as IDisposable)?.Dispose();
        (_test as IDisposable)?.Dispose();
        if (!ReferenceEquals(_heldOut, _test)) (_heldOut as IDisposable)?.Dispose();
    }

    /// <summary>An epoch between its first and last step: its batch plan, the steps run and the sums so far.</summary>
    private sealed class EpochProgress(int epoch, List<int[]> plan, int actions)
    {
        public int Epoch { get; } = epoch;
        public List<int[]> Plan { get; } = plan;
        public int Done { get; set; }
        public double LossSum { get; set; }
        public double RewardSum { get; set; }
        public int Rewards { get; set; }
        public int[] Histogram { get; } = new int[actions];
        public PpoUpdateStats? Ppo { get; set; }
        /// <summary>Training seconds spent in the epoch before this call (timing only; not part of the result's bits).</summary>
        public double Seconds { get; set; }
    }
}
