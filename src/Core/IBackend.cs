using RlMixup.Core.Mixup;

namespace RlMixup.Core;

/// <summary>Geometry of a 2-D convolution (dilation 1, groups 1). Kernel size comes from the OIHW weight.</summary>
public readonly record struct Conv2dSpec(int StrideH, int StrideW, int PadH, int PadW)
{
    public Conv2dSpec(int stride, int pad) : this(stride, stride, pad, pad) { }

    public int OutH(int inH, int kH) => (inH + 2 * PadH - kH) / StrideH + 1;
    public int OutW(int inW, int kW) => (inW + 2 * PadW - kW) / StrideW + 1;

    /// <summary>Output shape of x (N,C,H,W) convolved with w (O,C,kH,kW); throws on a mismatch.</summary>
    public Shape OutputShape(Shape x, Shape w)
    {
        Check.Rank("conv2d", "input", x, 4);
        Check.Rank("conv2d", "weight", w, 4);
        Check.Dim("conv2d", "input", x, 1, "weight", w, 1);
        if (StrideH < 1 || StrideW < 1 || PadH < 0 || PadW < 0)
            throw new ArgumentException($"conv2d: invalid stride ({StrideH},{StrideW}) or padding ({PadH},{PadW})");
        int oh = OutH(x.H, w.H), ow = OutW(x.W, w.W);
        if (x.H + 2 * PadH < w.H || x.W + 2 * PadW < w.W)
            throw new ShapeMismatchException($"conv2d: kernel of weight {w} is larger than padded input {x}");
        return new Shape(x.N, w.N, oh, ow);
    }
}

/// <summary>
/// Every op the models need, implemented once per device (CPU now, CUDA later).
///
/// Conventions (after llm.c):
/// - outputs come first in every signature; forward and backward come in pairs;
/// - backward ops OVERWRITE the data gradient (dx) and ACCUMULATE (+=) into parameter gradients,
///   so one gradient arena collects a whole backward pass and is zeroed once per step;
/// - shapes are checked on entry and a mismatch throws <see cref="ShapeMismatchException"/>;
/// - ops are asynchronous on devices that can be; <see cref="Download"/> synchronises.
/// </summary>
public interface IBackend : IDisposable
{
    string Name { get; }

    /// <summary>
    /// Waits until every op queued so far has finished (timing, benchmarks). Ops on the CPU run
    /// synchronously, so the default does nothing; a device backend waits for its stream.
    /// </summary>
    void Synchronize() { }

    // ---- memory
    /// <summary>A new zero-filled tensor owned by this backend.</summary>
    Tensor Allocate(Shape shape);
    void Upload(Tensor dst, ReadOnlySpan<float> src);
    void Download(Tensor src, Span<float> dst);
    void Fill(Tensor t, float value);
    void Copy(Tensor dst, Tensor src);

    // ---- elementwise
    /// <summary>y = a + b.</summary>
    void Add(Tensor y, Tensor a, Tensor b);
    /// <summary>y += alpha·x.</summary>
    void Axpy(Tensor y, float alpha, Tensor x);
    void Scale(Tensor y, float alpha);
    void ReluForward(Tensor y, Tensor x);
    /// <summary>dx = dy·[y &gt; 0], with y the forward output.</summary>
    void ReluBackward(Tensor dx, Tensor y, Tensor dy);
    void TanhForward(Tensor y, Tensor x);
    /// <summary>dx = dy·(1 − y²), with y the forward output.</summary>
    void TanhBackward(Tensor dx, Tensor y, Tensor dy);

    // ---- dense
    /// <summary>C = alpha·op(A)·op(B) + beta·C on rank-2 tensors; op transposes when asked.</summary>
    void Gemm(Tensor c, Tensor a, bool transA, Tensor b, bool transB, float alpha = 1f, float beta = 0f);
    /// <summary>y (N,out) = x (N,in) · wᵀ + b, with w (out,in) and b (out) or null.</summary>
    void LinearForward(Tensor y, Tensor x, Tensor w, Tensor? b);
    /// <summary>dx = dy·w (when dx is not null); dw += dyᵀ·x and db += Σ dy (when not null).</summary>
    void LinearBackward(Tensor? dx, Tensor? dw, Tensor? db, Tensor dy, Tensor x, Tensor w);

    // ---- convolution (NCHW input, OIHW weight; the bias is a separate per-channel add)
    void Conv2dForward(Tensor y, Tensor x, Tensor w, Conv2dSpec spec);
    /// <summary>dx = conv2d's data gradient (overwrites).</summary>
    void Conv2dBackwardData(Tensor dx, Tensor dy, Tensor w, Conv2dSpec spec);
    /// <summary>dw += conv2d's filter gradient.</summary>
    void Conv2dBackwardFilter(Tensor dw, Tensor x, Tensor dy, Conv2dSpec spec);
    /// <summary>y (N,C,H,W) += bias[c] in place: the bias of a convolution (bias (C)).</summary>
    void AddChannelBias(Tensor y, Tensor bias);
    /// <summary>dbias (C) += Σ over n, h, w of dy (N,C,H,W). The data gradient of a bias add is dy itself.</summary>
    void ChannelBiasBackward(Tensor dbias, Tensor dy);

    // ---- batch norm over (N,H,W) per channel
    /// <summary>
    /// Training mode: normalise with the batch statistics (biased variance), save mean and 1/sqrt(var+eps)
    /// for backward, and when <paramref name="updateRunning"/> is set update the running statistics as
    /// PyTorch does: r = (1−momentum)·r + momentum·stat, with the UNBIASED variance for running_var.
    /// </summary>
    void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd,
        float momentum, float eps, bool updateRunning);
    /// <summary>Eval mode: normalise with the running statistics.</summary>
    void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta,
        Tensor runningMean, Tensor runningVar, float eps);
    /// <summary>
    /// dx (overwrites) and, when not null, dgamma += , dbeta += for a training-mode forward;
    /// <paramref name="eps"/> is the forward's (cuDNN's backward needs it; the CPU uses saveInvStd alone).
    /// </summary>
    void BatchNormBackward(Tensor dx, Tensor? dgamma, Tensor? dbeta, Tensor dy, Tensor x, Tensor gamma,
        Tensor saveMean, Tensor saveInvStd, float eps);

    // ---- pooling
    /// <summary>y (N,C) = mean over H,W of x (N,C,H,W).</summary>
    void GlobalAvgPoolForward(Tensor y, Tensor x);
    void GlobalAvgPoolBackward(Tensor dx, Tensor dy);

    // ---- classification loss
    /// <summary>logp (N,K) = log_softmax(z) along the last axis.</summary>
    void LogSoftmaxForward(Tensor logp, Tensor z);
    /// <summary>dz = dlogp − softmax(z)·Σ_k dlogp, with logp the forward output.</summary>
    void LogSoftmaxBackward(Tensor dz, Tensor logp, Tensor dlogp);
    /// <summary>losses (N) = −Σ_k y_k·logp_k, for soft targets y (N,K).</summary>
    void SoftCrossEntropyForward(Tensor losses, Tensor logp, Tensor targets);
    /// <summary>
    /// Gradient of scale·Σ_i loss_i with respect to the LOGITS, through log-softmax:
    /// dz = scale·(softmax(z)·Σ_k y_k − y). Use scale = 1/N for the mean loss.
    /// </summary>
    void SoftCrossEntropyBackward(Tensor dz, Tensor logp, Tensor targets, float scale);

    // ---- optimisers: one flat pass over a parameter arena
    /// <summary>
    /// PyTorch SGD (dampening 0): g = grad + wd·p; buf = momentum·buf + g; g = nesterov ? g + momentum·buf : buf;
    /// p −= lr·g. A zero buffer makes the first step buf = g, as in PyTorch.
    /// </summary>
    void SgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lr, float momentum, float weightDecay, bool nesterov);
    /// <summary>
    /// PyTorch Adam (L2 weight decay, not AdamW): g = grad + wd·p; m, v moments; step t is 1-based;
    /// p −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps).
    /// </summary>
    void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, int step, float lr, float beta1, float beta2, float eps, float weightDecay);

    // ---- mix-up: RL-Mixup's equations 1–4 and the baselines (reference: Mixup/MixupReference.cs)
    /// <summary>
    /// maps (B,p,p) from the input gradient g (B,C,H,W): s = sqrt(Σ_c g²) per pixel, averaged over
    /// (H/p × W/p) cells, each image normalised to sum 1 (uniform when the gradient is zero).
    /// </summary>
    void SaliencyMaps(Tensor maps, Tensor inputGrad);
    /// <summary>
    /// Eq. 1: masks (B,p,p) = [s ≥ t_i] with t_i (written to thresholds (B)) the percentiles[i]-th
    /// percentile of image i's map, numpy's linear interpolation.
    /// </summary>
    void PercentileMasks(Tensor masks, Tensor thresholds, Tensor maps, ReadOnlySpan<float> percentiles);
    /// <summary>
    /// Eq. 2–4 fused: masks upsampled to H×W by nearest neighbour, m1 = mask_i, m2 = mask_π(i),
    /// mixed (B,C,H,W) = m_inter·(λ1 x_i + λ2 x_π(i)) + ¬m_inter·(m1 x_i + m2 x_π(i)), fractions (B,3)
    /// = (f_inter, f_only1, f_only2) of the pixels, mixedTargets (B,K) = f_inter·(λ1 y_i + λ2 y_π(i))
    /// + f_only1·y_i + f_only2·y_π(i). lambda1 has 1 entry (per batch) or B (per image); λ2 = 1 − λ1.
    /// </summary>
    void MaskMix(Tensor mixed, Tensor mixedTargets, Tensor fractions, Tensor x, Tensor targets, Tensor masks,
        ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1);
    /// <summary>Input mixup: mixed = λx + (1−λ)x_π, mixedTargets = λy + (1−λ)y_π.</summary>
    void InputMixup(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, float lambda);
    /// <summary>CutMix with one box per batch; the label weight is the kept area, 1 − |box|/(H·W).</summary>
    void CutMix(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, CutBox box);
}
