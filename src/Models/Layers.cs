using RlMixup.Core;

namespace RlMixup.Models;

/// <summary>How a forward pass treats batch norm.</summary>
public enum Mode
{
    /// <summary>Batch statistics, running statistics updated (PyTorch's train()).</summary>
    Train,
    /// <summary>Batch statistics, running statistics left alone (an option of the saliency pass).</summary>
    TrainFrozenStats,
    /// <summary>Running statistics (PyTorch's eval()).</summary>
    Eval,
}

/// <summary>
/// A layer with an explicit forward and backward and no tape. Forward caches what backward needs
/// (the input, or its own output) in buffers the layer owns and reuses while shapes stay the same.
/// Backward returns ∂loss/∂input in a buffer of its own and, when <c>weightGrads</c> is set,
/// ACCUMULATES parameter gradients into the gradient arena.
/// </summary>
public abstract class Layer
{
    public abstract Tensor Forward(Tensor x, Mode mode);
    public abstract Tensor Backward(Tensor dy, bool weightGrads);

    /// <summary>The layer's workspace slot <paramref name="t"/> in <paramref name="shape"/> (<see cref="Tensor.Ensure"/>: reuses its buffer when it fits).</summary>
    protected static Tensor Ensure([System.Diagnostics.CodeAnalysis.NotNull] ref Tensor? t, IBackend backend, Shape shape) => Tensor.Ensure(ref t, backend, shape);

    protected static T Cached<T>(T? value, string layer) where T : class =>
        value ?? throw new InvalidOperationException($"{layer}: Backward called before Forward");
}

/// <summary>
/// 2-D convolution, weight (O, C, kH, kW), PyTorch-default init. Without bias by default (the
/// ResNet convolutions feed batch norm); <c>bias: true</c> adds a per-channel bias (O) as
/// nn.Conv2d's default does.
/// </summary>
public sealed class Conv2d : Layer
{
    private readonly Conv2dSpec _spec;
    private Tensor? _x, _y, _dx;

    public Conv2d(ParameterStore store, string name, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0,
        bool bias = false, Init? weightInit = null, Init? biasInit = null)
    {
        _spec = new Conv2dSpec(stride, padding);
        int fanIn = inChannels * kernel * kernel;
        Weight = store.Add(name + ".weight", new Shape(outChannels, inChannels, kernel, kernel), weightInit ?? Init.KaimingUniform(fanIn));
        Bias = bias ? store.Add(name + ".bias", new Shape(outChannels), biasInit ?? Init.BiasUniform(fanIn)) : null;
    }

    public NamedTensor Weight { get; }
    public NamedTensor? Bias { get; }

    public override Tensor Forward(Tensor x, Mode mode)
    {
        var b = x.Backend;
        var y = Ensure(ref _y, b, _spec.OutputShape(x.Shape, Weight.Shape));
        b.Conv2dForward(y, x, Weight.Value, _spec);
        if (Bias != null) b.AddChannelBias(y, Bias.Value);
        _x = x;
        return y;
    }

    public override Tensor Backward(Tensor dy, bool weightGrads) => Backward(dy, weightGrads, inputGrad: true)!;

    /// <summary>Backward that can skip the data gradient (the stem during training) or the weight gradient (saliency).</summary>
    public Tensor? Backward(Tensor dy, bool weightGrads, bool inputGrad)
    {
        var x = Cached(_x, Weight.Name);
        var b = dy.Backend;
        if (weightGrads)
        {
            b.Conv2dBackwardFilter(Weight.Grad, x, dy, _spec);
            if (Bias != null) b.ChannelBiasBackward(Bias.Grad, dy);
        }
        if (!inputGrad) return null;
        var dx = Ensure(ref _dx, b, x.Shape);
        b.Conv2dBackwardData(dx, dy, Weight.Value, _spec);
        return dx;
    }
}

/// <summary>BatchNorm2d with PyTorch's defaults: momentum 0.1, eps 1e-5, γ = 1, β = 0.</summary>
public sealed class BatchNorm2d : Layer
{
    public const float Momentum = 0.1f, Eps = 1e-5f;
    private readonly string _name;
    private Tensor? _x, _y, _dx, _saveMean, _saveInvStd;
    private bool _trainedForward;

    public BatchNorm2d(ParameterStore store, string name, int channels)
    {
        _name = name;
        var c = new Shape(channels);
        Weight = store.Add(name + ".weight", c, Init.Constant(1f));
        Bias = store.Add(name + ".bias", c, Init.Constant(0f));
        RunningMean = store.Add(name + ".running_mean", c, Init.Constant(0f), TensorKind.Buffer);
        RunningVar = store.Add(name + ".running_var", c, Init.Constant(1f), TensorKind.Buffer);
    }

    public NamedTensor Weight { get; }
    public NamedTensor Bias { get; }
    public NamedTensor RunningMean { get; }
    public NamedTensor RunningVar { get; }

    public override Tensor Forward(Tensor x, Mode mode)
    {
        var b = x.Backend;
        var y = Ensure(ref _y, b, x.Shape);
        if (mode == Mode.Eval)
        {
            b.BatchNormForwardInference(y, x, Weight.Value, Bias.Value, RunningMean.Value, RunningVar.Value, Eps);
            _trainedForward = false;
        }
        else
        {
            var c = new Shape(x.Shape.C);
            b.BatchNormForwardTraining(y, x, Weight.Value, Bias.Value, RunningMean.Value, RunningVar.Value,
                Ensure(ref _saveMean, b, c), Ensure(ref _saveInvStd, b, c), Momentum, Eps, updateRunning: mode == Mode.Train);
            _trainedForward = true;
        }
        _x = x;
        return y;
    }

    public override Tensor Backward(Tensor dy, bool weightGrads)
    {
        var x = Cached(_x, _name);
        if (!_trainedForward) throw new InvalidOperationException($"{_name}: backward needs a training-mode forward");
        var b = dy.Backend;
        var dx = Ensure(ref _dx, b, x.Shape);
        b.BatchNormBackward(dx, weightGrads ? Weight.Grad : null, weightGrads ? Bias.Grad : null, dy, x, Weight.Value, _saveMean!, _saveInvStd!, Eps);
        return dx;
    }
}

/// <summary>An elementwise activation whose backward needs only its own output y.</summary>
public abstract class Activation(string name) : Layer
{
    private Tensor? _y, _dx;

    protected abstract void Apply(IBackend b, Tensor y, Tensor x);
    protected abstract void Derive(IBackend b, Tensor dx, Tensor y, Tensor dy);

    /// <summary>The output of the last Forward (null before the first), overwritten by the next.</summary>
    public Tensor? Output => _y;

    public override Tensor Forward(Tensor x, Mode mode)
    {
        var y = Ensure(ref _y, x.Backend, x.Shape);
        Apply(x.Backend, y, x);
        return y;
    }

    public override Tensor Backward(Tensor dy, bool weightGrads)
    {
        var y = Cached(_y, name);
        var dx = Ensure(ref _dx, dy.Backend, y.Shape);
        Derive(dy.Backend, dx, y, dy);
        return dx;
    }
}

public sealed class Relu() : Activation("relu")
{
    protected override void Apply(IBackend b, Tensor y, Tensor x) => b.ReluForward(y, x);
    protected override void Derive(IBackend b, Tensor dx, Tensor y, Tensor dy) => b.ReluBackward(dx, y, dy);
}

public sealed class Tanh() : Activation("tanh")
{
    protected override void Apply(IBackend b, Tensor y, Tensor x) => b.TanhForward(y, x);
    protected override void Derive(IBackend b, Tensor dx, Tensor y, Tensor dy) => b.TanhBackward(dx, y, dy);
}

/// <summary>(N,C,H,W) → (N,C), the mean over each map.</summary>
public sealed class GlobalAvgPool : Layer
{
    private Tensor? _y, _dx;
    private Shape _inShape;

    public override Tensor Forward(Tensor x, Mode mode)
    {
        var y = Ensure(ref _y, x.Backend, new Shape(x.Shape.N, x.Shape.C));
        x.Backend.GlobalAvgPoolForward(y, x);
        _inShape = x.Shape;
        return y;
    }

    public override Tensor Backward(Tensor dy, bool weightGrads)
    {
        if (_inShape.Rank != 4) throw new InvalidOperationException("global average pool: Backward called before Forward");
        var dx = Ensure(ref _dx, dy.Backend, _inShape);
        dy.Backend.GlobalAvgPoolBackward(dx, dy);
        return dx;
    }
}

/// <summary>y = x·Wᵀ + b with W (out, in), PyTorch-default init.</summary>
public sealed class Linear : Layer
{
    private Tensor? _x, _y, _dx;

    public Linear(ParameterStore store, string name, int inFeatures, int outFeatures, bool bias = true, Init? weightInit = null, Init? biasInit = null)
    {
        Weight = store.Add(name + ".weight", new Shape(outFeatures, inFeatures), weightInit ?? Init.KaimingUniform(inFeatures));
        Bias = bias ? store.Add(name + ".bias", new Shape(outFeatures), biasInit ?? Init.BiasUniform(inFeatures)) : null;
    }

    public NamedTensor Weight { get; }
    public NamedTensor? Bias { get; }

    public override Tensor Forward(Tensor x, Mode mode)
    {
        var b = x.Backend;
        Check.Rank("linear", "input", x.Shape, 2);
        var y = Ensure(ref _y, b, new Shape(x.Shape[0], Weight.Shape[0]));
        b.LinearForward(y, x, Weight.Value, Bias?.Value);
        _x = x;
        return y;
    }

    public override Tensor Backward(Tensor dy, bool weightGrads)
    {
        var x = Cached(_x, Weight.Name);
        var dx = Ensure(ref _dx, dy.Backend, x.Shape);
        dy.Backend.LinearBackward(dx, weightGrads ? Weight.Grad : null, weightGrads ? Bias?.Grad : null, dy, x, Weight.Value);
        return dx;
    }
}
