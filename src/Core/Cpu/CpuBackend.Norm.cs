namespace RlMixup.Core.Cpu;

// Batch norm over (N,H,W) per channel, and the soft-target classification loss.
// Channel statistics are accumulated in double: a width-64 layer sums 100·32·32 = 102,400 values.
public sealed partial class CpuBackend
{
    public void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd,
        float momentum, float eps, bool updateRunning)
    {
        OpChecks.BatchNormTraining(y, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, updateRunning);
        int n = x.Shape.N, c = x.Shape.C, hw = x.Shape.H * x.Shape.W, count = n * hw;
        float[] g = Arr(gamma), b = Arr(beta), rm = Arr(runningMean), rv = Arr(runningVar), sm = Arr(saveMean), si = Arr(saveInvStd);
        Host(x); Host(y);
        // Both passes walk the tensor in memory order, plane by plane (a channel's planes lie a whole
        // image apart; walking them channel by channel defeats the prefetcher). Pass 1 keeps each
        // plane's sum and squared deviations about its own mean (two passes over a plane in L1, stable
        // where E[x²]−E[x]² is not); the channel's statistics combine them in plane order, so the
        // result does not depend on the thread count.
        double[] stats = PlaneStats(2 * n * c);
        PlaneChunks(n, c, hw, (p0, p1) =>
        {
            var xs = Host(x);
            for (int p = p0; p < p1; p++)
            {
                var plane = xs.Slice(p * hw, hw);
                double sum = Simd.Sum(plane);
                float center = (float)(sum / hw);
                stats[2 * p] = sum;
                stats[2 * p + 1] = Simd.SumSquaredDeviation(plane, center);
            }
        });
        var scale = new float[c];
        var shift = new float[c];
        for (int ch = 0; ch < c; ch++)
        {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += stats[2 * (i * c + ch)];
            double mean = sum / count, sumSq = 0;
            for (int i = 0; i < n; i++)
            {
                // Σ(x − mean)² = Σ(x − center)² + 2·(center − mean)·Σ(x − center) + hw·(center − mean)².
                int p = i * c + ch;
                double s = stats[2 * p], center = (float)(s / hw), d = center - mean;
                sumSq += stats[2 * p + 1] + 2 * d * (s - hw * center) + hw * d * d;
            }
            double var = sumSq / count;
            float invStd = (float)(1.0 / Math.Sqrt(var + eps));
            sm[saveMean.Offset + ch] = (float)mean;
            si[saveInvStd.Offset + ch] = invStd;
            if (updateRunning)
            {
                rm[runningMean.Offset + ch] = (1 - momentum) * rm[runningMean.Offset + ch] + momentum * (float)mean;
                rv[runningVar.Offset + ch] = (1 - momentum) * rv[runningVar.Offset + ch] + momentum * (float)(sumSq / (count - 1));
            }
            scale[ch] = g[gamma.Offset + ch] * invStd;
            shift[ch] = b[beta.Offset + ch] - (float)mean * scale[ch];
        }
        ScaleShiftPlanes(y, x, scale, shift);
    }

    /// <summary>y = scale[ch]·x + shift[ch] over every plane of an NCHW tensor, in memory order.</summary>
    private void ScaleShiftPlanes(Tensor y, Tensor x, float[] scale, float[] shift)
    {
        int c = x.Shape.C, hw = x.Shape.H * x.Shape.W;
        PlaneChunks(x.Shape.N, c, hw, (p0, p1) =>
        {
            var xs = Host(x); var ys = Host(y);
            for (int p = p0; p < p1; p++) Simd.ScaleShift(ys.Slice(p * hw, hw), xs.Slice(p * hw, hw), scale[p % c], shift[p % c]);
        });
    }

    [ThreadStatic] private static double[]? t_planeStats;

    /// <summary>A per-call array of per-plane sums on the calling thread (the workers write, it reads).</summary>
    private static double[] PlaneStats(int size)
    {
        if (t_planeStats == null || t_planeStats.Length < size) t_planeStats = new double[size];
        return t_planeStats;
    }

    /// <summary>Planes 0..n·c in memory order, split into contiguous runs across the threads.</summary>
    private void PlaneChunks(int n, int c, int hw, Action<int, int> body) =>
        Chunks(n * c, Math.Max(1, ElementwiseChunk / Math.Max(1, hw)), (s, e, _) => body(s, e));

    public void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta,
        Tensor runningMean, Tensor runningVar, float eps)
    {
        OpChecks.BatchNormInference(y, x, gamma, beta, runningMean, runningVar);
        int c = x.Shape.C;
        float[] g = Arr(gamma), b = Arr(beta), rm = Arr(runningMean), rv = Arr(runningVar);
        Host(x); Host(y);
        var scale = new float[c];
        var shift = new float[c];
        for (int ch = 0; ch < c; ch++)
        {
            float invStd = 1f / MathF.Sqrt(rv[runningVar.Offset + ch] + eps);
            scale[ch] = g[gamma.Offset + ch] * invStd;
            shift[ch] = b[beta.Offset + ch] - rm[runningMean.Offset + ch] * scale[ch];
        }
        ScaleShiftPlanes(y, x, scale, shift);
    }

    public void BatchNormBackward(Tensor dx, Tensor? dgamma, Tensor? dbeta, Tensor dy, Tensor x, Tensor gamma,
        Tensor saveMean, Tensor saveInvStd, float eps)
    {
        OpChecks.BatchNormBackward(dx, dgamma, dbeta, dy, x, gamma, saveMean, saveInvStd);
        int n = x.Shape.N, c = x.Shape.C, hw = x.Shape.H * x.Shape.W, count = n * hw;
        float[] g = Arr(gamma), sm = Arr(saveMean), si = Arr(saveInvStd);
        Host(x); Host(dy); Host(dx);
        // As in the forward: both passes in memory order, per-plane sums combined in plane order.
        double[] stats = PlaneStats(2 * n * c);
        PlaneChunks(n, c, hw, (p0, p1) =>
        {
            var dys = Host(dy); var xs = Host(x);
            for (int p = p0; p < p1; p++)
            {
                var (a, d) = Simd.SumAndDot(dys.Slice(p * hw, hw), xs.Slice(p * hw, hw), sm[saveMean.Offset + p % c]);
                stats[2 * p] = a;
                stats[2 * p + 1] = d;
            }
        });
        var k = new float[c];
        var q = new float[c];
        var c0 = new float[c];
        for (int ch = 0; ch < c; ch++)
        {
            float invStd = si[saveInvStd.Offset + ch];
            // Σ dy and Σ dy·x̂ over the channel: dβ and dγ, and the two projections in dx.
            double sumDy = 0, sumDyDev = 0;
            for (int i = 0; i < n; i++) { sumDy += stats[2 * (i * c + ch)]; sumDyDev += stats[2 * (i * c + ch) + 1]; }
            double sumDyXhat = sumDyDev * invStd;
            if (dbeta != null) Arr(dbeta)[dbeta.Offset + ch] += (float)sumDy;
            if (dgamma != null) Arr(dgamma)[dgamma.Offset + ch] += (float)sumDyXhat;
            // dx = k·(dy − mean(dy) − x̂·mean(dy·x̂)) with k = γ·invStd, x̂ = (x − mean)·invStd,
            // written as dx = k·dy + q·(x − mean) + c so that one fused pass computes it.
            k[ch] = g[gamma.Offset + ch] * invStd;
            double meanDy = sumDy / count, meanDyXhat = sumDyXhat / count;
            q[ch] = (float)(-k[ch] * invStd * meanDyXhat);
            c0[ch] = (float)(-k[ch] * meanDy);
        }
        PlaneChunks(n, c, hw, (p0, p1) =>
        {
            var dxs = Host(dx); var dys = Host(dy); var xs = Host(x);
            for (int p = p0; p < p1; p++)
            {
                int ch = p % c;
                Simd.Affine2(dxs.Slice(p * hw, hw), dys.Slice(p * hw, hw), k[ch], xs.Slice(p * hw, hw), sm[saveMean.Offset + ch], q[ch], c0[ch]);
            }
        });
    }

    // ---- loss

    public void LogSoftmaxForward(Tensor logp, Tensor z)
    {
        var (rows, k) = OpChecks.LogSoftmax(logp, z);
        var ls = Host(logp); var zs = Host(z);
        for (int r = 0; r < rows; r++)
        {
            var zr = zs.Slice(r * k, k);
            var lr = ls.Slice(r * k, k);
            float max = float.NegativeInfinity;
            for (int j = 0; j < k; j++) max = MathF.Max(max, zr[j]);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(zr[j] - max);
            float lse = max + (float)Math.Log(sum);
            for (int j = 0; j < k; j++) lr[j] = zr[j] - lse;
        }
    }

    public void LogSoftmaxBackward(Tensor dz, Tensor logp, Tensor dlogp)
    {
        var (rows, k) = OpChecks.LogSoftmaxBackward(dz, logp, dlogp);
        var d = Host(dz); var l = Host(logp); var g = Host(dlogp);
        for (int r = 0; r < rows; r++)
        {
            double sum = 0;
            for (int j = 0; j < k; j++) sum += g[r * k + j];
            for (int j = 0; j < k; j++) d[r * k + j] = g[r * k + j] - MathF.Exp(l[r * k + j]) * (float)sum;
        }
    }

    public void SoftCrossEntropyForward(Tensor losses, Tensor logp, Tensor targets)
    {
        var (rows, k) = OpChecks.SoftCrossEntropy(losses, logp, targets);
        var o = Host(losses); var l = Host(logp); var y = Host(targets);
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int j = 0; j < k; j++) s -= (double)y[r * k + j] * l[r * k + j];
            o[r] = (float)s;
        }
    }

    public void SoftCrossEntropyBackward(Tensor dz, Tensor logp, Tensor targets, float scale)
    {
        var (rows, k) = OpChecks.SoftCrossEntropyBackward(dz, logp, targets);
        var d = Host(dz); var l = Host(logp); var y = Host(targets);
        for (int r = 0; r < rows; r++)
        {
            float ySum = 0;
            for (int j = 0; j < k; j++) ySum += y[r * k + j];
            for (int j = 0; j < k; j++) d[r * k + j] = scale * (MathF.Exp(l[r * k + j]) * ySum - y[r * k + j]);
        }
    }
}
