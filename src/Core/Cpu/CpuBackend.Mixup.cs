using RlMixup.Core.Mixup;

namespace RlMixup.Core.Cpu;

// The mix-up ops on the CPU: the reference of Mixup/MixupReference.cs, step by step.
// At batch 100, 3×32×32 these touch ~1 MB per step, noise next to the classifier's convolutions,
// so the CPU keeps the readable, unfused form; the CUDA kernels fuse them.
public sealed partial class CpuBackend
{
    [ThreadStatic] private static float[]? t_mixScratch;

    private static Span<float> MixScratch(int size) => Scratch(ref t_mixScratch, size).AsSpan(0, size);

    public void SaliencyMaps(Tensor maps, Tensor inputGrad)
    {
        const string op = "saliency maps";
        Check.Rank(op, "input gradient", inputGrad.Shape, 4);
        Check.Rank(op, "maps", maps.Shape, 3);
        var g = inputGrad.Shape;
        int p = maps.Shape[1];
        Check.Same(op, "maps", maps.Shape, new Shape(g.N, p, p));
        MixupReference.CheckCells(g.H, g.W, p);
        var s = MixScratch(g.N * g.H * g.W);
        MixupReference.ChannelL2(s, Host(inputGrad), g.N, g.C, g.H, g.W);
        MixupReference.PoolNormalize(Host(maps), s, g.N, g.H, g.W, p);
    }

    public void PercentileMasks(Tensor masks, Tensor thresholds, Tensor maps, ReadOnlySpan<float> percentiles)
    {
        const string op = "percentile masks";
        Check.Rank(op, "maps", maps.Shape, 3);
        Check.Same(op, "masks", masks.Shape, maps.Shape);
        Check.Same(op, "thresholds", thresholds.Shape, new Shape(maps.Shape[0]));
        if (percentiles.Length != maps.Shape[0])
            throw new ShapeMismatchException($"{op}: {percentiles.Length} percentiles for maps {maps.Shape}");
        MixupReference.PercentileMasks(Host(masks), Host(thresholds), Host(maps), percentiles, maps.Shape[0], maps.Shape[1] * maps.Shape[2]);
    }

    public void MaskMix(Tensor mixed, Tensor mixedTargets, Tensor fractions, Tensor x, Tensor targets, Tensor masks,
        ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1)
    {
        const string op = "mask mix";
        CheckMixShapes(op, mixed, mixedTargets, x, targets);
        var xs = x.Shape;
        Check.Rank(op, "masks", masks.Shape, 3);
        Check.Dim(op, "masks", masks.Shape, 0, "images", xs, 0);
        Check.Same(op, "fractions", fractions.Shape, new Shape(xs.N, 3));
        MixupReference.CheckBatch(perm, lambda1, xs.N);
        int plane = xs.H * xs.W;
        var up = MixScratch(xs.N * plane);
        MixupReference.UpsampleNearest(up, Host(masks), xs.N, masks.Shape[1], xs.H, xs.W);
        MixupReference.Mix(Host(mixed), Host(x), up, perm, lambda1, xs.N, xs.C, xs.H, xs.W);
        MixupReference.SoftLabels(Host(mixedTargets), Host(fractions), Host(targets), up, perm, lambda1, xs.N, targets.Shape[1], plane);
    }

    public void InputMixup(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, float lambda)
    {
        CheckMixShapes("input mixup", mixed, mixedTargets, x, targets);
        MixupReference.InputMixup(Host(mixed), Host(mixedTargets), Host(x), Host(targets), perm, lambda, x.Shape.N, targets.Shape[1]);
    }

    public void CutMix(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, CutBox box)
    {
        CheckMixShapes("cutmix", mixed, mixedTargets, x, targets);
        var s = x.Shape;
        MixupReference.CutMix(Host(mixed), Host(mixedTargets), Host(x), Host(targets), perm, box, s.N, s.C, s.H, s.W, targets.Shape[1]);
    }

    private static void CheckMixShapes(string op, Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets)
    {
        Check.Rank(op, "images", x.Shape, 4);
        Check.Same(op, "mixed images", mixed.Shape, x.Shape);
        Check.Rank(op, "targets", targets.Shape, 2);
        Check.Dim(op, "targets", targets.Shape, 0, "images", x.Shape, 0);
        Check.Same(op, "mixed targets", mixedTargets.Shape, targets.Shape);
    }
}
