using RlMixup.Core.IO;

namespace RlMixup.Ppo;

/// <summary>
/// Checkpoints as safetensors (<see cref="CheckpointWriter"/>), written atomically. Saving is
/// allowed at any step boundary (between Observe and the next Act), not while an action is pending.
/// A checkpoint holds
///   every parameter under its own name (SB3 state_dict names, F32),
///   "optimizer.exp_avg" and "optimizer.exp_avg_sq" (Adam's moments, the arena's flat layout, F32),
///   "optimizer.step", "agent.updates", "agent.last_episode_start" (I64),
///   "agent.rng" (the xoshiro256** state, 4 × U64),
/// and, when the rollout is partly collected (in RL-Mixup: after an odd classifier epoch),
///   "rollout.position" (I64) and the collected steps' "rollout.observations", "rollout.actions" (I64),
///   "rollout.rewards", "rollout.episode_starts", "rollout.values", "rollout.log_probs".
/// Loading into a fresh agent built with the same config and sizes makes it continue exactly, bit
/// for bit, as the agent that saved would have. <see cref="CheckpointEntries"/> and
/// <see cref="LoadCheckpoint"/> let a caller embed the same entries, under a prefix, in its own file.
/// </summary>
public sealed partial class PpoAgent
{
    public void Save(string path) => Safetensors.WriteAtomic(path, CheckpointEntries().Tensors);

    public void Load(string path) => LoadCheckpoint(CheckpointReader.Read(path));

    /// <summary>The checkpoint's entries.</summary>
    public CheckpointWriter CheckpointEntries()
    {
        if (_hasPending)
            throw new InvalidOperationException($"ppo: save only between steps (an action is pending; rollout holds {_buffer.Position} steps)");
        var w = new CheckpointWriter();
        foreach (var t in Store.All) w.F32(t.Name, t.Shape.Dims.ToArray(), t.Value.ToArray());
        int p = Store.ArenaLength;
        w.F32("optimizer.exp_avg", [p], Optimizer.FirstMoment.ToArray());
        w.F32("optimizer.exp_avg_sq", [p], Optimizer.SecondMoment.ToArray());
        w.I64("optimizer.step", Optimizer.StepCount);
        w.I64("agent.updates", Updates);
        w.I64("agent.last_episode_start", _lastEpisodeStart ? 1 : 0);
        w.U64("agent.rng", _rng.GetState());
        int n = _buffer.Position;
        if (n > 0)
        {
            int obs = _buffer.ObservationSize, d = _buffer.ActionDims;
            w.I64("rollout.position", n);
            w.F32("rollout.observations", [n, obs], _buffer.Observations.AsSpan(0, n * obs));
            w.I64("rollout.actions", [n, d], [.. _buffer.Actions.AsSpan(0, n * d).ToArray().Select(a => (long)a)]);
            w.F32("rollout.rewards", [n], _buffer.Rewards.AsSpan(0, n));
            w.F32("rollout.episode_starts", [n], _buffer.EpisodeStarts.AsSpan(0, n));
            w.F32("rollout.values", [n], _buffer.Values.AsSpan(0, n));
            w.F32("rollout.log_probs", [n], _buffer.LogProbs.AsSpan(0, n));
        }
        return w;
    }

    /// <summary>Restores the agent from a read checkpoint (its entries seen through <paramref name="file"/>'s prefix).</summary>
    public void LoadCheckpoint(CheckpointReader file)
    {
        if (_hasPending || _buffer.Position != 0)
            throw new InvalidOperationException("ppo: load only into a fresh agent (empty rollout, nothing pending)");
        foreach (var t in Store.All)
        {
            var e = file.Tensor(t.Name);
            if (!e.Shape.SequenceEqual(t.Shape.Dims.ToArray().Select(x => (long)x)))
                throw new InvalidDataException($"{file.Source}: '{t.Name}' has shape [{string.Join(",", e.Shape)}], this agent's is {t.Shape}");
            t.Value.CopyFrom(file.F32(t.Name));
        }
        int p = Store.ArenaLength;
        Optimizer.FirstMoment.CopyFrom(file.F32("optimizer.exp_avg", p));
        Optimizer.SecondMoment.CopyFrom(file.F32("optimizer.exp_avg_sq", p));
        Optimizer.StepCount = file.Int("optimizer.step");
        Updates = file.Int("agent.updates");
        _lastEpisodeStart = file.Int("agent.last_episode_start", 0, 1) != 0;
        _lastDone = _lastEpisodeStart;
        _rng.SetState(file.U64s("agent.rng", 4));
        int n = file.Has("rollout.position") ? file.Int("rollout.position") : 0;
        if (n > _buffer.BufferSize)
            throw new InvalidDataException($"{file.Source}: the rollout holds {n} steps, this agent's n_steps is {_buffer.BufferSize}");
        if (n > 0)
        {
            int obs = _buffer.ObservationSize, d = _buffer.ActionDims;
            file.F32("rollout.observations", n * obs).CopyTo(_buffer.Observations, 0);
            var actions = file.I64s("rollout.actions", n * d);
            for (int i = 0; i < actions.Length; i++)
                _buffer.Actions[i] = actions[i] is >= 0 and <= int.MaxValue ? (int)actions[i] : throw new InvalidDataException($"{file.Source}: 'rollout.actions' holds {actions[i]}");
            file.F32("rollout.rewards", n).CopyTo(_buffer.Rewards, 0);
            file.F32("rollout.episode_starts", n).CopyTo(_buffer.EpisodeStarts, 0);
            file.F32("rollout.values", n).CopyTo(_buffer.Values, 0);
            file.F32("rollout.log_probs", n).CopyTo(_buffer.LogProbs, 0);
        }
        _buffer.Restore(n);
    }
}
