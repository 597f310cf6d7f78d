namespace RlMixup.Tests.Reference;

/// <summary>
/// Naive float64 reference of every op in IBackend: forward only, plain loops over double[] arrays.
/// It shares no code with the engine on purpose, so that a bug has to be made twice to go unnoticed.
/// Gradients are not written here: the tests take them from finite differences of these functions
/// (see <see cref="FiniteDiff"/>). Layouts follow the engine: NCHW activations, OIHW filters,
/// row-major matrices.
/// </summary>
public static class RefOps
{
    // ---- elementwise

    public static double[] Add(double[] a, double[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException("Add: lengths differ");
        var y = new double[a.Length];
        for (int i = 0; i < a.Length; i++) y[i] = a[i] + b[i];
        return y;
    }

    public static double[] Relu(double[] x)
    {
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = x[i] > 0 ? x[i] : 0;
        return y;
    }

    public static double[] Tanh(double[] x)
    {
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = Math.Tanh(x[i]);
        return y;
    }

    // ---- dense

    /// <summary>
    /// C (m×n) = alpha·op(A)·op(B) + beta·C0. A is stored (m×k), or (k×m) when transA;
    /// B is stored (k×n), or (n×k) when transB. c0 may be null when beta is 0.
    /// </summary>
    public static double[] Gemm(double[] a, bool transA, double[] b, bool transB, int m, int n, int k,
        double alpha, double beta, double[]? c0)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                {
                    double aip = transA ? a[p * m + i] : a[i * k + p];
                    double bpj = transB ? b[j * k + p] : b[p * n + j];
                    s += aip * bpj;
                }
                c[i * n + j] = alpha * s + (beta != 0 ? beta * c0![i * n + j] : 0);
            }
        return c;
    }

    /// <summary>y (n, outF) = x (n, inF) · wᵀ + b, with w (outF, inF) and b (outF) or null.</summary>
    public static double[] Linear(double[] x, double[] w, double[]? b, int n, int inF, int outF)
    {
        var y = new double[n * outF];
        for (int i = 0; i < n; i++)
            for (int o = 0; o < outF; o++)
            {
                double s = b?[o] ?? 0;
                for (int f = 0; f < inF; f++) s += x[i * inF + f] * w[o * inF + f];
                y[i * outF + o] = s;
            }
        return y;
    }

    // ---- convolution

    /// <summary>Output size of one spatial axis: floor((in + 2·pad − k)/stride) + 1.</summary>
    public static int ConvOut(int inSize, int k, int stride, int pad) => (inSize + 2 * pad - k) / stride + 1;

    /// <summary>y (n, c, h·w) = x + bias[c]: a convolution's bias.</summary>
    public static double[] AddChannelBias(double[] x, double[] bias, int n, int c, int hw)
    {
        var y = new double[x.Length];
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < hw; i++) y[(b * c + ch) * hw + i] = x[(b * c + ch) * hw + i] + bias[ch];
        return y;
    }

    /// <summary>
    /// y (n, o, oh, ow) = x (n, c, h, w) ⋆ wt (o, c, kh, kw), cross-correlation with zero padding,
    /// no bias. Output position (p, q) reads input rows p·sh − ph + i and columns q·sw − pw + j.
    /// </summary>
    public static double[] Conv2d(double[] x, int n, int c, int h, int w, double[] wt, int o, int kh, int kw,
        int sh, int sw, int ph, int pw)
    {
        int oh = ConvOut(h, kh, sh, ph), ow = ConvOut(w, kw, sw, pw);
        var y = new double[n * o * oh * ow];
        for (int b = 0; b < n; b++)
            for (int f = 0; f < o; f++)
                for (int p = 0; p < oh; p++)
                    for (int q = 0; q < ow; q++)
                    {
                        double s = 0;
                        for (int ch = 0; ch < c; ch++)
                            for (int i = 0; i < kh; i++)
                            {
                                int r = p * sh - ph + i;
                                if (r < 0 || r >= h) continue;
                                for (int j = 0; j < kw; j++)
                                {
                                    int col = q * sw - pw + j;
                                    if (col < 0 || col >= w) continue;
                                    s += x[((b * c + ch) * h + r) * w + col] * wt[((f * c + ch) * kh + i) * kw + j];
                                }
                            }
                        y[((b * o + f) * oh + p) * ow + q] = s;
                    }
        return y;
    }

    // ---- batch norm (per channel over N, H, W)

    /// <summary>Per-channel mean and BIASED variance (divide by N·H·W) of x (n, c, hw).</summary>
    public static (double[] Mean, double[] Var) ChannelStats(double[] x, int n, int c, int hw)
    {
        var mean = new double[c];
        var var = new double[c];
        int m = n * hw;
        for (int ch = 0; ch < c; ch++)
        {
            double s = 0;
            for (int b = 0; b < n; b++)
                for (int i = 0; i < hw; i++) s += x[(b * c + ch) * hw + i];
            double mu = s / m;
            double v = 0;
            for (int b = 0; b < n; b++)
                for (int i = 0; i < hw; i++)
                {
                    double d = x[(b * c + ch) * hw + i] - mu;
                    v += d * d;
                }
            mean[ch] = mu;
            var[ch] = v / m;
        }
        return (mean, var);
    }

    /// <summary>y = gamma·(x − mean)/sqrt(var + eps) + beta with the given per-channel mean and variance.</summary>
    public static double[] Normalize(double[] x, int n, int c, int hw, double[] gamma, double[] beta,
        double[] mean, double[] var, double eps)
    {
        var y = new double[x.Length];
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
            {
                double inv = 1.0 / Math.Sqrt(var[ch] + eps);
                for (int i = 0; i < hw; i++)
                {
                    int idx = (b * c + ch) * hw + i;
                    y[idx] = gamma[ch] * (x[idx] - mean[ch]) * inv + beta[ch];
                }
            }
        return y;
    }

    /// <summary>Training-mode batch norm: normalise with the batch mean and the biased batch variance.</summary>
    public static double[] BatchNormTraining(double[] x, int n, int c, int hw, double[] gamma, double[] beta, double eps)
    {
        var (mean, var) = ChannelStats(x, n, c, hw);
        return Normalize(x, n, c, hw, gamma, beta, mean, var, eps);
    }

    /// <summary>
    /// PyTorch's running-statistics update after a training forward:
    /// r_mean = (1−m)·r_mean + m·mean, r_var = (1−m)·r_var + m·var·M/(M−1) (unbiased), M = N·H·W.
    /// </summary>
    public static (double[] Mean, double[] Var) UpdateRunning(double[] runMean, double[] runVar,
        double[] x, int n, int c, int hw, double momentum)
    {
        var (mean, var) = ChannelStats(x, n, c, hw);
        int m = n * hw;
        var rm = new double[c];
        var rv = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            rm[ch] = (1 - momentum) * runMean[ch] + momentum * mean[ch];
            rv[ch] = (1 - momentum) * runVar[ch] + momentum * var[ch] * m / (m - 1);
        }
        return (rm, rv);
    }

    /// <summary>Eval-mode batch norm: normalise with the running statistics.</summary>
    public static double[] BatchNormInference(double[] x, int n, int c, int hw, double[] gamma, double[] beta,
        double[] runMean, double[] runVar, double eps)
        => Normalize(x, n, c, hw, gamma, beta, runMean, runVar, eps);

    // ---- pooling

    /// <summary>y (n, c) = mean over the hw spatial positions of x (n, c, hw).</summary>
    public static double[] GlobalAvgPool(double[] x, int n, int c, int hw)
    {
        var y = new double[n * c];
        for (int i = 0; i < n * c; i++)
        {
            double s = 0;
            for (int j = 0; j < hw; j++) s += x[i * hw + j];
            y[i] = s / hw;
        }
        return y;
    }

    // ---- classification loss

    /// <summary>logp (n, k) = z − log Σ exp z per row, with the row max subtracted first.</summary>
    public static double[] LogSoftmax(double[] z, int n, int k)
    {
        var y = new double[n * k];
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < k; j++) max = Math.Max(max, z[i * k + j]);
            double s = 0;
            for (int j = 0; j < k; j++) s += Math.Exp(z[i * k + j] - max);
            double lse = max + Math.Log(s);
            for (int j = 0; j < k; j++) y[i * k + j] = z[i * k + j] - lse;
        }
        return y;
    }

    /// <summary>losses (n) = −Σ_k targets·logp per row, for soft targets that need not sum to 1.</summary>
    public static double[] SoftCrossEntropy(double[] logp, double[] targets, int n, int k)
    {
        var loss = new double[n];
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int j = 0; j < k; j++) s -= targets[i * k + j] * logp[i * k + j];
            loss[i] = s;
        }
        return loss;
    }

    // ---- optimisers (PyTorch formulas, one step, in place on double arrays)

    /// <summary>
    /// torch.optim.SGD with dampening 0: g = grad + wd·p; buf = momentum·buf + g (buf = g on the first step,
    /// which a zero buffer reproduces); g = nesterov ? g + momentum·buf : buf; p −= lr·g.
    /// With momentum 0 the buffer is not used: p −= lr·(grad + wd·p).
    /// </summary>
    public static void SgdStep(double[] p, double[] grad, double[] buf, double lr, double momentum, double wd, bool nesterov)
    {
        for (int i = 0; i < p.Length; i++)
        {
            double g = grad[i] + wd * p[i];
            if (momentum != 0)
            {
                buf[i] = momentum * buf[i] + g;
                g = nesterov ? g + momentum * buf[i] : buf[i];
            }
            p[i] -= lr * g;
        }
    }

    /// <summary>
    /// torch.optim.Adam (L2 decay folded into the gradient): g = grad + wd·p; m = β1·m + (1−β1)·g;
    /// v = β2·v + (1−β2)·g²; p −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps), t 1-based.
    /// </summary>
    public static void AdamStep(double[] p, double[] grad, double[] m, double[] v, int t,
        double lr, double beta1, double beta2, double eps, double wd)
    {
        double bc1 = 1 - Math.Pow(beta1, t);
        double bc2 = 1 - Math.Pow(beta2, t);
        for (int i = 0; i < p.Length; i++)
        {
            double g = grad[i] + wd * p[i];
            m[i] = beta1 * m[i] + (1 - beta1) * g;
            v[i] = beta2 * v[i] + (1 - beta2) * g * g;
            double denom = Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps;
            p[i] -= lr / bc1 * m[i] / denom;
        }
    }
}
