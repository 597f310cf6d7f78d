// The agent end to end through its environment seam (Act → Observe → Update): a smoke test, two
// learning tests on toy environments with RL-Mixup's observation structure, and checkpoint resume.
using System.Diagnostics;
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Models;
using RlMixup.Ppo;

namespace RlMixup.Tests;

/// <summary>A toy environment: observations are (C, H, W) maps on the host, actions D categoricals.</summary>
public interface IToyEnv
{
    float[] Reset();
    (float[] Obs, float Reward, bool Done) Step(int[] action);
}

/// <summary>
/// A contextual bandit shaped like RL-Mixup's observations: C channels of small maps, one action of
/// K classes per channel. Each step every channel gets a hidden level k_c ∈ [0, K) and its map is
/// filled with 2·k_c/(K−1) − 1 plus uniform noise of ±0.3 per cell; the best action for channel c is
/// k_c (the middle levels need a non-monotone decision). The reward is the fraction of channels
/// whose action is right; every step is an episode.
/// </summary>
public sealed class LevelBandit(int channels, int size, int classes, ulong seed) : IToyEnv
{
    private readonly Rng _rng = new(seed);
    public int[] Levels { get; } = new int[channels];
    private float[] _obs = [];

    public float[] Reset() => _obs = Draw();

    private float[] Draw()
    {
        var o = new float[channels * size * size];
        for (int c = 0; c < channels; c++)
        {
            Levels[c] = _rng.NextInt(classes);
            float level = 2f * Levels[c] / (classes - 1) - 1f;
            for (int i = 0; i < size * size; i++) o[c * size * size + i] = level + (float)_rng.Uniform(-0.3, 0.3);
        }
        return o;
    }

    public (float[], float, bool) Step(int[] action)
    {
        int right = 0;
        for (int c = 0; c < channels; c++) if (action[c] == Levels[c]) right++;
        return (Draw(), right / (float)channels, true);
    }
}

/// <summary>
/// A delayed-reward task: episodes of <c>k</c> steps, one binary action per step whose right value is
/// the sign of channel 0's map (noisy ±1); the reward, the fraction of right actions in the episode,
/// comes only on the episode's last step (as RL-Mixup's reward every 50 steps), 0 on all others.
/// </summary>
public sealed class DelayedSign(int k, int size, ulong seed) : IToyEnv
{
    private readonly Rng _rng = new(seed);
    private int _t, _right, _sign;

    public float[] Reset() { _t = 0; _right = 0; return Draw(); }

    private float[] Draw()
    {
        _sign = _rng.NextInt(2);
        var o = new float[2 * size * size];
        for (int i = 0; i < size * size; i++)
        {
            o[i] = (_sign == 1 ? 1f : -1f) + (float)_rng.Uniform(-0.5, 0.5);
            o[size * size + i] = (float)_t / k; // channel 1: the time in the episode
        }
        return o;
    }

    public (float[], float, bool) Step(int[] action)
    {
        if (action[0] == _sign) _right++;
        _t++;
        if (_t < k) return (Draw(), 0f, false);
        float r = _right / (float)k;
        return (Reset(), r, true);
    }
}

public class PpoAgentTests
{
    private static readonly ActorCriticSizes Small = new([16, 16, 16], 32, [32, 32], [32, 32]);

    private static Tensor Obs(IBackend b, float[] data, Shape shape)
    {
        var t = b.Allocate(shape);
        t.CopyFrom(data);
        return t;
    }

    /// <summary>Runs <paramref name="updates"/> rollouts through the seam; returns each update's stats and each rollout's mean reward.</summary>
    private static (List<PpoUpdateStats> Stats, List<double> MeanReward) Train(PpoAgent agent, IToyEnv env, Shape shape, int updates,
        ref float[] obs, List<int[]>? actions = null)
    {
        var b = agent.Store.Values!.Backend;
        var stats = new List<PpoUpdateStats>(); var rewards = new List<double>();
        double sum = 0;
        while (stats.Count < updates)
        {
            var a = agent.Act(Obs(b, obs, shape));
            actions?.Add(a);
            (obs, float r, bool done) = env.Step(a);
            sum += r;
            agent.Observe(r, done);
            if (agent.RolloutFull)
            {
                stats.Add(agent.Update(done ? null : Obs(b, obs, shape)));
                rewards.Add(sum / agent.Config.NSteps);
                sum = 0;
            }
        }
        return (stats, rewards);
    }

    [Test]
    public void SmokeOneUpdateAtSmallSize()
    {
        using var b = new CpuBackend(2);
        var shape = new Shape(6, 8, 8);
        var config = new PpoConfig { NSteps = 24, BatchSize = 10, NEpochs = 2, Seed = 1 };
        using var agent = new PpoAgent(b, config, shape, actionDims: 6, actionClasses: 10, Small);
        var before = agent.Store.Values!.ToArray();
        var env = new LevelBandit(6, 8, 10, 2);
        var obs = env.Reset();
        // episode boundaries by hand: done after steps 4 and 9
        for (int t = 0; t < 24; t++)
        {
            var a = agent.Act(Obs(b, obs, shape));
            Assert.That(a, Has.Length.EqualTo(6).And.All.InRange(0, 9));
            (obs, float r, _) = env.Step(a);
            agent.Observe(r, done: t == 4 || t == 9);
        }
        Assert.That(agent.RolloutFull);
        Assert.That(agent.Buffer.EpisodeStarts.Select((v, t) => (v, t)).Where(p => p.v == 1).Select(p => p.t), Is.EqualTo(new[] { 0, 5, 10 }));
        Assert.Throws<ArgumentNullException>(() => agent.Update(null), "the last step did not end an episode: a bootstrap observation is needed");
        var s = agent.Update(Obs(b, obs, shape));
        Assert.That(s.GradientSteps, Is.EqualTo(2 * 3), "24 steps in minibatches of 10 are 3 minibatches (the last of 4), for 2 epochs");
        Assert.That(s.EpochsRun, Is.EqualTo(2));
        Assert.That(new[] { s.PolicyLoss, s.ValueLoss, s.EntropyLoss, s.ApproxKl, s.ClipFraction, s.ExplainedVariance, s.Loss }, Is.All.Matches<double>(double.IsFinite));
        // entropy of 6 near-uniform categoricals of 10: −entropyLoss ≈ 6·ln 10
        Assert.That(-s.EntropyLoss, Is.EqualTo(6 * Math.Log(10)).Within(0.01));
        Assert.That(agent.Store.Values!.ToArray(), Is.Not.EqualTo(before).AsCollection);
        Assert.That(agent.Optimizer.StepCount, Is.EqualTo(6));
        Assert.That(agent.Buffer.Position, Is.EqualTo(0));
        Assert.Throws<InvalidOperationException>(() => agent.Observe(0f, false), "Observe needs an Act first");
    }

    [Test]
    public void TargetKlStopsTheUpdateEarly()
    {
        using var b = new CpuBackend(2);
        var shape = new Shape(4, 8, 8);
        // a tiny target_kl and a large learning rate: the first minibatch after a step exceeds 1.5·target_kl
        var config = new PpoConfig { NSteps = 32, BatchSize = 8, NEpochs = 4, LearningRate = 1e-2, TargetKl = 1e-6, Seed = 3 };
        using var agent = new PpoAgent(b, config, shape, 4, 3, Small);
        var env = new LevelBandit(4, 8, 3, 4);
        var obs = env.Reset();
        var (stats, _) = Train(agent, env, shape, 1, ref obs);
        Assert.That(stats[0].StoppedEarly);
        Assert.That(stats[0].GradientSteps, Is.LessThan(4 * 4));
        Assert.That(agent.Optimizer.StepCount, Is.EqualTo(stats[0].GradientSteps));
    }

    /// <summary>
    /// The bandit of 4 channels of 8×8 maps, one action per channel: a uniform policy is right 1/K of the
    /// time, and every channel must be read separately (the first convolution mixes all channels; with
    /// K = 3 the middle level needs a non-monotone decision), so ≥ 90 % right actions of the greedy
    /// policy on fresh draws means the agent learnt the per-channel mapping from the maps.
    /// Bounded: at most 60 updates of 128 steps; K = 3 needs about 45 (≈ 15 s of CPU, Debug build),
    /// K = 2 about 5.
    /// </summary>
    [TestCase(3, 16)]
    [TestCase(2, 8)]
    public void LearnsAContextualBanditWithTheObservationStructure(int classes, int convWidth)
    {
        using var b = new CpuBackend(1);
        var shape = new Shape(4, 8, 8);
        var config = new PpoConfig { NSteps = 128, BatchSize = 32, NEpochs = 10, Gamma = 0.99, LearningRate = 1e-3, Seed = 7 };
        using var agent = new PpoAgent(b, config, shape, 4, classes, Small with { ConvChannels = [convWidth, convWidth, convWidth] });
        var env = new LevelBandit(4, 8, classes, 8);
        var obs = env.Reset();
        var sw = Stopwatch.StartNew();
        double accuracy = 0;
        for (int round = 0; round < 12 && accuracy < 0.9; round++)
        {
            Train(agent, env, shape, 5, ref obs);
            accuracy = GreedyAccuracy(agent, b, shape, 300);
            TestContext.Out.WriteLine($"after {5 * (round + 1)} updates: greedy accuracy {accuracy:P1} ({sw.Elapsed.TotalSeconds:F1} s)");
        }
        Assert.That(accuracy, Is.GreaterThanOrEqualTo(0.9));
    }

    private static double GreedyAccuracy(PpoAgent agent, IBackend b, Shape shape, int draws)
    {
        var env = new LevelBandit(shape[0], shape[1], agent.ActionClasses, 12345);
        int right = 0;
        for (int i = 0; i < draws; i++)
        {
            var o = env.Reset();
            var a = agent.Predict(Obs(b, o, shape), deterministic: true);
            for (int c = 0; c < shape[0]; c++) if (a[c] == env.Levels[c]) right++;
        }
        return right / (double)(draws * shape[0]);
    }

    /// <summary>
    /// Delayed reward with γ = 1: the reward of a 5-step episode comes on its last step only, so every
    /// earlier action is credited through the value bootstrap and GAE. A uniform policy earns 0.5 per
    /// episode; the test asks the mean of the last three rollouts to beat the first rollout by 0.25.
    /// Bounded: 12 updates of 200 steps (≈ 8 s of CPU, Debug build); the return is ≈ 1 after about 8.
    /// </summary>
    [Test]
    public void DelayedRewardReturnRises()
    {
        using var b = new CpuBackend(1);
        const int k = 5;
        var shape = new Shape(2, 8, 8);
        var config = new PpoConfig { NSteps = 200, BatchSize = 50, NEpochs = 10, Gamma = 1.0, LearningRate = 1e-3, Seed = 21 };
        using var agent = new PpoAgent(b, config, shape, 1, 2, Small);
        var env = new DelayedSign(k, 8, 22);
        var obs = env.Reset();
        var (_, meanReward) = Train(agent, env, shape, 12, ref obs);
        // mean reward per step × k = mean return per episode (rollouts hold whole episodes: 200 = 40·5)
        var returns = meanReward.Select(r => r * k).ToList();
        TestContext.Out.WriteLine("mean episode return per rollout: " + string.Join(" ", returns.Select(r => r.ToString("F2"))));
        Assert.That(returns.TakeLast(3).Average(), Is.GreaterThan(returns[0] + 0.25));
    }

    /// <summary>
    /// Save after one update, load into an agent built from another seed, continue: its actions, its
    /// second update's losses and its final weights and Adam moments equal, bit for bit, those of an
    /// agent that never stopped.
    /// </summary>
    [Test]
    public void SaveLoadContinuesBitwiseIdentically()
    {
        using var b = new CpuBackend(2);
        var shape = new Shape(4, 8, 8);
        var config = new PpoConfig { NSteps = 32, BatchSize = 8, NEpochs = 3, Gamma = 0.99, Seed = 5 };
        string path = Path.Combine(Path.GetTempPath(), $"ppo-ckpt-{Guid.NewGuid():N}.rlmt");
        try
        {
            // uninterrupted
            using var a = new PpoAgent(b, config, shape, 4, 3, Small);
            var envA = new LevelBandit(4, 8, 3, 6);
            var obsA = envA.Reset();
            Train(a, envA, shape, 1, ref obsA);
            var actsA = new List<int[]>();
            var statsA = Train(a, envA, shape, 1, ref obsA, actsA).Stats[0];

            // interrupted after the first update
            var envB = new LevelBandit(4, 8, 3, 6);
            var obsB = envB.Reset();
            using (var first = new PpoAgent(b, config, shape, 4, 3, Small))
            {
                Train(first, envB, shape, 1, ref obsB);
                first.Save(path);
            }
            using var resumed = new PpoAgent(b, config with { Seed = 999 }, shape, 4, 3, Small);
            resumed.Load(path);
            Assert.That(resumed.Updates, Is.EqualTo(1));
            var actsB = new List<int[]>();
            var statsB = Train(resumed, envB, shape, 1, ref obsB, actsB).Stats[0];

            Assert.That(actsB, Is.EqualTo(actsA).AsCollection, "actions after the resume");
            Assert.That(statsB with { UpdateSeconds = 0 }, Is.EqualTo(statsA with { UpdateSeconds = 0 }));
            Assert.That(resumed.Store.Values!.ToArray(), Is.EqualTo(a.Store.Values!.ToArray()).AsCollection);
            Assert.That(resumed.Optimizer.FirstMoment.ToArray(), Is.EqualTo(a.Optimizer.FirstMoment.ToArray()).AsCollection);
            Assert.That(resumed.Optimizer.SecondMoment.ToArray(), Is.EqualTo(a.Optimizer.SecondMoment.ToArray()).AsCollection);
            Assert.That(resumed.Optimizer.StepCount, Is.EqualTo(a.Optimizer.StepCount));

            // saving with an action pending is refused
            resumed.Act(Obs(b, obsB, shape));
            Assert.Throws<InvalidOperationException>(() => resumed.Save(path));
        }
        finally
        {
            if (File.Exists(path)) File.Delete(path);
        }
    }
    /// <summary>
    /// A checkpoint taken mid-rollout (13 of 32 steps collected) holds the collected steps: the loaded
    /// agent finishes the rollout and updates exactly as the agent that never stopped.
    /// </summary>
    [Test]
    public void SaveLoadMidRolloutContinuesBitwiseIdentically()
    {
        using var b = new CpuBackend(2);
        var shape = new Shape(4, 8, 8);
        var config = new PpoConfig { NSteps = 32, BatchSize = 8, NEpochs = 2, Gamma = 0.99, Seed = 8 };
        string path = Path.Combine(Path.GetTempPath(), $"ppo-mid-{Guid.NewGuid():N}.rlmt");
        (PpoUpdateStats Stats, float[] Weights) Finish(PpoAgent agent, LevelBandit env, ref float[] obs)
        {
            while (!agent.RolloutFull)
            {
                var a = agent.Act(Obs(b, obs, shape));
                (obs, float r, bool done) = env.Step(a);
                agent.Observe(r, done);
            }
            return (agent.Update(Obs(b, obs, shape)), agent.Store.Values!.ToArray());
        }
        void Steps(PpoAgent agent, LevelBandit env, ref float[] obs, int n)
        {
            for (int t = 0; t < n; t++)
            {
                var a = agent.Act(Obs(b, obs, shape));
                (obs, float r, bool done) = env.Step(a);
                agent.Observe(r, done);
            }
        }
        try
        {
            using var a = new PpoAgent(b, config, shape, 4, 3, Small);
            var envA = new LevelBandit(4, 8, 3, 9);
            var obsA = envA.Reset();
            Steps(a, envA, ref obsA, 13);
            a.Save(path);
            var (statsA, weightsA) = Finish(a, envA, ref obsA);

            var envB = new LevelBandit(4, 8, 3, 9);
            var obsB = envB.Reset();
            using (var skip = new PpoAgent(b, config, shape, 4, 3, Small)) Steps(skip, envB, ref obsB, 13); // the environment's own state
            using var resumed = new PpoAgent(b, config with { Seed = 77 }, shape, 4, 3, Small);
            resumed.Load(path);
            Assert.That(resumed.Buffer.Position, Is.EqualTo(13));
            var (statsB, weightsB) = Finish(resumed, envB, ref obsB);
            Assert.That(statsB with { UpdateSeconds = 0 }, Is.EqualTo(statsA with { UpdateSeconds = 0 }));
            Assert.That(weightsB, Is.EqualTo(weightsA).AsCollection);
        }
        finally
        {
            if (File.Exists(path)) File.Delete(path);
        }
    }
}
