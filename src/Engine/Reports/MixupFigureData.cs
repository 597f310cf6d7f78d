namespace RlMixup.Engine.Reports;

/// <summary>
/// Everything the Appendix B figure shows for one mixed batch of B RGB images of H×W, saliency on a
/// p×p grid and K classes. Images are display pixels, uint8 (B,3,H,W); use
/// <see cref="Denormalise"/> to turn the engine's normalised float batches into them.
/// </summary>
public sealed record MixupFigureData
{
    public required int Batch { get; init; }
    public required int Height { get; init; }
    public required int Width { get; init; }
    /// <summary>p: the saliency grid is p×p cells of (H/p × W/p) pixels.</summary>
    public required int Cells { get; init; }
    /// <summary>The clean images x1, uint8 (B,3,H,W).</summary>
    public required byte[] Originals { get; init; }
    /// <summary>The saliency maps s, (B,p,p), each summing to 1.</summary>
    public required float[] Maps { get; init; }
    /// <summary>The cell masks m = [s ≥ t], (B,p,p), 0 or 1.</summary>
    public required float[] Masks { get; init; }
    /// <summary>π: the partner of image i is π(i), (B).</summary>
    public required int[] Perm { get; init; }
    /// <summary>λ1: 1 entry (one draw per batch) or B (per image); λ2 = 1 − λ1.</summary>
    public required float[] Lambda1 { get; init; }
    /// <summary>The mixed images x', uint8 (B,3,H,W).</summary>
    public required byte[] Mixed { get; init; }
    /// <summary>The soft labels y', (B,K).</summary>
    public required float[] MixedTargets { get; init; }
    /// <summary>K class names, in label order.</summary>
    public required IReadOnlyList<string> ClassNames { get; init; }
    /// <summary>Optional hard labels of the originals, (B); shown in the first caption.</summary>
    public int[]? Labels { get; init; }
    /// <summary>Optional percentiles q used for the masks, (B); shown in the third caption.</summary>
    public float[]? Percentiles { get; init; }

    public int Classes => ClassNames.Count;
    public int ImageBytes => 3 * Height * Width;

    /// <summary>Throws an ArgumentException naming the first field whose size does not fit the others.</summary>
    public void Validate()
    {
        if (Batch < 1 || Height < 1 || Width < 1) throw new ArgumentException($"mixup figure: empty batch or image ({Batch}, 3, {Height}, {Width})");
        if (Cells < 1 || Height % Cells != 0 || Width % Cells != 0)
            throw new ArgumentException($"mixup figure: a {Height}×{Width} image cannot be split into {Cells}×{Cells} equal cells");
        int cells = Batch * Cells * Cells;
        Need(Originals.Length == Batch * ImageBytes, "originals", Originals.Length, Batch * ImageBytes);
        Need(Mixed.Length == Batch * ImageBytes, "mixed images", Mixed.Length, Batch * ImageBytes);
        Need(Maps.Length == cells, "maps", Maps.Length, cells);
        Need(Masks.Length == cells, "masks", Masks.Length, cells);
        Need(Perm.Length == Batch, "permutation", Perm.Length, Batch);
        Need(Lambda1.Length == 1 || Lambda1.Length == Batch, "λ1", Lambda1.Length, Batch);
        Need(Classes > 0 && MixedTargets.Length == Batch * Classes, "soft labels", MixedTargets.Length, Batch * Classes);
        if (Labels != null) Need(Labels.Length == Batch, "labels", Labels.Length, Batch);
        if (Percentiles != null) Need(Percentiles.Length == Batch, "percentiles", Percentiles.Length, Batch);
        foreach (int j in Perm)
            if ((uint)j >= (uint)Batch) throw new ArgumentException($"mixup figure: permutation entry {j} is outside 0..{Batch - 1}");
    }

    private static void Need(bool ok, string what, int got, int want)
    {
        if (!ok) throw new ArgumentException($"mixup figure: {what} has {got} values, expected {want}");
    }

    /// <summary>
    /// uint8 pixels from a normalised float batch x (B,C,H,W) with per-channel constants:
    /// pixel = round(255·(x·std[c] + mean[c])), clamped to 0..255 (mixed images may leave the range).
    /// </summary>
    public static byte[] Denormalise(ReadOnlySpan<float> x, int channels, int plane, ReadOnlySpan<float> mean, ReadOnlySpan<float> std)
    {
        if (mean.Length != channels || std.Length != channels || plane < 1 || x.Length % (channels * plane) != 0)
            throw new ArgumentException($"denormalise: {x.Length} values do not split into images of {channels}×{plane} with {mean.Length} means and {std.Length} stds");
        var bytes = new byte[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            int c = i / plane % channels;
            float v = 255f * (x[i] * std[c] + mean[c]);
            bytes[i] = (byte)Math.Clamp(MathF.Round(v), 0f, 255f);
        }
        return bytes;
    }
}
