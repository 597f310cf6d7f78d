// cublas.cpp — the cuBLAS subset the backend calls (src/Core/Cuda/Native/Cublas.cs) on the software
// device: handles, streams, workspace and math mode, and float32 GEMM (cublasSgemm_v2,
// cublasSgemmStridedBatched, cublasGemmEx with CUDA_R_32F operands) as plain loops on the host.
// About 530 lines, over the usual 400: one API family with its reasons written down, kept in one
// file as driver.cpp keeps the driver API.
//
// Semantics follow the cuBLAS documentation (column-major, C = alpha·op(A)·op(B) + beta·C):
//   * arguments are validated at the call, in the order handle (NOT_INITIALIZED) → operand and
//     compute types (cublasGemmEx: NOT_SUPPORTED) → values (INVALID_VALUE) → quick return (m == 0, n == 0 or batchCount == 0: nothing is touched) →
//     operand extents; then the product is queued on the handle's stream and runs when the stream
//     is synchronised. alpha and beta are host scalars (CUBLAS_POINTER_MODE_HOST, the only mode the
//     backend uses) and are read at the call, as cuBLAS does.
//   * k == 0 or alpha == 0: C = beta·C and A, B are not read (reference BLAS); beta == 0: C is only
//     written, never read, so the NaN a fresh allocation holds does not leak into the result.
//   * products are summed in double from inputs that are first rounded as the chosen math would
//     round them (TF32, fp16 or bf16), then alpha·sum + beta·C is rounded once to float.
//
// Error codes for things cuBLAS itself does not check:
//   * A bad device operand (null A or B, host memory, freed memory, an extent past an allocation's
//     end) → CUBLAS_STATUS_EXECUTION_FAILED. cuBLAS does not validate device pointers: on a GPU the
//     GEMM kernel would hit an illegal address, which the documentation's EXECUTION_FAILED ("the GPU
//     program failed to execute") describes. The software device fails the call at once instead of
//     queueing work that would fault, so the report names the call and the operand and the context
//     stays usable. A null C is INVALID_VALUE, and so are null alpha/beta, as the cuBLAS 12
//     documentation lists them (a device address given for a host scalar is treated the same).
//   * A context with a sticky error (an earlier kernel fault): kernel launches fail there, so every
//     GEMM returns EXECUTION_FAILED. An operand freed between the call and the stream reaching the
//     work is an illegal address at run time: a fault, the sticky CUDA_ERROR_ILLEGAL_ADDRESS.
//   * Every failed check records one violation line (swdev::violation), as the driver face does.
//
// TF32 (and the other reduced-precision inputs), decided at the call from the handle and the call:
//   cublasSgemm_v2 / cublasSgemmStridedBatched, and cublasGemmEx with CUBLAS_COMPUTE_32F: TF32 when
//     the handle's math mode is CUBLAS_TF32_TENSOR_OP_MATH; fp16 inputs under the deprecated
//     CUBLAS_TENSOR_OP_MATH ("single precision GEMMs use CUBLAS_COMPUTE_32F_FAST_16F"); exact under
//     CUBLAS_DEFAULT_MATH and CUBLAS_PEDANTIC_MATH.
//   cublasGemmEx's explicit compute types win over the math mode: CUBLAS_COMPUTE_32F_PEDANTIC is
//     always exact, _FAST_TF32 always TF32, _FAST_16F fp16, _FAST_16BF bf16.
//   NVIDIA_TF32_OVERRIDE=0 in the environment turns TF32 off everywhere, as it does NVIDIA's libraries.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "swdev.h"

using namespace swdev;

// ---- cuBLAS's C types (values as in cublas_api.h of cuBLAS 12.6.4 and library_types.h of CUDA 12.6)

enum cublasStatus_t : int {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16,
};

enum cublasOperation_t : int { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };

enum cublasMath_t : int {
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_TENSOR_OP_MATH = 1,  // deprecated
    CUBLAS_PEDANTIC_MATH = 2,
    CUBLAS_TF32_TENSOR_OP_MATH = 3,
    CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16,  // a flag, or-ed with one of the above
};

enum cublasComputeType_t : int {
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_16F_PEDANTIC = 65,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_64F = 70,
    CUBLAS_COMPUTE_64F_PEDANTIC = 71,
    CUBLAS_COMPUTE_32I = 72,
    CUBLAS_COMPUTE_32I_PEDANTIC = 73,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
};

// The subset of cudaDataType used here; the others are passed through as values and refused.
enum cudaDataType_t : int { CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_R_16BF = 14 };
typedef cudaDataType_t cudaDataType;

// CUBLAS_GEMM_DEFAULT, CUBLAS_GEMM_ALGO0..23, CUBLAS_GEMM_DEFAULT_TENSOR_OP, ..._ALGO0..15_TENSOR_OP.
enum cublasGemmAlgo_t : int {
    CUBLAS_GEMM_DEFAULT = -1,
    CUBLAS_GEMM_ALGO23 = 23,
    CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99,
    CUBLAS_GEMM_ALGO15_TENSOR_OP = 115,
};

struct cublasContext;
typedef cublasContext* cublasHandle_t;
typedef CUstream_st* cudaStream_t;  // the runtime's stream is the driver's CUstream

// A handle's state. Handles are never freed: a destroyed one's address is not handed out again, so
// a use after cublasDestroy is recognised (as the runtime does for device memory).
struct cublasContext {
    CUstream stream = nullptr;                 // cublasSetStream; the legacy default stream at first
    cublasMath_t math = CUBLAS_DEFAULT_MATH;   // cublasSetMathMode
    const void* workspace = nullptr;           // cublasSetWorkspace; null: the library's own pool
    size_t workspace_bytes = 0;
};

namespace {

constexpr int kVersion = 12 * 10000 + 6 * 100 + 4;  // cuBLAS 12.6.4, as cublasGetVersion encodes it

std::set<const cublasContext*>& live_handles() {
    static std::set<const cublasContext*> s;
    return s;
}

// The live handle `h`, or null after reporting it (the caller holds lock()).
cublasContext* handle_of(const char* call, cublasHandle_t h) {
    if (h && live_handles().count(h)) return h;
    violation(call, h ? "handle is not a live cuBLAS handle (destroyed, or never created by cublasCreate)"
                      : "handle is null");
    return nullptr;
}

cublasStatus_t invalid(const char* call, const std::string& message) {
    violation(call, message);
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t unsupported(const char* call, const std::string& message) {
    violation(call, message + " is not supported by the software device");
    return CUBLAS_STATUS_NOT_SUPPORTED;
}

// How the inputs are rounded before they are multiplied: the reduced-precision formats tensor cores
// read float32 operands in.
enum class Rounding { Exact, Tf32, Fp16, Bf16 };

float round_bf16(float x) {  // to 8 mantissa bits, round to nearest even
    uint32_t u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0x7F800000u) return x;  // Inf and NaN unchanged
    u += 0x7FFFu + ((u >> 16) & 1u);
    u &= 0xFFFF0000u;
    std::memcpy(&x, &u, 4);
    return x;
}

double rounded(float x, Rounding r) {
    switch (r) {
        case Rounding::Tf32: return round_tf32(x);
        case Rounding::Fp16: return round_fp16(x);
        case Rounding::Bf16: return round_bf16(x);
        case Rounding::Exact: break;
    }
    return x;
}

// The rounding a float32 GEMM gets from its compute type and the handle's math mode (see the top).
Rounding rounding_for(cublasComputeType_t compute, cublasMath_t math) {
    Rounding r = Rounding::Exact;
    switch (compute) {
        case CUBLAS_COMPUTE_32F: {
            int mode = math & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
            if (mode == CUBLAS_TF32_TENSOR_OP_MATH) r = Rounding::Tf32;
            else if (mode == CUBLAS_TENSOR_OP_MATH) r = Rounding::Fp16;
            break;
        }
        case CUBLAS_COMPUTE_32F_FAST_TF32: r = Rounding::Tf32; break;
        case CUBLAS_COMPUTE_32F_FAST_16F: r = Rounding::Fp16; break;
        case CUBLAS_COMPUTE_32F_FAST_16BF: r = Rounding::Bf16; break;
        default: break;  // CUBLAS_COMPUTE_32F_PEDANTIC
    }
    const char* override_tf32 = std::getenv("NVIDIA_TF32_OVERRIDE");
    if (r == Rounding::Tf32 && override_tf32 && std::strcmp(override_tf32, "0") == 0) r = Rounding::Exact;
    return r;
}

// ---- the product, as it runs when the stream gets to it

// One queued GEMM or strided batch of them: every value copied at the call. Strides are in elements.
struct Product {
    bool ta, tb;
    int m, n, k, batch;
    double alpha, beta;
    const float* A; int lda; long long strideA;
    const float* B; int ldb; long long strideB;
    float* C; int ldc; long long strideC;
    Rounding rounding;
};

// C[i0..i0+MI, j0..j0+NJ] from the packed operands: a = op(A) by rows (row i at a + i·k), b = op(B) by
// columns (column j at b + j·k). MI × NJ independent sums keep the loop from waiting on one add chain.
template <int MI, int NJ>
void block(const Product& p, const double* a, const double* b, float* C, size_t i0, size_t j0) {
    const size_t k = static_cast<size_t>(p.k);
    const double* row[MI];
    const double* col[NJ];
    for (int i = 0; i < MI; i++) row[i] = a + (i0 + i) * k;
    for (int j = 0; j < NJ; j++) col[j] = b + (j0 + j) * k;
    double acc[MI][NJ] = {};
    for (size_t q = 0; q < k; q++)
        for (int i = 0; i < MI; i++)
            for (int j = 0; j < NJ; j++) acc[i][j] += row[i][q] * col[j][q];
    for (int i = 0; i < MI; i++)
        for (int j = 0; j < NJ; j++) {
            float& c = C[(i0 + i) + (j0 + j) * static_cast<size_t>(p.ldc)];
            double v = p.alpha * acc[i][j];
            if (p.beta != 0) v += p.beta * static_cast<double>(c);  // beta == 0: C is not read
            c = static_cast<float>(v);
        }
}

// C = beta·C, without reading C when beta == 0 (and not writing it when beta == 1).
void scale(const Product& p, float* C) {
    if (p.beta == 1) return;
    for (size_t j = 0; j < static_cast<size_t>(p.n); j++)
        for (size_t i = 0; i < static_cast<size_t>(p.m); i++) {
            float& c = C[i + j * static_cast<size_t>(p.ldc)];
            c = p.beta == 0 ? 0.0f : static_cast<float>(p.beta * static_cast<double>(c));
        }
}

void run(const Product& p) {
    const size_t m = p.m, n = p.n, k = p.k, lda = p.lda, ldb = p.ldb;
    std::vector<double> a, b;  // op(A) by rows and op(B) by columns, rounded, reused across the batch
    if (k > 0 && p.alpha != 0) {
        a.resize(m * k);
        b.resize(n * k);
    }
    for (long long s = 0; s < p.batch; s++) {
        float* C = p.C + s * p.strideC;
        if (k == 0 || p.alpha == 0) {  // A and B are not read (and may be null when k == 0)
            scale(p, C);
            continue;
        }
        const float* A = p.A + s * p.strideA;
        const float* B = p.B + s * p.strideB;
        // op(A)[i][q] is A[i + q·lda] (N) or A[q + i·lda] (T, C); read A down its columns either way.
        for (size_t col = 0; col < (p.ta ? m : k); col++)
            for (size_t row = 0; row < (p.ta ? k : m); row++) {
                double v = rounded(A[row + col * lda], p.rounding);
                if (p.ta) a[col * k + row] = v;
                else a[row * k + col] = v;
            }
        // op(B)[q][j] is B[q + j·ldb] (N) or B[j + q·ldb] (T, C).
        for (size_t col = 0; col < (p.tb ? k : n); col++)
            for (size_t row = 0; row < (p.tb ? n : k); row++) {
                double v = rounded(B[row + col * ldb], p.rounding);
                if (p.tb) b[row * k + col] = v;
                else b[col * k + row] = v;
            }
        size_t j = 0;
        for (; j + 4 <= n; j += 4) {
            size_t i = 0;
            for (; i + 2 <= m; i += 2) block<2, 4>(p, a.data(), b.data(), C, i, j);
            for (; i < m; i++) block<1, 4>(p, a.data(), b.data(), C, i, j);
        }
        for (; j < n; j++) {
            size_t i = 0;
            for (; i + 4 <= m; i += 4) block<4, 1>(p, a.data(), b.data(), C, i, j);
            for (; i < m; i++) block<1, 1>(p, a.data(), b.data(), C, i, j);
        }
    }
}

// ---- the common front end of the three GEMMs

// The bytes `batch` column-major rows×cols matrices with leading dimension ld, `stride` elements
// apart, touch: from the lowest address, and how many (SIZE_MAX when the span overflows).
struct Extent {
    const char* arg;
    const void* lo;
    size_t bytes;
};

Extent extent_of(const char* arg, const void* p, int rows, int cols, int ld, int batch, long long stride) {
    if (rows == 0 || cols == 0 || batch == 0) return {arg, p, 0};
    unsigned __int128 one = static_cast<unsigned __int128>(cols - 1) * static_cast<unsigned>(ld) + static_cast<unsigned>(rows);
    unsigned long long step = stride < 0 ? 0ull - static_cast<unsigned long long>(stride) : static_cast<unsigned long long>(stride);
    unsigned __int128 all = (static_cast<unsigned __int128>(batch - 1) * step + one) * sizeof(float);
    uintptr_t lo = reinterpret_cast<uintptr_t>(p);
    if (stride < 0) lo -= static_cast<uintptr_t>(static_cast<unsigned __int128>(batch - 1) * step * sizeof(float));
    size_t bytes = all > SIZE_MAX ? SIZE_MAX : static_cast<size_t>(all);
    return {arg, reinterpret_cast<const void*>(lo), bytes};
}

const char* op_name(cublasOperation_t op) { return op == CUBLAS_OP_N ? "N" : op == CUBLAS_OP_T ? "T" : "C"; }

struct GemmCall {
    const char* call;
    cublasOperation_t transa, transb;
    int m, n, k;
    const float* alpha;
    const void* A; int lda; long long strideA;
    const void* B; int ldb; long long strideB;
    const float* beta;
    void* C; int ldc; long long strideC;
    int batch;
    cublasComputeType_t compute;
};

// Validates a GEMM through a live handle `h` and queues it on h's stream (the caller holds lock()).
cublasStatus_t gemm(const cublasContext& h, const GemmCall& g) {
    const char* call = g.call;
    for (auto [name, op] : {std::pair{"transa", g.transa}, std::pair{"transb", g.transb}})
        if (op != CUBLAS_OP_N && op != CUBLAS_OP_T && op != CUBLAS_OP_C)
            return invalid(call, std::string(name) + " = " + std::to_string(static_cast<int>(op)) + " is not CUBLAS_OP_N, _T or _C");
    if (g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0)
        return invalid(call, "m = " + std::to_string(g.m) + ", n = " + std::to_string(g.n) + ", k = " + std::to_string(g.k) +
                                 ", batchCount = " + std::to_string(g.batch) + ": none may be negative");
    // A is stored rowsA × colsA (m×k, or k×m transposed), B rowsB × colsB (k×n, or n×k), C m×n.
    const bool ta = g.transa != CUBLAS_OP_N, tb = g.transb != CUBLAS_OP_N;
    const int rowsA = ta ? g.k : g.m, colsA = ta ? g.m : g.k;
    const int rowsB = tb ? g.n : g.k, colsB = tb ? g.k : g.n;
    for (auto [name, ld, rows] : {std::tuple{"lda", g.lda, rowsA}, std::tuple{"ldb", g.ldb, rowsB}, std::tuple{"ldc", g.ldc, g.m}})
        if (ld < std::max(1, rows))
            return invalid(call, std::string(name) + " = " + std::to_string(ld) + " is less than max(1, " + std::to_string(rows) +
                                     "), the rows of the matrix as stored (transa = " + op_name(g.transa) + ", transb = " + op_name(g.transb) + ")");
    if (!check_host(call, "alpha", g.alpha, sizeof(float)) || !check_host(call, "beta", g.beta, sizeof(float)))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (g.m == 0 || g.n == 0 || g.batch == 0) return CUBLAS_STATUS_SUCCESS;  // nothing to do, nothing touched
    if (!g.C) return invalid(call, "C is a null device pointer");

    if (sticky_error() != CUDA_SUCCESS) {
        violation(call, "the context has a sticky error from an earlier fault: the GEMM cannot be launched");
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    // Operand extents (A and B are not read when k == 0), and the workspace still being allocated.
    const int bk = g.k == 0 ? 0 : g.batch;
    const std::array<Extent, 3> extents = {extent_of("A", g.A, rowsA, colsA, g.lda, bk, g.strideA),
                                           extent_of("B", g.B, rowsB, colsB, g.ldb, bk, g.strideB),
                                           extent_of("C", g.C, g.m, g.n, g.ldc, g.batch, g.strideC)};
    for (const Extent& e : extents)
        if (e.bytes > 0 && !check_device(call, e.arg, e.lo, e.bytes)) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (h.workspace && !check_device(call, "the handle's workspace (cublasSetWorkspace)", h.workspace, h.workspace_bytes))
        return CUBLAS_STATUS_EXECUTION_FAILED;

    Product p{ta, tb, g.m, g.n, g.k, g.batch, *g.alpha, *g.beta,
              static_cast<const float*>(g.A), g.lda, g.strideA,
              static_cast<const float*>(g.B), g.ldb, g.strideB,
              static_cast<float*>(g.C), g.ldc, g.strideC,
              rounding_for(g.compute, h.math)};
    CUresult queued = enqueue(h.stream, call, [p, extents, call] {
        // Still allocated when the stream gets here? A block freed meanwhile is an illegal address.
        for (const Extent& e : extents)
            if (e.bytes > 0 && !check_device(call, e.arg, e.lo, e.bytes)) {
                fault(CUDA_ERROR_ILLEGAL_ADDRESS, call, std::string("illegal address: operand ") + e.arg + " was freed before the GEMM ran");
                return;
            }
        run(p);
    });
    // A launch into a destroyed stream fails (enqueue has reported it).
    return queued == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // namespace

// ---- handles

SWDEV_API cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
    if (!check_host("cublasCreate", "handle", handle, sizeof *handle)) return CUBLAS_STATUS_INVALID_VALUE;
    std::lock_guard g(lock());
    auto* h = new cublasContext();
    live_handles().insert(h);
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cublasCreate_v2)

// cublasDestroy implicitly synchronises the device (the documentation says it calls
// cudaDeviceSynchronize), so the work queued through the handle has run when it returns.
SWDEV_API cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    std::lock_guard g(lock());
    if (!handle_of("cublasDestroy", handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    sync_all();
    live_handles().erase(handle);
    return CUBLAS_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cublasDestroy_v2)

// The version is the library's, not the handle's: a null handle is accepted (a common idiom), a
// destroyed one is not. A null `version` is NOT_INITIALIZED, as the documentation words it.
SWDEV_API cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version) {
    std::lock_guard g(lock());
    if (handle && !handle_of("cublasGetVersion", handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!version) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!check_host("cublasGetVersion", "version", version, sizeof *version)) return CUBLAS_STATUS_INVALID_VALUE;
    *version = kVersion;
    return CUBLAS_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cublasGetVersion_v2)

// The engine's library loader reads the version through this before any handle exists (cuBLAS
// documents that cublasGetProperty needs none): MAJOR_VERSION 0, MINOR_VERSION 1, PATCH_LEVEL 2
// (libraryPropertyType, library_types.h); another value is CUBLAS_STATUS_INVALID_VALUE.
enum libraryPropertyType : int { MAJOR_VERSION = 0, MINOR_VERSION = 1, PATCH_LEVEL = 2 };

SWDEV_API cublasStatus_t cublasGetProperty(libraryPropertyType type, int* value) {
    std::lock_guard g(lock());
    if (!value || !check_host("cublasGetProperty", "value", value, sizeof *value)) return CUBLAS_STATUS_INVALID_VALUE;
    switch (type) {
        case MAJOR_VERSION: *value = kVersion / 10000; return CUBLAS_STATUS_SUCCESS;
        case MINOR_VERSION: *value = kVersion / 100 % 100; return CUBLAS_STATUS_SUCCESS;
        case PATCH_LEVEL: *value = kVersion % 100; return CUBLAS_STATUS_SUCCESS;
        default: break;
    }
    violation("cublasGetProperty", "type = " + std::to_string(static_cast<int>(type)) + " is not a libraryPropertyType");
    return CUBLAS_STATUS_INVALID_VALUE;
}
SWDEV_DESCRIBE(cublasGetProperty)

// Like cuBLAS, the stream is not checked here; a GEMM queued on a destroyed one fails. Setting the
// stream also returns the handle to the library's own workspace, as documented.
SWDEV_API cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
    std::lock_guard g(lock());
    cublasContext* h = handle_of("cublasSetStream", handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = streamId;
    h->workspace = nullptr;
    h->workspace_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cublasSetStream_v2)

// A user-owned workspace: [workspace, workspace + size) must be one live device allocation, 256-byte
// aligned as documented; null with size 0 goes back to the library's own pool. The product here needs
// no workspace, but every GEMM re-checks that it is still allocated (cuBLAS may write to it).
SWDEV_API cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes) {
    const char* call = "cublasSetWorkspace";
    std::lock_guard g(lock());
    cublasContext* h = handle_of(call, handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (workspace) {
        if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0) return invalid(call, "workspace is not aligned to 256 bytes");
        if (!check_device(call, "workspace", workspace, workspaceSizeInBytes)) return CUBLAS_STATUS_INVALID_VALUE;
    } else if (workspaceSizeInBytes != 0) {
        return invalid(call, "workspace is null but workspaceSizeInBytes = " + std::to_string(workspaceSizeInBytes));
    }
    h->workspace = workspace;
    h->workspace_bytes = workspaceSizeInBytes;
    return CUBLAS_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cublasSetWorkspace_v2)

SWDEV_API cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    std::lock_guard g(lock());
    cublasContext* h = handle_of("cublasSetMathMode", handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    int base = mode & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (base < CUBLAS_DEFAULT_MATH || base > CUBLAS_TF32_TENSOR_OP_MATH)
        return invalid("cublasSetMathMode", "mode = " + std::to_string(static_cast<int>(mode)) + " is not a cuBLAS 12.6 math mode");
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cublasSetMathMode)

// ---- GEMM

SWDEV_API cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                                        int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                                        const float* beta, float* C, int ldc) {
    std::lock_guard g(lock());
    cublasContext* h = handle_of("cublasSgemm", handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    return gemm(*h, {"cublasSgemm", transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, CUBLAS_COMPUTE_32F});
}
SWDEV_DESCRIBE(cublasSgemm_v2)

SWDEV_API cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                                   int m, int n, int k, const float* alpha, const float* A, int lda,
                                                   long long strideA, const float* B, int ldb, long long strideB,
                                                   const float* beta, float* C, int ldc, long long strideC, int batchCount) {
    std::lock_guard g(lock());
    cublasContext* h = handle_of("cublasSgemmStridedBatched", handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    return gemm(*h, {"cublasSgemmStridedBatched", transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc,
                     strideC, batchCount, CUBLAS_COMPUTE_32F});
}
SWDEV_DESCRIBE(cublasSgemmStridedBatched)

// Float32 operands only (A, B, C all CUDA_R_32F) with a float32 compute type; alpha and beta are then
// floats. Every algorithm enumerant is accepted: on sm_80 and later cuBLAS treats them all as the
// default heuristic.
SWDEV_API cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                                      int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                                      cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                                      cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    const char* call = "cublasGemmEx";
    std::lock_guard g(lock());
    cublasContext* h = handle_of(call, handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (Atype != CUDA_R_32F || Btype != CUDA_R_32F || Ctype != CUDA_R_32F)
        return unsupported(call, "Atype/Btype/Ctype = " + std::to_string(static_cast<int>(Atype)) + "/" + std::to_string(static_cast<int>(Btype)) +
                                     "/" + std::to_string(static_cast<int>(Ctype)) + " (only CUDA_R_32F operands)");
    if (computeType != CUBLAS_COMPUTE_32F && computeType != CUBLAS_COMPUTE_32F_PEDANTIC && computeType != CUBLAS_COMPUTE_32F_FAST_TF32 &&
        computeType != CUBLAS_COMPUTE_32F_FAST_16F && computeType != CUBLAS_COMPUTE_32F_FAST_16BF)
        return unsupported(call, "computeType = " + std::to_string(static_cast<int>(computeType)) + " with CUDA_R_32F operands");
    bool known_algo = (algo >= CUBLAS_GEMM_DEFAULT && algo <= CUBLAS_GEMM_ALGO23) ||
                      (algo >= CUBLAS_GEMM_DEFAULT_TENSOR_OP && algo <= CUBLAS_GEMM_ALGO15_TENSOR_OP);
    if (!known_algo) return unsupported(call, "algo = " + std::to_string(static_cast<int>(algo)));
    return gemm(*h, {call, transa, transb, m, n, k, static_cast<const float*>(alpha), A, lda, 0, B, ldb, 0,
                     static_cast<const float*>(beta), C, ldc, 0, 1, computeType});
}
SWDEV_DESCRIBE(cublasGemmEx)

// ---- status names and descriptions (static strings; an unknown status gets a generic one)

SWDEV_API const char* cublasGetStatusName(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}
SWDEV_DESCRIBE(cublasGetStatusName)

SWDEV_API const char* cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "success";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "the library or the handle is not initialized";
        case CUBLAS_STATUS_ALLOC_FAILED: return "a resource allocation failed";
        case CUBLAS_STATUS_INVALID_VALUE: return "an argument has an invalid value";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "the device lacks a required architectural feature";
        case CUBLAS_STATUS_MAPPING_ERROR: return "an access to device memory failed";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "the device program failed to execute";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "the requested functionality is not supported";
        case CUBLAS_STATUS_LICENSE_ERROR: return "the license check failed";
    }
    return "unknown cuBLAS status";
}
SWDEV_DESCRIBE(cublasGetStatusString)
