using RlMixup.Core;
using RlMixup.Core.Mixup;
using RlMixup.Engine.Data;
using RlMixup.Engine.Training;
using RlMixup.Models;
using RlMixup.Ppo;

namespace RlMixup.Engine.SelfTest;

/// <summary>
/// The checks of <see cref="BackendSelfTest"/>: every <see cref="IBackend"/> op on odd, unaligned
/// shapes (so edge tiles and tails are exercised), then a PreActResNet18 training step and the whole
/// RL-Mixup batch transform. Output buffers are pre-filled with random values, so an op that should
/// overwrite but accumulates (or the reverse) shows up. Tolerances: see <see cref="Tolerance"/>; the
/// TF32 ones allow TF32's 10-bit mantissa in GEMMs and convolutions (about 1e-3 per product).
/// </summary>
public static class SelfTestCases
{
    /// <summary>Elementwise ops, optimisers and mixes: the same float arithmetic up to contraction (FMA) and libm's last bits.</summary>
    public static readonly Tolerance Elementwise = new(1e-6, 1e-5);
    /// <summary>Reductions (batch norm, softmax, pooling, saliency): another summation order.</summary>
    public static readonly Tolerance Reduction = new(1e-5, 1e-4);
    /// <summary>GEMMs and convolutions in full float32: another summation order over up to a few thousand terms.</summary>
    public static readonly Tolerance DenseFp32 = new(2e-5, 1e-4);
    /// <summary>GEMMs and convolutions with TF32 inputs.</summary>
    public static readonly Tolerance DenseTf32 = new(5e-3, 5e-3);
    /// <summary>
    /// A whole network step, full float32, normwise over each group (see <see cref="Tolerance"/>).
    /// Another summation order alone gives about 1e-6. But a ReLU input within float noise of zero
    /// lands on the other side of it in one backend and not the other (in 2 of 10 seeds at width 8,
    /// batch 8, measured on the software device against the CPU backend), and that one decision moves
    /// the gradients behind it by about 5e-3 normwise — the same effect the step-level replay against
    /// PyTorch measures. A defect (a wrong or stale buffer, a missing accumulation) gives errors of order 1.
    /// </summary>
    public static readonly Tolerance NetworkFp32 = new(0, 2e-2, Normwise: true);
    /// <summary>
    /// A whole network step with TF32, normwise over each group (see <see cref="Tolerance"/>). TF32
    /// rounding of every GEMM and convolution input, through 18 layers at width 8 and batch 8, moves
    /// single gradient elements by tens of percent: the software device, which rounds both inputs of
    /// every product to TF32 as tensor cores do, measured up to 6× an elementwise 3e-2 bound, 8% on
    /// the input gradient and up to 22% on a single convolution's weight gradient (a convolution
    /// feeding batch norm, whose gradient cancels to little); and the saliency maps' 3% move mask
    /// cells across thresholds, 10–16% of the mixed images. A defect gives errors of order 100%.
    /// The float32 run holds every row tightly.
    /// </summary>
    public static readonly Tolerance NetworkTf32 = new(0, 2.5e-1, Normwise: true);

    public static IReadOnlyList<SelfTestCase> All() =>
    [
        // ---- memory
        new("Upload/Download", "(1000003)", Tolerance.Exact, c =>
        {
            var host = c.Random(1_000_003);
            var t = c.Zeros(new Shape(host.Length));
            c.B.Upload(t, host);
            c.Record("roundtrip", t);
        }),
        new("Upload/Download on views", "(1000) at offset 13 of (1100), (500) from offset 599", Tolerance.Exact, c =>
        {
            var whole = c.R(new Shape(1100));
            c.B.Upload(whole.View(13, new Shape(1000)), c.Random(1000));
            c.Record("whole", whole); // the 13 floats before and the 87 after are untouched
            var part = new float[500];
            c.B.Download(whole.View(599, new Shape(500)), part);
            c.Record("downloaded", part);
        }),
        new("Allocate", "(3,5,7,11), the block of a disposed tensor reused", Tolerance.Exact, c =>
        {
            // a caching allocator hands the same block back: Allocate must zero it again
            var s = new Shape(3, 5, 7, 11);
            using (var first = c.B.Allocate(s)) c.B.Upload(first, c.Random(s.Size));
            c.Record("zeros", c.Zeros(s));
        }),
        new("Fill", "(4099)", Tolerance.Exact, c => { var t = c.R(new Shape(4099)); c.B.Fill(t, -0.3125f); c.Record("t", t); }),
        new("Copy", "(3,5,7,11)", Tolerance.Exact, c => { var d = c.R(new Shape(3, 5, 7, 11)); c.B.Copy(d, c.R(d.Shape)); c.Record("dst", d); }),
        new("Copy on views", "(777) from offset 3 to offset 7", Tolerance.Exact, c =>
        {
            var (dst, src) = (c.R(new Shape(800)), c.R(new Shape(800)));
            c.B.Copy(dst.View(7, new Shape(777)), src.View(3, new Shape(777)));
            c.Record("dst", dst);
        }),

        // ---- elementwise
        new("Add", "(4097)", Elementwise, c => { var y = c.R(new Shape(4097)); c.B.Add(y, c.R(y.Shape), c.R(y.Shape)); c.Record("y", y); }),
        new("Axpy", "(4097)", Elementwise, c => { var y = c.R(new Shape(4097)); c.B.Axpy(y, -0.7f, c.R(y.Shape)); c.Record("y", y); }),
        new("Axpy on views", "(1001) at offsets 3, 17", Elementwise, c =>
        {
            var ys = c.R(new Shape(1100));
            var xs = c.R(new Shape(1100));
            c.B.Axpy(ys.View(3, new Shape(1001)), 1.5f, xs.View(17, new Shape(1001)));
            c.Record("y", ys);
        }),
        new("Scale", "(4097)", Elementwise, c => { var y = c.R(new Shape(4097)); c.B.Scale(y, 1.25f); c.Record("y", y); }),
        new("Scale", $"({BeyondGrid}): more blocks than the grid cap, the loop covers the rest", Elementwise, c =>
        {
            var y = c.R(new Shape(BeyondGrid));
            c.B.Scale(y, -0.8125f);
            c.Record("y", y);
        }),
        new("ReluForward", "(5,7,9,11)", Elementwise, c => { var y = c.R(new Shape(5, 7, 9, 11)); c.B.ReluForward(y, c.R(y.Shape)); c.Record("y", y); }),
        new("ReluBackward", "(5,7,9,11)", Elementwise, c =>
        {
            var s = new Shape(5, 7, 9, 11);
            var y = c.Zeros(s);
            c.B.ReluForward(y, c.R(s));
            var dx = c.R(s);
            c.B.ReluBackward(dx, y, c.R(s));
            c.Record("dx", dx);
        }),
        new("TanhForward", "(4097)", Elementwise, c => { var y = c.R(new Shape(4097)); c.B.TanhForward(y, c.R(y.Shape, 3f)); c.Record("y", y); }),
        new("TanhBackward", "(4097)", Elementwise, c =>
        {
            var s = new Shape(4097);
            var y = c.T(s, [.. c.Random(s.Size).Select(MathF.Tanh)]);
            var dx = c.R(s);
            c.B.TanhBackward(dx, y, c.R(s));
            c.Record("dx", dx);
        }),

        // ---- dense
        Gemm(false, false, 1f, 0f), Gemm(true, false, 1f, 0f), Gemm(false, true, 1f, 0f), Gemm(true, true, 1f, 0f),
        Gemm(false, false, 0.7f, 0.3f), Gemm(true, true, -1.5f, 1f),
        Dense("LinearForward", "x (13,300), w (37,300), bias", c =>
        {
            var y = c.R(new Shape(13, 37));
            c.B.LinearForward(y, c.R(new Shape(13, 300)), c.R(new Shape(37, 300)), c.R(new Shape(37)));
            c.Record("y", y);
        }),
        Dense("LinearForward", "x (13,300), w (37,300), no bias", c =>
        {
            var y = c.R(new Shape(13, 37));
            c.B.LinearForward(y, c.R(new Shape(13, 300)), c.R(new Shape(37, 300)), null);
            c.Record("y", y);
        }),
        Dense("LinearBackward", "x (13,300), w (37,300)", c =>
        {
            var (dx, dw, db) = (c.R(new Shape(13, 300)), c.R(new Shape(37, 300)), c.R(new Shape(37)));
            c.B.LinearBackward(dx, dw, db, c.R(new Shape(13, 37)), c.R(new Shape(13, 300)), c.R(new Shape(37, 300)));
            c.Record("dx", dx); c.Record("dw", dw); c.Record("db", db);
        }),
        Dense("LinearBackward", "dx only", c =>
        {
            var dx = c.R(new Shape(13, 300));
            c.B.LinearBackward(dx, null, null, c.R(new Shape(13, 37)), c.R(new Shape(13, 300)), c.R(new Shape(37, 300)));
            c.Record("dx", dx);
        }),
        Dense("LinearBackward", "no dx, no db", c =>
        {
            var dw = c.R(new Shape(37, 300));
            c.B.LinearBackward(null, dw, null, c.R(new Shape(13, 37)), c.R(new Shape(13, 300)), c.R(new Shape(37, 300)));
            c.Record("dw", dw);
        }),

        // ---- convolution: the network's geometries (3×3 stride 1 and 2, 1×1 stride 2) plus odd ones
        .. Conv(3, 5, 9, 11, 7, 3, new Conv2dSpec(1, 1)),
        .. Conv(2, 6, 10, 10, 5, 3, new Conv2dSpec(2, 1)),
        .. Conv(2, 6, 10, 10, 9, 1, new Conv2dSpec(2, 0)),
        .. Conv(4, 32, 16, 16, 32, 3, new Conv2dSpec(1, 1)),
        // Gradient-sized operands (1e-6): TF32 keeps float32's exponent range; fp16 (cuDNN's
        // ALLOW_CONVERSION math) would hold them as subnormals with a few bits, or flush them.
        .. Conv(4, 32, 16, 16, 32, 3, new Conv2dSpec(1, 1), small: 1e-6f),
        .. Conv(2, 3, 7, 5, 4, 5, new Conv2dSpec(1, 2, 2, 0)),
        new("AddChannelBias", "(3,7,5,9)", Elementwise, c => { var y = c.R(new Shape(3, 7, 5, 9)); c.B.AddChannelBias(y, c.R(new Shape(7))); c.Record("y", y); }),
        new("ChannelBiasBackward", "(3,7,5,9)", Reduction, c => { var db = c.R(new Shape(7)); c.B.ChannelBiasBackward(db, c.R(new Shape(3, 7, 5, 9))); c.Record("db", db); }),

        // ---- batch norm
        new("BatchNormForwardTraining", "(4,6,5,7)", Reduction, c =>
        {
            var s = new Shape(4, 6, 5, 7);
            var (y, rm, rv, sm, si) = (c.R(s), c.R(new Shape(6)), Positive(c, 6), c.R(new Shape(6)), c.R(new Shape(6)));
            c.B.BatchNormForwardTraining(y, c.R(s, 2f), c.R(new Shape(6)), c.R(new Shape(6)), rm, rv, sm, si, 0.1f, 1e-5f, updateRunning: true);
            c.Record("y", y); c.Record("running mean", rm); c.Record("running var", rv); c.Record("save mean", sm); c.Record("save inv std", si);
        }),
        new("BatchNormForwardTraining", "(4,6,5,7), running statistics not updated", Reduction, c =>
        {
            var s = new Shape(4, 6, 5, 7);
            var (y, sm, si) = (c.R(s), c.R(new Shape(6)), c.R(new Shape(6)));
            c.B.BatchNormForwardTraining(y, c.R(s, 2f), c.R(new Shape(6)), c.R(new Shape(6)), c.R(new Shape(6)), Positive(c, 6), sm, si, 0.1f, 1e-5f, updateRunning: false);
            c.Record("y", y); c.Record("save mean", sm); c.Record("save inv std", si);
        }),
        new("BatchNormForwardTraining", "(4,6,5,7), updateRunning off: running statistics untouched", Tolerance.Exact, c =>
        {
            var s = new Shape(4, 6, 5, 7);
            var (rm, rv) = (c.R(new Shape(6)), Positive(c, 6));
            c.B.BatchNormForwardTraining(c.R(s), c.R(s, 2f), c.R(new Shape(6)), c.R(new Shape(6)), rm, rv, c.R(new Shape(6)), c.R(new Shape(6)), 0.1f, 1e-5f, updateRunning: false);
            c.Record("running mean", rm); c.Record("running var", rv);
        }),
        new("BatchNormForwardInference", "(4,6,5,7)", Elementwise, c =>
        {
            var s = new Shape(4, 6, 5, 7);
            var y = c.R(s);
            c.B.BatchNormForwardInference(y, c.R(s), c.R(new Shape(6)), c.R(new Shape(6)), c.R(new Shape(6)), Positive(c, 6), 1e-5f);
            c.Record("y", y);
        }),
        new("BatchNormForwardInference", "(4,6,5,7): running statistics and every input untouched", Tolerance.Exact, c =>
        {
            var s = new Shape(4, 6, 5, 7);
            var (x, gamma, beta, rm, rv) = (c.R(s), c.R(new Shape(6)), c.R(new Shape(6)), c.R(new Shape(6)), Positive(c, 6));
            c.B.BatchNormForwardInference(c.R(s), x, gamma, beta, rm, rv, 1e-5f);
            c.Record("running mean", rm); c.Record("running var", rv); c.Record("x", x); c.Record("gamma", gamma); c.Record("beta", beta);
        }),
        new("BatchNormBackward", "(4,6,5,7)", Reduction, c => BatchNormBackward(c, new Shape(4, 6, 5, 7), paramGrads: true)),
        new("BatchNormBackward", "(4,6,5,7), dx only (no dgamma, dbeta)", Reduction, c => BatchNormBackward(c, new Shape(4, 6, 5, 7), paramGrads: false)),
        new("BatchNormBackward", "(16,10,8,8)", Reduction, c => BatchNormBackward(c, new Shape(16, 10, 8, 8), paramGrads: true)),

        // ---- pooling and loss
        new("GlobalAvgPoolForward", "(5,7,4,4)", Reduction, c => { var y = c.R(new Shape(5, 7)); c.B.GlobalAvgPoolForward(y, c.R(new Shape(5, 7, 4, 4))); c.Record("y", y); }),
        new("GlobalAvgPoolBackward", "(5,7,4,4)", Elementwise, c => { var dx = c.R(new Shape(5, 7, 4, 4)); c.B.GlobalAvgPoolBackward(dx, c.R(new Shape(5, 7))); c.Record("dx", dx); }),
        new("LogSoftmaxForward", "(13,37)", Reduction, c => { var lp = c.R(new Shape(13, 37)); c.B.LogSoftmaxForward(lp, c.R(lp.Shape, 8f)); c.Record("logp", lp); }),
        new("LogSoftmaxBackward", "(13,37)", Reduction, c =>
        {
            var lp = LogProbs(c, 13, 37);
            var dz = c.R(lp.Shape);
            c.B.LogSoftmaxBackward(dz, lp, c.R(lp.Shape));
            c.Record("dz", dz);
        }),
        new("SoftCrossEntropyForward", "(13,37)", Reduction, c =>
        {
            var lp = LogProbs(c, 13, 37);
            var losses = c.R(new Shape(13));
            c.B.SoftCrossEntropyForward(losses, lp, c.T(lp.Shape, c.SoftTargets(13, 37)));
            c.Record("losses", losses);
        }),
        new("SoftCrossEntropyBackward", "(13,37)", Reduction, c =>
        {
            var lp = LogProbs(c, 13, 37);
            var dz = c.R(lp.Shape);
            c.B.SoftCrossEntropyBackward(dz, lp, c.T(lp.Shape, c.SoftTargets(13, 37)), 1f / 13);
            c.Record("dz", dz);
        }),

        // ---- optimisers
        new("SgdStep", "(10007), Nesterov", Elementwise, c => Sgd(c, nesterov: true)),
        new("SgdStep", "(10007), plain momentum", Elementwise, c => Sgd(c, nesterov: false)),
        new("AdamStep", "(10007), step 3", Elementwise, c =>
        {
            var (p, m, v) = (c.R(new Shape(10007)), c.R(new Shape(10007), 0.1f), Positive(c, 10007, 0.01f));
            c.B.AdamStep(p, c.R(p.Shape), m, v, 3, 3e-4f, 0.9f, 0.999f, 1e-5f, 1e-4f);
            c.Record("param", p); c.Record("m", m); c.Record("v", v);
        }),

        // ---- mix-up
        new("SaliencyMaps", "grad (5,3,32,32), 16×16 cells", Reduction, c => Saliency(c, 16)),
        new("SaliencyMaps", "grad (5,3,32,32), 8×8 cells", Reduction, c => Saliency(c, 8)),
        new("SaliencyMaps", "grad (5,3,32,32), 32×32 cells (the most a map may have)", Reduction, c => Saliency(c, 32)),
        new("SaliencyMaps", "grad (3,3,128,128), 4×4 cells: a band per row of cells", Reduction, c =>
        {
            var maps = c.R(new Shape(3, 4, 4));
            c.B.SaliencyMaps(maps, c.R(new Shape(3, 3, 128, 128), 1e-3f));
            c.Record("maps", maps);
        }),
        new("PercentileMasks", "maps (10,16,16)", Elementwise, c =>
        {
            var maps = c.T(new Shape(10, 16, 16), [.. c.Random(2560).Select(MathF.Abs)]);
            var (masks, thresholds) = (c.R(maps.Shape), c.R(new Shape(10)));
            c.B.PercentileMasks(masks, thresholds, maps, [.. Enumerable.Range(0, 10).Select(a => 11f * a)]);
            c.Record("masks:masks", masks); c.Record("thresholds:thresholds", thresholds);
        }),
        new("MaskMix", "x (5,3,32,32), λ per batch", Elementwise, c => MaskMix(c, perImage: false)),
        new("MaskMix", "x (5,3,32,32), λ per image", Elementwise, c => MaskMix(c, perImage: true)),
        new("MaskMix", "x (3,2,17,23), 5×5 masks (uneven nearest-neighbour cells)", Elementwise, c =>
        {
            const int n = 3, k = 7;
            var (x, y) = (c.R(new Shape(n, 2, 17, 23)), c.T(new Shape(n, k), c.SoftTargets(n, k)));
            var masks = c.T(new Shape(n, 5, 5), [.. Enumerable.Range(0, n * 25).Select(_ => (float)(c.Rng.NextULong() >> 63))]);
            var (mixed, mt, fr) = (c.R(x.Shape), c.R(y.Shape), c.R(new Shape(n, 3)));
            c.B.MaskMix(mixed, mt, fr, x, y, masks, c.Rng.Permutation(n), [(float)c.Rng.NextDouble()]);
            c.Record("mixed", mixed); c.Record("targets", mt); c.Record("fractions", fr);
        }),
        new("PercentileMasks", "maps (6,8,8), percentiles 0, 100, 37.5, 99.9, 0.1, 50", Elementwise, c =>
        {
            var maps = c.T(new Shape(6, 8, 8), [.. c.Random(384).Select(MathF.Abs)]);
            var (masks, thresholds) = (c.R(maps.Shape), c.R(new Shape(6)));
            c.B.PercentileMasks(masks, thresholds, maps, [0f, 100f, 37.5f, 99.9f, 0.1f, 50f]);
            c.Record("masks:masks", masks); c.Record("thresholds:thresholds", thresholds);
        }),
        new("InputMixup", "x (5,3,32,32)", Elementwise, c =>
        {
            var (x, y) = (c.R(new Shape(5, 3, 32, 32)), c.T(new Shape(5, 10), c.SoftTargets(5, 10)));
            var (mixed, mt) = (c.R(x.Shape), c.R(y.Shape));
            c.B.InputMixup(mixed, mt, x, y, c.Rng.Permutation(5), 0.37f);
            c.Record("mixed", mixed); c.Record("targets", mt);
        }),
        new("CutMix", "x (5,3,32,32)", Elementwise, c =>
        {
            var (x, y) = (c.R(new Shape(5, 3, 32, 32)), c.T(new Shape(5, 10), c.SoftTargets(5, 10)));
            var (mixed, mt) = (c.R(x.Shape), c.R(y.Shape));
            var perm = c.Rng.Permutation(5);
            c.B.CutMix(mixed, mt, x, y, perm, CutBox.Sample(c.Rng, 0.6, 32, 32));
            c.Record("mixed", mixed); c.Record("targets", mt);
        }),

        // ---- the batch gather from the uint8 dataset (CudaBackend.GatherAugment through the device batch source)
        new("GatherAugment", "37 uint8 images, batch 13 (one image twice), crops ±31, flips", Tolerance.Exact, c => Gather(c, augment: true)),
        new("GatherAugment", "37 uint8 images, batch 13, no augmentation", Tolerance.Exact, c => Gather(c, augment: false)),

        // ---- whole computations
        new("PreActResNet18 step", "width 8, x (8,3,32,32), 10 classes", NetworkFp32, NetworkTf32, TrainingStep),
        new("RL-Mixup transform", "width 8, x (8,3,32,32), paper agent", NetworkFp32, NetworkTf32, Transform),
    ];

    /// <summary>65535 blocks of 256 plus 513 elements: a grid-stride kernel runs its loop twice on some threads.</summary>
    private const int BeyondGrid = 65535 * 256 + 513;

    /// <summary>
    /// Batch norm's backward after a training-mode forward on the same backend; each gradient is its
    /// own row (dgamma and dbeta accumulate into random values), or dx alone with both parameter gradients null.
    /// </summary>
    private static void BatchNormBackward(SelfTestContext c, Shape s, bool paramGrads)
    {
        int ch = s.C;
        var (x, gamma) = (c.R(s, 2f), c.R(new Shape(ch)));
        var (sm, si) = (c.Zeros(new Shape(ch)), c.Zeros(new Shape(ch)));
        c.B.BatchNormForwardTraining(c.R(s), x, gamma, c.R(new Shape(ch)), c.R(new Shape(ch)), Positive(c, ch), sm, si, 0.1f, 1e-5f, updateRunning: false);
        var dx = c.R(s);
        var (dg, db) = paramGrads ? (c.R(new Shape(ch)), c.R(new Shape(ch))) : (null, null);
        c.B.BatchNormBackward(dx, dg, db, c.R(s), x, gamma, sm, si, 1e-5f);
        c.Record("dx:dx", dx);
        if (dg != null) c.Record("dgamma:dgamma", dg);
        if (db != null) c.Record("dbeta:dbeta", db);
    }

    /// <summary>
    /// A batch of the backend's batch source (on a GPU the dataset on the device and gather_augment,
    /// on the CPU the host twin) from random non-zero pixels and random labels: some indices repeat,
    /// crops reach ±31 (almost all padding) and about half the images are flipped. Outputs are
    /// pre-filled with random values, so a pixel or a target left unwritten shows.
    /// </summary>
    private static void Gather(SelfTestContext c, bool augment)
    {
        const int n = 37, b = 13, k = 10;
        var pixels = new byte[n * ImageSet.ImageBytes];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(1 + c.Rng.NextInt(255));
        var labels = new byte[n];
        for (int i = 0; i < n; i++) labels[i] = (byte)c.Rng.NextInt(k);
        var set = new ImageSet(pixels, labels, k);
        var order = c.Rng.Permutation(n);
        int[] indices = [.. order.Take(b - 1), order[0]];
        var crops = new CropFlip[augment ? b : 0];
        for (int i = 0; i < crops.Length; i++)
            crops[i] = i switch
            {
                0 => new CropFlip(31, -31, true),
                1 => new CropFlip(-31, 31, false),
                _ => new CropFlip(c.Rng.NextInt(63) - 31, c.Rng.NextInt(63) - 31, c.Rng.NextULong() >> 63 == 1),
            };
        var (x, targets) = (c.R(new Shape(b, 3, ImageSet.Height, ImageSet.Width)), c.R(new Shape(b, k)));
        var source = BatchSources.Create(c.B, set);
        try
        {
            source.Fill(x, targets, indices, crops);
            c.Record("images:x", x);
            c.Record("targets:targets", targets);
        }
        finally { (source as IDisposable)?.Dispose(); }
    }

    private static SelfTestCase Gemm(bool ta, bool tb, float alpha, float beta)
    {
        const int m = 37, n = 29, k = 53;
        string op = $"Gemm {(ta ? "T" : "N")}{(tb ? "T" : "N")}";
        return Dense(op, $"({m}×{k})·({k}×{n}), α {alpha}, β {beta}", c =>
        {
            var a = c.R(ta ? new Shape(k, m) : new Shape(m, k));
            var b = c.R(tb ? new Shape(n, k) : new Shape(k, n));
            var cm = c.R(new Shape(m, n));
            c.B.Gemm(cm, a, ta, b, tb, alpha, beta);
            c.Record("C", cm);
        });
    }

    private static SelfTestCase Dense(string op, string shape, Action<SelfTestContext> run) => new(op, shape, DenseFp32, DenseTf32, run);

    /// <summary>The three convolution calls; <paramref name="small"/> scales the weights (forward) and dy (backward).</summary>
    private static IEnumerable<SelfTestCase> Conv(int n, int ch, int h, int w, int o, int k, Conv2dSpec spec, float small = 1f)
    {
        string shape = $"x ({n},{ch},{h},{w}), w ({o},{ch},{k},{k}), stride {spec.StrideH}×{spec.StrideW}, pad {spec.PadH}×{spec.PadW}" +
            (small == 1f ? "" : $", w and dy ×{small:0E0}");
        var xs = new Shape(n, ch, h, w);
        var ws = new Shape(o, ch, k, k);
        var ys = spec.OutputShape(xs, ws);
        yield return Dense("Conv2dForward", shape, c => { var y = c.R(ys); c.B.Conv2dForward(y, c.R(xs), c.R(ws, small), spec); c.Record("y", y); });
        yield return Dense("Conv2dBackwardData", shape, c => { var dx = c.R(xs); c.B.Conv2dBackwardData(dx, c.R(ys, small), c.R(ws), spec); c.Record("dx", dx); });
        yield return Dense("Conv2dBackwardFilter", shape, c => { var dw = c.R(ws, small); c.B.Conv2dBackwardFilter(dw, c.R(xs), c.R(ys, small), spec); c.Record("dw", dw); });
    }

    /// <summary>Values in [0.05, 1]·scale: variances, Adam's second moment.</summary>
    private static Tensor Positive(SelfTestContext c, int n, float scale = 1f) => c.T(new Shape(n), [.. c.Random(n, scale).Select(MathF.Abs)]);

    /// <summary>log_softmax of random logits, computed on the host so the backward checks see identical inputs.</summary>
    private static Tensor LogProbs(SelfTestContext c, int n, int k)
    {
        var z = c.Random(n * k, 8f);
        var lp = new float[n * k];
        for (int i = 0; i < n; i++)
        {
            var row = z.AsSpan(i * k, k);
            double max = double.NegativeInfinity, sum = 0;
            foreach (float v in row) max = Math.Max(max, v);
            foreach (float v in row) sum += Math.Exp(v - max);
            double lse = max + Math.Log(sum);
            for (int j = 0; j < k; j++) lp[i * k + j] = (float)(row[j] - lse);
        }
        return c.T(new Shape(n, k), lp);
    }

    private static void Sgd(SelfTestContext c, bool nesterov)
    {
        var (p, buf) = (c.R(new Shape(10007)), c.R(new Shape(10007), 0.1f));
        c.B.SgdStep(p, c.R(p.Shape), buf, 0.1f, 0.9f, 5e-4f, nesterov);
        c.Record("param", p); c.Record("momentum buffer", buf);
    }

    private static void Saliency(SelfTestContext c, int p)
    {
        var maps = c.R(new Shape(5, p, p));
        c.B.SaliencyMaps(maps, c.R(new Shape(5, 3, 32, 32), 1e-3f));
        c.Record("maps", maps);
    }

    private static void MaskMix(SelfTestContext c, bool perImage)
    {
        const int n = 5, k = 10;
        var (x, y) = (c.R(new Shape(n, 3, 32, 32)), c.T(new Shape(n, k), c.SoftTargets(n, k)));
        var masks = c.T(new Shape(n, 16, 16), [.. Enumerable.Range(0, n * 256).Select(_ => (float)(c.Rng.NextULong() >> 63))]);
        var (mixed, mt, fr) = (c.R(x.Shape), c.R(y.Shape), c.R(new Shape(n, 3)));
        float[] lambda = [.. Enumerable.Range(0, perImage ? n : 1).Select(_ => (float)c.Rng.NextDouble())];
        c.B.MaskMix(mixed, mt, fr, x, y, masks, c.Rng.Permutation(n), lambda);
        c.Record("mixed", mixed); c.Record("targets", mt); c.Record("fractions", fr);
    }

    /// <summary>
    /// One classifier step: forward in training mode, the soft-target loss, backward with every weight
    /// gradient and the input gradient, then one Nesterov SGD step.
    /// </summary>
    private static void TrainingStep(SelfTestContext c)
    {
        var store = new ParameterStore();
        var model = new PreActResNet18(store, width: 8, classes: 10);
        store.Materialize(c.B, c.Rng);
        var x = c.R(new Shape(8, 3, 32, 32), 2f);
        var targets = c.T(new Shape(8, 10), c.SoftTargets(8, 10));
        var loss = new SoftTargetLoss();
        var logits = model.Forward(x, Mode.Train);
        c.Record("logits:logits", logits);
        c.Record("loss:loss", [loss.Forward(logits, targets)]);
        store.ZeroGrad();
        var dx = model.Backward(loss.Backward(), weightGrads: true, inputGrad: true)!;
        foreach (var p in store.Parameters) c.Record($"weight gradients:{p.Name}", p.Grad);
        c.Record("input gradient:dx", dx);
        foreach (var b in store.Buffers) c.Record($"running statistics:{b.Name}", b.Value);
        new Sgd(store, lr: 0.1f).Step();
        c.Record("weights after SGD:all", store.Values!);
    }

    /// <summary>
    /// Steps 1–3 of Algorithm 1 on one batch: saliency pass, maps, the paper's agent choosing the
    /// percentiles, masks, the mix. A map value within rounding of its image's threshold can flip one
    /// mask cell; a FAIL of the mixed rows alone that moves with --seed is such a tie.
    /// </summary>
    private static void Transform(SelfTestContext c)
    {
        const int n = 8;
        var store = new ParameterStore();
        var model = new PreActResNet18(store, width: 8, classes: 10);
        store.Materialize(c.B, c.Rng);
        ulong seed = c.Rng.NextULong();
        using var agent = new PpoAgent(c.B, new PpoConfig { NSteps = 4, BatchSize = 2, NEpochs = 1, Seed = seed }, new Shape(n, 16, 16), n, 10);
        var mixer = new BatchMixer(c.B, model, new Runs.MixSpec(), new Rng(seed + 1), agent);
        var x = c.R(new Shape(n, 3, 32, 32), 2f);
        var batch = mixer.Mix(x, c.T(new Shape(n, 10), c.SoftTargets(n, 10)));
        c.Record("saliency maps:maps", batch.Observation!);
        c.Record("actions:actions", [.. batch.Actions!.Select(a => (float)a)]);
        c.Record("mixed images:images", batch.Images);
        c.Record("mixed targets:targets", batch.Targets);
    }
}
