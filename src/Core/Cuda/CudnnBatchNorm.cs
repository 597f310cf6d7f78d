using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// Batch normalisation over (N,H,W) per channel (CUDNN_BATCHNORM_SPATIAL) of packed NCHW float32
/// tensors at device addresses, with the conventions of <see cref="IBackend.BatchNormForwardTraining"/>:
/// <list type="bullet">
/// <item>training normalises with the batch's biased variance and saves the mean and
///   1/sqrt(var + eps) (cuDNN's "saved inverse variance" is that inverse standard deviation);</item>
/// <item>the running statistics follow PyTorch, r = (1 − momentum)·r + momentum·stat, i.e.
///   cuDNN's exponentialAverageFactor = momentum, and cuDNN, like PyTorch, feeds the UNBIASED
///   variance (Bessel-corrected, ×m/(m−1) for m = N·H·W values) into the running variance;</item>
/// <item>backward overwrites dx (alphaDataDiff 1, betaDataDiff 0) and ACCUMULATES into dgamma
///   and dbeta (alphaParamDiff 1, betaParamDiff 1).</item>
/// </list>
/// Parameters and statistics (gamma, beta, running and saved mean/variance) are C floats each.
/// </summary>
public sealed unsafe class CudnnBatchNorm : IDisposable
{
    private const CudnnBatchNormMode Mode = CudnnBatchNormMode.CUDNN_BATCHNORM_SPATIAL;

    private readonly CudnnHandle _handle;
    private readonly IDeviceWorkspace _scratch;
    private readonly Dictionary<Shape, (CudnnTensorDescriptor X, CudnnTensorDescriptor Param)> _descriptors = [];
    private bool _disposed;

    /// <param name="handle">The cuDNN handle (and so the stream) the calls run on.</param>
    /// <param name="scratch">Device memory for the parameter gradients cuDNN always writes when the caller wants none.</param>
    public CudnnBatchNorm(CudnnHandle handle, IDeviceWorkspace scratch)
    {
        _handle = handle ?? throw new ArgumentNullException(nameof(handle));
        _scratch = scratch ?? throw new ArgumentNullException(nameof(scratch));
    }

    /// <summary>
    /// y = gamma·(x − mean)/sqrt(var + eps) + beta with the batch statistics; saveMean and
    /// saveInvStd (C) receive the mean and 1/sqrt(var + eps) for backward; when
    /// <paramref name="updateRunning"/> is set, the running statistics are updated (else they are
    /// not touched: cuDNN gets null pointers for them).
    /// </summary>
    public void ForwardTraining(nint y, nint x, nint gamma, nint beta, nint runningMean, nint runningVar,
        nint saveMean, nint saveInvStd, Shape shape, float momentum, float eps, bool updateRunning)
    {
        ValidateTraining(shape, momentum, eps, updateRunning);
        var (xd, pd) = Descriptors(shape);
        float alpha = 1, blend = 0;
        CudnnErrors.Check(CuDnn.cudnnBatchNormalizationForwardTraining(_handle.Raw, Mode, &alpha, &blend,
            xd.Value, x, xd.Value, y, pd.Value, gamma, beta,
            updateRunning ? momentum : 0.0, updateRunning ? runningMean : 0, updateRunning ? runningVar : 0,
            eps, saveMean, saveInvStd));
    }

    /// <summary>Eval mode: y = gamma·(x − runningMean)/sqrt(runningVar + eps) + beta.</summary>
    public void ForwardInference(nint y, nint x, nint gamma, nint beta, nint runningMean, nint runningVar, Shape shape, float eps)
    {
        ValidateShape(shape);
        ValidateEps(eps);
        var (xd, pd) = Descriptors(shape);
        float alpha = 1, blend = 0;
        CudnnErrors.Check(CuDnn.cudnnBatchNormalizationForwardInference(_handle.Raw, Mode, &alpha, &blend,
            xd.Value, x, xd.Value, y, pd.Value, gamma, beta, runningMean, runningVar, eps));
    }

    /// <summary>
    /// dx (overwritten) and dgamma += , dbeta += for a training-mode forward whose saved mean and
    /// inverse std are given. Either parameter gradient may be 0 (not wanted). <paramref name="eps"/>
    /// must be the forward's.
    /// </summary>
    public void Backward(nint dx, nint dgamma, nint dbeta, nint dy, nint x, nint gamma,
        nint saveMean, nint saveInvStd, Shape shape, float eps)
    {
        ValidateShape(shape);
        ValidateEps(eps);
        var (xd, pd) = Descriptors(shape);
        var (dScale, dBias, betaParam) = ParamGradTargets(dgamma, dbeta, shape.C, _scratch);
        float alphaData = 1, betaData = 0, alphaParam = 1;
        CudnnErrors.Check(CuDnn.cudnnBatchNormalizationBackward(_handle.Raw, Mode,
            &alphaData, &betaData, &alphaParam, &betaParam,
            xd.Value, x, xd.Value, dy, xd.Value, dx,
            pd.Value, gamma, dScale, dBias, eps, saveMean, saveInvStd));
    }

    /// <summary>
    /// Where cuDNN writes dgamma and dbeta, and with which beta. cuDNN needs both pointers; a
    /// gradient not wanted goes to scratch. With both wanted or one wanted, beta is 1 (accumulate;
    /// the scratch half then holds garbage that is never read); with neither, 0.
    /// </summary>
    internal static (nint DScale, nint DBias, float BetaParam) ParamGradTargets(nint dgamma, nint dbeta, int channels, IDeviceWorkspace scratch)
    {
        if (dgamma != 0 && dbeta != 0) return (dgamma, dbeta, 1f);
        nint s = scratch.Acquire(2UL * (ulong)channels * sizeof(float));
        nint s2 = s + channels * sizeof(float);
        return (dgamma != 0 ? dgamma : s, dbeta != 0 ? dbeta : s2, dgamma == 0 && dbeta == 0 ? 0f : 1f);
    }

    internal static void ValidateTraining(Shape shape, float momentum, float eps, bool updateRunning)
    {
        ValidateShape(shape);
        ValidateEps(eps);
        if (!(momentum >= 0 && momentum <= 1))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "batch norm: momentum must be in [0, 1]");
        if (updateRunning && (long)shape.N * shape.H * shape.W < 2)
            throw new ArgumentException($"batch norm: training mode needs more than one value per channel, got input {shape}");
    }

    private static void ValidateShape(Shape shape)
    {
        if (shape.Rank != 4 || shape.N < 1 || shape.C < 1 || shape.H < 1 || shape.W < 1)
            throw new ArgumentException($"batch norm: expected a non-empty (N,C,H,W) input, got {shape}");
    }

    /// <summary>CUDNN_BN_MIN_EPSILON is 0 in cuDNN 9 (cudnn_ops.h).</summary>
    private static void ValidateEps(float eps)
    {
        if (!(eps >= 0) || float.IsInfinity(eps))
            throw new ArgumentOutOfRangeException(nameof(eps), eps, "batch norm: eps must be finite and non-negative");
    }

    /// <summary>x's descriptor (also used for y, dy, dx) and the 1×C×1×1 parameter descriptor, made once per shape.</summary>
    private (CudnnTensorDescriptor X, CudnnTensorDescriptor Param) Descriptors(Shape shape)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_descriptors.TryGetValue(shape, out var d)) return d;
        var xd = CudnnTensorDescriptor.Nchw(shape.N, shape.C, shape.H, shape.W);
        try
        {
            d = (xd, CudnnTensorDescriptor.Nchw(1, shape.C, 1, 1));
        }
        catch
        {
            xd.Dispose();
            throw;
        }
        _descriptors.Add(shape, d);
        return d;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var (x, p) in _descriptors.Values)
        {
            p.Dispose();
            x.Dispose();
        }
        _descriptors.Clear();
    }
}
