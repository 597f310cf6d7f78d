using RlMixup.Core;

namespace RlMixup.Models;

/// <summary>
/// Widths of the agent's networks. The defaults are the paper's (Table 3, Appendix A): three VALID
/// 3×3 convolutions 200, 300, 400 channels, a 512-wide feature vector, policy MLP 64-64 and value
/// MLP 256-256. Tests use narrower ones.
/// </summary>
public sealed record ActorCriticSizes(int[] ConvChannels, int Features, int[] PolicyHidden, int[] ValueHidden)
{
    public static ActorCriticSizes Paper { get; } = new([200, 300, 400], 512, [64, 64], [256, 256]);
}

/// <summary>
/// The RL-Mixup agent's actor-critic (Stable-Baselines3 ActorCriticPolicy with a shared features
/// extractor):
///   features  x (N, C, H, W) → [conv3×3 valid + bias → ReLU] × 3 → global average pool → linear → tanh   (N, F)
///   policy    features → [linear → tanh] × len(PolicyHidden) → action head                 logits (N, D·K)
///   value     features → [linear → tanh] × len(ValueHidden) → value head                    values (N, 1)
/// The logits are D independent categoricals of K classes each (MultiDiscrete([K]*D)), laid out
/// (N, D, K) row-major. Initialisation is SB3's ortho_init: orthogonal weights with gain √2 for the
/// extractor and both MLPs, 0.01 for the action head and 1 for the value head; every bias is 0.
/// Parameter names follow the SB3 policy's state_dict (features_extractor.cnn.0.weight, …).
/// </summary>
public sealed class ActorCritic
{
    private readonly Conv2d[] _convs;
    private readonly Relu[] _relus;
    private readonly GlobalAvgPool _pool = new();
    private readonly Linear _featLinear;
    private readonly Tanh _featTanh = new();
    private readonly (Linear Lin, Tanh Act)[] _pi, _vf;
    private readonly Linear _actionHead, _valueHead;
    private Tensor? _dFeatures;

    public ActorCritic(ParameterStore store, int inChannels, int actionDims, int actionClasses, ActorCriticSizes? sizes = null)
    {
        sizes ??= ActorCriticSizes.Paper;
        if (inChannels < 1 || actionDims < 1 || actionClasses < 2)
            throw new ArgumentException($"actor-critic: need ≥ 1 input channel, ≥ 1 action dimension and ≥ 2 classes (got {inChannels}, {actionDims}, {actionClasses})");
        Sizes = sizes;
        InChannels = inChannels;
        ActionDims = actionDims;
        ActionClasses = actionClasses;
        var sqrt2 = Init.Orthogonal(Math.Sqrt(2));
        var zero = Init.Constant(0f);

        _convs = new Conv2d[sizes.ConvChannels.Length];
        _relus = new Relu[_convs.Length];
        int c = inChannels;
        for (int i = 0; i < _convs.Length; i++)
        {
            // nn.Sequential(conv, ReLU, conv, ReLU, …): the convs are modules 0, 2, 4
            _convs[i] = new Conv2d(store, $"features_extractor.cnn.{2 * i}", c, sizes.ConvChannels[i], 3, 1, 0, bias: true, sqrt2, zero);
            _relus[i] = new Relu();
            c = sizes.ConvChannels[i];
        }
        _featLinear = new Linear(store, "features_extractor.linear.0", c, sizes.Features, true, sqrt2, zero);
        _pi = Mlp(store, "mlp_extractor.policy_net", sizes.Features, sizes.PolicyHidden, sqrt2, zero);
        _vf = Mlp(store, "mlp_extractor.value_net", sizes.Features, sizes.ValueHidden, sqrt2, zero);
        int piOut = sizes.PolicyHidden.Length > 0 ? sizes.PolicyHidden[^1] : sizes.Features;
        int vfOut = sizes.ValueHidden.Length > 0 ? sizes.ValueHidden[^1] : sizes.Features;
        _actionHead = new Linear(store, "action_net", piOut, actionDims * actionClasses, true, Init.Orthogonal(0.01), zero);
        _valueHead = new Linear(store, "value_net", vfOut, 1, true, Init.Orthogonal(1.0), zero);
    }

    private static (Linear, Tanh)[] Mlp(ParameterStore store, string name, int inF, int[] hidden, Init w, Init b)
    {
        var layers = new (Linear, Tanh)[hidden.Length];
        for (int i = 0; i < hidden.Length; i++)
        {
            layers[i] = (new Linear(store, $"{name}.{2 * i}", inF, hidden[i], true, w, b), new Tanh());
            inF = hidden[i];
        }
        return layers;
    }

    public ActorCriticSizes Sizes { get; }
    public int InChannels { get; }
    public int ActionDims { get; }
    public int ActionClasses { get; }

    /// <summary>
    /// Forward of a batch of observations x (N, C, H, W), H and W ≥ 2·(convs)+1. Returns views owned by
    /// the network: logits (N, D·K) and values (N, 1), valid until the next Forward.
    /// </summary>
    public (Tensor Logits, Tensor Values) Forward(Tensor x)
    {
        if (x.Shape.Rank != 4 || x.Shape.C != InChannels)
            throw new ShapeMismatchException($"actor-critic: observations of shape {x.Shape} but (N, {InChannels}, H, W) was expected");
        var h = x;
        for (int i = 0; i < _convs.Length; i++) h = _relus[i].Forward(_convs[i].Forward(h, Mode.Train), Mode.Train);
        var features = _featTanh.Forward(_featLinear.Forward(_pool.Forward(h, Mode.Train), Mode.Train), Mode.Train);
        var p = features;
        foreach (var (lin, act) in _pi) p = act.Forward(lin.Forward(p, Mode.Train), Mode.Train);
        var v = features;
        foreach (var (lin, act) in _vf) v = act.Forward(lin.Forward(v, Mode.Train), Mode.Train);
        return (_actionHead.Forward(p, Mode.Train), _valueHead.Forward(v, Mode.Train));
    }

    /// <summary>
    /// Backward of the last Forward: ACCUMULATES every parameter gradient from ∂loss/∂logits (N, D·K)
    /// and ∂loss/∂values (N, 1). The input's gradient is not needed and not computed.
    /// </summary>
    public void Backward(Tensor dLogits, Tensor dValues)
    {
        var dp = _actionHead.Backward(dLogits, true);
        for (int i = _pi.Length - 1; i >= 0; i--) dp = _pi[i].Lin.Backward(_pi[i].Act.Backward(dp, true), true);
        var dv = _valueHead.Backward(dValues, true);
        for (int i = _vf.Length - 1; i >= 0; i--) dv = _vf[i].Lin.Backward(_vf[i].Act.Backward(dv, true), true);
        // The shared features receive the sum of both heads' gradients.
        var b = dLogits.Backend;
        var dFeatures = Tensor.Ensure(ref _dFeatures, b, dp.Shape);
        b.Add(dFeatures, dp, dv);
        var dh = _pool.Backward(_featLinear.Backward(_featTanh.Backward(dFeatures, true), true), true);
        for (int i = _convs.Length - 1; i >= 0; i--)
        {
            var dz = _relus[i].Backward(dh, true);
            dh = _convs[i].Backward(dz, true, inputGrad: i > 0)!;
        }
    }

}
