using System.Diagnostics;
using RlMixup.Core;
using RlMixup.Core.IO;
using RlMixup.Engine.Data;
using RlMixup.Engine.Reports;
using RlMixup.Models;

namespace RlMixup.Engine.Training;

/// <summary>
/// A training run and its folder: config.json (every hyper-parameter, the seed, the device, the
/// versions), metrics.jsonl (one object per epoch), curves.png and actions.png redrawn every epoch,
/// the trainer's full state as state.rlmt (see <see cref="Trainer.SaveState"/>) and the classifier as
/// model.safetensors (PyTorch names) after every epoch. Every file is written to a temporary name and
/// renamed; state.rlmt is renamed before model.safetensors, and a resume trusts state.rlmt alone.
/// </summary>
public sealed class TrainingRun(IBackend backend, Dataset data, TrainConfig config, string folder, TextWriter log)
{
    public string Folder { get; } = folder;

    /// <summary>The folder the dataset was read from (recorded in config.json so that `resume` can read it again).</summary>
    public string? DataFolder { get; init; }
    /// <summary>The seed synthetic data was generated with (recorded in config.json).</summary>
    public ulong DataSeed { get; init; } = config.Seed;
    /// <summary>Whether the backend may use TF32 tensor cores (recorded in config.json; only the CUDA backend reads it).</summary>
    public bool Tf32 { get; init; } = true;

    /// <summary>Handed a snapshot after every training step (see <see cref="Trainer.Progress"/>).</summary>
    public Action<StepProgress>? Progress { get; init; }

    /// <summary>
    /// A request to stop (Ctrl-C): the run finishes the step in progress, writes its checkpoint
    /// (mid-epoch when the epoch is not over) and returns with <see cref="Interrupted"/> set.
    /// </summary>
    public CancellationToken Stop { get; init; }

    /// <summary>Records the run's first steps for a replay elsewhere (see <see cref="StepTrace"/>).</summary>
    public StepTrace? Trace { get; init; }

    /// <summary>Write steps.jsonl (see <see cref="StepStats"/>) every this many steps; null writes none.</summary>
    public int? StepStatsEvery { get; init; }

    /// <summary>True when the last Run or Resume ended on <see cref="Stop"/> before the configured epochs.</summary>
    public bool Interrupted { get; private set; }

    /// <summary>Runs every epoch from the start; <paramref name="stopAfterEpoch"/> ends early, as an interruption would.</summary>
    public IReadOnlyList<EpochMetrics> Run(int? stopAfterEpoch = null) => Execute(resume: false, stopAfterEpoch);

    /// <summary>Continues the run in the folder from its last complete checkpoint (state.rlmt) to the configured epochs.</summary>
    public IReadOnlyList<EpochMetrics> Resume(int? stopAfterEpoch = null) => Execute(resume: true, stopAfterEpoch);

    private IReadOnlyList<EpochMetrics> Execute(bool resume, int? stopAfterEpoch)
    {
        Directory.CreateDirectory(Folder);
        using var stats = StepStatsEvery is int every ? new StepStats(Path.Combine(Folder, "steps.jsonl"), every, append: resume) : null;
        using var trainer = new Trainer(backend, data, config) { Progress = Progress, Trace = Trace, Stats = stats };
        Interrupted = false;
        int done = 0;
        if (resume)
        {
            done = trainer.LoadState(Folder);
            RemoveStaleTemporaries();
        }
        else RunConfig.Write(Path.Combine(Folder, "config.json"), Describe(trainer));
        log.WriteLine($"run folder {Path.GetFullPath(Folder)}");
        log.WriteLine($"{data.Describe()}; policy {config.Policy.ToString().ToLowerInvariant()}{(trainer.Agent != null ? $" (reward {RewardName(config.Reward)})" : "")}, width {config.Width}, {config.Epochs} epochs of {trainer.BatchesPerEpoch} batches, device {backend.Name}");
        using var metrics = MetricsLog.Open(Path.Combine(Folder, "metrics.jsonl"), resume ? done : null);
        if (resume)
        {
            if (metrics.Epochs.Count != done || metrics.Epochs.Select(m => m.Epoch).Where((e, i) => e != i + 1).Any())
                throw new InvalidDataException($"{Path.Combine(Folder, "metrics.jsonl")}: holds epochs [{string.Join(",", metrics.Epochs.Select(m => m.Epoch))}], the checkpoint closed epoch {done}");
            if (done > 0 && ModelEpoch(Path.Combine(Folder, "model.safetensors")) != done) WriteModel(trainer, done);
            if (done > 0) trainer.LastTestTop1 = metrics.Epochs[^1].TestTop1;
            log.WriteLine(done >= config.Epochs ? $"the run is already complete ({done} of {config.Epochs} epochs); nothing to do"
                : trainer.StepsIntoEpoch is int s ? $"resuming in epoch {done + 1} of {config.Epochs} after step {s} of {trainer.BatchesPerEpoch}"
                : $"resuming after epoch {done} of {config.Epochs}");
        }
        var total = Stopwatch.StartNew();
        for (int epoch = done + 1; epoch <= Math.Min(config.Epochs, stopAfterEpoch ?? int.MaxValue); epoch++)
        {
            if (trainer.RunEpoch(epoch, Stop) is not { } r)
            {
                // Stopped inside the epoch: checkpoint there; model.safetensors keeps the last finished epoch.
                trainer.SaveState(Folder);
                Interrupted = true;
                log.WriteLine($"stopped in epoch {epoch} of {config.Epochs} after step {trainer.StepsIntoEpoch} of {trainer.BatchesPerEpoch}; " +
                    $"checkpoint in {Path.Combine(Folder, Trainer.StateFile)}; continue with: rlmixup resume {Folder}");
                return metrics.Epochs;
            }
            if (!double.IsFinite(r.TrainLoss))
                throw new TrainingDivergedException($"epoch {epoch}: the training loss is {r.TrainLoss}: training diverged; lower the peak learning rate (--lr-max, {config.MaxLr}) and train again");
            metrics.Append(ToMetrics(r));
            TrainingPlots.WriteCurves(Path.Combine(Folder, "curves.png"), metrics.Epochs);
            TrainingPlots.WriteActionHeatmap(Path.Combine(Folder, "actions.png"), metrics.Epochs);
            // state.rlmt first: its rename commits the epoch; model.safetensors is an export rewritten on resume if it lags.
            trainer.SaveState(Folder);
            WriteModel(trainer, epoch);
            string ppo = r.Ppo == null ? "" : $", ppo update (kl {r.Ppo.ApproxKl:F4}, clip {r.Ppo.ClipFraction:F2}, ev {r.Ppo.ExplainedVariance:F2})";
            log.WriteLine($"epoch {epoch}/{config.Epochs}: loss {r.TrainLoss:F4}, test top-1 {100 * r.TestTop1:F2}%, lr {r.LearningRate:F4}, " +
                $"{r.ImagesPerSecond:F0} images/s, {r.Seconds:F1} s{(r.Rewards > 0 ? $", mean reward {r.RewardMean:+0.0000;-0.0000}" : "")}{ppo}");
            if (Stop.IsCancellationRequested && epoch < config.Epochs)
            {
                Interrupted = true;
                break;
            }
        }
        if (metrics.Epochs.Count > 0 && metrics.Epochs.Count == config.Epochs)
        {
            var last = metrics.Epochs[^1];
            log.WriteLine($"done in {total.Elapsed.TotalSeconds:F0} s: final test top-1 {100 * last.TestTop1:F2}% (best {100 * metrics.Epochs.Max(m => m.TestTop1):F2}%); outputs in {Path.GetFullPath(Folder)}");
        }
        else log.WriteLine($"stopped after epoch {metrics.Epochs.Count} of {config.Epochs}; checkpoint in {Path.Combine(Folder, Trainer.StateFile)}; continue with: rlmixup resume {Folder}");
        return metrics.Epochs;
    }

    /// <summary>Deletes the temporary files an interrupted write (kill -9) left: none of them was ever renamed into place.</summary>
    private void RemoveStaleTemporaries()
    {
        foreach (var pattern in new[] { Trainer.StateFile + ".tmp-*", "model.safetensors.tmp-*", ".*.tmp" })
            foreach (var f in Directory.GetFiles(Folder, pattern)) File.Delete(f);
    }

    private void WriteModel(Trainer trainer, int epoch) =>
        ModelSafetensors.Write(Path.Combine(Folder, "model.safetensors"), trainer.Store, (long)epoch * trainer.BatchesPerEpoch,
            new Dictionary<string, string> { ["epoch"] = epoch.ToString(), ["dataset"] = data.Name, ["policy"] = config.Policy.ToString() });

    /// <summary>The epoch in model.safetensors' metadata, or null when the file is missing or unreadable.</summary>
    private static int? ModelEpoch(string path)
    {
        try
        {
            return File.Exists(path) && Safetensors.Read(path).Metadata.TryGetValue("epoch", out var e) && int.TryParse(e, out int k) ? k : null;
        }
        catch (InvalidDataException) { return null; }
    }

    /// <summary>The reward's name in config.json and on the command line: accuracy or grad-sim.</summary>
    public static string RewardName(RewardKind reward) => reward == RewardKind.GradSim ? "grad-sim" : "accuracy";

    private static EpochMetrics ToMetrics(EpochResult r) => new(r.Epoch, r.TrainLoss, r.TestTop1, r.LearningRate,
        [.. r.ActionHistogram.Select(c => (long)c)], r.RewardMean,
        r.Ppo == null ? null : new Dictionary<string, double>
        {
            ["policy_loss"] = r.Ppo.PolicyLoss, ["value_loss"] = r.Ppo.ValueLoss, ["entropy_loss"] = r.Ppo.EntropyLoss,
            ["approx_kl"] = r.Ppo.ApproxKl, ["clip_fraction"] = r.Ppo.ClipFraction, ["explained_variance"] = r.Ppo.ExplainedVariance,
        },
        r.Seconds)
    { Extra = new Dictionary<string, double> { ["images_per_s"] = r.ImagesPerSecond, ["rewards"] = r.Rewards } };

    private IEnumerable<KeyValuePair<string, object?>> Describe(Trainer t)
    {
        var c = config;
        var values = new Dictionary<string, object?>
        {
            ["dataset"] = data.Name, ["data_source"] = data.Source, ["train_images"] = data.Train.Count, ["val_from_train"] = c.ValFromTrain, ["test_images"] = data.Test.Count,
            ["classes"] = data.Classes, ["device"] = backend.Name, ["tf32"] = Tf32, ["seed"] = c.Seed, ["policy"] = c.Policy.ToString().ToLowerInvariant(),
            ["epochs"] = c.Epochs, ["batch"] = c.BatchSize, ["width"] = c.Width, ["steps_per_epoch"] = t.BatchesPerEpoch,
            ["patches"] = c.Mix.Patches, ["actions"] = c.Mix.Actions, ["alpha"] = c.Mix.Alpha, ["dirichlet_per_image"] = c.Mix.DirichletPerImage,
            ["baseline_alpha"] = c.Mix.BaselineAlpha, ["saliency_updates_bn_stats"] = c.Mix.SaliencyUpdatesBnStats,
            ["crop_pad"] = c.Augmentation.Padding, ["flip"] = c.Augmentation.Flip,
            ["reward"] = RewardName(c.Reward), ["reward_interval"] = c.RewardInterval, ["reward_sample"] = c.RewardSample, ["held_out"] = c.ValFromTrain is int v ? $"{v} training images" : "test set",
            ["max_lr"] = c.MaxLr, ["div_factor"] = c.DivFactor, ["final_div_factor"] = c.FinalDivFactor, ["pct_start"] = c.PctStart,
            ["momentum"] = c.Momentum, ["cycle_momentum"] = c.CycleMomentum, ["weight_decay"] = c.WeightDecay, ["nesterov"] = true, ["init_weights"] = c.InitWeights,
            ["ppo_n_steps"] = t.Agent?.Config.NSteps, ["ppo_batch_size"] = c.Ppo.BatchSize, ["ppo_n_epochs"] = c.Ppo.NEpochs,
            ["ppo_gamma"] = c.Ppo.Gamma, ["ppo_gae_lambda"] = c.Ppo.GaeLambda, ["ppo_clip_range"] = c.Ppo.ClipRange,
            ["ppo_ent_coef"] = c.Ppo.EntCoef, ["ppo_vf_coef"] = c.Ppo.VfCoef, ["ppo_max_grad_norm"] = c.Ppo.MaxGradNorm,
            ["ppo_learning_rate"] = c.Ppo.LearningRate, ["ppo_target_kl"] = c.Ppo.TargetKl,
            ["ppo_normalize_advantage"] = c.Ppo.NormalizeAdvantage, ["ppo_adam_eps"] = c.Ppo.AdamEps,
            ["data_folder"] = DataFolder == null ? null : Path.GetFullPath(DataFolder), ["data_seed"] = DataSeed,
            ["agent_conv"] = c.AgentSizes?.ConvChannels, ["agent_features"] = c.AgentSizes?.Features,
            ["agent_policy_hidden"] = c.AgentSizes?.PolicyHidden, ["agent_value_hidden"] = c.AgentSizes?.ValueHidden,
            ["agent_sizes"] = c.AgentSizes == null ? "paper" : $"conv {string.Join("-", c.AgentSizes.ConvChannels)}, features {c.AgentSizes.Features}, policy {string.Join("-", c.AgentSizes.PolicyHidden)}, value {string.Join("-", c.AgentSizes.ValueHidden)}",
        };
        foreach (var kv in RunConfig.Environment()) values[kv.Key] = kv.Value;
        return values;
    }
}
