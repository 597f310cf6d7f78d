using RlMixup.Core.IO;

namespace RlMixup.Engine.Training;

/// <summary>
/// The trainer's full state, in one safetensors file (<see cref="StateFile"/>, written through
/// <see cref="CheckpointWriter"/>) so that a run resumes bit for bit and Python can read it with
/// <c>safetensors.torch.load_file</c>: the classifier's parameters and BN buffers
/// ("classifier.&lt;name&gt;", F32), the SGD momentum buffer (F32), the last finished epoch and the
/// global step (I64), the run's Rng (U64), the reward's V (F64), and, for the rl policy, the agent
/// under "agent/" (weights, Adam, its Rng and the partly collected rollout: the rollout is two
/// epochs, so most checkpoints are mid-rollout). The file is self-contained and replaced by one
/// atomic rename, which is the checkpoint's commit point.
///
/// Format 1 is a checkpoint at an epoch boundary. Format 2 is taken inside epoch k, after step s
/// (0 &lt; s &lt; steps per epoch; a stop requested after an epoch's last step lets the epoch finish and
/// gives format 1): "checkpoint.epoch" is still the last finished epoch, k − 1, the Rng is the state
/// after step s, and the "epoch.*" entries hold the rest of epoch k's position: "epoch.number" (k),
/// "epoch.steps_done" (s), "epoch.plan" (the epoch's batches of image indices, drawn at its start),
/// "epoch.loss_sum", "epoch.reward_sum" (F64), "epoch.rewards", "epoch.action_hist" (I64) and
/// "epoch.seconds" (timing only). Training then continues with batch s + 1's augmentation draw.
/// </summary>
public sealed partial class Trainer
{
    public const string StateFile = "state.safetensors";
    private const int EpochBoundaryFormat = 1, MidEpochFormat = 2;

    /// <summary>
    /// Writes the trainer's state to folder/state.safetensors (temporary file, then rename): after the last
    /// finished epoch, or inside the epoch in progress when <see cref="RunEpoch(int, CancellationToken)"/> was stopped.
    /// </summary>
    public void SaveState(string folder)
    {
        int finished = _epoch == null ? (int)(_step / BatchesPerEpoch) : _epoch.Epoch - 1;
        long expected = (long)finished * BatchesPerEpoch + (_epoch?.Done ?? 0);
        if (_step != expected)
            throw new InvalidOperationException($"checkpoint: {_step} steps run, the position says {expected}");
        if (_epoch?.Ppo != null)
            throw new InvalidOperationException("checkpoint: a PPO update inside an unfinished epoch cannot be recorded (the rollout is whole epochs)");
        var w = new CheckpointWriter();
        w.I64("checkpoint.format", _epoch == null ? EpochBoundaryFormat : MidEpochFormat);
        w.I64("checkpoint.epoch", finished);
        w.I64("checkpoint.batches_per_epoch", BatchesPerEpoch);
        w.I64("trainer.step", _step);
        w.U64("trainer.rng", _rng.GetState());
        w.F64("reward.previous", _reward.Previous);
        w.F32("sgd.momentum", [Store.ArenaLength], Sgd.MomentumBuffer.ToArray());
        if (_epoch is { } e)
        {
            int bs = Config.Batch;
            w.I64("epoch.number", e.Epoch);
            w.I64("epoch.steps_done", e.Done);
            w.I64("epoch.plan", [e.Plan.Count, bs], [.. e.Plan.SelectMany(b => b.Select(i => (long)i))]);
            w.F64("epoch.loss_sum", e.LossSum);
            w.F64("epoch.reward_sum", e.RewardSum);
            w.I64("epoch.rewards", e.Rewards);
            w.I64("epoch.action_hist", [.. e.Histogram.Select(c => (long)c)]);
            w.F64("epoch.seconds", e.Seconds);
        }
        foreach (var t in Store.All) w.F32("classifier." + t.Name, t.Shape.Dims.ToArray(), t.Value.ToArray());
        if (Agent != null) w.AddAll("agent/", Agent.CheckpointEntries());
        Safetensors.WriteAtomic(Path.Combine(folder, StateFile), w.Tensors,
            new Dictionary<string, string> { ["format"] = "rlmixup training state", ["epoch"] = finished.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    }

    /// <summary>The epoch recorded in folder/state.safetensors, or null when there is none; throws when the file is unreadable.</summary>
    public static int? StateEpoch(string folder)
    {
        string path = Path.Combine(folder, StateFile);
        if (!File.Exists(path)) return null;
        return Open(path).Int("checkpoint.epoch");
    }

    /// <summary>Reads a state file; a file that is not safetensors is an <see cref="InvalidDataException"/> naming it.</summary>
    private static CheckpointReader Open(string path)
    {
        try { return CheckpointReader.Read(path); }
        catch (Exception e) when (e is ArgumentException or FormatException or System.Text.Json.JsonException or OverflowException or EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: not a training state ({e.Message})");
        }
    }

    /// <summary>
    /// Restores a trainer freshly built with the run's configuration and data from folder/state.safetensors;
    /// returns the last epoch the checkpoint finished. The next epoch to run is that plus one, from
    /// its beginning or, for a mid-epoch checkpoint, from step <see cref="StepsIntoEpoch"/> + 1.
    /// </summary>
    public int LoadState(string folder)
    {
        if (_step != 0 || _epoch != null) throw new InvalidOperationException("checkpoint: load only into a fresh trainer");
        string path = Path.Combine(folder, StateFile);
        var file = Open(path);
        long format = file.I64("checkpoint.format");
        if (format is not (EpochBoundaryFormat or MidEpochFormat))
            throw new InvalidDataException($"{path}: checkpoint format {format}, this engine reads {EpochBoundaryFormat} and {MidEpochFormat}");
        long epoch = file.I64("checkpoint.epoch"), batches = file.I64("checkpoint.batches_per_epoch"), step = file.I64("trainer.step");
        if (batches != BatchesPerEpoch)
            throw new InvalidDataException($"{path}: the checkpoint has {batches} batches per epoch, this configuration {BatchesPerEpoch}");
        EpochProgress? partial = null;
        if (format == MidEpochFormat)
        {
            long number = file.I64("epoch.number"), done = file.I64("epoch.steps_done");
            if (number != epoch + 1 || number > Config.Epochs || done < 1 || done >= batches || step != epoch * batches + done)
                throw new InvalidDataException($"{path}: step {done} of epoch {number} (global step {step}) does not fit a run of {Config.Epochs} epochs of {batches} batches after epoch {epoch}");
            int bs = Config.Batch, n = _train.Source.Count;
            var flat = file.I64s("epoch.plan", (int)batches * bs);
            var plan = new List<int[]>((int)batches);
            for (int b = 0; b < batches; b++)
                plan.Add([.. flat.AsSpan(b * bs, bs).ToArray().Select(v => v >= 0 && v < n ? (int)v
                    : throw new InvalidDataException($"{path}: 'epoch.plan' holds {v}, not an index of the {n} training images"))]);
            partial = new EpochProgress((int)number, plan, Config.Mix.Actions)
            {
                Done = (int)done,
                LossSum = file.F64("epoch.loss_sum"),
                RewardSum = file.F64("epoch.reward_sum"),
                Rewards = file.Int("epoch.rewards"),
                Seconds = file.F64("epoch.seconds"),
            };
            var hist = file.I64s("epoch.action_hist", Config.Mix.Actions);
            for (int a = 0; a < Config.Mix.Actions; a++)
                partial.Histogram[a] = hist[a] is >= 0 and <= int.MaxValue ? (int)hist[a] : throw new InvalidDataException($"{path}: 'epoch.action_hist' holds {hist[a]}");
        }
        else if (epoch < 1 || epoch > Config.Epochs || step != epoch * batches)
            throw new InvalidDataException($"{path}: epoch {epoch} and step {step} do not fit a run of {Config.Epochs} epochs of {batches} batches");
        foreach (var t in Store.All)
        {
            string name = "classifier." + t.Name;
            var e = file.Tensor(name);
            if (!e.Shape.SequenceEqual(t.Shape.Dims.ToArray().Select(x => (long)x)))
                throw new InvalidDataException($"{path}: '{name}' has shape [{string.Join(",", e.Shape)}], the model's is {t.Shape}");
            t.Value.CopyFrom(file.F32(name));
        }
        Sgd.MomentumBuffer.CopyFrom(file.F32("sgd.momentum", Store.ArenaLength));
        _rng.SetState(file.U64s("trainer.rng", 4));
        _reward.Previous = file.F64("reward.previous");
        if (Agent != null) Agent.LoadCheckpoint(file.Under("agent/"));
        _step = step;
        _epoch = partial;
        return (int)epoch;
    }
}
