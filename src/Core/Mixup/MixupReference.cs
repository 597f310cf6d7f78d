namespace RlMixup.Core.Mixup;

/// <summary>
/// The CPU reference of RL-Mixup's equations 1–4 and of the baselines, as plain loops over spans.
/// This is the ground truth the fused CUDA kernels (src/Kernels/*.cu) are tested against, step by
/// step. Layouts are row-major: gradients and images (B,C,H,W), saliency (B,H,W), maps and cell
/// masks (B,p,p), pixel masks (B,H,W), targets (B,K).
/// </summary>
public static class MixupReference
{
    // ---- (a) saliency: channel L2 of the input gradient

    /// <summary>s (B,H,W) = sqrt(Σ_c g²) of g (B,C,H,W).</summary>
    public static void ChannelL2(Span<float> s, ReadOnlySpan<float> g, int b, int c, int h, int w)
    {
        int plane = h * w;
        Require(s.Length == b * plane && g.Length == b * c * plane, "channel L2: sizes do not match (B,C,H,W)");
        for (int i = 0; i < b; i++)
            for (int px = 0; px < plane; px++)
            {
                float sum = 0;
                for (int ch = 0; ch < c; ch++) { float v = g[(i * c + ch) * plane + px]; sum = MathF.FusedMultiplyAdd(v, v, sum); }
                s[i * plane + px] = MathF.Sqrt(sum);
            }
    }

    // ---- (b) average pooling to p×p and normalisation to sum 1

    /// <summary>
    /// maps (B,p,p) = the mean of s over each (H/p × W/p) cell, divided by the image's total so that
    /// the p² values sum to 1. An all-zero map (a zero gradient) becomes uniform, 1/p².
    /// </summary>
    public static void PoolNormalize(Span<float> maps, ReadOnlySpan<float> s, int b, int h, int w, int p)
    {
        CheckCells(h, w, p);
        Require(maps.Length == b * p * p && s.Length == b * h * w, "pool: sizes do not match (B,H,W) and (B,p,p)");
        int ch = h / p, cw = w / p;
        float inv = 1f / (ch * cw);
        for (int i = 0; i < b; i++)
        {
            var m = maps.Slice(i * p * p, p * p);
            double total = 0;
            for (int cy = 0; cy < p; cy++)
                for (int cx = 0; cx < p; cx++)
                {
                    float sum = 0;
                    for (int y = cy * ch; y < (cy + 1) * ch; y++)
                        for (int x = cx * cw; x < (cx + 1) * cw; x++) sum += s[(i * h + y) * w + x];
                    m[cy * p + cx] = sum * inv;
                    total += m[cy * p + cx];
                }
            if (total > 0 && double.IsFinite(total)) { float k = (float)(1 / total); for (int j = 0; j < m.Length; j++) m[j] *= k; }
            else m.Fill(1f / (p * p));
        }
    }

    /// <summary>The pooled cells must tile the image exactly (32×32 with p = 16 or 8).</summary>
    public static void CheckCells(int h, int w, int p)
    {
        if (p < 1 || h % p != 0 || w % p != 0)
            throw new ArgumentException($"saliency pooling: a {h}×{w} image cannot be split into {p}×{p} equal cells");
    }

    // ---- (c) percentile selection

    /// <summary>
    /// The q-th percentile (0 ≤ q ≤ 100) of <paramref name="sorted"/> (ascending) with linear
    /// interpolation, as numpy's default: pos = q/100·(n−1), t = v[⌊pos⌋] + frac(pos)·(v[⌊pos⌋+1] − v[⌊pos⌋]).
    /// The arithmetic is fixed (float, one fma) so that the CUDA kernel gives the same bits.
    /// </summary>
    public static float PercentileOfSorted(ReadOnlySpan<float> sorted, float q)
    {
        int n = sorted.Length;
        Require(n > 0, "percentile of an empty set");
        if (!(q >= 0 && q <= 100)) throw new ArgumentOutOfRangeException(nameof(q), $"percentile must be in [0, 100], got {q}");
        float pos = q * (n - 1) / 100f;
        int lo = Math.Min((int)MathF.Floor(pos), n - 1), hi = Math.Min(lo + 1, n - 1);
        float frac = pos - lo;
        return MathF.FusedMultiplyAdd(frac, sorted[hi] - sorted[lo], sorted[lo]);
    }

    /// <summary>
    /// Eq. 1, batched: for image i, t_i = the q_i-th percentile of its p² map values and
    /// m_i(cell) = 1 if s_i(cell) ≥ t_i, else 0. q has one entry per image.
    /// </summary>
    public static void PercentileMasks(Span<float> masks, Span<float> thresholds, ReadOnlySpan<float> maps, ReadOnlySpan<float> q, int b, int cells)
    {
        Require(masks.Length == b * cells && maps.Length == b * cells && thresholds.Length == b && q.Length == b,
            "percentile masks: sizes do not match (B,p,p) and B percentiles");
        var sorted = new float[cells];
        for (int i = 0; i < b; i++)
        {
            var s = maps.Slice(i * cells, cells);
            s.CopyTo(sorted);
            Array.Sort(sorted);
            float t = PercentileOfSorted(sorted, q[i]);
            thresholds[i] = t;
            for (int j = 0; j < cells; j++) masks[i * cells + j] = s[j] >= t ? 1f : 0f;
        }
    }

    // ---- (d) nearest-neighbour upsampling

    /// <summary>up (B,H,W) from masks (B,p,p): up[y,x] = m[⌊y·p/H⌋, ⌊x·p/W⌋] (PyTorch's 'nearest').</summary>
    public static void UpsampleNearest(Span<float> up, ReadOnlySpan<float> masks, int b, int p, int h, int w)
    {
        Require(up.Length == b * h * w && masks.Length == b * p * p, "upsample: sizes do not match");
        for (int i = 0; i < b; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    up[(i * h + y) * w + x] = masks[(i * p + y * p / h) * p + x * p / w];
    }

    // ---- (e) the mix of eq. 3

    /// <summary>
    /// x'_i = m_inter·(λ1 x_i + λ2 x_π(i)) + ¬m_inter·(m1 x_i + m2 x_π(i)), with m1 = up_i,
    /// m2 = up_π(i) (the partner's OWN mask) and m_inter = [m1 == m2]. λ1 has one entry (one
    /// Dirichlet draw per batch) or B entries (per image); λ2 = 1 − λ1.
    /// </summary>
    public static void Mix(Span<float> mixed, ReadOnlySpan<float> x, ReadOnlySpan<float> up, ReadOnlySpan<int> perm,
        ReadOnlySpan<float> lambda1, int b, int c, int h, int w)
    {
        int plane = h * w;
        CheckBatch(perm, lambda1, b);
        Require(mixed.Length == b * c * plane && x.Length == mixed.Length && up.Length == b * plane, "mix: sizes do not match");
        for (int i = 0; i < b; i++)
        {
            int j = perm[i];
            float l1 = lambda1[lambda1.Length == 1 ? 0 : i], l2 = 1f - l1;
            for (int ch = 0; ch < c; ch++)
                for (int px = 0; px < plane; px++)
                {
                    float m1 = up[i * plane + px], m2 = up[j * plane + px];
                    float x1 = x[(i * c + ch) * plane + px], x2 = x[(j * c + ch) * plane + px];
                    mixed[(i * c + ch) * plane + px] = m1 == m2 ? l1 * x1 + l2 * x2 : m1 * x1 + m2 * x2;
                }
        }
    }

    // ---- (f) the soft labels of eq. 4

    /// <summary>
    /// fractions (B,3) = (f_inter, f_only1, f_only2): the fractions of the H·W pixels where
    /// m1 == m2, where only m1 is set, and where only m2 is set. Then
    /// y'_i = f_inter·(λ1 y_i + λ2 y_π(i)) + f_only1·y_i + f_only2·y_π(i), which sums to 1
    /// whenever the targets do.
    /// </summary>
    public static void SoftLabels(Span<float> mixedTargets, Span<float> fractions, ReadOnlySpan<float> targets, ReadOnlySpan<float> up,
        ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1, int b, int k, int plane)
    {
        CheckBatch(perm, lambda1, b);
        Require(mixedTargets.Length == b * k && targets.Length == b * k && fractions.Length == b * 3 && up.Length == b * plane,
            "soft labels: sizes do not match");
        for (int i = 0; i < b; i++)
        {
            int j = perm[i], inter = 0, only1 = 0, only2 = 0;
            for (int px = 0; px < plane; px++)
            {
                bool m1 = up[i * plane + px] != 0, m2 = up[j * plane + px] != 0;
                if (m1 == m2) inter++; else if (m1) only1++; else only2++;
            }
            float fi = (float)inter / plane, f1 = (float)only1 / plane, f2 = (float)only2 / plane;
            fractions[i * 3] = fi; fractions[i * 3 + 1] = f1; fractions[i * 3 + 2] = f2;
            float l1 = lambda1[lambda1.Length == 1 ? 0 : i], l2 = 1f - l1;
            float a = fi * l1 + f1, c = fi * l2 + f2; // weights of y_i and y_π(i)
            for (int cls = 0; cls < k; cls++)
                mixedTargets[i * k + cls] = a * targets[i * k + cls] + c * targets[j * k + cls];
        }
    }

    // ---- (g) baselines

    /// <summary>Input mixup (Zhang et al.): x' = λx + (1−λ)x_π, y' = λy + (1−λ)y_π, one λ per batch.</summary>
    public static void InputMixup(Span<float> mixed, Span<float> mixedTargets, ReadOnlySpan<float> x, ReadOnlySpan<float> targets,
        ReadOnlySpan<int> perm, float lambda, int b, int k)
    {
        int image = x.Length / Math.Max(1, b);
        Require(perm.Length == b && mixed.Length == x.Length && image * b == x.Length && targets.Length == b * k && mixedTargets.Length == b * k,
            "input mixup: sizes do not match");
        for (int i = 0; i < b; i++)
        {
            int j = perm[i];
            for (int e = 0; e < image; e++) mixed[i * image + e] = lambda * x[i * image + e] + (1 - lambda) * x[j * image + e];
            for (int cls = 0; cls < k; cls++) mixedTargets[i * k + cls] = lambda * targets[i * k + cls] + (1 - lambda) * targets[j * k + cls];
        }
    }

    /// <summary>
    /// CutMix (Yun et al.) with one box per batch: pixels inside the box come from the partner;
    /// λ is corrected to the kept area, λ = 1 − box area/(H·W), and y' = λy + (1−λ)y_π.
    /// </summary>
    public static void CutMix(Span<float> mixed, Span<float> mixedTargets, ReadOnlySpan<float> x, ReadOnlySpan<float> targets,
        ReadOnlySpan<int> perm, CutBox box, int b, int c, int h, int w, int k)
    {
        Require(perm.Length == b && mixed.Length == b * c * h * w && x.Length == mixed.Length && targets.Length == b * k && mixedTargets.Length == b * k,
            "cutmix: sizes do not match");
        box.Validate(h, w);
        for (int i = 0; i < b; i++)
        {
            int j = perm[i];
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int xx = 0; xx < w; xx++)
                    {
                        int src = box.Contains(y, xx) ? j : i;
                        mixed[((i * c + ch) * h + y) * w + xx] = x[((src * c + ch) * h + y) * w + xx];
                    }
            float lam = box.KeptFraction(h, w);
            for (int cls = 0; cls < k; cls++) mixedTargets[i * k + cls] = lam * targets[i * k + cls] + (1 - lam) * targets[j * k + cls];
        }
    }

    internal static void CheckBatch(ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1, int b)
    {
        Require(perm.Length == b, $"mix: the permutation has {perm.Length} entries for a batch of {b}");
        Require(lambda1.Length == 1 || lambda1.Length == b, $"mix: λ1 must have 1 entry (per batch) or {b} (per image), got {lambda1.Length}");
        foreach (int j in perm) Require((uint)j < (uint)b, $"mix: permutation entry {j} is outside 0..{b - 1}");
    }

    private static void Require(bool ok, string message)
    {
        if (!ok) throw new ArgumentException(message);
    }
}

/// <summary>A CutMix box, half-open: rows [Y0, Y1), columns [X0, X1).</summary>
public readonly record struct CutBox(int Y0, int X0, int Y1, int X1)
{
    public bool Contains(int y, int x) => y >= Y0 && y < Y1 && x >= X0 && x < X1;
    public int Area => Math.Max(0, Y1 - Y0) * Math.Max(0, X1 - X0);
    /// <summary>The corrected λ: the fraction of the image NOT covered by the box.</summary>
    public float KeptFraction(int h, int w) => 1f - (float)Area / (h * w);

    public void Validate(int h, int w)
    {
        if (Y0 < 0 || X0 < 0 || Y1 > h || X1 > w || Y1 < Y0 || X1 < X0)
            throw new ArgumentException($"cutmix box {this} does not fit a {h}×{w} image");
    }

    /// <summary>
    /// The usual CutMix box for a drawn λ: side ratio √(1−λ), a uniformly random centre, clipped
    /// to the image (so the area, and the corrected λ, may differ from the drawn one).
    /// </summary>
    public static CutBox Sample(Rng rng, double lambda, int h, int w)
    {
        double ratio = Math.Sqrt(1 - lambda);
        int cutH = (int)(h * ratio), cutW = (int)(w * ratio);
        int cy = rng.NextInt(h), cx = rng.NextInt(w);
        return new CutBox(Math.Clamp(cy - cutH / 2, 0, h), Math.Clamp(cx - cutW / 2, 0, w),
            Math.Clamp(cy + cutH / 2, 0, h), Math.Clamp(cx + cutW / 2, 0, w));
    }
}
