using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// cuDNN convolutions on packed NCHW float32 tensors at device addresses, with the engine's
/// conventions: forward and backward-data OVERWRITE their output (beta 0), backward-filter
/// ACCUMULATES into the weight gradient (beta 1), like every parameter gradient of the engine.
/// <para>
/// Per <see cref="ConvKey"/> (geometry, direction, TF32) one plan is made on first use: tensor,
/// filter and convolution descriptors, the algorithm (cuDNN's heuristics or Find, filtered by
/// <see cref="ConvAlgoOptions"/>) and its workspace size; the convolution descriptor then carries
/// the math type of the chosen row, as cuDNN requires. Plans are kept until disposal. Choose
/// (i.e. run each shape once) before capturing a CUDA graph: Find runs kernels and allocates.
/// </para>
/// </summary>
public sealed unsafe class CudnnConvolutions : IDisposable
{
    private readonly CudnnHandle _handle;
    private readonly IDeviceWorkspace _workspace;
    private readonly ConvPlanCache<Plan> _plans = new();

    public CudnnConvolutions(CudnnHandle handle, IDeviceWorkspace workspace, ConvAlgoOptions? options = null)
    {
        _handle = handle ?? throw new ArgumentNullException(nameof(handle));
        _workspace = workspace ?? throw new ArgumentNullException(nameof(workspace));
        Options = options ?? new ConvAlgoOptions();
    }

    public ConvAlgoOptions Options { get; }

    /// <summary>Allow TF32 tensor cores (10-bit mantissa products, float accumulation). Off: strict float32 FMA kernels.</summary>
    public bool AllowTf32 { get; set; }

    /// <summary>Plans made so far (one per key).</summary>
    public int PlanCount => _plans.Count;

    /// <summary>Every plan made so far: the shape and direction, the algorithm, the math type and the workspace.</summary>
    public IReadOnlyList<ConvPlanInfo> Plans =>
        [.. _plans.Entries.Select(e => new ConvPlanInfo(e.Key, e.Value.Algo, e.Value.MathType, e.Value.WorkspaceBytes, e.Value.Rows))];

    /// <summary>The algorithm and workspace chosen for <paramref name="key"/> (making the plan if needed).</summary>
    public (int Algo, ulong WorkspaceBytes, CudnnMathType MathType) Choice(ConvKey key)
    {
        var p = PlanFor(key);
        return (p.Algo, p.WorkspaceBytes, p.MathType);
    }

    /// <summary>y (N,K,OutH,OutW) = conv(x (N,C,H,W), w (K,C/G,R,S)).</summary>
    public void Forward(nint y, nint x, nint w, ConvShape shape)
    {
        var p = PlanFor(new ConvKey(shape, ConvDirection.Forward, AllowTf32));
        float alpha = 1, beta = 0;
        nint ws = _workspace.Acquire(p.WorkspaceBytes);
        CudnnErrors.Check(CuDnn.cudnnConvolutionForward(_handle.Raw, &alpha, p.X.Value, x, p.Filter.Value, w,
            p.Conv.Value, (CudnnConvolutionFwdAlgo)p.Algo, ws, (nuint)p.WorkspaceBytes, &beta, p.Y.Value, y));
    }

    /// <summary>dx (N,C,H,W) = the data gradient of the convolution, overwritten.</summary>
    public void BackwardData(nint dx, nint dy, nint w, ConvShape shape)
    {
        var p = PlanFor(new ConvKey(shape, ConvDirection.BackwardData, AllowTf32));
        float alpha = 1, beta = 0;
        nint ws = _workspace.Acquire(p.WorkspaceBytes);
        CudnnErrors.Check(CuDnn.cudnnConvolutionBackwardData(_handle.Raw, &alpha, p.Filter.Value, w, p.Y.Value, dy,
            p.Conv.Value, (CudnnConvolutionBwdDataAlgo)p.Algo, ws, (nuint)p.WorkspaceBytes, &beta, p.X.Value, dx));
    }

    /// <summary>dw (K,C/G,R,S) += the filter gradient of the convolution.</summary>
    public void BackwardFilter(nint dw, nint x, nint dy, ConvShape shape)
    {
        var p = PlanFor(new ConvKey(shape, ConvDirection.BackwardFilter, AllowTf32));
        float alpha = 1, beta = 1;
        nint ws = _workspace.Acquire(p.WorkspaceBytes);
        CudnnErrors.Check(CuDnn.cudnnConvolutionBackwardFilter(_handle.Raw, &alpha, p.X.Value, x, p.Y.Value, dy,
            p.Conv.Value, (CudnnConvolutionBwdFilterAlgo)p.Algo, ws, (nuint)p.WorkspaceBytes, &beta, p.Filter.Value, dw));
    }

    public void Dispose() => _plans.Dispose();

    private Plan PlanFor(ConvKey key) => _plans.GetOrAdd(key, CreatePlan);

    private Plan CreatePlan(ConvKey key)
    {
        var s = key.Shape;
        s.Validate();
        var plan = new Plan
        {
            X = CudnnTensorDescriptor.Nchw(s.N, s.C, s.H, s.W),
        };
        try
        {
            plan.Filter = CudnnFilterDescriptor.Kcrs(s.K, s.C / s.Groups, s.R, s.S);
            plan.Y = CudnnTensorDescriptor.Nchw(s.N, s.K, s.OutH, s.OutW);
            plan.Conv = CudnnConvolutionDescriptor.Create(s, ConvAlgoSelection.MathTypeFor(key.Tf32));
            plan.Rows = Candidates(key.Direction, plan);
            var choice = ConvAlgoSelection.Pick(plan.Rows, key, Options);
            // The row may carry another math type than the descriptor's (DEFAULT, TENSOR_OP); cuDNN
            // expects the descriptor to say the one the algorithm runs with before the call, and the
            // workspace depends on it, so the size is asked again afterwards.
            CudnnErrors.Check(CuDnn.cudnnSetConvolutionMathType(plan.Conv.Value, choice.MathType));
            plan.Algo = choice.Algo;
            plan.MathType = choice.MathType;
            plan.WorkspaceBytes = WorkspaceSize(key.Direction, plan);
        }
        catch
        {
            plan.Dispose();
            throw;
        }
        return plan;
    }

    /// <summary>
    /// Every row cuDNN lists for the plan's descriptors, best first, into a buffer sized by
    /// cudnnGetConvolution*AlgorithmMaxCount: the rows are per algorithm and math type, so there
    /// can be more of them than the *_ALGO_COUNT enumerant, and a buffer of that size would cut the
    /// list short.
    /// </summary>
    private ConvAlgoCandidate[] Candidates(ConvDirection direction, Plan p)
    {
        var h = _handle.Raw;
        bool find = Options.Search == ConvAlgoSearch.Find;
        int max, returned;
        switch (direction)
        {
            case ConvDirection.Forward:
            {
                CudnnErrors.Check(CuDnn.cudnnGetConvolutionForwardAlgorithmMaxCount(h, out max));
                var rows = new CudnnConvolutionFwdAlgoPerf[Math.Max(1, max)];
                fixed (CudnnConvolutionFwdAlgoPerf* r = rows)
                    CudnnErrors.Check(find
                        ? CuDnn.cudnnFindConvolutionForwardAlgorithm(h, p.X.Value, p.Filter.Value, p.Conv.Value, p.Y.Value, rows.Length, out returned, r)
                        : CuDnn.cudnnGetConvolutionForwardAlgorithm_v7(h, p.X.Value, p.Filter.Value, p.Conv.Value, p.Y.Value, rows.Length, out returned, r));
                return [.. rows.Take(Math.Clamp(returned, 0, rows.Length)).Select(x => ConvAlgoCandidate.From(x))];
            }
            case ConvDirection.BackwardData:
            {
                CudnnErrors.Check(CuDnn.cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, out max));
                var rows = new CudnnConvolutionBwdDataAlgoPerf[Math.Max(1, max)];
                fixed (CudnnConvolutionBwdDataAlgoPerf* r = rows)
                    CudnnErrors.Check(find
                        ? CuDnn.cudnnFindConvolutionBackwardDataAlgorithm(h, p.Filter.Value, p.Y.Value, p.Conv.Value, p.X.Value, rows.Length, out returned, r)
                        : CuDnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.Filter.Value, p.Y.Value, p.Conv.Value, p.X.Value, rows.Length, out returned, r));
                return [.. rows.Take(Math.Clamp(returned, 0, rows.Length)).Select(x => ConvAlgoCandidate.From(x))];
            }
            default:
            {
                CudnnErrors.Check(CuDnn.cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, out max));
                var rows = new CudnnConvolutionBwdFilterAlgoPerf[Math.Max(1, max)];
                fixed (CudnnConvolutionBwdFilterAlgoPerf* r = rows)
                    CudnnErrors.Check(find
                        ? CuDnn.cudnnFindConvolutionBackwardFilterAlgorithm(h, p.X.Value, p.Y.Value, p.Conv.Value, p.Filter.Value, rows.Length, out returned, r)
                        : CuDnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.X.Value, p.Y.Value, p.Conv.Value, p.Filter.Value, rows.Length, out returned, r));
                return [.. rows.Take(Math.Clamp(returned, 0, rows.Length)).Select(x => ConvAlgoCandidate.From(x))];
            }
        }
    }

    /// <summary>The exact size for the chosen algorithm and math type (the perf row's figure is asked again after setting the math type).</summary>
    private ulong WorkspaceSize(ConvDirection direction, Plan p)
    {
        var h = _handle.Raw;
        nuint bytes;
        switch (direction)
        {
            case ConvDirection.Forward:
                CudnnErrors.Check(CuDnn.cudnnGetConvolutionForwardWorkspaceSize(h, p.X.Value, p.Filter.Value, p.Conv.Value,
                    p.Y.Value, (CudnnConvolutionFwdAlgo)p.Algo, out bytes));
                break;
            case ConvDirection.BackwardData:
                CudnnErrors.Check(CuDnn.cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.Filter.Value, p.Y.Value, p.Conv.Value,
                    p.X.Value, (CudnnConvolutionBwdDataAlgo)p.Algo, out bytes));
                break;
            default:
                CudnnErrors.Check(CuDnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.X.Value, p.Y.Value, p.Conv.Value,
                    p.Filter.Value, (CudnnConvolutionBwdFilterAlgo)p.Algo, out bytes));
                break;
        }
        return bytes;
    }

    /// <summary>Descriptors of x (N,C,H,W), w (K,C/G,R,S), y (N,K,OutH,OutW), the convolution, and the choice.</summary>
    private sealed class Plan : IDisposable
    {
        public required CudnnTensorDescriptor X;
        public CudnnFilterDescriptor Filter = null!;
        public CudnnTensorDescriptor Y = null!;
        public CudnnConvolutionDescriptor Conv = null!;
        public int Algo;
        public CudnnMathType MathType;
        public ulong WorkspaceBytes;
        /// <summary>Every row cuDNN listed, as it listed them (kept for the self-test's report).</summary>
        public ConvAlgoCandidate[] Rows = [];

        public void Dispose()
        {
            Conv?.Dispose();
            Y?.Dispose();
            Filter?.Dispose();
            X.Dispose();
        }
    }
}
