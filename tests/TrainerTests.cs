using NUnit.Framework;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Data;
using RlMixup.Engine.Training;
using RlMixup.Models;
using RlMixup.Ppo;

using RlMixup.Engine.Runs;
using RlMixup.Engine.Commands;

namespace RlMixup.Tests;

/// <summary>Algorithm 1 end to end on tiny synthetic data: every policy runs; the rl agent is rewarded and updated.</summary>
public class TrainerTests
{
    private static readonly ActorCriticSizes Small = new([8, 8, 8], 16, [8], [8]);

    private static RunSpec Tiny(MixPolicy policy, int epochs) => new()
    {
        Epochs = epochs, Batch = 20, Model = new ModelSpec { Width = 4 }, Mix = new MixSpec { Policy = policy }, Seed = 3,
        Reward = new RewardSpec { Interval = 5 }, Device = new DeviceSpec { Name = "cpu" },
        Agent = new AgentSpec { Minibatch = 10, NEpochs = 2, Conv = [8, 8, 8], Features = 16, PolicyHidden = [8], ValueHidden = [8] },
    };

    [Test]
    public void RlRunRewardsTheAgentAndUpdatesItEveryTwoEpochs()
    {
        var data = SyntheticData.Generate(train: 200, test: 60, classes: 10, seed: 1);
        using var b = new CpuBackend(2);
        using var trainer = new Trainer(b, data, Tiny(MixPolicy.Rl, epochs: 2));
        Assert.That(trainer.BatchesPerEpoch, Is.EqualTo(10));
        Assert.That(trainer.Agent!.Config.NSteps, Is.EqualTo(20), "n_steps = two epochs of batches");

        var first = trainer.RunEpoch(1);
        Assert.That(first.Ppo, Is.Null, "no update after one epoch");
        Assert.That(first.Rewards, Is.EqualTo(2), "steps 5 and 10 earn a reward");
        Assert.That(first.ActionHistogram.Sum(), Is.EqualTo(10 * 20), "one action per image per step");
        Assert.That(first.TrainLoss, Is.GreaterThan(0).And.LessThan(10));
        Assert.That(first.TestTop1, Is.InRange(0.0, 1.0));

        var second = trainer.RunEpoch(2);
        Assert.That(second.Ppo, Is.Not.Null, "the rollout of two epochs is full: PPO updated");
        Assert.That(trainer.Agent.Updates, Is.EqualTo(1));
        Assert.That(trainer.Agent.Buffer.Position, Is.EqualTo(0));
        Assert.That(second.LearningRate, Is.EqualTo(trainer.Schedule.LearningRate(19)).Within(1e-7), "one-cycle lr of the last step");
    }

    [Test]
    public void GradSimRewardsEveryStepWithCosinesInTheUnitInterval()
    {
        var data = SyntheticData.Generate(train: 200, test: 60, classes: 10, seed: 1);
        using var b = new CpuBackend(2);
        using var trainer = new Trainer(b, data, Tiny(MixPolicy.Rl, epochs: 2) with { Reward = new RewardSpec { Interval = 5, Kind = RewardKind.GradSim } });
        var first = trainer.RunEpoch(1);
        Assert.That(first.Rewards, Is.EqualTo(10), "every step earns a reward");
        // Read the rollout before the update at the end of epoch 2 empties it: epoch 1's ten steps.
        float[] rewards = trainer.Agent!.Buffer.Rewards[..10];
        Assert.That(rewards, Has.All.InRange(0f, 1f), "saliency maps are non-negative, so their cosine lies in [0, 1]");
        Assert.That(rewards.Distinct().Count(), Is.GreaterThan(1), "the reward changes from step to step");
        Assert.That(first.RewardMean, Is.EqualTo(rewards.Average(r => (double)r)).Within(1e-6), "reward_mean averages the step rewards");
        Assert.That(first.RewardMean, Is.GreaterThan(0));
        var second = trainer.RunEpoch(2);
        Assert.That(second.Rewards, Is.EqualTo(10));
        Assert.That(second.Ppo, Is.Not.Null, "the agent updated after two epochs");
        Assert.That(second.RewardMean, Is.InRange(0.0, 1.0));
        Assert.Throws<ArgumentException>(() => new Trainer(b, data, Tiny(MixPolicy.Random, 1) with { Reward = new RewardSpec { Kind = RewardKind.GradSim } }));
    }

    [Test]
    public void ValFromTrainHoldsOutTrainingImagesForTheReward()
    {
        var data = SyntheticData.Generate(train: 200, test: 60, classes: 10, seed: 1);
        using var b = new CpuBackend(2);
        using var trainer = new Trainer(b, data, Tiny(MixPolicy.Rl, epochs: 1) with { Data = new DataSpec { ValFromTrain = 40 } });
        Assert.That(trainer.Data.Train.Count, Is.EqualTo(160));
        Assert.That(trainer.BatchesPerEpoch, Is.EqualTo(8));
        Assert.That(trainer.RunEpoch(1).Rewards, Is.EqualTo(1), "step 5 earns a reward measured on the held-out images");
        Assert.Throws<ArgumentException>(() => new Trainer(b, data, Tiny(MixPolicy.Rl, 1) with { Data = new DataSpec { ValFromTrain = 200 } }));
    }

    [TestCase(MixPolicy.Random)]
    [TestCase(MixPolicy.InputMixup)]
    [TestCase(MixPolicy.Cutmix)]
    [TestCase(MixPolicy.None)]
    public void EveryPolicyTrains(MixPolicy policy)
    {
        var data = SyntheticData.Generate(train: 100, test: 40, classes: 10, seed: 2);
        using var b = new CpuBackend(2);
        using var trainer = new Trainer(b, data, Tiny(policy, epochs: 1));
        Assert.That(trainer.Agent, Is.Null);
        var r = trainer.RunEpoch(1);
        Assert.That(double.IsFinite(r.TrainLoss) && r.TrainLoss > 0);
        Assert.That(r.Rewards, Is.EqualTo(0));
        Assert.That(r.ActionHistogram.Sum(), Is.EqualTo(policy == MixPolicy.Random ? 5 * 20 : 0));
    }

    [Test]
    public void RunsAreReproducibleFromTheSeed()
    {
        double[] Run()
        {
            var data = SyntheticData.Generate(train: 100, test: 40, classes: 10, seed: 4);
            using var b = new CpuBackend(2);
            using var trainer = new Trainer(b, data, Tiny(MixPolicy.Rl, epochs: 2));
            var e1 = trainer.RunEpoch(1);
            var e2 = trainer.RunEpoch(2);
            return [e1.TrainLoss, e1.TestTop1, e2.TrainLoss, e2.TestTop1, e2.Ppo!.PolicyLoss, .. trainer.Store.Values!.ToArray().Take(50).Select(v => (double)v)];
        }
        Assert.That(Run(), Is.EqualTo(Run()));
    }
}
