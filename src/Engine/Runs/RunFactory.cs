using RlMixup.Core;
using RlMixup.Engine.Data;
using RlMixup.Models;
using RlMixup.Ppo;

namespace RlMixup.Engine.Runs;

/// <summary>
/// Builds what a <see cref="RunSpec"/> describes, in one place for every command: the backend, the
/// dataset, the classifier, its optimiser and schedule, and the agent.
/// </summary>
public static class RunFactory
{
    /// <summary>The backend the spec names (auto: CUDA when usable, else the CPU), with its TF32 and thread settings.</summary>
    public static IBackend Backend(RunSpec spec, TextWriter log) => Backends.Create(spec.Device.Name, spec.Device.Tf32, log, spec.Device.Threads);

    /// <summary>The dataset: read from data.folder, or generated (synthetic) from data.synthetic_seed, else the run's seed.</summary>
    public static Dataset Data(RunSpec spec) =>
        Dataset.Load(spec.Data.Dataset, spec.Data.Folder, spec.Data.MaxTrainImages, spec.Data.MaxTestImages, spec.Data.SyntheticSeed ?? spec.Seed);

    /// <summary>PreActResNet18 at the spec's width, initialised from <paramref name="rng"/> (then from init_weights, when given).</summary>
    public static (ParameterStore Store, PreActResNet18 Model) Classifier(IBackend backend, RunSpec spec, int classes, Rng rng)
    {
        var store = new ParameterStore();
        var model = new PreActResNet18(store, spec.Model.Width, classes, finalBnRelu: spec.Model.FinalBnRelu);
        store.Materialize(backend, rng);
        if (spec.InitWeights != null) ModelSafetensors.Load(spec.InitWeights, store);
        return (store, model);
    }

    /// <summary>The one-cycle schedule over every step of the run.</summary>
    public static OneCycleSchedule Schedule(RunSpec spec, int stepsPerEpoch)
    {
        var o = spec.Optim;
        if (spec.Epochs <= 0 || stepsPerEpoch <= 0)
            throw new ArgumentOutOfRangeException(nameof(stepsPerEpoch), $"epochs and steps per epoch must be positive, got {spec.Epochs} and {stepsPerEpoch}");
        return new OneCycleSchedule(checked(spec.Epochs * stepsPerEpoch), o.LrMax, o.LrMax / o.Start, o.Start / o.End, o.PctStart,
            o.CycleMomentum, fixedMomentum: o.Momentum);
    }

    /// <summary>SGD (Nesterov unless optim.nesterov is off) starting at the schedule's first learning rate.</summary>
    public static Sgd Optimizer(RunSpec spec, ParameterStore store, OneCycleSchedule schedule) =>
        new(store, (float)schedule.LearningRate(0), (float)spec.Optim.Momentum, (float)spec.Optim.WeightDecay, nesterov: spec.Optim.Nesterov);

    /// <summary>The PPO agent: observations (batch, p, p), one action of mix.actions per image, a rollout of agent.rollout_epochs epochs.</summary>
    public static PpoAgent Agent(IBackend backend, RunSpec spec, int stepsPerEpoch) =>
        new(backend, spec.Agent.Ppo(stepsPerEpoch, spec.Seed), new Shape(spec.Batch, spec.Mix.Patches, spec.Mix.Patches), spec.Batch,
            spec.Mix.Actions, spec.Agent.Sizes);
}
