// Gradient checks of the layers in src/Models, from a single Conv2d up to a whole (tiny) PreActResNet18,
// against central finite differences of float64 compositions of RefOps (tests/Reference/RefNet.cs).
// The op-level error analysis is in OpGradientTests; here the question is whether the layers wire the
// ops together correctly: caching, buffer reuse, the residual sum, the shortcut, which gradients are
// accumulated and which are skipped.
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Models;
using RlMixup.Tests.Reference;
using static RlMixup.Tests.Reference.FiniteDiff;

namespace RlMixup.Tests;

public class LayerGradientTests
{
    private IBackend _b = null!;

    [OneTimeSetUp] public void Setup() => _b = new CpuBackend(2);
    [OneTimeTearDown] public void TearDown() => _b.Dispose();

    private Tensor T(float[] data, params int[] dims)
    {
        var t = _b.Allocate(new Shape(dims));
        t.CopyFrom(data);
        return t;
    }

    private static Act ActOf(float[] data, int n, int c, int h, int w) => new(ToDouble(data), n, c, h, w);

    /// <summary>
    /// Materialises the store, then gives batch-norm γ values in [0.5, 1.5] and β values in [−0.5, 0.5]
    /// (instead of 1 and 0) so that a swapped or ignored γ/β shows. Conv and linear keep their seeded
    /// PyTorch-default init. Returns the float64 twin of every parameter, by name.
    /// </summary>
    private RefNet Materialize(ParameterStore store, ulong seed)
    {
        store.Materialize(_b, new Rng(seed));
        var rng = new Random((int)seed);
        var p = new Dictionary<string, double[]>();
        var s = new Dictionary<string, int[]>();
        foreach (var t in store.Parameters)
        {
            bool bn = t.Shape.Rank == 1 && store.Contains(t.Name[..t.Name.LastIndexOf('.')] + ".running_mean");
            if (bn)
                t.Value.CopyFrom(t.Name.EndsWith(".weight") ? Data.Uniform(t.Shape.Size, rng, 0.5, 1.5) : Data.Uniform(t.Shape.Size, rng, -0.5, 0.5));
            p[t.Name] = ToDouble(t.Value.ToArray());
            s[t.Name] = t.Shape.Dims.ToArray();
        }
        return new RefNet(p, s);
    }

    /// <summary>
    /// The saliency-pass contract: with weight gradients off, backward returns the same data gradient
    /// (bit for bit: the same float ops run) and does not write a single element of the gradient arena.
    /// </summary>
    private static void AssertWeightGradsOffMatches(ParameterStore store, float[] dxWithGrads, Func<Tensor?> backwardWithoutGrads)
    {
        var before = store.Grads!.ToArray();
        var dx = backwardWithoutGrads();
        Assert.That(dx, Is.Not.Null);
        Assert.That(dx!.ToArray(), Is.EqualTo(dxWithGrads), "dx with weight gradients off differs from dx with them on");
        Assert.That(store.Grads.ToArray(), Is.EqualTo(before), "backward with weight gradients off wrote into the gradient arena");
    }

    private static int[] Range(int n) => Enumerable.Range(0, n).ToArray();

    #region Single layers

    [TestCase(3, 5, 3, 2, 1, 2, 7, 6)]
    [TestCase(4, 6, 1, 2, 0, 2, 8, 8)]
    [TestCase(3, 4, 5, 1, 2, 1, 6, 5)]
    public void Conv2dLayer(int inC, int outC, int k, int stride, int pad, int n, int h, int w)
    {
        var store = new ParameterStore();
        var conv = new Conv2d(store, "conv", inC, outC, k, stride, pad);
        var net = Materialize(store, 11);
        var rng = new Random(12);
        var xf = Data.Uniform(n * inC * h * w, rng);
        var x = ActOf(xf, n, inC, h, w);

        var y = conv.Forward(T(xf, n, inC, h, w), Mode.Train);
        var yRef = net.Conv(x, "conv.weight", stride, pad);
        Assert.That(y.Shape, Is.EqualTo(new Shape(n, outC, yRef.H, yRef.W)));
        // K = inC·k² products of |x| ≤ 1 and |w| ≤ 1/√K (Kaiming bound)
        int kk = inC * k * k;
        Validate("Conv2d layer y", y.ToArray(), yRef.Data, Tol.Sum(kk, Math.Sqrt(kk)), Tol.Rtol);

        var rf = Data.Uniform(y.Length, rng);
        var r = ToDouble(rf);
        var dy = T(rf, y.Shape.Dims.ToArray());
        store.ZeroGrad();
        var dx = conv.Backward(dy, weightGrads: true).ToArray();
        var dxRef = Gradient(v => Dot(r, net.Conv(x with { Data = v }, "conv.weight", stride, pad).Data), x.Data);
        var dwRef = Gradient(_ => Dot(r, net.Conv(x, "conv.weight", stride, pad).Data), net.P["conv.weight"]);
        int kdw = n * yRef.HW;
        Validate("Conv2d layer dx", dx, dxRef, Tol.Sum(outC * k * k, outC * k * k / Math.Sqrt(kk)), Tol.Rtol);
        Validate("Conv2d layer dw", conv.Weight.Grad.ToArray(), dwRef, Tol.Sum(kdw, kdw), Tol.Rtol);

        AssertWeightGradsOffMatches(store, dx, () => conv.Backward(dy, weightGrads: false));
        // weight gradient only: nothing returned, and the arena accumulates a second copy
        Assert.That(conv.Backward(dy, weightGrads: true, inputGrad: false), Is.Null);
        Validate("Conv2d layer dw after two backwards", conv.Weight.Grad.ToArray(), dwRef.Select(g => 2 * g).ToArray(), Tol.Sum(2 * kdw, 2 * kdw), Tol.Rtol);
    }

    [TestCase(2, 3, 5, 4)]
    [TestCase(1, 6, 3, 3)]
    public void BatchNorm2dLayer(int n, int c, int h, int w)
    {
        var store = new ParameterStore();
        var bn = new BatchNorm2d(store, "bn", c);
        var net = Materialize(store, 21);
        var rng = new Random(22);
        int hw = h * w, m = n * hw;
        var xf = Data.Uniform(n * c * hw, rng, -1.5, 2.5);
        var x = ActOf(xf, n, c, h, w);
        var xt = T(xf, n, c, h, w);
        // errors as in OpGradientTests.BatchNorm: M-term reductions, scaled by γ/σ and x̂ (≤ ~2 here)
        double yTol = Tol.Sum(m, 8), dTol = Tol.Sum(m, 32);

        // Train: batch statistics, running statistics move from (0, 1) by momentum 0.1 (unbiased variance)
        var y = bn.Forward(xt, Mode.Train).ToArray();
        Validate("BatchNorm2d y (train)", y, net.Bn(x, "bn").Data, yTol, Tol.Rtol);
        var (rmRef, rvRef) = RefOps.UpdateRunning(new double[c], Enumerable.Repeat(1.0, c).ToArray(), x.Data, n, c, hw, BatchNorm2d.Momentum);
        var rm = bn.RunningMean.Value.ToArray();
        var rv = bn.RunningVar.Value.ToArray();
        Validate("BatchNorm2d running mean", rm, rmRef, yTol, Tol.Rtol);
        Validate("BatchNorm2d running var", rv, rvRef, yTol, Tol.Rtol);

        // TrainFrozenStats: same output, running statistics left alone
        var yFrozen = bn.Forward(xt, Mode.TrainFrozenStats).ToArray();
        Assert.That(yFrozen, Is.EqualTo(y), "TrainFrozenStats must normalise exactly as Train does");
        Assert.That(bn.RunningMean.Value.ToArray(), Is.EqualTo(rm), "TrainFrozenStats moved the running mean");
        Assert.That(bn.RunningVar.Value.ToArray(), Is.EqualTo(rv), "TrainFrozenStats moved the running var");

        // Eval: running statistics; backward is refused afterwards
        var yEval = bn.Forward(xt, Mode.Eval).ToArray();
        var yEvalRef = RefOps.BatchNormInference(x.Data, n, c, hw, net.P["bn.weight"], net.P["bn.bias"], ToDouble(rm), ToDouble(rv), BatchNorm2d.Eps);
        Validate("BatchNorm2d y (eval)", yEval, yEvalRef, 1e-6, 8 * Tol.Rtol);
        var dy = T(Data.Uniform(xf.Length, rng), n, c, h, w);
        Assert.Throws<InvalidOperationException>(() => bn.Backward(dy, weightGrads: true));

        // backward of a training forward
        bn.Forward(xt, Mode.Train);
        var r = ToDouble(dy.ToArray());
        store.ZeroGrad();
        var dx = bn.Backward(dy, weightGrads: true).ToArray();
        var dxRef = Gradient(v => Dot(r, net.Bn(x with { Data = v }, "bn").Data), x.Data);
        var dgRef = Gradient(_ => Dot(r, net.Bn(x, "bn").Data), net.P["bn.weight"]);
        var dbRef = Gradient(_ => Dot(r, net.Bn(x, "bn").Data), net.P["bn.bias"]);
        Validate("BatchNorm2d dx", dx, dxRef, dTol, Tol.Rtol);
        Validate("BatchNorm2d dgamma", bn.Weight.Grad.ToArray(), dgRef, Tol.Sum(m, 2 * m), Tol.Rtol);
        Validate("BatchNorm2d dbeta", bn.Bias.Grad.ToArray(), dbRef, Tol.Sum(m, m), Tol.Rtol);
        AssertWeightGradsOffMatches(store, dx, () => bn.Backward(dy, weightGrads: false));
    }

    [TestCase(3, 7, 4, true)]
    [TestCase(1, 16, 3, false)]
    public void LinearLayer(int n, int inF, int outF, bool bias)
    {
        var store = new ParameterStore();
        var lin = new Linear(store, "fc", inF, outF, bias);
        var net = Materialize(store, 31);
        var rng = new Random(32);
        var xf = Data.Uniform(n * inF, rng);
        var xd = ToDouble(xf);
        double[]? B() => bias ? net.P["fc.bias"] : null;
        double[] Fwd(double[] v) => RefOps.Linear(v, net.P["fc.weight"], B(), n, inF, outF);

        var y = lin.Forward(T(xf, n, inF), Mode.Train);
        Validate("Linear layer y", y.ToArray(), Fwd(xd), Tol.Sum(inF + 1, inF + 1), Tol.Rtol);

        var rf = Data.Uniform(n * outF, rng);
        var r = ToDouble(rf);
        var dy = T(rf, n, outF);
        store.ZeroGrad();
        var dx = lin.Backward(dy, weightGrads: true).ToArray();
        Validate("Linear layer dx", dx, Gradient(v => Dot(r, Fwd(v)), xd), Tol.Sum(outF, outF), Tol.Rtol);
        Validate("Linear layer dw", lin.Weight.Grad.ToArray(), Gradient(_ => Dot(r, Fwd(xd)), net.P["fc.weight"]), Tol.Sum(n, n), Tol.Rtol);
        if (bias)
            Validate("Linear layer db", lin.Bias!.Grad.ToArray(), Gradient(_ => Dot(r, Fwd(xd)), net.P["fc.bias"]), Tol.Sum(n, n), Tol.Rtol);
        AssertWeightGradsOffMatches(store, dx, () => lin.Backward(dy, weightGrads: false));
    }

    [Test]
    public void ElementwiseAndPoolLayers()
    {
        var rng = new Random(41);
        int n = 2, c = 3, h = 5, w = 4, len = n * c * h * w;
        var xf = Data.AwayFromZero(len, rng, 1e-2, 2); // away from the ReLU kink
        var xd = ToDouble(xf);
        var rf = Data.Uniform(len, rng);
        var r = ToDouble(rf);

        var relu = new Relu();
        Validate("Relu layer y", relu.Forward(T(xf, n, c, h, w), Mode.Train).ToArray(), RefOps.Relu(xd), 1e-30, 0);
        Validate("Relu layer dx", relu.Backward(T(rf, n, c, h, w), true).ToArray(), Gradient(v => Dot(r, RefOps.Relu(v)), xd), 1e-8, 0);

        var tanh = new Tanh();
        Validate("Tanh layer y", tanh.Forward(T(xf, n, c, h, w), Mode.Train).ToArray(), RefOps.Tanh(xd), 4 * Tol.EpsF32, 4 * Tol.EpsF32);
        Validate("Tanh layer dx", tanh.Backward(T(rf, n, c, h, w), true).ToArray(), Gradient(v => Dot(r, RefOps.Tanh(v)), xd), 16 * Tol.EpsF32, Tol.Rtol);

        var pool = new GlobalAvgPool();
        var rp = rf.AsSpan(0, n * c).ToArray();
        Validate("GlobalAvgPool layer y", pool.Forward(T(xf, n, c, h, w), Mode.Train).ToArray(), RefOps.GlobalAvgPool(xd, n, c, h * w), Tol.Sum(h * w, 2), Tol.Rtol);
        var dxp = pool.Backward(T(rp, n, c), true);
        Assert.That(dxp.Shape, Is.EqualTo(new Shape(n, c, h, w)));
        Validate("GlobalAvgPool layer dx", dxp.ToArray(), Gradient(v => Dot(ToDouble(rp), RefOps.GlobalAvgPool(v, n, c, h * w)), xd), 1e-8, Tol.Rtol);
    }

    #endregion

    #region Pre-activation block

    /// <summary>
    /// Tolerance of a composed gradient, relative to the largest reference value of the tensor it
    /// belongs to (errors of a float32 reduction scale with the magnitude of its terms, not with the
    /// possibly cancelling result). Each op adds ~√K·ε_f32 ≈ 7e-7 of its terms' scale (K ≤ 9·C ≤ 150
    /// here); the whole model's backward chains ~60 ops, whose errors add like a random walk to
    /// ~√60·7e-7 ≈ 5e-6 (measured worst: 5e-6, on a layer1 batch-norm γ of the model), with batch
    /// norm's γ/σ ≲ 2 on top. 1e-4 is a margin of ~20 over that, while wiring bugs (a missing residual,
    /// shortcut or batch-norm term) are O(1) of the scale. The measured ratio is printed per tensor.
    /// </summary>
    private const double ComposedRel = 1e-4;

    private static void ValidateComposed(string name, float[] actual, double[] expected, double? tensorScale = null)
    {
        double scale = tensorScale ?? (expected.Length == 0 ? 0 : expected.Max(Math.Abs));
        double maxErr = 0;
        for (int i = 0; i < expected.Length; i++) maxErr = Math.Max(maxErr, Math.Abs(actual[i] - expected[i]));
        TestContext.Out.WriteLine($"{name}: max |error| / max |grad| = {maxErr / Math.Max(scale, 1e-30):E2} (scale {scale:E2})");
        Validate(name, actual, expected, ComposedRel * scale + 1e-7, Tol.Rtol);
    }

    [TestCase(4, 4, 1, 2, 6, 5, TestName = "PreActBlock identity shortcut")]
    [TestCase(3, 5, 2, 2, 7, 6, TestName = "PreActBlock 1x1 shortcut, stride 2")]
    [TestCase(3, 5, 1, 1, 5, 5, TestName = "PreActBlock 1x1 shortcut, channels only, batch 1")]
    public void PreActBlock(int inPlanes, int planes, int stride, int n, int h, int w)
    {
        var store = new ParameterStore();
        var block = new PreActBlock(store, "blk", inPlanes, planes, stride);
        Assert.That(block.HasShortcut, Is.EqualTo(stride != 1 || inPlanes != planes));
        var net = Materialize(store, 51);
        var rng = new Random(52);
        var xf = Data.Uniform(n * inPlanes * h * w, rng, -1.5, 1.5);
        var x = ActOf(xf, n, inPlanes, h, w);

        var y = block.Forward(T(xf, n, inPlanes, h, w), Mode.Train);
        var yRef = net.Record(() => net.Block(x, "blk", planes, stride));
        Assert.That(y.Shape, Is.EqualTo(new Shape(n, planes, yRef.H, yRef.W)));
        ValidateComposed("block y", y.ToArray(), yRef.Data);

        var rf = Data.Uniform(y.Length, rng);
        var r = ToDouble(rf);
        var dy = T(rf, y.Shape.Dims.ToArray());
        double Loss() => net.Frozen(() => Dot(r, net.Block(x, "blk", planes, stride).Data));
        store.ZeroGrad();
        var dx = block.Backward(dy, weightGrads: true).ToArray();
        ValidateComposed("block dx", dx, Gradient(_ => Loss(), x.Data));
        foreach (var p in store.Parameters)
            ValidateComposed($"block d[{p.Name}]", p.Grad.ToArray(), Gradient(_ => Loss(), net.P[p.Name]));
        AssertWeightGradsOffMatches(store, dx, () => block.Backward(dy, weightGrads: false));
    }

    #endregion

    #region Whole model

    [Test]
    public void TinyPreActResNet18()
    {
        const int n = 2, width = 2, classes = 3, h = 16, w = 12, probesPerTensor = 10;
        var store = new ParameterStore();
        var model = new PreActResNet18(store, width, classes);
        var net = Materialize(store, 61);
        var rng = new Random(62);
        var xf = Data.Uniform(n * 3 * h * w, rng, -2, 2);
        var x = ActOf(xf, n, 3, h, w);
        // mixup-style soft targets: λ on one class, 1 − λ on another
        var tf = new float[n * classes];
        for (int i = 0; i < n; i++)
        {
            float lam = (float)rng.NextDouble();
            tf[i * classes + rng.Next(classes)] += lam;
            tf[i * classes + rng.Next(classes)] += 1 - lam;
        }
        var td = ToDouble(tf);
        var xt = T(xf, n, 3, h, w);
        var targets = T(tf, n, classes);

        var logits = model.Forward(xt, Mode.Train);
        var loss = new SoftTargetLoss();
        float l = loss.Forward(logits, targets);
        var logitsRef = net.Record(() => net.PreActResNet18(x, width));
        ValidateComposed("model logits", logits.ToArray(), logitsRef);
        double lossRef = RefNet.MeanSoftCrossEntropy(logitsRef, td, n, classes);
        Assert.That(l, Is.EqualTo(lossRef).Within(1e-4 * Math.Abs(lossRef) + 1e-6), "mean soft-target loss");

        double Loss() => net.Frozen(() => RefNet.MeanSoftCrossEntropy(net.PreActResNet18(x, width), td, n, classes));
        store.ZeroGrad();
        var dx = model.Backward(loss.Backward(), weightGrads: true, inputGrad: true)!.ToArray();
        ValidateComposed("model dx", dx, Gradient(_ => Loss(), x.Data));

        int checkedTensors = 0;
        foreach (var p in store.Parameters)
        {
            var grad = p.Grad.ToArray();
            var all = net.P[p.Name];
            // ~10 random entries per tensor; their tolerance scale is the tensor's largest |gradient|
            // over the probed entries and the engine's (an FD of every entry would cost ~10⁴ forwards)
            var idx = Range(all.Length).OrderBy(_ => rng.Next()).Take(probesPerTensor).ToArray();
            var fd = Gradient(_ => Loss(), all, idx);
            double scale = Math.Max(fd.Max(Math.Abs), grad.Max(v => Math.Abs((double)v)));
            var got = idx.Select(i => grad[i]).ToArray();
            ValidateComposed($"model d[{p.Name}] (entries {string.Join(",", idx)})", got, fd, scale);
            checkedTensors++;
        }
        Assert.That(checkedTensors, Is.EqualTo(store.Parameters.Count()));

        // the saliency pass: input gradient only, arena untouched, same dx
        AssertWeightGradsOffMatches(store, dx, () => model.Backward(loss.Backward(), weightGrads: false, inputGrad: true));
        Assert.That(model.Backward(loss.Backward(), weightGrads: false, inputGrad: false), Is.Null);
    }

    #endregion
}
