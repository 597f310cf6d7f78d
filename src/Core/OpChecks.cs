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

    // ---- mix-up. The CUDA kernels (src/Kernels/saliency.cu, mask.cu, mix.cu) assume more than the
    // CPU reference needs: every dimension at least 1, their static shared-memory limits, square
    // (B,p,p) masks, partner indices inside the batch, outputs that do not share memory with the
    // inputs (a block writes image i while other blocks read it as a partner). The checks are here,
    // so that the CPU backend refuses exactly what the GPU refuses, with the same words.

    /// <summary>Returns p, the cells per side.</summary>
    public static int SaliencyMaps(Tensor maps, Tensor inputGrad)
    {
        const string op = "saliency maps";
        Check.Rank(op, "input gradient", inputGrad.Shape, 4);
        Check.Rank(op, "maps", maps.Shape, 3);
        var g = inputGrad.Shape;
        int p = maps.Shape[1];
        Check.Same(op, "maps", maps.Shape, new Shape(g.N, p, p));
        NonEmpty(op, "input gradient", g);
        MixupReference.CheckCells(g.H, g.W, p);
        if ((long)p * p > Cuda.KernelCatalog.SaliencyMaxCells)
            throw new ArgumentException($"{op}: {p}×{p} cells exceed the {Cuda.KernelCatalog.SaliencyMaxCells} a map may have");
        if ((long)(g.H / p) * g.W > Cuda.KernelCatalog.SaliencyMaxBand)
            throw new ArgumentException($"{op}: one row of cells of a {g.H}×{g.W} image split {p}×{p} holds {(long)(g.H / p) * g.W} pixels, more than the {Cuda.KernelCatalog.SaliencyMaxBand} the kernel stages at once");
        Disjoint(op, "maps", maps, "input gradient", inputGrad);
        return p;
    }

    public static void PercentileMasks(Tensor masks, Tensor thresholds, Tensor maps, ReadOnlySpan<float> percentiles)
    {
        const string op = "percentile masks";
        Check.Rank(op, "maps", maps.Shape, 3);
        Check.Same(op, "masks", masks.Shape, maps.Shape);
        Check.Same(op, "thresholds", thresholds.Shape, new Shape(maps.Shape[0]));
        if (percentiles.Length != maps.Shape[0])
            throw new ShapeMismatchException($"{op}: {percentiles.Length} percentiles for maps {maps.Shape}");
        NonEmpty(op, "maps", maps.Shape);
        long cells = (long)maps.Shape[1] * maps.Shape[2];
        if (cells > Cuda.KernelCatalog.MaskMaxCells)
            throw new ArgumentException($"{op}: maps {maps.Shape} have {cells} cells per image, more than the {Cuda.KernelCatalog.MaskMaxCells} the kernel sorts");
        foreach (float q in percentiles)
            if (!(q >= 0f && q <= 100f))
                throw new ArgumentOutOfRangeException(nameof(percentiles), q, $"{op}: a percentile is outside [0, 100]");
        Disjoint(op, "masks", masks, "maps", maps);
        Disjoint(op, "thresholds", thresholds, "maps", maps);
        Disjoint(op, "thresholds", thresholds, "masks", masks);
    }

    public static void MaskMix(Tensor mixed, Tensor mixedTargets, Tensor fractions, Tensor x, Tensor targets, Tensor masks,
        ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1)
    {
        const string op = "mask mix";
        Mix(op, mixed, mixedTargets, x, targets, perm, lambda1);
        var xs = x.Shape;
        Check.Rank(op, "masks", masks.Shape, 3);
        Check.Dim(op, "masks", masks.Shape, 0, "images", xs, 0);
        int p = masks.Shape[1];
        Check.Same(op, "masks", masks.Shape, new Shape(xs.N, p, p)); // square: one p for rows and columns
        NonEmpty(op, "masks", masks.Shape);
        // nearest-neighbour upsampling computes y·p and x·p in int
        if ((long)xs.H * p > int.MaxValue || (long)xs.W * p > int.MaxValue)
            throw new ArgumentException($"{op}: {p}×{p} masks on {xs.H}×{xs.W} images overflow the upsampling's int index");
        Check.Same(op, "fractions", fractions.Shape, new Shape(xs.N, 3));
        foreach (var (name, input) in new[] { ("images", x), ("targets", targets), ("masks", masks) })
        {
            Disjoint(op, "mixed images", mixed, name, input);
            Disjoint(op, "mixed targets", mixedTargets, name, input);
            Disjoint(op, "fractions", fractions, name, input);
        }
        Disjoint(op, "fractions", fractions, "mixed images", mixed);
        Disjoint(op, "fractions", fractions, "mixed targets", mixedTargets);
    }

    /// <summary>Input mixup and CutMix: <see cref="Mix(string, Tensor, Tensor, Tensor, Tensor, ReadOnlySpan{int}, ReadOnlySpan{float})"/> with one λ.</summary>
    public static void InputMixup(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm) =>
        Mix("input mixup", mixed, mixedTargets, x, targets, perm, [0f]);

    public static void CutMix(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, CutBox box)
    {
        Mix("cutmix", mixed, mixedTargets, x, targets, perm, [0f]);
        box.Validate(x.Shape.H, x.Shape.W);
    }

    /// <summary>
    /// What every mix shares: images (B,C,H,W) and targets (B,K), none of them empty; outputs shaped
    /// like their inputs and apart from them in memory; a partner index per image inside the batch;
    /// one λ1 or one per image.
    /// </summary>
    public static void Mix(string op, Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1)
    {
        Check.Rank(op, "images", x.Shape, 4);
        Check.Same(op, "mixed images", mixed.Shape, x.Shape);
        Check.Rank(op, "targets", targets.Shape, 2);
        Check.Dim(op, "targets", targets.Shape, 0, "images", x.Shape, 0);
        Check.Same(op, "mixed targets", mixedTargets.Shape, targets.Shape);
        NonEmpty(op, "images", x.Shape);
        NonEmpty(op, "targets", targets.Shape);
        MixupReference.CheckBatch(perm, lambda1, x.Shape.N);
        Disjoint(op, "mixed images", mixed, "images", x);
        Disjoint(op, "mixed images", mixed, "targets", targets);
        Disjoint(op, "mixed targets", mixedTargets, "images", x);
        Disjoint(op, "mixed targets", mixedTargets, "targets", targets);
        Disjoint(op, "mixed targets", mixedTargets, "mixed images", mixed);
    }

    /// <summary>Every dimension at least 1 (the kernels launch one block per image and divide by H·W).</summary>
    public static void NonEmpty(string op, string what, Shape s)
    {
        foreach (int d in s.Dims)
            if (d < 1) throw new ShapeMismatchException($"{op}: {what} {s} is empty (every dimension must be at least 1)");
    }

    /// <summary>Requires <paramref name="output"/> not to share any element with <paramref name="input"/>.</summary>
    public static void Disjoint(string op, string outputName, Tensor output, string inputName, Tensor input)
    {
        if (Overlap(output, input))
            throw new ArgumentException($"{op}: {outputName} {output.Shape} shares memory with {inputName} {input.Shape}; the op cannot run in place");
    }

    /// <summary>Whether two tensors view overlapping elements of one buffer.</summary>
    public static bool Overlap(Tensor a, Tensor b) =>
        ReferenceEquals(a.Buffer, b.Buffer) && a.Length > 0 && b.Length > 0
        && a.Offset < (long)b.Offset + b.Length && b.Offset < (long)a.Offset + a.Length;
}
