using RlMixup.Core.Mixup;

namespace RlMixup.Core;

/// <summary>
/// The shape contract of every <see cref="IBackend"/> op, checked on entry by every backend, so that
/// a mismatch fails the same way (a <see cref="ShapeMismatchException"/> naming the op and the
/// tensor) on the CPU and on a device. Methods return the sizes the op then needs.
/// </summary>
public static class OpChecks
{
    public static void Copy(Tensor dst, Tensor src) => Check.Same("copy", "destination", dst.Shape, src.Shape);

    public static void Add(Tensor y, Tensor a, Tensor b)
    {
        Check.Same("add", "b", b.Shape, a.Shape);
        Check.Same("add", "output", y.Shape, a.Shape);
    }

    public static void Axpy(Tensor y, Tensor x) => Check.Same("axpy", "x", x.Shape, y.Shape);

    /// <summary>An elementwise forward op: output and input of one shape.</summary>
    public static void Unary(string op, Tensor y, Tensor x) => Check.Same(op, "output", y.Shape, x.Shape);

    /// <summary>An elementwise backward op from the forward output y: dy and dx shaped like y.</summary>
    public static void UnaryBackward(string op, Tensor dx, Tensor y, Tensor dy)
    {
        Check.Same(op, "dy", dy.Shape, y.Shape);
        Check.Same(op, "dx", dx.Shape, y.Shape);
    }

    /// <summary>C = op(A)·op(B): returns (m, n, k).</summary>
    public static (int M, int N, int K) Gemm(Tensor c, Tensor a, bool transA, Tensor b, bool transB)
    {
        Check.Rank("gemm", "A", a.Shape, 2);
        Check.Rank("gemm", "B", b.Shape, 2);
        Check.Rank("gemm", "C", c.Shape, 2);
        int m = transA ? a.Shape[1] : a.Shape[0], k = transA ? a.Shape[0] : a.Shape[1];
        int kb = transB ? b.Shape[1] : b.Shape[0], n = transB ? b.Shape[0] : b.Shape[1];
        if (k != kb)
            throw new ShapeMismatchException($"gemm: inner dimensions of A {a.Shape}{(transA ? "ᵀ" : "")} and B {b.Shape}{(transB ? "ᵀ" : "")} differ ({k} vs {kb})");
        Check.Same("gemm", "C", c.Shape, new Shape(m, n));
        return (m, n, k);
    }

    /// <summary>y (N,out) = x (N,in)·wᵀ + b: returns (N, out).</summary>
    public static (int N, int Out) Linear(Tensor y, Tensor x, Tensor w, Tensor? b)
    {
        Check.Rank("linear", "input", x.Shape, 2);
        Check.Rank("linear", "weight", w.Shape, 2);
        Check.Dim("linear", "input", x.Shape, 1, "weight", w.Shape, 1);
        int n = x.Shape[0], fout = w.Shape[0];
        Check.Same("linear", "output", y.Shape, new Shape(n, fout));
        if (b != null) Check.Same("linear", "bias", b.Shape, new Shape(fout));
        return (n, fout);
    }

    /// <summary>The gradients of <see cref="Linear"/>: returns (N, out).</summary>
    public static (int N, int Out) LinearBackward(Tensor? dx, Tensor? dw, Tensor? db, Tensor dy, Tensor x, Tensor w)
    {
        const string op = "linear backward";
        Check.Rank(op, "input", x.Shape, 2);
        Check.Dim(op, "input", x.Shape, 1, "weight", w.Shape, 1);
        int n = x.Shape[0], fout = w.Shape[0];
        Check.Same(op, "dy", dy.Shape, new Shape(n, fout));
        if (dx != null) Check.Same(op, "dx", dx.Shape, x.Shape);
        if (dw != null) Check.Same(op, "dw", dw.Shape, w.Shape);
        if (db != null) Check.Same(op, "db", db.Shape, new Shape(fout));
        return (n, fout);
    }

    public static void ChannelBias(Tensor y, Tensor bias)
    {
        Check.Rank("channel bias", "output", y.Shape, 4);
        Check.Same("channel bias", "bias", bias.Shape, new Shape(y.Shape.C));
    }

    public static void ChannelBiasBackward(Tensor dbias, Tensor dy)
    {
        Check.Rank("channel bias backward", "dy", dy.Shape, 4);
        Check.Same("channel bias backward", "dbias", dbias.Shape, new Shape(dy.Shape.C));
    }

    public static void GlobalAvgPool(Tensor y, Tensor x)
    {
        Check.Rank("global average pool", "input", x.Shape, 4);
        Check.Same("global average pool", "output", y.Shape, new Shape(x.Shape.N, x.Shape.C));
    }

    public static void GlobalAvgPoolBackward(Tensor dx, Tensor dy)
    {
        Check.Rank("global average pool backward", "dx", dx.Shape, 4);
        Check.Same("global average pool backward", "dy", dy.Shape, new Shape(dx.Shape.N, dx.Shape.C));
    }

    /// <summary>The convolution's output shape, which <paramref name="y"/> (forward) or dy (backward) must have.</summary>
    public static Shape Conv2d(string op, string what, Tensor yOrDy, Shape x, Shape w, Conv2dSpec spec)
    {
        var yShape = spec.OutputShape(x, w);
        Check.Same(op, what, yOrDy.Shape, yShape);
        return yShape;
    }

    private static void BatchNormChannels(string op, Shape x, Tensor gamma, params Tensor[] perChannel)
    {
        Check.Rank(op, "input", x, 4);
        var c = new Shape(x.C);
        // name the input as well as gamma, so that the message says where the channel count comes from
        Check.Rank(op, "gamma", gamma.Shape, 1);
        Check.Dim(op, "gamma", gamma.Shape, 0, "input", x, 1);
        foreach (var t in perChannel) Check.Same(op, "per-channel tensor", t.Shape, c);
    }

    public static void BatchNormTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, bool updateRunning)
    {
        const string op = "batch norm";
        BatchNormChannels(op, x.Shape, gamma, beta, runningMean, runningVar, saveMean, saveInvStd);
        Check.Same(op, "output", y.Shape, x.Shape);
        if ((long)x.Shape.N * x.Shape.H * x.Shape.W < 2 && updateRunning)
            throw new ArgumentException($"{op}: training mode needs more than one value per channel, got input {x.Shape}");
    }

    public static void BatchNormInference(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar)
    {
        const string op = "batch norm (eval)";
        BatchNormChannels(op, x.Shape, gamma, beta, runningMean, runningVar);
        Check.Same(op, "output", y.Shape, x.Shape);
    }

    public static void BatchNormBackward(Tensor dx, Tensor? dgamma, Tensor? dbeta, Tensor dy, Tensor x, Tensor gamma,
        Tensor saveMean, Tensor saveInvStd)
    {
        const string op = "batch norm backward";
        BatchNormChannels(op, x.Shape, gamma, saveMean, saveInvStd);
        Check.Same(op, "dy", dy.Shape, x.Shape);
        Check.Same(op, "dx", dx.Shape, x.Shape);
        if (dgamma != null) Check.Same(op, "dgamma", dgamma.Shape, gamma.Shape);
        if (dbeta != null) Check.Same(op, "dbeta", dbeta.Shape, gamma.Shape);
    }

    private static void Rows(string op, string what, Shape s, Shape expected)
    {
        Check.Rank(op, what, s, 2);
        Check.Same(op, what, s, expected);
    }

    /// <summary>Returns (rows, K).</summary>
    public static (int Rows, int K) LogSoftmax(Tensor logp, Tensor z)
    {
        Check.Rank("log-softmax", "input", z.Shape, 2);
        Rows("log-softmax", "output", logp.Shape, z.Shape);
        return (z.Shape[0], z.Shape[1]);
    }

    public static (int Rows, int K) LogSoftmaxBackward(Tensor dz, Tensor logp, Tensor dlogp)
    {
        Check.Rank("log-softmax backward", "logp", logp.Shape, 2);
        Rows("log-softmax backward", "dlogp", dlogp.Shape, logp.Shape);
        Rows("log-softmax backward", "dz", dz.Shape, logp.Shape);
        return (logp.Shape[0], logp.Shape[1]);
    }

    public static (int Rows, int K) SoftCrossEntropy(Tensor losses, Tensor logp, Tensor targets)
    {
        Check.Rank("soft cross-entropy", "logp", logp.Shape, 2);
        Rows("soft cross-entropy", "targets", targets.Shape, logp.Shape);
        Check.Same("soft cross-entropy", "losses", losses.Shape, new Shape(logp.Shape[0]));
        return (logp.Shape[0], logp.Shape[1]);
    }

    public static (int Rows, int K) SoftCrossEntropyBackward(Tensor dz, Tensor logp, Tensor targets)
    {
        Check.Rank("soft cross-entropy backward", "logp", logp.Shape, 2);
        Rows("soft cross-entropy backward", "targets", targets.Shape, logp.Shape);
        Rows("soft cross-entropy backward", "dz", dz.Shape, logp.Shape);
        return (logp.Shape[0], logp.Shape[1]);
    }

    public static void Sgd(Tensor param, Tensor grad, Tensor momentumBuffer)
    {
        Check.Same("sgd", "grad", grad.Shape, param.Shape);
        Check.Same("sgd", "momentum buffer", momentumBuffer.Shape, param.Shape);
    }

    public static void Adam(Tensor param, Tensor grad, Tensor m, Tensor v, int step)
    {
        Check.Same("adam", "grad", grad.Shape, param.Shape);
        Check.Same("adam", "first moment", m.Shape, param.Shape);
        Check.Same("adam", "second moment", v.Shape, param.Shape);
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), "adam: step is 1-based");
    }

    /// <summary>Returns p, the cells per side.</summary>
    public static int SaliencyMaps(Tensor maps, Tensor inputGrad)
    {
        const string op = "saliency maps";
        Check.Rank(op, "input gradient", inputGrad.Shape, 4);
        Check.Rank(op, "maps", maps.Shape, 3);
        var g = inputGrad.Shape;
        int p = maps.Shape[1];
        Check.Same(op, "maps", maps.Shape, new Shape(g.N, p, p));
        MixupReference.CheckCells(g.H, g.W, p);
        return p;
    }

    public static void PercentileMasks(Tensor masks, Tensor thresholds, Tensor maps, int percentiles)
    {
        const string op = "percentile masks";
        Check.Rank(op, "maps", maps.Shape, 3);
        Check.Same(op, "masks", masks.Shape, maps.Shape);
        Check.Same(op, "thresholds", thresholds.Shape, new Shape(maps.Shape[0]));
        if (percentiles != maps.Shape[0])
            throw new ShapeMismatchException($"{op}: {percentiles} percentiles for maps {maps.Shape}");
    }

    public static void MaskMix(Tensor mixed, Tensor mixedTargets, Tensor fractions, Tensor x, Tensor targets, Tensor masks,
        ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1)
    {
        const string op = "mask mix";
        Mix(op, mixed, mixedTargets, x, targets);
        var xs = x.Shape;
        Check.Rank(op, "masks", masks.Shape, 3);
        Check.Dim(op, "masks", masks.Shape, 0, "images", xs, 0);
        Check.Same(op, "fractions", fractions.Shape, new Shape(xs.N, 3));
        MixupReference.CheckBatch(perm, lambda1, xs.N);
    }

    /// <summary>The shapes every mix shares: images (B,C,H,W), targets (B,K), outputs shaped like their inputs.</summary>
    public static void Mix(string op, Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets)
    {
        Check.Rank(op, "images", x.Shape, 4);
        Check.Same(op, "mixed images", mixed.Shape, x.Shape);
        Check.Rank(op, "targets", targets.Shape, 2);
        Check.Dim(op, "targets", targets.Shape, 0, "images", x.Shape, 0);
        Check.Same(op, "mixed targets", mixedTargets.Shape, targets.Shape);
    }
}
