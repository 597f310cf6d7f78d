using RlMixup.Core;

namespace RlMixup.Models;

/// <summary>
/// Pre-activation block (He et al. 2016, CIFAR variant):
///   a   = relu(bn1(x))
///   sc  = shortcut(a) if the block has a 1×1 shortcut conv, else x
///   out = conv2(relu(bn2(conv1(a)))) + sc
/// conv1 is 3×3 with the block's stride, conv2 3×3 stride 1; no conv has a bias. The shortcut exists
/// when the stride is not 1 or the channel count changes.
/// </summary>
public sealed class PreActBlock : Layer
{
    private readonly BatchNorm2d _bn1, _bn2;
    private readonly Relu _relu1 = new(), _relu2 = new();
    private readonly Conv2d _conv1, _conv2;
    private readonly Conv2d? _shortcut;
    private Tensor? _out;

    public PreActBlock(ParameterStore store, string name, int inPlanes, int planes, int stride)
    {
        _bn1 = new BatchNorm2d(store, name + ".bn1", inPlanes);
        _conv1 = new Conv2d(store, name + ".conv1", inPlanes, planes, 3, stride, 1);
        _bn2 = new BatchNorm2d(store, name + ".bn2", planes);
        _conv2 = new Conv2d(store, name + ".conv2", planes, planes, 3, 1, 1);
        if (stride != 1 || inPlanes != planes)
            _shortcut = new Conv2d(store, name + ".shortcut.0", inPlanes, planes, 1, stride, 0);
    }

    public bool HasShortcut => _shortcut != null;

    /// <summary>The outputs of the block's two ReLUs in the last forward, relu(bn1(x)) then relu(bn2(conv1(·))).</summary>
    public IEnumerable<Tensor> ReluOutputs
    {
        get
        {
            if (_relu1.Output is { } a) yield return a;
            if (_relu2.Output is { } b) yield return b;
        }
    }

    public override Tensor Forward(Tensor x, Mode mode)
    {
        var a = _relu1.Forward(_bn1.Forward(x, mode), mode);
        var sc = _shortcut?.Forward(a, mode) ?? x;
        var h = _conv2.Forward(_relu2.Forward(_bn2.Forward(_conv1.Forward(a, mode), mode), mode), mode);
        var outT = Ensure(ref _out, x.Backend, h.Shape);
        x.Backend.Add(outT, h, sc);
        return outT;
    }

    public override Tensor Backward(Tensor dy, bool weightGrads)
    {
        // The sum passes dy unchanged to both branches.
        var dh = _bn2.Backward(_relu2.Backward(_conv2.Backward(dy, weightGrads), weightGrads), weightGrads);
        var da = _conv1.Backward(dh, weightGrads);
        if (_shortcut != null)
        {
            // a feeds conv1 and the shortcut: its gradient is the sum of both (accumulated in conv1's buffer).
            dy.Backend.Axpy(da, 1f, _shortcut.Backward(dy, weightGrads));
            return _bn1.Backward(_relu1.Backward(da, weightGrads), weightGrads);
        }
        // Identity shortcut: x feeds bn1 and the sum directly.
        var dx = _bn1.Backward(_relu1.Backward(da, weightGrads), weightGrads);
        dy.Backend.Axpy(dx, 1f, dy);
        return dx;
    }
}

/// <summary>
/// PreActResNet18 for 32×32 inputs, the CIFAR variant of the paper's comparison table (see
/// docs/method.md): stem conv 3×3 (3→w), four stages of two pre-activation blocks with w, 2w, 4w, 8w
/// channels and first strides 1, 2, 2, 2, global average pool, linear (8w → classes, with bias).
/// There is no final BN-ReLU unless <c>finalBnRelu</c> is set (He et al.'s variant; off by default).
/// Parameter names match the PyTorch module, e.g. <c>layer2.0.shortcut.0.weight</c>.
/// </summary>
public sealed class PreActResNet18
{
    private readonly Conv2d _stem;
    private readonly PreActBlock[] _blocks;
    private readonly BatchNorm2d? _finalBn;
    private readonly Relu? _finalRelu;
    private readonly GlobalAvgPool _pool = new();
    private readonly Linear _linear;

    public PreActResNet18(ParameterStore store, int width = 64, int classes = 100, bool finalBnRelu = false, int inChannels = 3)
    {
        if (width < 1 || classes < 1) throw new ArgumentException($"PreActResNet18 needs width ≥ 1 and classes ≥ 1, got width {width}, classes {classes}");
        Store = store;
        Width = width;
        Classes = classes;
        _stem = new Conv2d(store, "conv1", inChannels, width, 3, 1, 1);
        var blocks = new List<PreActBlock>();
        int inPlanes = width;
        int[] strides = [1, 2, 2, 2];
        for (int stage = 0; stage < 4; stage++)
        {
            int planes = width << stage;
            for (int i = 0; i < 2; i++)
            {
                blocks.Add(new PreActBlock(store, $"layer{stage + 1}.{i}", inPlanes, planes, i == 0 ? strides[stage] : 1));
                inPlanes = planes;
            }
        }
        _blocks = [.. blocks];
        if (finalBnRelu)
        {
            _finalBn = new BatchNorm2d(store, "bn", inPlanes);
            _finalRelu = new Relu();
        }
        _linear = new Linear(store, "linear", inPlanes, classes);
    }

    public ParameterStore Store { get; }
    public int Width { get; }
    public int Classes { get; }

    /// <summary>The outputs of every ReLU in the last forward, block by block (diagnostics: dead units).</summary>
    public IEnumerable<Tensor> ReluOutputs =>
        _blocks.SelectMany(b => b.ReluOutputs).Concat(_finalRelu?.Output is { } f ? [f] : []);

    /// <summary>x (N,3,H,W) → logits (N, classes). The returned tensor is owned by the model.</summary>
    public Tensor Forward(Tensor x, Mode mode)
    {
        var h = _stem.Forward(x, mode);
        foreach (var block in _blocks) h = block.Forward(h, mode);
        if (_finalBn != null) h = _finalRelu!.Forward(_finalBn.Forward(h, mode), mode);
        return _linear.Forward(_pool.Forward(h, mode), mode);
    }

    /// <summary>
    /// Backward from ∂loss/∂logits. <paramref name="weightGrads"/> accumulates into the gradient arena;
    /// switched off, no weight gradient is computed at all (the saliency pass). <paramref name="inputGrad"/>
    /// returns ∂loss/∂x; switched off, the stem's data gradient is skipped (plain training).
    /// </summary>
    public Tensor? Backward(Tensor dlogits, bool weightGrads = true, bool inputGrad = false)
    {
        var d = _pool.Backward(_linear.Backward(dlogits, weightGrads), weightGrads);
        if (_finalBn != null) d = _finalBn.Backward(_finalRelu!.Backward(d, weightGrads), weightGrads);
        for (int i = _blocks.Length - 1; i >= 0; i--) d = _blocks[i].Backward(d, weightGrads);
        return _stem.Backward(d, weightGrads, inputGrad);
    }
}
