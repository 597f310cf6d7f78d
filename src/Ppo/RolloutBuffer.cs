namespace RlMixup.Ppo;

/// <summary>
/// One environment's rollout (SB3's RolloutBuffer with n_envs = 1), stored on the host:
/// observations (n, obsSize), actions (n, D), rewards, episode starts, values and log-probs (n).
/// EpisodeStarts[t] is 1 when observation t is the first of an episode, i.e. when step t−1 ended
/// one (SB3 records the previous step's done flag, and 1 at the very start).
/// </summary>
public sealed class RolloutBuffer
{
    public RolloutBuffer(int bufferSize, int observationSize, int actionDims)
    {
        if (bufferSize < 1 || observationSize < 1 || actionDims < 1)
            throw new ArgumentException($"rollout buffer: sizes must be positive (steps {bufferSize}, observation {observationSize}, actions {actionDims})");
        BufferSize = bufferSize;
        ObservationSize = observationSize;
        ActionDims = actionDims;
        Observations = new float[(long)bufferSize * observationSize];
        Actions = new int[bufferSize * actionDims];
        Rewards = new float[bufferSize];
        EpisodeStarts = new float[bufferSize];
        Values = new float[bufferSize];
        LogProbs = new float[bufferSize];
        Advantages = new float[bufferSize];
        Returns = new float[bufferSize];
    }

    public int BufferSize { get; }
    public int ObservationSize { get; }
    public int ActionDims { get; }
    /// <summary>Steps stored so far.</summary>
    public int Position { get; private set; }
    public bool Full => Position == BufferSize;

    public float[] Observations { get; }
    public int[] Actions { get; }
    public float[] Rewards { get; }
    public float[] EpisodeStarts { get; }
    public float[] Values { get; }
    public float[] LogProbs { get; }
    public float[] Advantages { get; }
    public float[] Returns { get; }

    public ReadOnlySpan<float> Observation(int t) => Observations.AsSpan(t * ObservationSize, ObservationSize);
    public ReadOnlySpan<int> Action(int t) => Actions.AsSpan(t * ActionDims, ActionDims);

    public void Add(ReadOnlySpan<float> observation, ReadOnlySpan<int> action, float reward, bool episodeStart, float value, float logProb)
    {
        if (Full) throw new InvalidOperationException($"rollout buffer: full ({BufferSize} steps); update, then Reset");
        if (observation.Length != ObservationSize || action.Length != ActionDims)
            throw new ArgumentException($"rollout buffer: observation of {observation.Length} floats and {action.Length} actions, expected {ObservationSize} and {ActionDims}");
        int t = Position;
        observation.CopyTo(Observations.AsSpan(t * ObservationSize, ObservationSize));
        action.CopyTo(Actions.AsSpan(t * ActionDims, ActionDims));
        Rewards[t] = reward;
        EpisodeStarts[t] = episodeStart ? 1f : 0f;
        Values[t] = value;
        LogProbs[t] = logProb;
        Position++;
    }

    public void Reset() => Position = 0;

    /// <summary>Marks the first <paramref name="position"/> steps as stored, after the arrays were filled from a checkpoint.</summary>
    public void Restore(int position)
    {
        if (position < 0 || position > BufferSize)
            throw new ArgumentOutOfRangeException(nameof(position), $"rollout buffer: position {position} is outside 0..{BufferSize}");
        Position = position;
    }

    /// <summary>
    /// GAE(λ) as SB3's compute_returns_and_advantage, in float32 as its numpy arrays:
    /// for t from the last step down,
    ///   nonterminal = t is last ? 1 − done : 1 − EpisodeStarts[t+1];   V_next = t is last ? lastValue : Values[t+1]
    ///   delta  = r[t] + γ·V_next·nonterminal − V[t]
    ///   A[t]   = delta + γ·λ·nonterminal·A[t+1]
    /// and Returns = Advantages + Values (the λ-return, the value target).
    /// <paramref name="lastValue"/> is V(observation after the last step) and <paramref name="done"/>
    /// whether the last step ended an episode (then lastValue is not used).
    /// </summary>
    public void ComputeReturnsAndAdvantage(float lastValue, bool done, double gamma, double gaeLambda)
    {
        if (!Full) throw new InvalidOperationException($"rollout buffer: GAE needs a full rollout ({Position} of {BufferSize} steps)");
        float g = (float)gamma, gl = (float)(gamma * gaeLambda);
        float lastGaeLam = 0f;
        for (int t = BufferSize - 1; t >= 0; t--)
        {
            float nextNonTerminal, nextValue;
            if (t == BufferSize - 1) { nextNonTerminal = done ? 0f : 1f; nextValue = lastValue; }
            else { nextNonTerminal = 1f - EpisodeStarts[t + 1]; nextValue = Values[t + 1]; }
            float delta = Rewards[t] + g * nextValue * nextNonTerminal - Values[t];
            lastGaeLam = delta + gl * nextNonTerminal * lastGaeLam;
            Advantages[t] = lastGaeLam;
        }
        for (int t = 0; t < BufferSize; t++) Returns[t] = Advantages[t] + Values[t];
    }
}
