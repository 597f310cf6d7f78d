using RlMixup.Core.IO;

namespace RlMixup.Ppo;

/// <summary>
/// Checkpoints in the RLMT named-tensor format (<see cref="TensorFile"/>), written atomically.
/// Saving is allowed at any step boundary (between Observe and the next Act), not while an action is
/// pending. A checkpoint holds
///   every parameter under its own name (SB3 state_dict names),
///   "optimizer.exp_avg" and "optimizer.exp_avg_sq" (Adam's moments, the arena's flat layout),
///   "optimizer.step", "agent.updates", "agent.last_episode_start" (integers, exact as float32),
///   "agent.rng" (the xoshiro256** state: 4 ulongs as 4×4 16-bit limbs, exact as float32),
/// and, when the rollout is partly collected (in RL-Mixup: after an odd classifier epoch),
///   "rollout.position" and the collected steps' "rollout.observations", "rollout.actions",
///   "rollout.rewards", "rollout.episode_starts", "rollout.values", "rollout.log_probs".
/// Loading into a fresh agent built with the same config and sizes makes it continue exactly, bit
/// for bit, as the agent that saved would have. <see cref="CheckpointEntries"/> and
/// <see cref="LoadCheckpoint"/> let a caller embed the same entries, under a prefix, in its own file.
/// </summary>
public sealed partial class PpoAgent
{
    public void Save(string path) => TensorFile.WriteAtomic(path, CheckpointEntries());

    public void Load(string path) => LoadCheckpoint(TensorFile.Read(path), "", path);

    /// <summary>The checkpoint's entries, each name prefixed with <paramref name="prefix"/>.</summary>
    public List<(string Name, int[] Shape, float[] Data)> CheckpointEntries(string prefix = "")
    {
        if (_hasPending)
            throw new InvalidOperationException($"ppo: save only between steps (an action is pending; rollout holds {_buffer.Position} steps)");
        var entries = new List<(string, int[], float[])>();
        void Add(string name, int[] shape, float[] data) => entries.Add((prefix + name, shape, data));
        foreach (var t in Store.All)
            Add(t.Name, t.Shape.Dims.ToArray(), t.Value.ToArray());
        int p = Store.ArenaLength;
        Add("optimizer.exp_avg", [p], Optimizer.FirstMoment.ToArray());
        Add("optimizer.exp_avg_sq", [p], Optimizer.SecondMoment.ToArray());
        Add("optimizer.step", [1], [ExactFloat(Optimizer.StepCount)]);
        Add("agent.updates", [1], [ExactFloat(Updates)]);
        Add("agent.last_episode_start", [1], [_lastEpisodeStart ? 1f : 0f]);
        Add("agent.rng", [4, 4], ExactFloats.ToLimbs(_rng.GetState()));
        int n = _buffer.Position;
        if (n > 0)
        {
            int obs = _buffer.ObservationSize, d = _buffer.ActionDims;
            Add("rollout.position", [1], [ExactFloat(n)]);
            Add("rollout.observations", [n, obs], _buffer.Observations.AsSpan(0, n * obs).ToArray());
            Add("rollout.actions", [n, d], [.. _buffer.Actions.AsSpan(0, n * d).ToArray().Select(a => (float)a)]);
            Add("rollout.rewards", [n], _buffer.Rewards[..n]);
            Add("rollout.episode_starts", [n], _buffer.EpisodeStarts[..n]);
            Add("rollout.values", [n], _buffer.Values[..n]);
            Add("rollout.log_probs", [n], _buffer.LogProbs[..n]);
        }
        return entries;
    }

    /// <summary>Restores the entries named with <paramref name="prefix"/> from a read checkpoint; <paramref name="source"/> names it in errors.</summary>
    public void LoadCheckpoint(IReadOnlyDictionary<string, NamedArray> file, string prefix, string source)
    {
        if (_hasPending || _buffer.Position != 0)
            throw new InvalidOperationException("ppo: load only into a fresh agent (empty rollout, nothing pending)");
        float[] Get(string name, int length)
        {
            if (!file.TryGetValue(prefix + name, out var e)) throw new InvalidDataException($"{source}: checkpoint has no '{prefix + name}'");
            if (e.Data.Length != length) throw new InvalidDataException($"{source}: '{prefix + name}' holds {e.Data.Length} values, this agent expects {length}");
            return e.Data;
        }
        foreach (var t in Store.All)
        {
            var e = file.TryGetValue(prefix + t.Name, out var v) ? v : throw new InvalidDataException($"{source}: checkpoint has no '{prefix + t.Name}'");
            if (!e.Shape.SequenceEqual(t.Shape.Dims.ToArray()))
                throw new InvalidDataException($"{source}: '{prefix + t.Name}' has shape [{string.Join(",", e.Shape)}], this agent's is {t.Shape}");
            t.Value.CopyFrom(e.Data);
        }
        int p = Store.ArenaLength;
        Optimizer.FirstMoment.CopyFrom(Get("optimizer.exp_avg", p));
        Optimizer.SecondMoment.CopyFrom(Get("optimizer.exp_avg_sq", p));
        Optimizer.StepCount = ExactInt(Get("optimizer.step", 1)[0], "optimizer.step");
        Updates = ExactInt(Get("agent.updates", 1)[0], "agent.updates");
        _lastEpisodeStart = Get("agent.last_episode_start", 1)[0] != 0;
        _lastDone = _lastEpisodeStart;
        _rng.SetState(ExactFloats.FromLimbs(Get("agent.rng", 16), prefix + "agent.rng"));
        int n = file.ContainsKey(prefix + "rollout.position") ? ExactInt(Get("rollout.position", 1)[0], "rollout.position") : 0;
        if (n > _buffer.BufferSize)
            throw new InvalidDataException($"{source}: the rollout holds {n} steps, this agent's n_steps is {_buffer.BufferSize}");
        if (n > 0)
        {
            int obs = _buffer.ObservationSize, d = _buffer.ActionDims;
            Get("rollout.observations", n * obs).CopyTo(_buffer.Observations, 0);
            var actions = Get("rollout.actions", n * d);
            for (int i = 0; i < actions.Length; i++) _buffer.Actions[i] = ExactInt(actions[i], "rollout.actions");
            Get("rollout.rewards", n).CopyTo(_buffer.Rewards, 0);
            Get("rollout.episode_starts", n).CopyTo(_buffer.EpisodeStarts, 0);
            Get("rollout.values", n).CopyTo(_buffer.Values, 0);
            Get("rollout.log_probs", n).CopyTo(_buffer.LogProbs, 0);
        }
        _buffer.Restore(n);
    }

    private static float ExactFloat(int v) =>
        v is >= 0 and <= 1 << 24 ? v : throw new InvalidOperationException($"ppo: counter {v} is too large to store exactly");

    private static int ExactInt(float v, string name) =>
        v >= 0 && v <= 1 << 24 && v == MathF.Floor(v) ? (int)v : throw new InvalidDataException($"checkpoint: '{name}' holds {v}, not a counter");
}
