using System.Diagnostics;
using RlMixup.Core;
using RlMixup.Engine.Data;
using RlMixup.Engine.Training;
using RlMixup.Models;
using RlMixup.Ppo;
using RlMixup.Engine.Runs;

namespace RlMixup.Engine.Bench;

/// <summary>What the bench measures; the defaults are the paper's CIFAR-100 shape.</summary>
public sealed record BenchOptions
{
    public int Width { get; init; } = 64;
    public int Batch { get; init; } = 100;
    public int Classes { get; init; } = 100;
    /// <summary>Timed steps; the table reports their median.</summary>
    public int Steps { get; init; } = 10;
    /// <summary>Untimed steps first (allocation, caches, algorithm selection).</summary>
    public int Warmup { get; init; } = 2;
    /// <summary>Training images of the timed epoch (50,000 is a full CIFAR epoch; 0 skips it).</summary>
    public int EpochImages { get; init; } = 50_000;
    /// <summary>Observations in the rollout whose PPO update is timed (one epoch over it).</summary>
    public int PpoRollout { get; init; } = 100;
    /// <summary>How many rollouts are collected and updated on for the PPO median (after one untimed warmup update).</summary>
    public int PpoRepeats { get; init; } = 1;
    public ulong Seed { get; init; }
    /// <summary>The agent's widths (the paper's unless given; tests use small ones).</summary>
    public ActorCriticSizes? AgentSizes { get; init; }
}

/// <summary>One row of the table: a phase's median, min and max over the timed steps, in ms.</summary>
public sealed record PhaseTiming(string Name, double MedianMs, double MinMs, double MaxMs, double[] SamplesMs, string Note);

/// <summary>The timed epoch: a real <see cref="Trainer"/> epoch over <see cref="Images"/> images, scaled to 50,000.</summary>
public sealed record EpochTiming(int Images, int Batches, double TrainLoopSeconds, int Rewards, double Scale,
    double PpoSeconds, double RewardSeconds, double TestEvalSeconds)
{
    /// <summary>The full-epoch estimate: the scaled train loop, the missing rewards, the amortised PPO update and the test evaluation.</summary>
    public double TotalSeconds => TrainLoopSeconds * Scale + RewardSeconds + PpoSeconds + TestEvalSeconds;
}

public sealed record BenchResult(BenchOptions Options, string Device, long ClassifierParams, long AgentParams,
    IReadOnlyList<PhaseTiming> Phases, EpochTiming? Epoch)
{
    public PhaseTiming Total => Phases[^1];
    public double ImagesPerSecond => Options.Batch / (Total.MedianMs / 1000);
    /// <summary>A CIFAR epoch (50,000 images at this batch) estimated from the per-step medians plus the test evaluation.</summary>
    public double EpochFromPhasesSeconds => CifarTrainImages / Options.Batch * Total.MedianMs / 1000 + TestEvalSeconds;
    /// <summary>Top-1 over the 10,000 CIFAR test images, estimated from the reward evaluation (1,000 images).</summary>
    public double TestEvalSeconds => Phases.First(p => p.Name == "reward").MedianMs * RewardInterval / 1000 * CifarTestImages / RewardImages;

    public const int CifarTrainImages = 50_000, CifarTestImages = 10_000;
    /// <summary>The reward evaluates 10% of the 10,000 held-out images (method notes).</summary>
    public const int RewardImages = 1_000, RewardInterval = 50;
}

/// <summary>
/// Times one RL-Mixup step phase by phase on any backend, with the trainer's own code
/// (<see cref="BatchMixer"/>'s three steps, the classifier, the SGD step, the PPO agent):
///   data      a shuffled, augmented batch filled from the uint8 set (the loader)
///   saliency  forward (train mode) + loss + ∂loss/∂input (no weight gradient) + the (B,16,16) maps
///   policy    the agent reads the maps and samples an action per image (Act + Observe)
///   mask_mix  percentile masks, partner permutation, Dirichlet draw, mix and soft labels
///   train     zero_grad, forward, soft-target loss, backward, SGD-Nesterov step
///   ppo       one PPO epoch over a rollout of R observations, × n_epochs / R: the update's cost per step
///   reward    top-1 on 1,000 held-out images (10% of CIFAR's test set), / 50: its cost per step
/// Each timed phase ends with <see cref="IBackend.Synchronize"/>, so device time is charged to it.
/// </summary>
public static class StepBench
{
    public static BenchResult Run(IBackend backend, BenchOptions o, TextWriter? progress = null)
    {
        if (o.Batch < 2) throw new ArgumentException($"--batch {o.Batch}: at least 2 images");
        if (o.Steps < 1) throw new ArgumentException($"--steps {o.Steps}: at least 1");
        if (o.Warmup < 0) throw new ArgumentException($"--warmup {o.Warmup}: cannot be negative");
        if (o.EpochImages != 0 && o.EpochImages < o.Batch)
            throw new ArgumentException($"--epoch-images {o.EpochImages}: at least one batch of {o.Batch}, or 0 to skip the epoch");
        if (o.PpoRollout < 1 || o.PpoRepeats < 1) throw new ArgumentException("the PPO rollout and repeats must be at least 1");

        var agentSpec = o.AgentSizes is { } z
            ? new AgentSpec { Conv = z.ConvChannels, Features = z.Features, PolicyHidden = z.PolicyHidden, ValueHidden = z.ValueHidden }
            : new AgentSpec();
        var config = new RunSpec
        {
            // Two epochs so that even a one-batch epoch has a valid one-cycle schedule; the bench times epoch 1.
            Epochs = 2, Batch = o.Batch, Model = new ModelSpec { Width = o.Width }, Seed = o.Seed, Agent = agentSpec,
        };
        // Synthetic images of CIFAR's shape: the epoch's training images and the reward's 1,000 test images.
        int trainImages = Math.Max(o.EpochImages, o.Batch);
        progress?.WriteLine($"generating {trainImages} + {BenchResult.RewardImages} synthetic {ImageSet.Height}×{ImageSet.Width} images of {o.Classes} classes");
        var data = SyntheticData.Generate(trainImages, BenchResult.RewardImages, o.Classes, o.Seed);
        using var trainer = new Trainer(backend, data, config);
        var rng = new Rng(o.Seed + 7);
        using var loader = DataLoader.Training(BatchSources.Create(backend, data.Train), o.Batch, config.Data.Augmentation);
        using var trainData = loader.Source as IDisposable;
        var test = BatchSources.Create(backend, data.Test);
        using var testData = test as IDisposable;
        int[] rewardIndices = [.. Enumerable.Range(0, BenchResult.RewardImages)];
        var patches = config.Mix.Patches;
        int rollout = Math.Max(o.PpoRollout, o.Warmup + o.Steps);
        // One PPO epoch over a rollout of `rollout` observations: the spec's agent with a rollout of that many one-step epochs.
        var ppoSpec = config with { Agent = agentSpec with { NEpochs = 1, RolloutEpochs = rollout } };
        using var agent = RunFactory.Agent(backend, ppoSpec, stepsPerEpoch: 1);
        int ppoEpochs = new AgentSpec().NEpochs;
        var loss = new SoftTargetLoss();

        string[] names = ["data", "saliency", "policy", "mask_mix", "train"];
        var samples = names.ToDictionary(n => n, _ => new List<double>());
        var totals = new List<double>();
        using var batches = Batches(loader, rng).GetEnumerator();
        progress?.WriteLine($"timing {o.Steps} steps after {o.Warmup} warmup on {backend.Name}");
        for (int step = 0; step < o.Warmup + o.Steps; step++)
        {
            bool timed = step >= o.Warmup;
            var times = new double[names.Length];
            long t0 = Stopwatch.GetTimestamp(), start = t0;
            void Mark(int phase)
            {
                backend.Synchronize();
                long t = Stopwatch.GetTimestamp();
                times[phase] = Stopwatch.GetElapsedTime(t0, t).TotalMilliseconds;
                t0 = t;
            }
            batches.MoveNext();
            var batch = batches.Current;
            Mark(0);
            var maps = trainer.Mixer.Saliency(batch.X, batch.Targets);
            Mark(1);
            int[] actions = agent.Act(maps);
            agent.Observe(0f, done: agent.Buffer.Position == rollout - 1);
            Mark(2);
            var mixed = trainer.Mixer.MaskAndMix(batch.X, batch.Targets, maps, actions);
            Mark(3);
            trainer.Store.ZeroGrad();
            loss.Forward(trainer.Model.Forward(mixed.Images, Mode.Train), mixed.Targets);
            trainer.Model.Backward(loss.Backward());
            trainer.Sgd.Step();
            Mark(4);
            if (!timed) continue;
            for (int k = 0; k < names.Length; k++) samples[names[k]].Add(times[k]);
            totals.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        // PPO: fill the rollout (untimed), then one epoch of minibatch updates, amortised over the
        // steps a real rollout spans: n_epochs × t / R per step.
        var ppoSamples = new List<double>();
        var fill = backend.Allocate(new Shape(o.Batch, patches, patches));
        var fillHost = new float[fill.Length];
        // The first update is untimed: it allocates the minibatch tensors and warms every path.
        for (int repeat = 0; repeat <= o.PpoRepeats; repeat++)
        {
            progress?.WriteLine(repeat == 0
                ? $"PPO: rollout of {rollout} observations, one untimed epoch of updates (warmup)"
                : $"PPO: rollout of {rollout} observations, one epoch of updates ({repeat}/{o.PpoRepeats})");
            while (!agent.RolloutFull)
            {
                for (int i = 0; i < fillHost.Length; i++) fillHost[i] = (float)rng.NextDouble() * 2f / (patches * patches);
                fill.CopyFrom(fillHost);
                agent.Act(fill);
                int t = agent.Buffer.Position;
                agent.Observe(t % 50 == 49 ? (float)rng.Normal() * 0.01f : 0f, done: t == rollout - 1);
            }
            backend.Synchronize();
            long t0 = Stopwatch.GetTimestamp();
            agent.Update(null);
            backend.Synchronize();
            if (repeat > 0) ppoSamples.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds * ppoEpochs / rollout);
        }
        fill.Dispose();

        // The reward: top-1 on 1,000 held-out images, once per 50 steps.
        var rewardSamples = new List<double>();
        for (int i = 0; i < Math.Max(1, Math.Min(o.Steps, 5)) + 1; i++)
        {
            backend.Synchronize();
            long t = Stopwatch.GetTimestamp();
            trainer.Top1(test, rewardIndices);
            double ms = Stopwatch.GetElapsedTime(t).TotalMilliseconds / BenchResult.RewardInterval;
            if (i > 0) rewardSamples.Add(ms); // the first one warms the eval path
        }

        var phases = names.Select(n => Timing(n, samples[n], PhaseNote(n))).ToList();
        phases.Add(Timing("ppo", ppoSamples, $"one epoch over {rollout} observations × {ppoEpochs} epochs / {rollout} steps"));
        phases.Add(Timing("reward", rewardSamples, $"top-1 on {BenchResult.RewardImages} images / {BenchResult.RewardInterval} steps"));
        double ppoMedian = phases[^2].MedianMs, rewardMedian = phases[^1].MedianMs;
        phases.Add(Timing("total", [.. totals.Select(t => t + ppoMedian + rewardMedian)], "one RL-Mixup step, amortised updates included"));

        EpochTiming? epoch = null;
        var partial = new BenchResult(o, backend.Name, trainer.Store.ParameterCount, agent.Store.ParameterCount, phases, null);
        if (o.EpochImages > 0)
        {
            progress?.WriteLine($"timing one training epoch of {trainer.BatchesPerEpoch} batches ({trainer.BatchesPerEpoch * o.Batch} images)");
            var r = trainer.RunEpoch(1);
            double scale = (double)BenchResult.CifarTrainImages / o.Batch / trainer.BatchesPerEpoch;
            double stepsPerEpoch = (double)BenchResult.CifarTrainImages / o.Batch;
            double missingRewards = Math.Max(0, stepsPerEpoch / BenchResult.RewardInterval - r.Rewards * scale);
            epoch = new EpochTiming(trainer.BatchesPerEpoch * o.Batch, trainer.BatchesPerEpoch, r.Seconds, r.Rewards, scale,
                PpoSeconds: stepsPerEpoch * ppoMedian / 1000,
                RewardSeconds: missingRewards * rewardMedian * BenchResult.RewardInterval / 1000,
                TestEvalSeconds: partial.TestEvalSeconds);
        }
        return partial with { Epoch = epoch };
    }

    private static string PhaseNote(string name) => name switch
    {
        "data" => "shuffle, crop and flip, normalise, upload",
        "saliency" => "forward + ∂loss/∂input + maps",
        "policy" => "observation → actions (Act)",
        "mask_mix" => "percentile masks, Dirichlet mix, soft labels",
        "train" => "forward, backward, SGD step",
        _ => "",
    };

    /// <summary>Batches forever: epoch after epoch of the training loader.</summary>
    private static IEnumerable<Batch> Batches(DataLoader loader, Rng rng)
    {
        while (true)
            foreach (var b in loader.Epoch(rng)) yield return b;
    }

    public static PhaseTiming Timing(string name, IReadOnlyList<double> ms, string note)
    {
        if (ms.Count == 0) throw new ArgumentException($"phase {name}: no samples");
        var sorted = ms.Order().ToArray();
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
        return new PhaseTiming(name, median, sorted[0], sorted[^1], [.. ms], note);
    }
}
