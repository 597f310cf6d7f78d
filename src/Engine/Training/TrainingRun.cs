using System.Diagnostics;
using RlMixup.Core;
using RlMixup.Core.IO;
using RlMixup.Engine.Data;
using RlMixup.Engine.Reports;
using RlMixup.Models;
using RlMixup.Engine.Runs;

namespace RlMixup.Engine.Training;

/// <summary>
/// A training run and its folder: config.json (every hyper-parameter, the seed, the device, the
/// versions), metrics.jsonl (one object per epoch), curves.png and actions.png redrawn every epoch,
/// the trainer's full state as state.safetensors (see <see cref="Trainer.SaveState"/>) and the classifier as
/// model.safetensors (PyTorch names) after every epoch. Every file is written to a temporary name and
/// renamed; state.safetensors is renamed before model.safetensors, and a resume trusts state.safetensors alone.
/// </summary>
public sealed class TrainingRun(IBackend backend, Dataset data, RunSpec config, string folder, TextWriter log)
{
    public string Folder { get; } = folder;
    private readonly RunFolder _files = new(folder);

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

    /// <summary>Write TensorBoard's event file (see <see cref="TensorBoardWriter"/>) in the run folder; off with --no-tensorboard.</summary>
    public bool TensorBoard { get; init; } = true;

    /// <summary>True when the last Run or Resume ended on <see cref="Stop"/> before the configured epochs.</summary>
    public bool Interrupted { get; private set; }

    /// <summary>Runs every epoch from the start; <paramref name="stopAfterEpoch"/> ends early, as an interruption would.</summary>
    public IReadOnlyList<EpochMetrics> Run(int? stopAfterEpoch = null) => Execute(resume: false, stopAfterEpoch);

    /// <summary>Continues the run in the folder from its last complete checkpoint (state.safetensors) to the configured epochs.</summary>
    public IReadOnlyList<EpochMetrics> Resume(int? stopAfterEpoch = null) => Execute(resume: true, stopAfterEpoch);

    private IReadOnlyList<EpochMetrics> Execute(bool resume, int? stopAfterEpoch)
    {
        try { return ExecuteLocked(resume, stopAfterEpoch); }
        catch (IOException e) when (IsDiskFull(e))
        {
            int? kept = Directory.Exists(Folder) ? Trainer.StateEpoch(Folder) : null;
            throw new DiskFullException($"the disk is full ({e.Message.Trim()}); the last checkpoint{(kept is int k ? $" (epoch {k})" : "")} is intact: " +
                $"free some space, then continue with: rlmixup resume {Folder}", e);
        }
    }

    /// <summary>ENOSPC (and EDQUOT) on Unix, ERROR_DISK_FULL and ERROR_HANDLE_DISK_FULL on Windows.</summary>
    private static bool IsDiskFull(IOException e) => (e.HResult & 0xFFFF) is 28 or 122 or 0x70 or 0x27;

    private IReadOnlyList<EpochMetrics> ExecuteLocked(bool resume, int? stopAfterEpoch)
    {
        Directory.CreateDirectory(Folder);
        using var writer = RunLock.Acquire(Folder);
        using var stats = StepStatsEvery is int every ? new StepStats(Path.Combine(Folder, "steps.jsonl"), every, append: resume) : null;
        using var trainer = new Trainer(backend, data, config) { Progress = Progress, Trace = Trace, Stats = stats };
        Interrupted = false;
        int done = 0;
        if (resume)
        {
            done = trainer.LoadState(Folder);
            RemoveStaleTemporaries();
        }
        else RunSpecJson.Write(_files.ConfigPath, Recorded(config, backend), Describe(trainer));
        log.WriteLine($"run folder {Path.GetFullPath(Folder)}");
        log.WriteLine($"{data.Describe()}; policy {Names.Of(config.Mix.Policy)}{(trainer.Agent != null ? $" (reward {Names.Of(config.Reward.Kind)})" : "")}, width {config.Model.Width}, {config.Epochs} epochs of {trainer.BatchesPerEpoch} batches, device {backend.Name}");
        using var metrics = MetricsLog.Open(_files.MetricsPath, resume ? done : null);
        if (resume)
        {
            if (metrics.Epochs.Count != done || metrics.Epochs.Select(m => m.Epoch).Where((e, i) => e != i + 1).Any())
                throw new InvalidDataException($"{_files.MetricsPath}: holds epochs [{string.Join(",", metrics.Epochs.Select(m => m.Epoch))}], the checkpoint closed epoch {done}");
            if (done > 0 && ModelEpoch(_files.ModelPath) != done) WriteModel(trainer, done);
            // A kill between the checkpoint and the best model's export: the best epoch is the last one, whose weights are at hand.
            if (done > 0 && BestEpoch(metrics.Epochs) == done && ModelEpoch(_files.BestModelPath) != done) WriteModel(trainer, done, _files.BestModelPath);
            if (done > 0) trainer.LastTestTop1 = metrics.Epochs[^1].TestTop1;
            log.WriteLine(done >= config.Epochs ? $"the run is already complete ({done} of {config.Epochs} epochs); nothing to do"
                : trainer.StepsIntoEpoch is int s ? $"resuming in epoch {done + 1} of {config.Epochs} after step {s} of {trainer.BatchesPerEpoch}"
                : $"resuming after epoch {done} of {config.Epochs}");
        }
        using var events = TensorBoard ? new TensorBoardWriter(Folder) : null;
        if (events != null) trainer.Scalars = events.Scalars;
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
                throw new TrainingDivergedException($"epoch {epoch}: the training loss is {r.TrainLoss}: training diverged; lower the peak learning rate (--lr-max, {config.Optim.LrMax}) and train again");
            metrics.Append(ToMetrics(r));
            if (events != null)
            {
                double shares = Math.Max(1, r.ActionHistogram.Sum(c => (double)c));
                events.Scalars((long)epoch * trainer.BatchesPerEpoch, [("test/top1", r.TestTop1), ("test/top5", r.TestTop5), ("test/loss", r.TestLoss),
                    ("epoch/train_loss", r.TrainLoss), ("epoch/seconds", r.Seconds),
                    .. trainer.Agent == null ? [] : r.ActionHistogram.Select((c, a) => ($"actions/share_{a}", c / shares))]);
                events.Flush();
            }
            TrainingPlots.WriteCurves(Path.Combine(Folder, "curves.png"), metrics.Epochs);
            TrainingPlots.WriteActionHeatmap(Path.Combine(Folder, "actions.png"), metrics.Epochs);
            // state.safetensors first: its rename commits the epoch; model.safetensors is an export rewritten on resume if it lags.
            trainer.SaveState(Folder);
            WriteModel(trainer, epoch);
            if (BestEpoch(metrics.Epochs) == epoch) WriteModel(trainer, epoch, _files.BestModelPath);
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
        foreach (var pattern in new[] { Trainer.StateFile + ".tmp-*", RunFolder.ModelFile + ".tmp-*", RunFolder.BestModelFile + ".tmp-*", ".*.tmp" })
            foreach (var f in Directory.GetFiles(Folder, pattern)) File.Delete(f);
    }

    /// <summary>The first epoch with the highest test top-1.</summary>
    private static int BestEpoch(IReadOnlyList<EpochMetrics> epochs) =>
        epochs.Aggregate((best, e) => e.TestTop1 > best.TestTop1 ? e : best).Epoch;

    private void WriteModel(Trainer trainer, int epoch, string? path = null) =>
        ModelSafetensors.Write(path ?? _files.ModelPath, trainer.Store, (long)epoch * trainer.BatchesPerEpoch,
            new Dictionary<string, string> { ["epoch"] = epoch.ToString(), ["dataset"] = data.Name, ["policy"] = Names.Of(config.Mix.Policy) });

    /// <summary>The epoch in model.safetensors' metadata, or null when the file is missing or unreadable.</summary>
    private static int? ModelEpoch(string path)
    {
        try
        {
            return File.Exists(path) && Safetensors.Read(path).Metadata.TryGetValue("epoch", out var e) && int.TryParse(e, out int k) ? k : null;
        }
        catch (InvalidDataException) { return null; }
    }

    private static EpochMetrics ToMetrics(EpochResult r) => new(r.Epoch, r.TrainLoss, r.TestTop1, r.LearningRate,
        [.. r.ActionHistogram.Select(c => (long)c)], r.RewardMean,
        r.Ppo == null ? null : new Dictionary<string, double>
        {
            ["policy_loss"] = r.Ppo.PolicyLoss, ["value_loss"] = r.Ppo.ValueLoss, ["entropy_loss"] = r.Ppo.EntropyLoss,
            ["approx_kl"] = r.Ppo.ApproxKl, ["clip_fraction"] = r.Ppo.ClipFraction, ["explained_variance"] = r.Ppo.ExplainedVariance,
        },
        r.Seconds)
    { Extra = new Dictionary<string, double> { ["test_top5"] = r.TestTop5, ["test_loss"] = r.TestLoss, ["images_per_s"] = r.ImagesPerSecond, ["rewards"] = r.Rewards } };

    /// <summary>
    /// The spec as config.json records it: the data folder made absolute and the device resolved to
    /// the backend in use (cpu or cuda), so that `resume` finds both again from anywhere.
    /// </summary>
    public static RunSpec Recorded(RunSpec spec, IBackend backend) => spec with
    {
        Data = spec.Data.Dataset == "synthetic" ? spec.Data : spec.Data with { Folder = Path.GetFullPath(spec.Data.Folder) },
        Device = spec.Device with { Name = backend is Core.Cpu.CpuBackend ? "cpu" : "cuda" },
    };

    /// <summary>config.json's "recorded" object: what the run found (the data as loaded, the device, the derived sizes) and the versions.</summary>
    private Dictionary<string, object?> Describe(Trainer t)
    {
        var values = new Dictionary<string, object?>
        {
            ["dataset"] = data.Describe(), ["train_images"] = t.Data.Train.Count, ["test_images"] = data.Test.Count, ["classes"] = data.Classes,
            ["steps_per_epoch"] = t.BatchesPerEpoch, ["ppo_n_steps"] = t.Agent?.Config.NSteps, ["device"] = backend.Name,
            ["lr_start"] = t.Schedule.InitialLr, ["lr_end"] = t.Schedule.MinLr,
        };
        foreach (var kv in RunConfig.Environment()) values[kv.Key] = kv.Value;
        return values;
    }
}

/// <summary>A write failed for want of space; the message says what is intact and how to continue.</summary>
public sealed class DiskFullException(string message, Exception inner) : IOException(message, inner);
