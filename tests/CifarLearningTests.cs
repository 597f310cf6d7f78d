using NUnit.Framework;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Data;
using RlMixup.Engine.Training;
using RlMixup.Models;
using RlMixup.Ppo;

using RlMixup.Engine.Runs;
using RlMixup.Engine.Commands;

namespace RlMixup.Tests;

public class CifarLearningTests
{
    /// <summary>
    /// RL-Mixup on real CIFAR-10 images (2000 training images, width 8, 3 epochs of 20 batches, the
    /// full 1000-image test set) must clearly beat chance. Chance is 10%; the standard error of an
    /// accuracy measured on 1000 images near 10% is ≈ 0.95 points, so 18% is more than 8 standard
    /// errors above chance: a broken pipeline (labels shuffled against images, no learning) cannot
    /// pass, while a working one reaches ~25–30% here.
    /// </summary>
    [Test]
    public void RlMixupOnTheCifar10SubsetClearlyBeatsChance()
    {
        string dir = SharedData.Cifar10SubsetOrIgnore();
        var data = Dataset.LoadCifar10(dir, maxTrain: 2000);
        using var b = new CpuBackend();
        var config = new RunSpec
        {
            Epochs = 3, Model = new ModelSpec { Width = 8 }, Seed = 1, Optim = new OptimSpec { LrMax = 0.1 },
            Agent = new AgentSpec { Conv = [16, 16, 16], Features = 32, PolicyHidden = [16], ValueHidden = [16], NEpochs = 2 },
        };
        using var trainer = new Trainer(b, data, config);
        EpochResult? last = null;
        for (int epoch = 1; epoch <= config.Epochs; epoch++)
        {
            last = trainer.RunEpoch(epoch);
            TestContext.Out.WriteLine($"epoch {epoch}: loss {last.TrainLoss:F3}, test top-1 {100 * last.TestTop1:F1}%");
        }
        Assert.That(trainer.Agent!.Updates, Is.GreaterThanOrEqualTo(1));
        Assert.That(last!.TestTop1, Is.GreaterThan(0.18), "test top-1 on 1000 real CIFAR-10 images (chance 10%)");
    }
}
