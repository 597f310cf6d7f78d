using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// The full geometry of one 2-D convolution on NCHW float32 tensors: input (N,C,H,W), filter
/// (K, C/Groups, R, S), stride, zero padding and dilation per axis.
/// </summary>
public readonly record struct ConvShape(
    int N, int C, int H, int W, int K, int R, int S,
    int StrideH, int StrideW, int PadH, int PadW, int DilationH = 1, int DilationW = 1, int Groups = 1)
{
    /// <summary>The shape of conv2d(x (N,C,H,W), w (K,C,R,S)) with the engine's spec (no dilation, one group).</summary>
    public static ConvShape From(Shape x, Shape w, Conv2dSpec spec)
    {
        spec.OutputShape(x, w); // checks ranks, channels, stride, padding and kernel size
        return new ConvShape(x.N, x.C, x.H, x.W, w.N, w.H, w.W, spec.StrideH, spec.StrideW, spec.PadH, spec.PadW);
    }

    // 0 when the dilated kernel does not fit or the stride is not positive (ToString lists these,
    // so they must not throw on an invalid shape).
    public int OutH => OutSize(H, PadH, DilationH * (R - 1) + 1, StrideH);
    public int OutW => OutSize(W, PadW, DilationW * (S - 1) + 1, StrideW);

    private static int OutSize(int size, int pad, int extent, int stride) =>
        stride < 1 || size + 2 * pad < extent ? 0 : (size + 2 * pad - extent) / stride + 1;

    /// <summary>Throws <see cref="ArgumentException"/> for a geometry cuDNN would reject, naming the field.</summary>
    public void Validate()
    {
        if (N < 1 || C < 1 || H < 1 || W < 1 || K < 1 || R < 1 || S < 1)
            throw new ArgumentException($"conv2d: every dimension must be positive, got {this}");
        if (StrideH < 1 || StrideW < 1 || DilationH < 1 || DilationW < 1 || PadH < 0 || PadW < 0)
            throw new ArgumentException($"conv2d: invalid stride, dilation or padding in {this}");
        if (Groups < 1 || C % Groups != 0 || K % Groups != 0)
            throw new ArgumentException($"conv2d: {Groups} groups must divide C = {C} and K = {K}");
        if (OutH < 1 || OutW < 1)
            throw new ArgumentException($"conv2d: the dilated kernel is larger than the padded input in {this}");
    }
}

/// <summary>Which of the three convolution calls a plan serves.</summary>
public enum ConvDirection { Forward, BackwardData, BackwardFilter }

/// <summary>
/// The algorithm-cache key: the whole geometry, the direction and whether TF32 is allowed. Two
/// calls with equal keys get the same algorithm and workspace size; anything that can change
/// cuDNN's choice is part of the key.
/// </summary>
public readonly record struct ConvKey(ConvShape Shape, ConvDirection Direction, bool Tf32);

/// <summary>How algorithms are chosen, once per <see cref="ConvKey"/>.</summary>
public enum ConvAlgoSearch
{
    /// <summary>cudnnGetConvolution*Algorithm_v7: cuDNN's heuristics, nothing runs on the device.</summary>
    Heuristic,
    /// <summary>cudnnFindConvolution*Algorithm: times every algorithm on the device (slow once, fastest after).</summary>
    Find,
}

/// <summary>Algorithm-choice policy.</summary>
/// <param name="Search">Heuristics or measurement.</param>
/// <param name="Deterministic">Only algorithms cuDNN reports as deterministic (no atomics), so a run repeats bit for bit.</param>
/// <param name="MaxWorkspaceBytes">Algorithms needing more workspace are skipped.</param>
public sealed record ConvAlgoOptions(
    ConvAlgoSearch Search = ConvAlgoSearch.Heuristic,
    bool Deterministic = true,
    ulong MaxWorkspaceBytes = 256UL << 20);

/// <summary>One row of cuDNN's perf results, the same for the three directions (algo as its number).</summary>
public readonly record struct ConvAlgoCandidate(
    int Algo, CudnnStatus Status, float TimeMs, ulong WorkspaceBytes, CudnnDeterminism Determinism, CudnnMathType MathType)
{
    internal static ConvAlgoCandidate From(in CudnnConvolutionFwdAlgoPerf p) =>
        new((int)p.Algo, p.Status, p.Time, p.Memory, p.Determinism, p.MathType);
    internal static ConvAlgoCandidate From(in CudnnConvolutionBwdDataAlgoPerf p) =>
        new((int)p.Algo, p.Status, p.Time, p.Memory, p.Determinism, p.MathType);
    internal static ConvAlgoCandidate From(in CudnnConvolutionBwdFilterAlgoPerf p) =>
        new((int)p.Algo, p.Status, p.Time, p.Memory, p.Determinism, p.MathType);
}

public static class ConvAlgoSelection
{
    /// <summary>
    /// The math type requested on the convolution descriptor, PyTorch's choice: with TF32 allowed,
    /// CUDNN_DEFAULT_MATH (on Ampere and later it permits TF32 tensor cores for float convolutions);
    /// without, CUDNN_FMA_MATH (plain float32 FMA kernels). Never ALLOW_CONVERSION: it also lets
    /// cuDNN convert float32 inputs to fp16, 3 decimal digits instead of TF32's.
    /// </summary>
    public static CudnnMathType MathTypeFor(bool tf32) =>
        tf32 ? CudnnMathType.CUDNN_DEFAULT_MATH : CudnnMathType.CUDNN_FMA_MATH;

    /// <summary>
    /// The first acceptable row of cuDNN's list (which comes best first), and the math type to set on
    /// the descriptor for it. cuDNN's rows are not all usable, and a row's math type need not be the
    /// descriptor's: the queries list each algorithm once per math type it was tried with
    /// (CUDNN_TENSOR_OP_MATH for a tensor-core kernel, CUDNN_DEFAULT_MATH otherwise, whatever the
    /// descriptor said), rows that cannot run the configuration say NOT_SUPPORTED, and each row says
    /// whether it is deterministic. A row is refused when its status is not SUCCESS, its workspace is
    /// over the limit, it is not deterministic and determinism is required, its math type is
    /// ALLOW_CONVERSION (fp16 inputs), or, with TF32 off, TENSOR_OP_MATH (a tensor-core kernel).
    /// With TF32 on, the row's own math type goes on the descriptor. With TF32 off, a DEFAULT or FMA
    /// row is taken and run with CUDNN_FMA_MATH, strict float32, as PyTorch runs it (it sets FMA on
    /// the descriptor whenever float TF32 is off and asserts that the chosen row's math is FMA).
    /// </summary>
    /// <exception cref="InvalidOperationException">No row qualifies; the message lists every row and why it was refused.</exception>
    public static ConvAlgoChoice Pick(ReadOnlySpan<ConvAlgoCandidate> rows, ConvKey key, ConvAlgoOptions options)
    {
        var refused = new List<string>();
        foreach (var r in rows)
        {
            string? why =
                r.Status != CudnnStatus.CUDNN_STATUS_SUCCESS ? CudnnErrors.StatusName(r.Status)
                : r.WorkspaceBytes > options.MaxWorkspaceBytes ? $"needs {r.WorkspaceBytes} B of workspace"
                : options.Deterministic && r.Determinism != CudnnDeterminism.CUDNN_DETERMINISTIC ? "not deterministic"
                : r.MathType == CudnnMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ? $"{r.MathType} (converts float32 inputs to fp16)"
                : !key.Tf32 && r.MathType is not (CudnnMathType.CUDNN_DEFAULT_MATH or CudnnMathType.CUDNN_FMA_MATH) ? $"{r.MathType} (tensor cores, with TF32 off)"
                : null;
            if (why == null) return new ConvAlgoChoice(r, key.Tf32 ? r.MathType : CudnnMathType.CUDNN_FMA_MATH);
            refused.Add($"algo {r.Algo} {r.MathType}: {why}");
        }
        throw new InvalidOperationException(
            $"cuDNN: no usable {key.Direction} algorithm for {key.Shape} (TF32 {(key.Tf32 ? "on" : "off")}, " +
            $"deterministic {(options.Deterministic ? "required" : "not required")}, workspace limit {options.MaxWorkspaceBytes} B); " +
            (refused.Count == 0 ? "cuDNN returned none" : "refused: " + string.Join("; ", refused)));
    }

    /// <summary>The enumerant's name of algorithm <paramref name="algo"/> in <paramref name="direction"/> (CUDNN_CONVOLUTION_FWD_ALGO_GEMM, …).</summary>
    public static string AlgoName(ConvDirection direction, int algo) => direction switch
    {
        ConvDirection.Forward => ((CudnnConvolutionFwdAlgo)algo).ToString(),
        ConvDirection.BackwardData => ((CudnnConvolutionBwdDataAlgo)algo).ToString(),
        _ => ((CudnnConvolutionBwdFilterAlgo)algo).ToString(),
    };
}

/// <summary>The row <see cref="ConvAlgoSelection.Pick"/> chose and the math type it runs with (set on the descriptor).</summary>
public readonly record struct ConvAlgoChoice(ConvAlgoCandidate Row, CudnnMathType MathType)
{
    public int Algo => Row.Algo;
    public ulong WorkspaceBytes => Row.WorkspaceBytes;
}

/// <summary>
/// One plan as made: the key, the algorithm, the math type on the descriptor, the workspace it
/// needs, and every row cuDNN listed for it (what a first run on a new GPU most needs to see).
/// </summary>
public readonly record struct ConvPlanInfo(ConvKey Key, int Algo, CudnnMathType MathType, ulong WorkspaceBytes, IReadOnlyList<ConvAlgoCandidate> Rows)
{
    public string AlgoName => ConvAlgoSelection.AlgoName(Key.Direction, Algo);

    /// <summary>"x (8,16,16,16) w (32,16,3,3) stride 2×2 pad 1×1": the geometry in one short line.</summary>
    public string Geometry
    {
        get
        {
            var s = Key.Shape;
            string g = $"x ({s.N},{s.C},{s.H},{s.W}) w ({s.K},{s.C / s.Groups},{s.R},{s.S}) stride {s.StrideH}×{s.StrideW} pad {s.PadH}×{s.PadW}";
            if (s.DilationH != 1 || s.DilationW != 1) g += $" dilation {s.DilationH}×{s.DilationW}";
            return s.Groups != 1 ? g + $" groups {s.Groups}" : g;
        }
    }
}

/// <summary>
/// Plans by key, each created once (descriptors, algorithm, workspace size) and disposed with the cache.
/// </summary>
public sealed class ConvPlanCache<TPlan> : IDisposable where TPlan : class
{
    private readonly Dictionary<ConvKey, TPlan> _plans = [];

    public int Count => _plans.Count;

    /// <summary>Every plan made so far, with its key, in no particular order.</summary>
    public IEnumerable<KeyValuePair<ConvKey, TPlan>> Entries => _plans;

    public TPlan GetOrAdd(ConvKey key, Func<ConvKey, TPlan> create)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_plans.TryGetValue(key, out var plan))
        {
            plan = create(key);
            _plans.Add(key, plan);
        }
        return plan;
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var plan in _plans.Values) (plan as IDisposable)?.Dispose();
        _plans.Clear();
    }
}

/// <summary>
/// Device memory for cuDNN's workspaces. <see cref="Acquire"/> returns the address of at least
/// <c>bytes</c> bytes, valid for work enqueued on the handle's stream until the next call; 0 bytes
/// may return 0.
/// </summary>
public interface IDeviceWorkspace
{
    nint Acquire(ulong bytes);
}

/// <summary>
/// One grow-only device buffer from injected allocate/free functions: it grows (to a multiple of
/// <see cref="Granularity"/>) when a larger workspace is asked for and is never shrunk. The free
/// function must be safe for memory still used by enqueued work, i.e. stream-ordered
/// (cuMemFreeAsync on the same stream) or synchronising (cuMemFree).
/// </summary>
public sealed class GrowingDeviceWorkspace(Func<ulong, nint> allocate, Action<nint> free) : IDeviceWorkspace, IDisposable
{
    public const ulong Granularity = 1UL << 20;

    private nint _address;
    private bool _disposed;

    public ulong Capacity { get; private set; }

    public nint Acquire(ulong bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (bytes == 0) return _address;
        if (bytes > Capacity)
        {
            ulong size = (bytes + Granularity - 1) / Granularity * Granularity;
            if (_address != 0) free(_address);
            _address = 0;
            Capacity = 0;
            _address = allocate(size);
            if (_address == 0) throw new InvalidOperationException($"workspace allocation of {size} bytes returned a null address");
            Capacity = size;
        }
        return _address;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_address != 0) free(_address);
        _address = 0;
        Capacity = 0;
    }
}
