using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Data;

namespace RlMixup.Engine.Reports;

/// <summary>
/// One RL-Mixup step on a batch, on the CPU, in the order of Algorithm 1 (saliency → masks → partner
/// and λ → eq. 3–4 mix), kept for the figure. The classifier is not run here: the caller passes the
/// loss gradient with respect to the normalised input, so any model (or a stand-in) can feed it.
/// </summary>
public static class MixupFigurePipeline
{
    /// <summary>The agent's action a ∈ {0..9} → percentile q = 11·a (method.md: linspace(0, 99, 10)).</summary>
    public static float[] PercentilesOfActions(ReadOnlySpan<int> actions)
    {
        var q = new float[actions.Length];
        for (int i = 0; i < actions.Length; i++)
        {
            if ((uint)actions[i] > 9) throw new ArgumentOutOfRangeException(nameof(actions), $"action {actions[i]} of image {i} is outside 0..9");
            q[i] = 11 * actions[i];
        }
        return q;
    }

    /// <summary>
    /// Mixes images <paramref name="indices"/> of <paramref name="set"/> (B of them) as RL-Mixup does
    /// and returns what the figure needs. inputGrad is ∂loss/∂x for the normalised batch, (B,3,32,32);
    /// percentiles has B entries in [0, 100]. Draws, in this order from <paramref name="rng"/>: π, a
    /// uniform permutation, then λ1 ~ Beta(α, α), once for the whole batch.
    /// </summary>
    public static MixupFigureData Run(ImageSet set, ReadOnlySpan<int> indices, IReadOnlyList<string> classNames,
        ReadOnlySpan<float> inputGrad, ReadOnlySpan<float> percentiles, float alpha, Rng rng, int cells = 16)
    {
        int b = indices.Length, k = set.Classes;
        if (b < 1) throw new ArgumentException("mixup figure pipeline: the batch is empty");
        if (classNames.Count != k) throw new ArgumentException($"mixup figure pipeline: {classNames.Count} class names for {k} classes");
        if (!(alpha > 0) || float.IsInfinity(alpha)) throw new ArgumentOutOfRangeException(nameof(alpha), $"α must be positive and finite, got {alpha}");
        var xShape = new Shape(b, ImageSet.Channels, ImageSet.Height, ImageSet.Width);
        if (inputGrad.Length != xShape.Size) throw new ArgumentException($"mixup figure pipeline: input gradient has {inputGrad.Length} values, expected {xShape}");

        var cpu = new CpuBackend();
        using var x = cpu.Allocate(xShape);
        using var targets = cpu.Allocate(new Shape(b, k));
        using var grad = cpu.Allocate(xShape);
        using var maps = cpu.Allocate(new Shape(b, cells, cells));
        using var masks = cpu.Allocate(maps.Shape);
        using var thresholds = cpu.Allocate(new Shape(b));
        using var mixed = cpu.Allocate(xShape);
        using var mixedTargets = cpu.Allocate(targets.Shape);
        using var fractions = cpu.Allocate(new Shape(b, 3));

        var labels = new int[b];
        var originals = new byte[b * ImageSet.ImageBytes];
        var oneHot = new float[b * k];
        for (int i = 0; i < b; i++)
        {
            labels[i] = set.Labels[indices[i]];
            oneHot[i * k + labels[i]] = 1;
            set.Image(indices[i]).CopyTo(originals.AsSpan(i * ImageSet.ImageBytes));
        }
        Normalisation.ToFloat(set, indices, x.Span);
        targets.CopyFrom(oneHot);
        grad.CopyFrom(inputGrad);

        cpu.SaliencyMaps(maps, grad);
        cpu.PercentileMasks(masks, thresholds, maps, percentiles);
        int[] perm = rng.Permutation(b);
        float[] lambda1 = [(float)rng.Beta(alpha, alpha)];
        cpu.MaskMix(mixed, mixedTargets, fractions, x, targets, masks, perm, lambda1);

        const int plane = ImageSet.Height * ImageSet.Width;
        return new MixupFigureData
        {
            Batch = b, Height = ImageSet.Height, Width = ImageSet.Width, Cells = cells,
            Originals = originals,
            Maps = maps.ToArray(),
            Masks = masks.ToArray(),
            Perm = perm,
            Lambda1 = lambda1,
            Mixed = MixupFigureData.Denormalise(mixed.Span, ImageSet.Channels, plane, Normalisation.Mean, Normalisation.Std),
            MixedTargets = mixedTargets.ToArray(),
            ClassNames = classNames,
            Labels = labels,
            Percentiles = percentiles.ToArray(),
        };
    }
}
