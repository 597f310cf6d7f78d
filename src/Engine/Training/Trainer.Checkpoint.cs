using RlMixup.Core.IO;

namespace RlMixup.Engine.Training;

/// <summary>
/// The trainer's full state, in one RLMT file (<see cref="StateFile"/>) so that a run resumes bit for
/// bit: the classifier's parameters and BN buffers ("classifier.&lt;name&gt;"), the SGD momentum buffer,
/// the last finished epoch and the global step, the run's Rng, the reward's V, and, for the rl
/// policy, the agent under "agent/" (weights, Adam, its Rng and the partly collected rollout: the
/// rollout is two epochs, so most checkpoints are mid-rollout). Integers, the Rng and V are stored
/// as exact 16-bit limbs (<see cref="ExactFloats"/>). The file is self-contained and replaced by one
/// atomic rename, which is the checkpoint's commit point.
///
/// Format 1 is a checkpoint at an epoch boundary. Format 2 is taken inside epoch k, after step s
/// (0 &lt; s &lt; steps per epoch; a stop requested after an epoch's last step lets the epoch finish and
/// gives format 1): "checkpoint.epoch" is still the last finished epoch, k − 1, the Rng is the state
/// after step s, and the "epoch.*" entries hold the rest of epoch k's position: "epoch.number" (k),
/// "epoch.steps_done" (s), "epoch.plan" (the epoch's batches of image indices, drawn at its start),
/// "epoch.loss_sum", "epoch.reward_sum" (doubles), "epoch.rewards", "epoch.action_hist" (counts) and
/// "epoch.seconds" (timing only). Training then continues with batch s + 1's augmentation draw.
/// </summary>
public sealed partial class Trainer
{
    public const string StateFile = "state.rlmt";
    private const int EpochBoundaryFormat = 1, MidEpochFormat = 2;

    /// <summary>
    /// Writes the trainer's state to folder/state.rlmt (temporary file, then rename): after the last
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
        var entries = new List<(string, int[], float[])>
        {
            ("checkpoint.format", [1], [_epoch == null ? EpochBoundaryFormat : MidEpochFormat]),
            ("checkpoint.epoch", [4], ExactFloats.FromLong(finished)),
            ("checkpoint.batches_per_epoch", [4], ExactFloats.FromLong(BatchesPerEpoch)),
            ("trainer.step", [4], ExactFloats.FromLong(_step)),
            ("trainer.rng", [4, 4], ExactFloats.ToLimbs(_rng.GetState())),
            ("reward.previous", [4], ExactFloats.FromDouble(_reward.Previous)),
            ("sgd.momentum", [Store.ArenaLength], Sgd.MomentumBuffer.ToArray()),
        };
        if (_epoch is { } e)
        {
            int bs = Config.Batch;
            var plan = new float[e.Plan.Count * bs];
            for (int b = 0; b < e.Plan.Count; b++)
                for (int i = 0; i < bs; i++) plan[b * bs + i] = ExactIndex(e.Plan[b][i]);
            entries.Add(("epoch.number", [4], ExactFloats.FromLong(e.Epoch)));
            entries.Add(("epoch.steps_done", [4], ExactFloats.FromLong(e.Done)));
            entries.Add(("epoch.plan", [e.Plan.Count, bs], plan));
            entries.Add(("epoch.loss_sum", [4], ExactFloats.FromDouble(e.LossSum)));
            entries.Add(("epoch.reward_sum", [4], ExactFloats.FromDouble(e.RewardSum)));
            entries.Add(("epoch.rewards", [4], ExactFloats.FromLong(e.Rewards)));
            entries.Add(("epoch.action_hist", [e.Histogram.Length, 4], [.. e.Histogram.SelectMany(c => ExactFloats.FromLong(c))]));
            entries.Add(("epoch.seconds", [4], ExactFloats.FromDouble(e.Seconds)));
        }
        foreach (var t in Store.All) entries.Add(("classifier." + t.Name, t.Shape.Dims.ToArray(), t.Value.ToArray()));
        if (Agent != null) entries.AddRange(Agent.CheckpointEntries("agent/"));
        TensorFile.WriteAtomic(Path.Combine(folder, StateFile), entries);
    }

    private static float ExactIndex(int i) =>
        i is >= 0 and <= 1 << 24 ? i : throw new InvalidOperationException($"checkpoint: image index {i} is too large to store exactly");

    /// <summary>The epoch recorded in folder/state.rlmt, or null when there is none; throws when the file is unreadable.</summary>
    public static int? StateEpoch(string folder)
    {
        string path = Path.Combine(folder, StateFile);
        if (!File.Exists(path)) return null;
        var file = TensorFile.Read(path);
        return (int)ExactFloats.ToLong(Get(file, "checkpoint.epoch", 4, path), "checkpoint.epoch");
    }

    /// <summary>
    /// Restores a trainer freshly built with the run's configuration and data from folder/state.rlmt;
    /// returns the last epoch the checkpoint finished. The next epoch to run is that plus one, from
    /// its beginning or, for a mid-epoch checkpoint, from step <see cref="StepsIntoEpoch"/> + 1.
    /// </summary>
    public int LoadState(string folder)
    {
        if (_step != 0 || _epoch != null) throw new InvalidOperationException("checkpoint: load only into a fresh trainer");
        string path = Path.Combine(folder, StateFile);
        var file = TensorFile.Read(path);
        int format = (int)Get(file, "checkpoint.format", 1, path)[0];
        if (format is not (EpochBoundaryFormat or MidEpochFormat))
            throw new InvalidDataException($"{path}: checkpoint format {format}, this engine reads {EpochBoundaryFormat} and {MidEpochFormat}");
        long epoch = ExactFloats.ToLong(Get(file, "checkpoint.epoch", 4, path), "checkpoint.epoch");
        long batches = ExactFloats.ToLong(Get(file, "checkpoint.batches_per_epoch", 4, path), "checkpoint.batches_per_epoch");
        long step = ExactFloats.ToLong(Get(file, "trainer.step", 4, path), "trainer.step");
        if (batches != BatchesPerEpoch)
            throw new InvalidDataException($"{path}: the checkpoint has {batches} batches per epoch, this configuration {BatchesPerEpoch}");
        EpochProgress? partial = null;
        if (format == MidEpochFormat)
        {
            long number = ExactFloats.ToLong(Get(file, "epoch.number", 4, path), "epoch.number");
            long done = ExactFloats.ToLong(Get(file, "epoch.steps_done", 4, path), "epoch.steps_done");
            if (number != epoch + 1 || number > Config.Epochs || done < 1 || done >= batches || step != epoch * batches + done)
                throw new InvalidDataException($"{path}: step {done} of epoch {number} (global step {step}) does not fit a run of {Config.Epochs} epochs of {batches} batches after epoch {epoch}");
            int bs = Config.Batch, n = _train.Source.Count;
            var flat = Get(file, "epoch.plan", (int)batches * bs, path);
            var plan = new List<int[]>((int)batches);
            for (int b = 0; b < batches; b++)
            {
                var idx = new int[bs];
                for (int i = 0; i < bs; i++)
                {
                    float v = flat[b * bs + i];
                    idx[i] = v >= 0 && v < n && v == MathF.Floor(v) ? (int)v
                        : throw new InvalidDataException($"{path}: 'epoch.plan' holds {v}, not an index of the {n} training images");
                }
                plan.Add(idx);
            }
            partial = new EpochProgress((int)number, plan, Config.Mix.Actions)
            {
                Done = (int)done,
                LossSum = ExactFloats.ToDouble(Get(file, "epoch.loss_sum", 4, path), "epoch.loss_sum"),
                RewardSum = ExactFloats.ToDouble(Get(file, "epoch.reward_sum", 4, path), "epoch.reward_sum"),
                Rewards = (int)ExactFloats.ToLong(Get(file, "epoch.rewards", 4, path), "epoch.rewards"),
                Seconds = ExactFloats.ToDouble(Get(file, "epoch.seconds", 4, path), "epoch.seconds"),
            };
            var hist = Get(file, "epoch.action_hist", 4 * Config.Mix.Actions, path);
            for (int a = 0; a < Config.Mix.Actions; a++)
                partial.Histogram[a] = (int)ExactFloats.ToLong(hist.AsSpan(4 * a, 4), "epoch.action_hist");
        }
        else if (epoch < 1 || epoch > Config.Epochs || step != epoch * batches)
            throw new InvalidDataException($"{path}: epoch {epoch} and step {step} do not fit a run of {Config.Epochs} epochs of {batches} batches");
        foreach (var t in Store.All)
        {
            string name = "classifier." + t.Name;
            var e = file.TryGetValue(name, out var v) ? v : throw new InvalidDataException($"{path}: checkpoint has no '{name}'");
            if (!e.Shape.SequenceEqual(t.Shape.Dims.ToArray()))
                throw new InvalidDataException($"{path}: '{name}' has shape [{string.Join(",", e.Shape)}], the model's is {t.Shape}");
            t.Value.CopyFrom(e.Data);
        }
        Sgd.MomentumBuffer.CopyFrom(Get(file, "sgd.momentum", Store.ArenaLength, path));
        _rng.SetState(ExactFloats.FromLimbs(Get(file, "trainer.rng", 16, path), "trainer.rng"));
        _reward.Previous = ExactFloats.ToDouble(Get(file, "reward.previous", 4, path), "reward.previous");
        Agent?.LoadCheckpoint(file, "agent/", path);
        _step = step;
        _epoch = partial;
        return (int)epoch;
    }

    private static float[] Get(IReadOnlyDictionary<string, NamedArray> file, string name, int length, string path)
    {
        if (!file.TryGetValue(name, out var e)) throw new InvalidDataException($"{path}: checkpoint has no '{name}'");
        if (e.Data.Length != length) throw new InvalidDataException($"{path}: '{name}' holds {e.Data.Length} values, expected {length}");
        return e.Data;
    }
}
