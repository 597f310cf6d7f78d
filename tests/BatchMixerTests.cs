using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Training;
using RlMixup.Models;
using RlMixup.Ppo;

using RlMixup.Engine.Runs;
using RlMixup.Engine.Commands;

namespace RlMixup.Tests;

/// <summary>Steps 1–3 of Algorithm 1 for every policy, on a narrow classifier and a small agent.</summary>
public class BatchMixerTests
{
    private const int B = 6, K = 5, P = 16;
    private static readonly ActorCriticSizes Small = new([8, 8, 8], 16, [8], [8]);

    private sealed class Setup : IDisposable
    {
        public readonly CpuBackend Backend = new(2);
        public readonly ParameterStore Store = new();
        public readonly PreActResNet18 Model;
        public readonly PpoAgent Agent;
        public readonly Tensor X, Targets;

        public Setup(ulong seed)
        {
            Model = new PreActResNet18(Store, width: 4, classes: K);
            Store.Materialize(Backend, new Rng(seed));
            Agent = new PpoAgent(Backend, new PpoConfig { NSteps = 4, BatchSize = 2, NEpochs = 1, Seed = seed }, new Shape(B, P, P), B, 10, Small);
            var rng = new Rng(seed + 1);
            X = Backend.Allocate(new Shape(B, 3, 32, 32));
            X.CopyFrom([.. Enumerable.Range(0, X.Length).Select(_ => (float)rng.Normal())]);
            Targets = Backend.Allocate(new Shape(B, K));
            Targets.CopyFrom([.. Enumerable.Range(0, B * K).Select(e => e % K == (e / K) % K ? 1f : 0f)]);
        }

        public BatchMixer Mixer(MixPolicy policy, ulong seed, MixSpec? options = null) =>
            new(Backend, Model, (options ?? new MixSpec()) with { Policy = policy }, new Rng(seed), policy == MixPolicy.Rl ? Agent : null);

        public void Dispose() { Agent.Dispose(); Backend.Dispose(); }
    }

    [TestCase(MixPolicy.Rl)]
    [TestCase(MixPolicy.Random)]
    [TestCase(MixPolicy.InputMixup)]
    [TestCase(MixPolicy.Cutmix)]
    [TestCase(MixPolicy.None)]
    public void EveryPolicyGivesAValidMixedBatch(MixPolicy policy)
    {
        using var s = new Setup(7);
        s.Store.ZeroGrad();
        var batch = s.Mixer(policy, 11).Mix(s.X, s.Targets);
        Assert.That(batch.Images.Shape, Is.EqualTo(s.X.Shape));
        var t = batch.Targets.ToArray();
        for (int i = 0; i < B; i++)
        {
            Assert.That(t.Skip(i * K).Take(K).Sum(), Is.EqualTo(1f).Within(1e-5f), $"row {i} of the soft labels");
            Assert.That(t.Skip(i * K).Take(K), Is.All.GreaterThanOrEqualTo(0f));
        }
        Assert.That(s.Store.Grads!.ToArray(), Is.All.EqualTo(0f), "mixing must not touch the weight gradients");
        bool saliency = policy is MixPolicy.Rl or MixPolicy.Random;
        Assert.That(batch.Actions, saliency ? Is.Not.Null : Is.Null);
        Assert.That(batch.Observation, saliency ? Is.Not.Null : Is.Null);
        if (saliency)
        {
            Assert.That(batch.Actions, Has.Length.EqualTo(B).And.All.InRange(0, 9));
            var maps = batch.Observation!.ToArray();
            for (int i = 0; i < B; i++)
                Assert.That(maps.Skip(i * P * P).Take(P * P).Sum(), Is.EqualTo(1f).Within(1e-5f), $"saliency map {i}");
        }
        if (policy == MixPolicy.None) Assert.That(batch.Images, Is.SameAs(s.X));
        else Assert.That(batch.Images.ToArray(), Is.Not.EqualTo(s.X.ToArray()), "a mixing policy changes the images");
        if (policy == MixPolicy.Rl) Assert.That(s.Agent.Buffer.Position, Is.EqualTo(0), "Act records a pending step; Observe completes it");
        if (policy == MixPolicy.Rl)
        {
            s.Agent.Observe(0f, false);
            Assert.That(s.Agent.Buffer.Position, Is.EqualTo(1), "the step reached the rollout");
        }
    }

    [TestCase(MixPolicy.Random)]
    [TestCase(MixPolicy.Cutmix)]
    public void MixingIsReproducibleFromTheSeed(MixPolicy policy)
    {
        float[] Run(ulong seed)
        {
            using var s = new Setup(3);
            return s.Mixer(policy, seed).Mix(s.X, s.Targets).Images.ToArray();
        }
        Assert.That(Run(5), Is.EqualTo(Run(5)));
        Assert.That(Run(5), Is.Not.EqualTo(Run(6)));
    }

    [Test]
    public void ActionsMapToThePapersPercentiles()
    {
        using var s = new Setup(1);
        var mixer = s.Mixer(MixPolicy.Random, 1);
        Assert.That(Enumerable.Range(0, 10).Select(mixer.Options.Percentile), Is.EqualTo(new[] { 0f, 11, 22, 33, 44, 55, 66, 77, 88, 99 }));
        Assert.Throws<ArgumentException>(() => new BatchMixer(s.Backend, s.Model, new MixSpec(), new Rng(1), null));
    }

    [Test]
    public void SaliencyPassCanLeaveTheRunningStatisticsAlone()
    {
        using var s = new Setup(2);
        var before = s.Store.BufferValues!.ToArray();
        s.Mixer(MixPolicy.Random, 3, new MixSpec { SaliencyUpdatesBnStats = false }).Mix(s.X, s.Targets);
        Assert.That(s.Store.BufferValues.ToArray(), Is.EqualTo(before));
        s.Mixer(MixPolicy.Random, 3).Mix(s.X, s.Targets);
        Assert.That(s.Store.BufferValues.ToArray(), Is.Not.EqualTo(before), "by default the saliency pass updates them, as the authors' code");
    }
}
