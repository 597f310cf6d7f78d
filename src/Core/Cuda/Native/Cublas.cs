using System.Runtime.InteropServices;

namespace RlMixup.Core.Cuda.Native;

/// <summary>
/// cuBLAS declarations (libcublas), checked against cublas_api.h of cuBLAS 12.6.4 (CUDA 12.6) and
/// cublas_v2.h's name mapping; the same symbols are exported by libcublas.so.13.
/// Declarations only. The _v2 entry points are what cublas_v2.h maps the plain names to.
/// Matrices are column-major; A, B, C are device addresses; alpha and beta are host pointers
/// (the default CUBLAS_POINTER_MODE_HOST). cudaStream_t is the driver's CUstream.
/// </summary>
internal static unsafe partial class Cublas
{
    private const string Lib = NativeLibraries.Cublas;

    [LibraryImport(Lib, EntryPoint = "cublasCreate_v2")]
    internal static partial CublasStatus cublasCreate(out CublasHandleT handle);

    [LibraryImport(Lib, EntryPoint = "cublasDestroy_v2")]
    internal static partial CublasStatus cublasDestroy(CublasHandleT handle);

    [LibraryImport(Lib, EntryPoint = "cublasGetVersion_v2")]
    internal static partial CublasStatus cublasGetVersion(CublasHandleT handle, out int version);

    [LibraryImport(Lib, EntryPoint = "cublasSetStream_v2")]
    internal static partial CublasStatus cublasSetStream(CublasHandleT handle, CUstream streamId);

    /// <summary>A user-owned workspace: needed for graph capture, where cuBLAS must not allocate.</summary>
    [LibraryImport(Lib, EntryPoint = "cublasSetWorkspace_v2")]
    internal static partial CublasStatus cublasSetWorkspace(CublasHandleT handle, CUdeviceptr workspace, nuint workspaceSizeInBytes);

    /// <summary>No _v2 variant exists.</summary>
    [LibraryImport(Lib, EntryPoint = "cublasSetMathMode")]
    internal static partial CublasStatus cublasSetMathMode(CublasHandleT handle, CublasMath mode);

    [LibraryImport(Lib, EntryPoint = "cublasSgemm_v2")]
    internal static partial CublasStatus cublasSgemm(CublasHandleT handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, float* alpha, CUdeviceptr a, int lda, CUdeviceptr b, int ldb,
        float* beta, CUdeviceptr c, int ldc);

    [LibraryImport(Lib, EntryPoint = "cublasGemmEx")]
    internal static partial CublasStatus cublasGemmEx(CublasHandleT handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, void* alpha, CUdeviceptr a, CudaDataType aType, int lda,
        CUdeviceptr b, CudaDataType bType, int ldb, void* beta, CUdeviceptr c, CudaDataType cType, int ldc,
        CublasComputeType computeType, CublasGemmAlgo algo);

    /// <summary>Strides are in elements (long long).</summary>
    [LibraryImport(Lib, EntryPoint = "cublasSgemmStridedBatched")]
    internal static partial CublasStatus cublasSgemmStridedBatched(CublasHandleT handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, float* alpha, CUdeviceptr a, int lda, long strideA, CUdeviceptr b, int ldb, long strideB,
        float* beta, CUdeviceptr c, int ldc, long strideC, int batchCount);

    /// <summary>Static strings (CUDA 11.4.2+).</summary>
    [LibraryImport(Lib, EntryPoint = "cublasGetStatusName")]
    internal static partial byte* cublasGetStatusName(CublasStatus status);

    [LibraryImport(Lib, EntryPoint = "cublasGetStatusString")]
    internal static partial byte* cublasGetStatusString(CublasStatus status);
}
