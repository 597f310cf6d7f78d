namespace RlMixup.Models;

/// <summary>
/// The one-cycle learning-rate schedule with the semantics of PyTorch's
/// <c>torch.optim.lr_scheduler.OneCycleLR(anneal_strategy='cos', three_phase=False)</c>, computed in
/// double. Step k (0-based) is the value in force for the (k+1)-th optimiser step; the schedule is
/// stepped once per batch over <see cref="TotalSteps"/> = epochs × steps per epoch.
/// </summary>
/// <remarks>
/// Two phases, as PyTorch builds them: warm-up from <see cref="InitialLr"/> = max_lr / div_factor to
/// <see cref="MaxLr"/> ending at step <c>pct_start · total_steps − 1</c> (a double, not rounded), then
/// annealing to <see cref="MinLr"/> = initial / final_div_factor ending at step
/// <c>total_steps − 1</c>. Within a phase, with pct = (step − start) / (end − start), the value is
/// <c>end + (start − end)/2 · (cos(π·pct) + 1)</c>; the second phase starts where the first ends
/// (also a double), and a step past the first phase's end belongs to the second. Like PyTorch, step
/// <see cref="TotalSteps"/> is still accepted (it extrapolates slightly below the minimum) and
/// anything beyond is an error. With momentum cycling the momentum runs max → base in the first
/// phase and base → max in the second; without it, it stays at <see cref="FixedMomentum"/>.
/// The method's defaults are max_lr 0.2, div_factor 50, final_div_factor 2, pct_start 1/3: 0.004 →
/// 0.2 → 0.002, momentum fixed at 0.9.
/// </remarks>
public sealed class OneCycleSchedule
{
    public OneCycleSchedule(int totalSteps, double maxLr = 0.2, double divFactor = 50, double finalDivFactor = 2,
        double pctStart = 1.0 / 3, bool cycleMomentum = false, double baseMomentum = 0.85, double maxMomentum = 0.95,
        double fixedMomentum = 0.9)
    {
        if (totalSteps <= 0) throw new ArgumentOutOfRangeException(nameof(totalSteps), $"total steps must be positive, got {totalSteps}");
        if (!(pctStart >= 0 && pctStart <= 1)) throw new ArgumentOutOfRangeException(nameof(pctStart), $"pct_start must be in [0, 1], got {pctStart}");
        if (!(maxLr > 0) || !(divFactor > 0) || !(finalDivFactor > 0))
            throw new ArgumentOutOfRangeException(nameof(maxLr), $"max_lr, div_factor and final_div_factor must be positive, got {maxLr}, {divFactor}, {finalDivFactor}");
        TotalSteps = totalSteps;
        MaxLr = maxLr;
        InitialLr = maxLr / divFactor;
        MinLr = InitialLr / finalDivFactor;
        PctStart = pctStart;
        CycleMomentum = cycleMomentum;
        BaseMomentum = baseMomentum;
        MaxMomentum = maxMomentum;
        FixedMomentum = fixedMomentum;
        WarmupEnd = pctStart * totalSteps - 1;
        AnnealEnd = totalSteps - 1;
    }

    /// <summary>PyTorch's <c>epochs</c> + <c>steps_per_epoch</c> form: total steps = their product.</summary>
    public static OneCycleSchedule FromEpochs(int epochs, int stepsPerEpoch, double maxLr = 0.2, double divFactor = 50,
        double finalDivFactor = 2, double pctStart = 1.0 / 3, bool cycleMomentum = false)
    {
        if (epochs <= 0 || stepsPerEpoch <= 0)
            throw new ArgumentOutOfRangeException(nameof(epochs), $"epochs and steps per epoch must be positive, got {epochs} and {stepsPerEpoch}");
        return new OneCycleSchedule(checked(epochs * stepsPerEpoch), maxLr, divFactor, finalDivFactor, pctStart, cycleMomentum);
    }

    public int TotalSteps { get; }
    public double MaxLr { get; }
    public double InitialLr { get; }
    public double MinLr { get; }
    public double PctStart { get; }
    public bool CycleMomentum { get; }
    public double BaseMomentum { get; }
    public double MaxMomentum { get; }
    public double FixedMomentum { get; }
    /// <summary>The step where warm-up ends: <c>pct_start · total_steps − 1</c>, as a double.</summary>
    public double WarmupEnd { get; }
    /// <summary>The step where annealing ends: <c>total_steps − 1</c>.</summary>
    public double AnnealEnd { get; }

    /// <summary>The learning rate in force at <paramref name="step"/> (0 … <see cref="TotalSteps"/>).</summary>
    public double LearningRate(int step)
    {
        var (phase, pct) = Locate(step);
        return phase == 0 ? Cos(InitialLr, MaxLr, pct) : Cos(MaxLr, MinLr, pct);
    }

    /// <summary>The momentum in force at <paramref name="step"/>: cycled, or <see cref="FixedMomentum"/>.</summary>
    public double Momentum(int step)
    {
        var (phase, pct) = Locate(step);
        if (!CycleMomentum) return FixedMomentum;
        return phase == 0 ? Cos(MaxMomentum, BaseMomentum, pct) : Cos(BaseMomentum, MaxMomentum, pct);
    }

    /// <summary>Sets the optimiser's learning rate (and momentum) for <paramref name="step"/>.</summary>
    public void Apply(Sgd sgd, int step)
    {
        ArgumentNullException.ThrowIfNull(sgd);
        sgd.LearningRate = (float)LearningRate(step);
        sgd.Momentum = (float)Momentum(step);
    }

    private (int Phase, double Pct) Locate(int step)
    {
        if (step < 0 || step > TotalSteps)
            throw new ArgumentOutOfRangeException(nameof(step), $"step {step} is outside the schedule's 0..{TotalSteps}");
        // PyTorch: the first phase whose end is ≥ step, else the last; the next phase starts at the previous end.
        double start = 0, end = WarmupEnd;
        int phase = 0;
        if (!(step <= WarmupEnd)) { start = WarmupEnd; end = AnnealEnd; phase = 1; }
        double span = end - start;
        if (span == 0)
            throw new InvalidOperationException(
                $"one-cycle phase {phase} is empty (steps {start}..{end}) for {TotalSteps} total steps and pct_start {PctStart}: PyTorch divides by zero here too");
        return (phase, (step - start) / span);
    }

    private static double Cos(double start, double end, double pct) => end + (start - end) / 2.0 * (Math.Cos(Math.PI * pct) + 1);
}
