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
        Chunks(c, 1, (s, e, _) =>
        {
            for (int ch = s; ch < e; ch++)
            {
                // Two passes (mean, then squared deviations): stable where E[x²]−E[x]² is not.
                double sum = 0, sumSq = 0;
                for (int i = 0; i < n; i++) sum += Simd.Sum(Plane(x, i, ch));
                float mean = (float)(sum / count);
                for (int i = 0; i < n; i++) sumSq += Simd.SumSquaredDeviation(Plane(x, i, ch), mean);
                double var = sumSq / count;
                float invStd = (float)(1.0 / Math.Sqrt(var + eps));
                sm[saveMean.Offset + ch] = mean;
                si[saveInvStd.Offset + ch] = invStd;
                if (updateRunning)
                {
                    rm[runningMean.Offset + ch] = (1 - momentum) * rm[runningMean.Offset + ch] + momentum * mean;
                    rv[runningVar.Offset + ch] = (1 - momentum) * rv[runningVar.Offset + ch] + momentum * (float)(sumSq / (count - 1));
                }
                float scale = g[gamma.Offset + ch] * invStd, shift = b[beta.Offset + ch] - mean * scale;
                for (int i = 0; i < n; i++) Simd.ScaleShift(Plane(y, i, ch), Plane(x, i, ch), scale, shift);
            }
        });
    }

    /// <summary>The (H,W) plane of image i, channel ch of an NCHW tensor.</summary>
    private Span<float> Plane(Tensor t, int i, int ch)
    {
        int hw = t.Shape.H * t.Shape.W;
        return Host(t).Slice((i * t.Shape.C + ch) * hw, hw);
    }

    public void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta,
        Tensor runningMean, Tensor runningVar, float eps)
    {
        OpChecks.BatchNormInference(y, x, gamma, beta, runningMean, runningVar);
        int n = x.Shape.N, c = x.Shape.C, hw = x.Shape.H * x.Shape.W;
        float[] g = Arr(gamma), b = Arr(beta), rm = Arr(runningMean), rv = Arr(runningVar);
        Host(x); Host(y);
        Chunks(n * c, 1, (s, e, _) =>
        {
            for (int plane = s; plane < e; plane++)
            {
                int i = plane / c, ch = plane % c;
                float invStd = 1f / MathF.Sqrt(rv[runningVar.Offset + ch] + eps);
                float scale = g[gamma.Offset + ch] * invStd, shift = b[beta.Offset + ch] - rm[runningMean.Offset + ch] * scale;
                Simd.ScaleShift(Plane(y, i, ch), Plane(x, i, ch), scale, shift);
            }
        });
    }

    public void BatchNormBackward(Tensor dx, Tensor? dgamma, Tensor? dbeta, Tensor dy, Tensor x, Tensor gamma,
        Tensor saveMean, Tensor saveInvStd, float eps)
    {
        OpChecks.BatchNormBackward(dx, dgamma, dbeta, dy, x, gamma, saveMean, saveInvStd);
        int n = x.Shape.N, c = x.Shape.C, hw = x.Shape.H * x.Shape.W, count = n * hw;
        float[] g = Arr(gamma), sm = Arr(saveMean), si = Arr(saveInvStd);
        Host(x); Host(dy); Host(dx);
        Chunks(c, 1, (s, e, _) =>
        {
            for (int ch = s; ch < e; ch++)
            {
                float mean = sm[saveMean.Offset + ch], invStd = si[saveInvStd.Offset + ch];
                // Σ dy and Σ dy·x̂ over the channel: dβ and dγ, and the two projections in dx.
                double sumDy = 0, sumDyDev = 0;
                for (int i = 0; i < n; i++)
                {
                    var (a, d) = Simd.SumAndDot(Plane(dy, i, ch), Plane(x, i, ch), mean);
                    sumDy += a; sumDyDev += d;
                }
                double sumDyXhat = sumDyDev * invStd;
                if (dbeta != null) Arr(dbeta)[dbeta.Offset + ch] += (float)sumDy;
                if (dgamma != null) Arr(dgamma)[dgamma.Offset + ch] += (float)sumDyXhat;
                // dx = k·(dy − mean(dy) − x̂·mean(dy·x̂)) with k = γ·invStd, x̂ = (x − mean)·invStd,
                // written as dx = k·dy + q·(x − mean) + c so that one fused pass computes it.
                float k = g[gamma.Offset + ch] * invStd;
                double meanDy = sumDy / count, meanDyXhat = sumDyXhat / count;
                float q = (float)(-k * invStd * meanDyXhat);
                float c0 = (float)(-k * meanDy);
                for (int i = 0; i < n; i++) Simd.Affine2(Plane(dx, i, ch), Plane(dy, i, ch), k, Plane(x, i, ch), mean, q, c0);
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
