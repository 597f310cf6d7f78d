using RlMixup.Core;

namespace RlMixup.Models;

/// <summary>
/// SGD with (Nesterov) momentum and L2 weight decay, PyTorch semantics: one flat pass over the
/// whole parameter arena. Weight decay applies to every parameter, BN and biases included.
/// </summary>
public sealed class Sgd(ParameterStore store, float lr, float momentum = 0.9f, float weightDecay = 1e-4f, bool nesterov = true)
{
    private readonly Tensor _momentum = Arena(store).Backend.Allocate(Arena(store).Shape);

    public float LearningRate { get; set; } = lr;
    public float Momentum { get; set; } = momentum;
    public float WeightDecay { get; } = weightDecay;
    public bool Nesterov { get; } = nesterov;
    /// <summary>The momentum buffer, same layout as the parameter arena.</summary>
    public Tensor MomentumBuffer => _momentum;

    public void Step()
    {
        var p = store.Values!;
        p.Backend.SgdStep(p, store.Grads!, _momentum, LearningRate, Momentum, WeightDecay, Nesterov);
    }

    internal static Tensor Arena(ParameterStore s) =>
        s.Values ?? throw new InvalidOperationException("materialise the parameter store before creating an optimiser");
}

/// <summary>Adam with L2 weight decay (not AdamW), PyTorch semantics; eps is a parameter (SB3's PPO uses 1e-5).</summary>
public sealed class Adam(ParameterStore store, float lr, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0f)
{
    private readonly Tensor _m = Sgd.Arena(store).Backend.Allocate(Sgd.Arena(store).Shape);
    private readonly Tensor _v = Sgd.Arena(store).Backend.Allocate(Sgd.Arena(store).Shape);

    public float LearningRate { get; set; } = lr;
    public float Beta1 { get; } = beta1;
    public float Beta2 { get; } = beta2;
    public float Eps { get; } = eps;
    public float WeightDecay { get; } = weightDecay;
    /// <summary>Number of steps taken so far (PyTorch's state['step']).</summary>
    public int StepCount { get; set; }
    public Tensor FirstMoment => _m;
    public Tensor SecondMoment => _v;

    public void Step()
    {
        var p = store.Values!;
        StepCount++;
        p.Backend.AdamStep(p, store.Grads!, _m, _v, StepCount, LearningRate, Beta1, Beta2, Eps, WeightDecay);
    }
}
