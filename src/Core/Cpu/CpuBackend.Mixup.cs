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
        int p = OpChecks.SaliencyMaps(maps, inputGrad);
        var g = inputGrad.Shape;
        var s = MixScratch(g.N * g.H * g.W);
        MixupReference.ChannelL2(s, Host(inputGrad), g.N, g.C, g.H, g.W);
        MixupReference.PoolNormalize(Host(maps), s, g.N, g.H, g.W, p);
    }

    public void PercentileMasks(Tensor masks, Tensor thresholds, Tensor maps, ReadOnlySpan<float> percentiles)
    {
        OpChecks.PercentileMasks(masks, thresholds, maps, percentiles);
        MixupReference.PercentileMasks(Host(masks), Host(thresholds), Host(maps), percentiles, maps.Shape[0], maps.Shape[1] * maps.Shape[2]);
    }

    public void MaskMix(Tensor mixed, Tensor mixedTargets, Tensor fractions, Tensor x, Tensor targets, Tensor masks,
        ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1)
    {
        OpChecks.MaskMix(mixed, mixedTargets, fractions, x, targets, masks, perm, lambda1);
        var xs = x.Shape;
        int plane = xs.H * xs.W;
        var up = MixScratch(xs.N * plane);
        MixupReference.UpsampleNearest(up, Host(masks), xs.N, masks.Shape[1], xs.H, xs.W);
        MixupReference.Mix(Host(mixed), Host(x), up, perm, lambda1, xs.N, xs.C, xs.H, xs.W);
        MixupReference.SoftLabels(Host(mixedTargets), Host(fractions), Host(targets), up, perm, lambda1, xs.N, targets.Shape[1], plane);
    }

    public void InputMixup(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, float lambda)
    {
        OpChecks.InputMixup(mixed, mixedTargets, x, targets, perm);
        MixupReference.InputMixup(Host(mixed), Host(mixedTargets), Host(x), Host(targets), perm, lambda, x.Shape.N, targets.Shape[1]);
    }

    public void CutMix(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, CutBox box)
    {
        OpChecks.CutMix(mixed, mixedTargets, x, targets, perm, box);
        var s = x.Shape;
        MixupReference.CutMix(Host(mixed), Host(mixedTargets), Host(x), Host(targets), perm, box, s.N, s.C, s.H, s.W, targets.Shape[1]);
    }
}
