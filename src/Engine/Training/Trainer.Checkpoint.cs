using RlMixup.Core.IO;

namespace RlMixup.Engine.Training;

/// <summary>
/// The trainer's full state after an epoch, in one RLMT file (<see cref="StateFile"/>) so that a run
/// resumes bit for bit: the classifier's parameters and BN buffers ("classifier.&lt;name&gt;"), the SGD
/// momentum buffer, the epoch and global step, the run's Rng, the reward's V, and, for the rl policy,
/// the agent under "agent/" (weights, Adam, its Rng and the partly collected rollout: the rollout is
/// two epochs, so a checkpoint after an odd epoch is mid-rollout). Integers, the Rng and V are stored
/// as exact 16-bit limbs (<see cref="ExactFloats"/>). The file is self-contained and replaced by one
/// atomic rename, which is the checkpoint's commit point.
/// </summary>
public sealed partial class Trainer
{
    public const string StateFile = "state.rlmt";
    private const int StateFormat = 1;

    /// <summary>Writes the state after <paramref name="epoch"/> to folder/state.rlmt (temporary file, then rename).</summary>
    public void SaveState(string folder, int epoch)
    {
        if (_step != (long)epoch * BatchesPerEpoch)
            throw new InvalidOperationException($"checkpoint: {_step} steps run, epoch {epoch} ends at step {(long)epoch * BatchesPerEpoch}");
        var entries = new List<(string, int[], float[])>
        {
            ("checkpoint.format", [1], [StateFormat]),
            ("checkpoint.epoch", [4], ExactFloats.FromLong(epoch)),
            ("checkpoint.batches_per_epoch", [4], ExactFloats.FromLong(BatchesPerEpoch)),
            ("trainer.step", [4], ExactFloats.FromLong(_step)),
            ("trainer.rng", [4, 4], ExactFloats.ToLimbs(_rng.GetState())),
            ("reward.previous", [4], ExactFloats.FromDouble(_reward.Previous)),
            ("sgd.momentum", [Store.ParameterCount], Sgd.MomentumBuffer.ToArray()),
        };
        foreach (var t in Store.All) entries.Add(("classifier." + t.Name, t.Shape.Dims.ToArray(), t.Value.ToArray()));
        if (Agent != null) entries.AddRange(Agent.CheckpointEntries("agent/"));
        TensorFile.WriteAtomic(Path.Combine(folder, StateFile), entries);
    }

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
    /// returns the epoch the checkpoint closed. The next epoch to run is that plus one.
    /// </summary>
    public int LoadState(string folder)
    {
        if (_step != 0) throw new InvalidOperationException("checkpoint: load only into a fresh trainer");
        string path = Path.Combine(folder, StateFile);
        var file = TensorFile.Read(path);
        int format = (int)Get(file, "checkpoint.format", 1, path)[0];
        if (format != StateFormat) throw new InvalidDataException($"{path}: checkpoint format {format}, this engine reads {StateFormat}");
        long epoch = ExactFloats.ToLong(Get(file, "checkpoint.epoch", 4, path), "checkpoint.epoch");
        long batches = ExactFloats.ToLong(Get(file, "checkpoint.batches_per_epoch", 4, path), "checkpoint.batches_per_epoch");
        long step = ExactFloats.ToLong(Get(file, "trainer.step", 4, path), "trainer.step");
        if (batches != BatchesPerEpoch)
            throw new InvalidDataException($"{path}: the checkpoint has {batches} batches per epoch, this configuration {BatchesPerEpoch}");
        if (epoch < 1 || epoch > Config.Epochs || step != epoch * batches)
            throw new InvalidDataException($"{path}: epoch {epoch} and step {step} do not fit a run of {Config.Epochs} epochs of {batches} batches");
        foreach (var t in Store.All)
        {
            string name = "classifier." + t.Name;
            var e = file.TryGetValue(name, out var v) ? v : throw new InvalidDataException($"{path}: checkpoint has no '{name}'");
            if (!e.Shape.SequenceEqual(t.Shape.Dims.ToArray()))
                throw new InvalidDataException($"{path}: '{name}' has shape [{string.Join(",", e.Shape)}], the model's is {t.Shape}");
            t.Value.CopyFrom(e.Data);
        }
        Sgd.MomentumBuffer.CopyFrom(Get(file, "sgd.momentum", Store.ParameterCount, path));
        _rng.SetState(ExactFloats.FromLimbs(Get(file, "trainer.rng", 16, path), "trainer.rng"));
        _reward.Previous = ExactFloats.ToDouble(Get(file, "reward.previous", 4, path), "reward.previous");
        Agent?.LoadCheckpoint(file, "agent/", path);
        _step = step;
        return (int)epoch;
    }

    private static float[] Get(IReadOnlyDictionary<string, NamedArray> file, string name, int length, string path)
    {
        if (!file.TryGetValue(name, out var e)) throw new InvalidDataException($"{path}: checkpoint has no '{name}'");
        if (e.Data.Length != length) throw new InvalidDataException($"{path}: '{name}' holds {e.Data.Length} values, expected {length}");
        return e.Data;
    }
}
