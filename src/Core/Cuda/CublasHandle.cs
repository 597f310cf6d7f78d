using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// A cuBLAS handle bound to a stream, for float32 GEMMs on row-major matrices.
/// <para>
/// cuBLAS is column-major. A row-major matrix X (r×c, row stride ld) has the same bytes as the
/// column-major matrix Xᵀ (c×r, leading dimension ld). So the row-major product
/// C = α·op(A)·op(B) + β·C is computed as the column-major Cᵀ = α·op(B)ᵀ·op(A)ᵀ + β·Cᵀ:
/// the operands are swapped (B first), m and n are swapped, each keeps its own transpose flag,
/// and the leading dimensions are the row-major row strides. No data moves.
/// </para>
/// </summary>
public sealed class CublasHandle : IDisposable
{
    private readonly CUcontext _context;
    private readonly CublasHandleT _handle;
    private int _released;
    private bool _tf32;

    private CublasHandleT Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _released) != 0, this);
            return _handle;
        }
    }

    private CublasHandle(CUcontext context, CublasHandleT handle)
    {
        _context = context;
        _handle = handle;
    }

    /// <summary>Creates a handle in <paramref name="context"/> whose calls run on <paramref name="stream"/>; TF32 off.</summary>
    public static CublasHandle Create(CudaContext context, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(stream);
        NativeLibraries.Require(NativeLibraries.Cublas);
        context.MakeCurrent();
        Cublas.Check(Cublas.cublasCreate(out var handle));
        var result = new CublasHandle(context.Handle, handle);
        try
        {
            result.SetStream(stream);
            result.Tf32 = false;
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>cublasGetVersion: e.g. 120400 for cuBLAS 12.4.0.</summary>
    public int Version
    {
        get
        {
            Cublas.Check(Cublas.cublasGetVersion(Handle, out var version));
            return version;
        }
    }

    /// <summary>Runs subsequent calls on <paramref name="stream"/>.</summary>
    public void SetStream(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Cublas.Check(Cublas.cublasSetStream(Handle, stream.Handle));
    }

    /// <summary>
    /// A caller-owned workspace (cublasSetWorkspace). Needed before graph capture, where cuBLAS may
    /// not allocate; 32 MiB covers Hopper's largest kernels.
    /// </summary>
    public void SetWorkspace(CUdeviceptr workspace, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Cublas.Check(Cublas.cublasSetWorkspace(Handle, workspace, (nuint)bytes));
    }

    /// <summary>
    /// TF32 tensor cores for float32 GEMMs (Ampere and later): the math mode of the handle and the
    /// compute type of <see cref="GemmRowMajor"/> (CUBLAS_COMPUTE_32F_FAST_TF32 vs CUBLAS_COMPUTE_32F).
    /// Off by default: results then match a float32 CPU GEMM to rounding.
    /// </summary>
    public bool Tf32
    {
        get => _tf32;
        set
        {
            Cublas.Check(Cublas.cublasSetMathMode(Handle, value ? CublasMath.CUBLAS_TF32_TENSOR_OP_MATH : CublasMath.CUBLAS_DEFAULT_MATH));
            _tf32 = value;
        }
    }

    private CublasComputeType ComputeType => _tf32 ? CublasComputeType.CUBLAS_COMPUTE_32F_FAST_TF32 : CublasComputeType.CUBLAS_COMPUTE_32F;

    /// <summary>
    /// Row-major C (m×n, row stride ldc) = α·op(A)·op(B) + β·C, with op(A) m×k and op(B) k×n.
    /// A is stored m×k (k×m when <paramref name="transA"/>) with row stride lda; B is stored k×n
    /// (n×k when <paramref name="transB"/>) with row stride ldb. All addresses are device memory.
    /// </summary>
    public unsafe void GemmRowMajor(bool transA, bool transB, int m, int n, int k,
        float alpha, CUdeviceptr a, int lda, CUdeviceptr b, int ldb, float beta, CUdeviceptr c, int ldc)
    {
        var g = ColumnMajorGemm.FromRowMajor(transA, transB, m, n, k, lda, ldb, ldc);
        if (g.M == 0 || g.N == 0) return;
        Cublas.Check(Cublas.cublasGemmEx(Handle, g.TransFirst, g.TransSecond, g.M, g.N, g.K,
            &alpha, b, CudaDataType.CUDA_R_32F, g.LdFirst, a, CudaDataType.CUDA_R_32F, g.LdSecond,
            &beta, c, CudaDataType.CUDA_R_32F, g.Ldc, ComputeType, CublasGemmAlgo.CUBLAS_GEMM_DEFAULT));
    }

    /// <summary>
    /// <see cref="GemmRowMajor"/> for <paramref name="batch"/> independent products whose matrices
    /// are <paramref name="strideA"/>, <paramref name="strideB"/>, <paramref name="strideC"/> elements apart.
    /// </summary>
    public unsafe void GemmStridedBatchedRowMajor(bool transA, bool transB, int m, int n, int k,
        float alpha, CUdeviceptr a, int lda, long strideA, CUdeviceptr b, int ldb, long strideB,
        float beta, CUdeviceptr c, int ldc, long strideC, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        ArgumentOutOfRangeException.ThrowIfNegative(strideA);
        ArgumentOutOfRangeException.ThrowIfNegative(strideB);
        ArgumentOutOfRangeException.ThrowIfNegative(strideC);
        var g = ColumnMajorGemm.FromRowMajor(transA, transB, m, n, k, lda, ldb, ldc);
        if (g.M == 0 || g.N == 0 || batch == 0) return;
        Cublas.Check(Cublas.cublasSgemmStridedBatched(Handle, g.TransFirst, g.TransSecond, g.M, g.N, g.K,
            &alpha, b, g.LdFirst, strideB, a, g.LdSecond, strideA, &beta, c, g.Ldc, strideC, batch));
    }

    /// <summary>cublasSgemm as cuBLAS sees it (column-major), for callers that already think column-major.</summary>
    public unsafe void SgemmColumnMajor(CublasOperation transA, CublasOperation transB, int m, int n, int k,
        float alpha, CUdeviceptr a, int lda, CUdeviceptr b, int ldb, float beta, CUdeviceptr c, int ldc) =>
        Cublas.Check(Cublas.cublasSgemm(Handle, transA, transB, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~CublasHandle() => Release();

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        try
        {
            CudaContext.BindQuietly(_context);
            Cublas.cublasDestroy(_handle);
        }
        catch (Exception)
        {
            // Release paths (Dispose and finalizers) never throw.
        }
    }
}

/// <summary>
/// The column-major cuBLAS call that computes a row-major GEMM (see <see cref="CublasHandle"/>):
/// the first operand is B (transposed as B is), the second is A, and M/N are the row-major n/m.
/// </summary>
internal readonly record struct ColumnMajorGemm(
    CublasOperation TransFirst, CublasOperation TransSecond, int M, int N, int K, int LdFirst, int LdSecond, int Ldc)
{
    /// <summary>Validates a row-major GEMM's shapes and strides and maps it to the column-major call.</summary>
    public static ColumnMajorGemm FromRowMajor(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        // Row-major storage: A is m×k (k×m transposed), B is k×n (n×k), C is m×n; a row stride is at least a row.
        var aCols = transA ? m : k;
        var bCols = transB ? k : n;
        if (lda < Math.Max(1, aCols)) throw new ArgumentOutOfRangeException(nameof(lda), lda, $"row stride of A must be at least {Math.Max(1, aCols)}");
        if (ldb < Math.Max(1, bCols)) throw new ArgumentOutOfRangeException(nameof(ldb), ldb, $"row stride of B must be at least {Math.Max(1, bCols)}");
        if (ldc < Math.Max(1, n)) throw new ArgumentOutOfRangeException(nameof(ldc), ldc, $"row stride of C must be at least {Math.Max(1, n)}");
        return new ColumnMajorGemm(
            transB ? CublasOperation.CUBLAS_OP_T : CublasOperation.CUBLAS_OP_N,
            transA ? CublasOperation.CUBLAS_OP_T : CublasOperation.CUBLAS_OP_N,
            M: n, N: m, K: k, LdFirst: ldb, LdSecond: lda, Ldc: ldc);
    }
}
