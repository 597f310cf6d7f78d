using RlMixup.Core.IO;

namespace RlMixup.Ppo;

/// <summary>
/// Checkpoints in the RLMT named-tensor format (<see cref="TensorFile"/>), written atomically.
/// Saving is allowed only at update boundaries (an empty rollout, no pending step): in RL-Mixup an
/// update closes every second classifier epoch, which is where the trainer checkpoints anyway, and
/// it keeps the file free of a half-collected rollout. A checkpoint holds
///   every parameter under its own name (SB3 state_dict names),
///   "optimizer.exp_avg" and "optimizer.exp_avg_sq" (Adam's moments, the arena's flat layout),
///   "optimizer.step", "agent.updates", "agent.last_episode_start" (integers, exact as float32),
///   "agent.rng" (the xoshiro256** state: 4 ulongs as 4×4 16-bit limbs, exact as float32).
/// Loading into an agent built with the same config and sizes makes it continue exactly, bit for
/// bit, as the agent that saved would have.
/// </summary>
public sealed partial class PpoAgent
{
    public void Save(string path)
    {
        if (_hasPending || _buffer.Position != 0)
            throw new InvalidOperationException($"ppo: save only at an update boundary (rollout holds {_buffer.Position} steps{(_hasPending ? " and a pending action" : "")})");
        var entries = new List<(string, int[], float[])>();
        foreach (var t in Store.All)
            entries.Add((t.Name, t.Shape.Dims.ToArray(), t.Value.ToArray()));
        int p = Store.ParameterCount;
        entries.Add(("optimizer.exp_avg", [p], Optimizer.FirstMoment.ToArray()));
        entries.Add(("optimizer.exp_avg_sq", [p], Optimizer.SecondMoment.ToArray()));
        entries.Add(("optimizer.step", [1], [ExactFloat(Optimizer.StepCount)]));
        entries.Add(("agent.updates", [1], [ExactFloat(Updates)]));
        entries.Add(("agent.last_episode_start", [1], [_lastEpisodeStart ? 1f : 0f]));
        var limbs = new float[16];
        var state = _rng.GetState();
        for (int w = 0; w < 4; w++)
            for (int k = 0; k < 4; k++) limbs[w * 4 + k] = (ushort)(state[w] >> (16 * k));
        entries.Add(("agent.rng", [4, 4], limbs));
        TensorFile.WriteAtomic(path, entries);
    }

    public void Load(string path)
    {
        if (_hasPending || _buffer.Position != 0)
            throw new InvalidOperationException("ppo: load only into an agent at an update boundary");
        var file = TensorFile.Read(path);
        float[] Get(string name, int length)
        {
            if (!file.TryGetValue(name, out var e)) throw new InvalidDataException($"{path}: checkpoint has no '{name}'");
            if (e.Data.Length != length) throw new InvalidDataException($"{path}: '{name}' holds {e.Data.Length} values, this agent expects {length}");
            return e.Data;
        }
        foreach (var t in Store.All)
        {
            var e = file.TryGetValue(t.Name, out var v) ? v : throw new InvalidDataException($"{path}: checkpoint has no '{t.Name}'");
            if (!e.Shape.SequenceEqual(t.Shape.Dims.ToArray()))
                throw new InvalidDataException($"{path}: '{t.Name}' has shape [{string.Join(",", e.Shape)}], this agent's is {t.Shape}");
            t.Value.CopyFrom(e.Data);
        }
        int p = Store.ParameterCount;
        Optimizer.FirstMoment.CopyFrom(Get("optimizer.exp_avg", p));
        Optimizer.SecondMoment.CopyFrom(Get("optimizer.exp_avg_sq", p));
        Optimizer.StepCount = ExactInt(Get("optimizer.step", 1)[0], "optimizer.step");
        Updates = ExactInt(Get("agent.updates", 1)[0], "agent.updates");
        _lastEpisodeStart = Get("agent.last_episode_start", 1)[0] != 0;
        _lastDone = _lastEpisodeStart;
        var limbs = Get("agent.rng", 16);
        var state = new ulong[4];
        for (int w = 0; w < 4; w++)
            for (int k = 0; k < 4; k++) state[w] |= (ulong)ExactInt(limbs[w * 4 + k], "agent.rng") << (16 * k);
        _rng.SetState(state);
    }

    private static float ExactFloat(int v) =>
        v is >= 0 and <= 1 << 24 ? v : throw new InvalidOperationException($"ppo: counter {v} is too large to store exactly");

    private static int ExactInt(float v, string name) =>
        v >= 0 && v <= 1 << 24 && v == MathF.Floor(v) ? (int)v : throw new InvalidDataException($"checkpoint: '{name}' holds {v}, not a counter");
}
