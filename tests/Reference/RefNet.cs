namespace RlMixup.Tests.Reference;

/// <summary>An NCHW activation of the float64 reference: data plus its dimensions.</summary>
public sealed record Act(double[] Data, int N, int C, int H, int W)
{
    public int HW => H * W;
}

/// <summary>
/// Float64 compositions of <see cref="RefOps"/>: the pre-activation block and PreActResNet18 written
/// out from the paper's definition (He et al. 2016, CIFAR variant), with parameters held by their
/// PyTorch names in a dictionary so that a finite-difference loop can perturb any of them in place.
///
/// ReLU masks can be FROZEN: <see cref="Record"/> runs one forward at the base point and stores every
/// ReLU's mask; later forwards reuse them. The function being differenced is then the network's local
/// linearisation around the base point's activation pattern, whose derivative is exactly what the
/// analytic backward computes. Without this, a finite-difference step that moves one of the thousands
/// of pre-activations across zero would add a spurious kink contribution to the quotient.
/// </summary>
public sealed class RefNet(Dictionary<string, double[]> parameters, Dictionary<string, int[]> shapes)
{
    public const double BnEps = 1e-5;
    public Dictionary<string, double[]> P { get; } = parameters;
    public Dictionary<string, int[]> Shapes { get; } = shapes;

    private List<bool[]>? _masks;
    private int _maskIndex;
    private bool _recording;

    /// <summary>Runs <paramref name="forward"/> once and freezes the ReLU masks it saw.</summary>
    public T Record<T>(Func<T> forward)
    {
        _masks = [];
        _recording = true;
        try { return forward(); }
        finally { _recording = false; }
    }

    /// <summary>Runs <paramref name="forward"/> with the frozen masks (free ReLUs if none were recorded).</summary>
    public T Frozen<T>(Func<T> forward)
    {
        _maskIndex = 0;
        var result = forward();
        if (_masks != null && _maskIndex != _masks.Count)
            throw new InvalidOperationException($"forward used {_maskIndex} ReLU masks, {_masks.Count} were recorded");
        return result;
    }

    public Act Relu(Act x)
    {
        var y = new double[x.Data.Length];
        if (_masks == null || _recording)
        {
            var mask = new bool[y.Length];
            for (int i = 0; i < y.Length; i++) mask[i] = x.Data[i] > 0;
            _masks?.Add(mask);
            for (int i = 0; i < y.Length; i++) y[i] = mask[i] ? x.Data[i] : 0;
        }
        else
        {
            var mask = _masks[_maskIndex++];
            for (int i = 0; i < y.Length; i++) y[i] = mask[i] ? x.Data[i] : 0;
        }
        return x with { Data = y };
    }

    /// <summary>Square-kernel convolution with the weight named <paramref name="weight"/> (O, C, k, k).</summary>
    public Act Conv(Act x, string weight, int stride, int pad)
    {
        var s = Shapes[weight];
        if (s[1] != x.C) throw new ArgumentException($"{weight}: {s[1]} input channels, activation has {x.C}");
        var y = RefOps.Conv2d(x.Data, x.N, x.C, x.H, x.W, P[weight], s[0], s[2], s[3], stride, stride, pad, pad);
        return new Act(y, x.N, s[0], RefOps.ConvOut(x.H, s[2], stride, pad), RefOps.ConvOut(x.W, s[3], stride, pad));
    }

    /// <summary>Training-mode batch norm with name.weight (γ) and name.bias (β).</summary>
    public Act Bn(Act x, string name) =>
        x with { Data = RefOps.BatchNormTraining(x.Data, x.N, x.C, x.HW, P[name + ".weight"], P[name + ".bias"], BnEps) };

    /// <summary>
    /// a = relu(bn1(x)); out = conv2(relu(bn2(conv1(a)))) + (stride ≠ 1 or C ≠ planes ? shortcut(a) : x).
    /// conv1 3×3 with the block's stride and padding 1, conv2 3×3 stride 1 padding 1, shortcut 1×1.
    /// </summary>
    public Act Block(Act x, string name, int planes, int stride)
    {
        var a = Relu(Bn(x, name + ".bn1"));
        var h = Conv(a, name + ".conv1.weight", stride, 1);
        h = Conv(Relu(Bn(h, name + ".bn2")), name + ".conv2.weight", 1, 1);
        bool projection = stride != 1 || x.C != planes;
        if (projection != P.ContainsKey(name + ".shortcut.0.weight"))
            throw new InvalidOperationException($"{name}: the parameters {(projection ? "lack" : "have")} a shortcut conv");
        var sc = projection ? Conv(a, name + ".shortcut.0.weight", stride, 0) : x;
        return h with { Data = RefOps.Add(h.Data, sc.Data) };
    }

    /// <summary>
    /// PreActResNet18 (CIFAR variant): conv1 3×3 (→ width), stages of two blocks with width·{1,2,4,8}
    /// channels and first strides {1,2,2,2}, global average pool, linear with bias. Returns logits (N, classes).
    /// </summary>
    public double[] PreActResNet18(Act x, int width)
    {
        var h = Conv(x, "conv1.weight", 1, 1);
        int[] strides = [1, 2, 2, 2];
        for (int stage = 0; stage < 4; stage++)
            for (int i = 0; i < 2; i++)
                h = Block(h, $"layer{stage + 1}.{i}", width << stage, i == 0 ? strides[stage] : 1);
        var pooled = RefOps.GlobalAvgPool(h.Data, h.N, h.C, h.HW);
        var lw = Shapes["linear.weight"];
        return RefOps.Linear(pooled, P["linear.weight"], P["linear.bias"], h.N, lw[1], lw[0]);
    }

    /// <summary>Mean over the batch of −Σ_k y·log_softmax(z): the loss SoftTargetLoss computes.</summary>
    public static double MeanSoftCrossEntropy(double[] logits, double[] targets, int n, int k) =>
        RefOps.SoftCrossEntropy(RefOps.LogSoftmax(logits, n, k), targets, n, k).Sum() / n;
}
