// cudnn.cpp — the cuDNN 9 legacy-API subset the backend calls (src/Core/Cuda/Native/CuDnn.cs) on the
// software device: handle and stream, tensor / filter / convolution descriptors, the algorithm
// queries and workspace sizes, the three 2-D convolutions and spatial batch normalisation, computed
// on the host when the handle's stream is synchronised. About 1600 lines, over the usual 400: one
// API family whose validation rules and error codes are written down beside the code that keeps
// them, as cublas.cpp and driver.cpp do for theirs.
//
// Every call validates at once, in the order handle → descriptors → values → pointers → sticky
// error → device extents, records one violation line (swdev::violation) for what it refuses, and
// queues the computation on the handle's stream with every value it needs copied (descriptor
// contents, alpha and beta read from their host pointers at the call, as cuDNN reads them).
//
// Error codes (values from cudnn_graph.h of cuDNN 9.6; cuDNN 9 groups them by thousands):
//   * a null or destroyed handle or descriptor, a descriptor never set, an invalid enumerant, a
//     geometry that does not add up (channels, groups, output dims), a null alpha / beta / data
//     pointer, a too small workspace, an unknown algorithm, eps below CUDNN_BN_MIN_EPSILON
//     → CUDNN_STATUS_BAD_PARAM (2000), as the cuDNN API reference lists them per function.
//   * a valid request the software device does not implement (a data type other than float, a
//     compute type other than float, NCHW_VECT_C, per-activation batch norm, a valid algorithm
//     enumerant that is not one of ours) → CUDNN_STATUS_NOT_SUPPORTED (3000).
//   * device memory that is not a live extent (host memory, freed memory, an extent running past
//     its allocation), or a context with a sticky error, or a dead stream
//     → CUDNN_STATUS_EXECUTION_FAILED (5000). cuDNN does not check device pointers: on a GPU its
//     kernel would hit an illegal address, which cuDNN reports as "the function failed to launch on
//     the GPU" (EXECUTION_FAILED). The software device fails the call at once instead, so the report
//     names the call and the operand and the context stays usable; memory freed between the call
//     and the stream reaching the work is an illegal address at run time (a fault, the sticky
//     CUDA_ERROR_ILLEGAL_ADDRESS), as in cublas.cpp.
//
// Numerics. Convolutions gather their inputs into packed NCHW copies, rounded as the descriptor's
// math type makes tensor cores read them — CUDNN_FMA_MATH exact float32; CUDNN_DEFAULT_MATH and
// CUDNN_TENSOR_OP_MATH TF32 (10-bit mantissa; NVIDIA_TF32_OVERRIDE=0 turns that off, as it does in
// NVIDIA's libraries); CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION fp16 — multiply in double (a product of
// two floats is exact there), sum in double, and write alpha·sum + beta·out rounded once to float.
// beta == 0: the output is only written, never read (fresh device memory holds NaN); alpha == 0:
// the inputs are not read. Batch norm uses double throughout and stores float.
//
// Algorithms: two per direction, listed with every other enumerant and the tensor-core variants the
// way cuDNN's queries list them (report_algos says how, with the documentation behind each point):
// a GEMM that lowers the input with im2col into the caller's workspace (deterministic), and a
// direct loop (forward IMPLICIT_GEMM, deterministic) or, going backwards, ALGO_0, whose float
// atomics are simulated: partial sums added in an order that changes from call to call, so it is
// not deterministic, as cuDNN documents. The workspace is really used, so a workspace shared with
// other in-flight work is corrupted here as on a GPU.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "swdev.h"

using namespace swdev;

// ---- cuDNN's C types, declared from the facts in shared/cuda-abi (cuDNN 9.6)

// Every cudnnStatus_t of cuDNN 9.6 (the deprecated aliases that repeat a value left out), one
// table for the enum and for cudnnGetErrorString.
#define SWDEV_CUDNN_STATUSES(X) \
    X(CUDNN_STATUS_SUCCESS, 0) \
    X(CUDNN_STATUS_NOT_INITIALIZED, 1001) \
    X(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH, 1002) \
    X(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH, 1003) \
    X(CUDNN_STATUS_DEPRECATED, 1004) \
    X(CUDNN_STATUS_LICENSE_ERROR, 1005) \
    X(CUDNN_STATUS_RUNTIME_IN_PROGRESS, 1006) \
    X(CUDNN_STATUS_RUNTIME_FP_OVERFLOW, 1007) \
    X(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED, 1008) \
    X(CUDNN_STATUS_BAD_PARAM, 2000) \
    X(CUDNN_STATUS_INVALID_VALUE, 2001) \
    X(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, 2002) \
    X(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, 2003) \
    X(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED, 2004) \
    X(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND, 2005) \
    X(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT, 2006) \
    X(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH, 2007) \
    X(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH, 2008) \
    X(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES, 2009) \
    X(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE, 2010) \
    X(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH, 2011) \
    X(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE, 2012) \
    X(CUDNN_STATUS_NOT_SUPPORTED, 3000) \
    X(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN, 3001) \
    X(CUDNN_STATUS_NOT_SUPPORTED_SHAPE, 3002) \
    X(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, 3003) \
    X(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT, 3004) \
    X(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER, 3005) \
    X(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART, 3006) \
    X(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH, 3007) \
    X(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING, 3008) \
    X(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE, 3009) \
    X(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT, 3010) \
    X(CUDNN_STATUS_NOT_SUPPORTED_PADDING, 3011) \
    X(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM, 3012) \
    X(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API, 3013) \
    X(CUDNN_STATUS_INTERNAL_ERROR, 4000) \
    X(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED, 4001) \
    X(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE, 4002) \
    X(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, 4003) \
    X(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED, 4004) \
    X(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM, 4005) \
    X(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED, 4006) \
    X(CUDNN_STATUS_EXECUTION_FAILED, 5000) \
    X(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER, 5001) \
    X(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS, 5002) \
    X(CUDNN_STATUS_EXECUTION_FAILED_CUDART, 5003) \
    X(CUDNN_STATUS_EXECUTION_FAILED_CURAND, 5004)

enum cudnnStatus_t : int {
#define SWDEV_ENUMERANT(name, value) name = value,
    SWDEV_CUDNN_STATUSES(SWDEV_ENUMERANT)
#undef SWDEV_ENUMERANT
};

// Every enumerant from CUDNN_DATA_FLOAT (0) to CUDNN_DATA_FAST_FLOAT_FOR_FP8 (14) is valid; only
// float is computed here.
enum cudnnDataType_t : int {
    CUDNN_DATA_FLOAT = 0,
    CUDNN_DATA_DOUBLE = 1,
    CUDNN_DATA_HALF = 2,
    CUDNN_DATA_BFLOAT16 = 9,
    CUDNN_DATA_FAST_FLOAT_FOR_FP8 = 14,
};
enum cudnnTensorFormat_t : int { CUDNN_TENSOR_NCHW = 0, CUDNN_TENSOR_NHWC = 1, CUDNN_TENSOR_NCHW_VECT_C = 2 };
enum cudnnMathType_t : int {
    CUDNN_DEFAULT_MATH = 0,
    CUDNN_TENSOR_OP_MATH = 1,
    CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
    CUDNN_FMA_MATH = 3,
};
enum cudnnConvolutionMode_t : int { CUDNN_CONVOLUTION = 0, CUDNN_CROSS_CORRELATION = 1 };
enum cudnnDeterminism_t : int { CUDNN_NON_DETERMINISTIC = 0, CUDNN_DETERMINISTIC = 1 };
enum cudnnBatchNormMode_t : int {
    CUDNN_BATCHNORM_PER_ACTIVATION = 0,
    CUDNN_BATCHNORM_SPATIAL = 1,
    CUDNN_BATCHNORM_SPATIAL_PERSISTENT = 2,
};
enum cudnnConvolutionFwdAlgo_t : int {
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM = 0,
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1,
    CUDNN_CONVOLUTION_FWD_ALGO_GEMM = 2,
    CUDNN_CONVOLUTION_FWD_ALGO_DIRECT = 3,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT = 4,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING = 5,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD = 6,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED = 7,
    CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8,
};
enum cudnnConvolutionBwdDataAlgo_t : int {
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 = 0,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 = 1,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT = 2,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING = 3,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD = 4,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED = 5,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT = 6,
};
enum cudnnConvolutionBwdFilterAlgo_t : int {
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 = 0,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 = 1,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT = 2,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3 = 3,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD = 4,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED = 5,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING = 6,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT = 7,
};

// The three perf structs share one layout (48 bytes on x86-64): algo@0 status@4 time@8 memory@16
// determinism@24 mathType@28 reserved@32.
template <typename Algo>
struct AlgoPerf {
    Algo algo;
    cudnnStatus_t status;
    float time;     // milliseconds; -1 from the heuristics (nothing was timed)
    size_t memory;  // workspace bytes
    cudnnDeterminism_t determinism;
    cudnnMathType_t mathType;
    int reserved[3];
};
typedef AlgoPerf<cudnnConvolutionFwdAlgo_t> cudnnConvolutionFwdAlgoPerf_t;
typedef AlgoPerf<cudnnConvolutionBwdDataAlgo_t> cudnnConvolutionBwdDataAlgoPerf_t;
typedef AlgoPerf<cudnnConvolutionBwdFilterAlgo_t> cudnnConvolutionBwdFilterAlgoPerf_t;
static_assert(sizeof(cudnnConvolutionFwdAlgoPerf_t) == 48 && alignof(cudnnConvolutionFwdAlgoPerf_t) == 8);
static_assert(offsetof(cudnnConvolutionFwdAlgoPerf_t, status) == 4 && offsetof(cudnnConvolutionFwdAlgoPerf_t, time) == 8 &&
              offsetof(cudnnConvolutionFwdAlgoPerf_t, memory) == 16 && offsetof(cudnnConvolutionFwdAlgoPerf_t, determinism) == 24 &&
              offsetof(cudnnConvolutionFwdAlgoPerf_t, mathType) == 28 && offsetof(cudnnConvolutionFwdAlgoPerf_t, reserved) == 32);

constexpr int kDimMax = 8;  // CUDNN_DIM_MAX
// CUDNN_BN_MIN_EPSILON: 0.0 since cuDNN 7.5 (it was 1e-5 before), and so in cuDNN 9's cudnn_ops.h.
// A 1e-5 floor would also refuse the engine's own eps, 1e-5f, which is 9.99999975e-06 as a double.
constexpr double kBnMinEpsilon = 0.0;

// A handle's state and the descriptors' contents. None is ever freed: a destroyed one's address is
// never handed out again, so a use after destroy is recognised (as the runtime does for memory).
struct cudnnContext {
    CUstream stream = nullptr;  // cudnnSetStream; the legacy default stream at first
};
struct cudnnTensorStruct {
    bool set = false;
    int nb = 0;               // number of dimensions
    int dim[kDimMax] = {};    // n, c, h, w (, ...)
    long long stride[kDimMax] = {};  // in elements
};
struct cudnnFilterStruct {
    bool set = false;
    cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;  // NCHW: KCRS in memory; NHWC: KRSC
    int k = 0, c = 0, r = 0, s = 0;                  // c: input channels per group
};
struct cudnnConvolutionStruct {
    bool set = false;
    int pad_h = 0, pad_w = 0, u = 1, v = 1, dil_h = 1, dil_w = 1;
    cudnnConvolutionMode_t mode = CUDNN_CONVOLUTION;
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;  // cudnnSetConvolutionMathType
    int groups = 1;                             // cudnnSetConvolutionGroupCount
};
typedef cudnnContext* cudnnHandle_t;
typedef cudnnTensorStruct* cudnnTensorDescriptor_t;
typedef cudnnFilterStruct* cudnnFilterDescriptor_t;
typedef cudnnConvolutionStruct* cudnnConvolutionDescriptor_t;
typedef CUstream_st* cudaStream_t;  // the runtime's stream is the driver's CUstream

namespace {

constexpr size_t kVersion = 9 * 10000 + 6 * 100 + 0;  // cuDNN 9.6.0, as CUDNN_VERSION encodes it

template <typename T> std::set<const T*>& live() {
    static std::set<const T*> s;
    return s;
}

cudnnStatus_t fail(const char* call, cudnnStatus_t status, const std::string& message) {
    violation(call, message);
    return status;
}

// ---- looking up handles and descriptors (the caller holds lock())

cudnnContext* handle_of(const char* call, cudnnHandle_t h) {
    if (h && live<cudnnContext>().count(h)) return h;
    violation(call, h ? "handle is not a live cuDNN handle (destroyed, or never created by cudnnCreate)" : "handle is null");
    return nullptr;
}

// A live descriptor of kind T, set when `need_set`; null after reporting.
template <typename T> T* descriptor_of(const char* call, const char* arg, T* d, const char* kind, bool need_set = true) {
    if (!d) {
        violation(call, std::string(arg) + " is a null " + kind + " descriptor");
        return nullptr;
    }
    if (!live<T>().count(d)) {
        violation(call, std::string(arg) + " is not a live " + kind + " descriptor (destroyed, or not made by its create call)");
        return nullptr;
    }
    if (need_set && !d->set) {
        violation(call, std::string(arg) + ": the " + kind + " descriptor was created but never set");
        return nullptr;
    }
    return d;
}

// The data-type argument of a setter: BAD_PARAM for an invalid enumerant, NOT_SUPPORTED for a valid
// one other than float (the only type the software device computes in).
cudnnStatus_t check_data_type(const char* call, const char* arg, cudnnDataType_t t) {
    if (t < CUDNN_DATA_FLOAT || t > CUDNN_DATA_FAST_FLOAT_FOR_FP8)
        return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(arg) + " = " + std::to_string(static_cast<int>(t)) + " is not a cudnnDataType_t");
    if (t != CUDNN_DATA_FLOAT)
        return fail(call, CUDNN_STATUS_NOT_SUPPORTED,
                    std::string(arg) + " = " + std::to_string(static_cast<int>(t)) + ": the software device supports CUDNN_DATA_FLOAT only");
    return CUDNN_STATUS_SUCCESS;
}

// ---- 4-d views of tensors and filters

// Dimensions and strides (elements) of a 4-d tensor, or of a filter seen as (K, C/G, R, S).
struct Tensor4 {
    int n = 0, c = 0, h = 0, w = 0;
    long long sn = 0, sc = 0, sh = 0, sw = 0;
    size_t count() const { return size_t(n) * c * h * w; }
    // Bytes from the first element to the last one inclusive (strides are positive).
    size_t bytes() const {
        return (size_t(n - 1) * sn + size_t(c - 1) * sc + size_t(h - 1) * sh + size_t(w - 1) * sw + 1) * sizeof(float);
    }
    size_t at(size_t i, size_t j, size_t k, size_t l) const { return i * sn + j * sc + k * sh + l * sw; }
    bool same_dims(const Tensor4& o) const { return n == o.n && c == o.c && h == o.h && w == o.w; }
    std::string dims() const {
        return std::to_string(n) + "×" + std::to_string(c) + "×" + std::to_string(h) + "×" + std::to_string(w);
    }
};

// True when no two elements share an address: sorted by stride, each dimension steps over the whole
// span of the ones below it. Outputs must be laid out so (cuDNN leaves overlapping outputs undefined).
bool injective(const Tensor4& t) {
    std::pair<long long, long long> d[4] = {{t.sn, t.n}, {t.sc, t.c}, {t.sh, t.h}, {t.sw, t.w}};
    std::sort(d, d + 4);
    long long span = 1;  // elements covered by the dimensions so far
    for (auto [stride, extent] : d) {
        if (extent == 1) continue;
        if (stride < span) return false;
        span = stride * (extent - 1) + span;
    }
    return true;
}

// A set, live tensor descriptor as 4-d; BAD_PARAM for a 5-d or larger one (these calls are 2-d).
cudnnStatus_t tensor4_of(const char* call, const char* arg, cudnnTensorDescriptor_t d, Tensor4& out) {
    const cudnnTensorStruct* t = descriptor_of(call, arg, d, "tensor");
    if (!t) return CUDNN_STATUS_BAD_PARAM;
    if (t->nb != 4)
        return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(arg) + " has " + std::to_string(t->nb) + " dimensions; a 2-d convolution and spatial batch norm take 4");
    out = {t->dim[0], t->dim[1], t->dim[2], t->dim[3], t->stride[0], t->stride[1], t->stride[2], t->stride[3]};
    return CUDNN_STATUS_SUCCESS;
}

Tensor4 filter4(const cudnnFilterStruct& f) {
    Tensor4 t{f.k, f.c, f.r, f.s, 0, 0, 0, 0};
    if (f.format == CUDNN_TENSOR_NCHW) {  // K, C, R, S packed
        t.sw = 1, t.sh = f.s, t.sc = (long long)f.r * f.s, t.sn = (long long)f.c * f.r * f.s;
    } else {  // NHWC: K, R, S, C packed
        t.sc = 1, t.sw = f.c, t.sh = (long long)f.s * f.c, t.sn = (long long)f.r * f.s * f.c;
    }
    return t;
}

// ---- rounding of the multiplicands

enum class Rounding { Exact, Tf32, Fp16 };

Rounding rounding_for(cudnnMathType_t math) {
    switch (math) {
        case CUDNN_FMA_MATH: return Rounding::Exact;
        case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return Rounding::Fp16;
        default: break;  // DEFAULT_MATH, TENSOR_OP_MATH: TF32 tensor cores on Ampere and later
    }
    const char* off = std::getenv("NVIDIA_TF32_OVERRIDE");
    return off && std::strcmp(off, "0") == 0 ? Rounding::Exact : Rounding::Tf32;
}

float rounded(float x, Rounding r) {
    switch (r) {
        case Rounding::Tf32: return round_tf32(x);
        case Rounding::Fp16: return round_fp16(x);
        case Rounding::Exact: break;
    }
    return x;
}

// Packed NCHW copy of t at base, rounded; `flip` reverses h and w (a filter in CUDNN_CONVOLUTION mode).
std::vector<float> gather(const Tensor4& t, const float* base, Rounding r, bool flip = false) {
    std::vector<float> out(t.count());
    size_t o = 0;
    for (size_t i = 0; i < size_t(t.n); i++)
        for (size_t j = 0; j < size_t(t.c); j++)
            for (size_t k = 0; k < size_t(t.h); k++)
                for (size_t l = 0; l < size_t(t.w); l++) {
                    size_t kk = flip ? t.h - 1 - k : k, ll = flip ? t.w - 1 - l : l;
                    out[o++] = rounded(base[t.at(i, j, kk, ll)], r);
                }
    return out;
}

// out = alpha·v + beta·out over t, v packed NCHW (null: alpha·v is 0); out is not read when beta == 0.
void store(const Tensor4& t, float* base, const double* v, double alpha, double beta, bool flip = false) {
    size_t o = 0;
    for (size_t i = 0; i < size_t(t.n); i++)
        for (size_t j = 0; j < size_t(t.c); j++)
            for (size_t k = 0; k < size_t(t.h); k++)
                for (size_t l = 0; l < size_t(t.w); l++, o++) {
                    size_t kk = flip ? t.h - 1 - k : k, ll = flip ? t.w - 1 - l : l;
                    float& dst = base[t.at(i, j, kk, ll)];
                    double r = v ? alpha * v[o] : 0.0;
                    if (beta != 0) r += beta * static_cast<double>(dst);
                    dst = static_cast<float>(r);
                }
}

// ---- device extents: checked at the call, and again when the stream runs the work

struct Extent {
    const char* arg;
    const void* p;
    size_t bytes;
};

// Null data pointers and misaligned ones are BAD_PARAM (cuDNN lists both); then a context with a
// sticky error cannot launch; then every extent must be live device memory (EXECUTION_FAILED, see top).
cudnnStatus_t check_operands(const char* call, const std::vector<Extent>& extents) {
    for (const Extent& e : extents) {
        if (!e.p) return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(e.arg) + " is a null device pointer");
        if (reinterpret_cast<uintptr_t>(e.p) % sizeof(float) != 0)
            return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(e.arg) + " is not aligned to its 4-byte elements");
    }
    if (sticky_error() != CUDA_SUCCESS)
        return fail(call, CUDNN_STATUS_EXECUTION_FAILED, "the context has a sticky error from an earlier fault: the kernel cannot be launched");
    for (const Extent& e : extents)
        if (!check_device(call, e.arg, e.p, e.bytes)) return CUDNN_STATUS_EXECUTION_FAILED;
    return CUDNN_STATUS_SUCCESS;
}

// Queues `body` on `stream`; it runs only if every extent is still allocated when the stream gets there.
template <typename Body> cudnnStatus_t launch(const char* call, CUstream stream, std::vector<Extent> extents, Body body) {
    CUresult r = enqueue(stream, call, [call, extents, body] {
        for (const Extent& e : extents)
            if (!check_device(call, e.arg, e.p, e.bytes)) {
                fault(CUDA_ERROR_ILLEGAL_ADDRESS, call, std::string("illegal address: ") + e.arg + " was freed before the kernel ran");
                return;
            }
        body();
    });
    // A launch into a destroyed stream fails (enqueue has reported it).
    return r == CUDA_SUCCESS ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

// A host scalar (alpha, beta: float for float tensors), read now, as cuDNN reads it.
bool read_scalar(const char* call, const char* arg, const void* p, double& out) {
    if (!p) {
        violation(call, std::string(arg) + " is a null host pointer");
        return false;
    }
    if (!check_host(call, arg, p, sizeof(float))) return false;
    out = *static_cast<const float*>(p);
    return true;
}

// ---- convolution geometry

enum class Direction { Forward, BackwardData, BackwardFilter };
// Direct: a fixed-order loop. Gemm: im2col into the workspace, then a GEMM. Atomic: what the
// atomics of BWD_DATA_ALGO_0 and BWD_FILTER_ALGO_0 do on a GPU: partial sums (per output channel,
// per image) added into the output in float in an order that changes from call to call.
enum class Method { Direct, Gemm, Atomic };

// x (N, C, H, W) ⊛ w (K, Cg, R, S) → y (N, K, P, Q), in G groups of Cg input and Kg output channels.
struct Conv {
    int N, C, H, W, K, Cg, R, S, P, Q, G, Kg;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    bool flip;  // CUDNN_CONVOLUTION: the filter is applied rotated by 180°
    Rounding rounding;
};

struct ConvSetup {
    Conv geo;
    Tensor4 x, w, y;  // layouts of the input, filter and output tensors (of dx, w, dy going backwards)
    cudnnMathType_t math;
};

// Output size along one axis: 1 + (in + 2·pad − dilated kernel) / stride, or 0 when it does not fit.
int out_size(int in, int pad, int kernel, int dil, int stride) {
    long long extent = (long long)(kernel - 1) * dil + 1, room = (long long)in + 2LL * pad;
    return room < extent ? 0 : static_cast<int>((room - extent) / stride + 1);
}

// Validates the descriptors of one convolution (names as the calling function has them) and fills
// `out`. `dir` says which tensor is written: y forward, x (dx) backward-data, the packed filter
// backward-filter; a written tensor must not overlap itself.
cudnnStatus_t conv_setup(const char* call, cudnnTensorDescriptor_t xD, const char* xName, cudnnFilterDescriptor_t wD, const char* wName,
                         cudnnConvolutionDescriptor_t cD, cudnnTensorDescriptor_t yD, const char* yName, Direction dir, ConvSetup& out) {
    const cudnnFilterStruct* f = descriptor_of(call, wName, wD, "filter");
    if (!f) return CUDNN_STATUS_BAD_PARAM;
    const cudnnConvolutionStruct* c = descriptor_of(call, "convDesc", cD, "convolution");
    if (!c) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = tensor4_of(call, xName, xD, out.x)) return s;
    if (cudnnStatus_t s = tensor4_of(call, yName, yD, out.y)) return s;
    out.w = filter4(*f);
    if (c->compute != CUDNN_DATA_FLOAT)
        return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "convDesc's compute type " + std::to_string(static_cast<int>(c->compute)) +
                                                          " with float tensors (only CUDNN_DATA_FLOAT computes float data)");
    const Tensor4 &x = out.x, &y = out.y;
    const int G = c->groups;
    if (x.c != f->c * G)
        return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(xName) + " has " + std::to_string(x.c) + " channels but " + wName + " has " +
                                                      std::to_string(f->c) + " per group × " + std::to_string(G) + " groups");
    if (f->k % G != 0)
        return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(wName) + "'s " + std::to_string(f->k) + " output channels are not divisible by " +
                                                      std::to_string(G) + " groups");
    const int P = out_size(x.h, c->pad_h, f->r, c->dil_h, c->u), Q = out_size(x.w, c->pad_w, f->s, c->dil_w, c->v);
    if (P == 0 || Q == 0)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "the dilated " + std::to_string(f->r) + "×" + std::to_string(f->s) + " filter is larger than the padded " +
                                                      std::to_string(x.h) + "×" + std::to_string(x.w) + " input");
    if (y.n != x.n || y.c != f->k || y.h != P || y.w != Q)
        return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(yName) + " is " + y.dims() + " but the convolution of " + x.dims() + " by " +
                                                      out.w.dims() + " gives " + std::to_string(x.n) + "×" + std::to_string(f->k) + "×" +
                                                      std::to_string(P) + "×" + std::to_string(Q));
    if (dir == Direction::Forward && !injective(y))
        return fail(call, CUDNN_STATUS_NOT_SUPPORTED, std::string(yName) + "'s strides make elements overlap; an output must not");
    if (dir == Direction::BackwardData && !injective(x))
        return fail(call, CUDNN_STATUS_NOT_SUPPORTED, std::string(xName) + "'s strides make elements overlap; an output must not");
    out.geo = Conv{x.n, x.c, x.h, x.w, f->k, f->c, f->r, f->s, P, Q, G, f->k / G,
                   c->pad_h, c->pad_w, c->u, c->v, c->dil_h, c->dil_w, c->mode == CUDNN_CONVOLUTION, rounding_for(c->math)};
    out.math = c->math;
    return CUDNN_STATUS_SUCCESS;
}

// ---- the algorithms

struct AlgoInfo {
    int id;
    const char* name;
    bool implemented;   // false: every query row says CUDNN_STATUS_NOT_SUPPORTED, a call is refused
    Method method;
    bool deterministic;  // as the cuDNN API reference lists it per enumerant
    bool tensor_op;      // also listed as a CUDNN_TENSOR_OP_MATH variant (a tensor-core kernel)
};
// Every enumerant of each direction. Implemented: forward IMPLICIT_GEMM (direct) and GEMM;
// backward ALGO_1 (GEMM) and ALGO_0, which cuDNN documents as non-deterministic (atomic adds) and
// which is so here too (Method::Atomic). The rest are NVIDIA's FFT, Winograd and precomputed-index
// kernels, which the software device does not implement: its rows say NOT_SUPPORTED, as cuDNN's do
// for an algorithm that does not support a configuration.
constexpr AlgoInfo kForwardAlgos[] = {
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, "IMPLICIT_GEMM", true, Method::Direct, true, true},
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, "IMPLICIT_PRECOMP_GEMM", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, "GEMM", true, Method::Gemm, true, false},
    {CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, "DIRECT", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT, "FFT", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, "FFT_TILING", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, "WINOGRAD", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, "WINOGRAD_NONFUSED", false, Method::Direct, true, false},
};
constexpr AlgoInfo kBackwardDataAlgos[] = {
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, "ALGO_0", true, Method::Atomic, false, true},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, "ALGO_1", true, Method::Gemm, true, true},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, "FFT", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, "FFT_TILING", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, "WINOGRAD", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, "WINOGRAD_NONFUSED", false, Method::Direct, true, false},
};
constexpr AlgoInfo kBackwardFilterAlgos[] = {
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, "ALGO_0", true, Method::Atomic, false, true},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, "ALGO_1", true, Method::Gemm, true, true},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, "FFT", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, "ALGO_3", false, Method::Direct, false, false},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, "WINOGRAD", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, "WINOGRAD_NONFUSED", false, Method::Direct, true, false},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, "FFT_TILING", false, Method::Direct, true, false},
};

std::vector<AlgoInfo> algos_of(Direction d) {
    switch (d) {
        case Direction::Forward: return {std::begin(kForwardAlgos), std::end(kForwardAlgos)};
        case Direction::BackwardData: return {std::begin(kBackwardDataAlgos), std::end(kBackwardDataAlgos)};
        case Direction::BackwardFilter: break;
    }
    return {std::begin(kBackwardFilterAlgos), std::end(kBackwardFilterAlgos)};
}

// The rows a query lists: one per enumerant, and one more per tensor-core variant. This is what
// cudnnGetConvolution*AlgorithmMaxCount answers, so a caller that sizes its buffer with the
// *_ALGO_COUNT enumerant instead sees the list cut short.
int max_rows(Direction d) {
    int n = 0;
    for (const AlgoInfo& a : algos_of(d)) n += 1 + (a.implemented && a.tensor_op ? 1 : 0);
    return n;
}

// The algorithm behind `algo`: BAD_PARAM for a value that is no enumerant, NOT_SUPPORTED for one
// the software device does not implement.
cudnnStatus_t algo_of(const char* call, Direction d, int algo, AlgoInfo& out) {
    const std::vector<AlgoInfo> algos = algos_of(d);
    if (algo < 0 || algo >= static_cast<int>(algos.size()))
        return fail(call, CUDNN_STATUS_BAD_PARAM, "algo = " + std::to_string(algo) + " is not an algorithm enumerant");
    out = algos[size_t(algo)];
    if (out.implemented) return CUDNN_STATUS_SUCCESS;
    std::string offered;
    for (const AlgoInfo& a : algos)
        if (a.implemented) offered += (offered.empty() ? "" : " and ") + std::to_string(a.id) + " (" + a.name + ")";
    return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "algo = " + std::to_string(algo) + " (" + out.name +
                                                      ") is not implemented by the software device (it offers " + offered + ")");
}

constexpr size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

// The workspace of a method under the descriptor's math type. GEMM: the lowered input (im2col) or
// lowered gradient of one group of one image, (Cg·R·S) × (P·Q) floats; a tensor-core kernel pads
// the reduction dimension Cg·R·S to a multiple of 8. The direct and atomic loops need none, but
// their tensor-core variants stage the filter there (K × Cg·R·S, padded the same way). So sizes
// differ between algorithms and between math types of one algorithm, which is why the size must be
// asked again after the chosen row's math type is set on the descriptor.
size_t workspace_bytes(const Conv& g, Method m, cudnnMathType_t math) {
    const bool tc = math == CUDNN_TENSOR_OP_MATH;
    const size_t crs = tc ? round_up(size_t(g.Cg) * g.R * g.S, 8) : size_t(g.Cg) * g.R * g.S;
    if (m == Method::Gemm) return crs * size_t(g.P) * g.Q * sizeof(float);
    return tc ? size_t(g.K) * crs * sizeof(float) : 0;
}

// A plausible time (ms) for Find: multiply-adds at a few GFLOP/s; the GEMM and the atomics a little
// faster than the direct loop, tensor cores twice as fast.
float estimated_ms(const Conv& g, Method m, bool tensor_op) {
    double flops = 2.0 * g.N * g.K * g.P * g.Q * double(g.Cg) * g.R * g.S;
    double rate = (m == Method::Gemm ? 4e6 : m == Method::Atomic ? 5e6 : 3e6) * (tensor_op ? 2 : 1);
    return static_cast<float>(flops / rate);
}

// The outputs o in [lo, hi) with 0 ≤ o·stride + off < in: the rows (columns) a filter tap touches.
void valid_range(int in, int count, int stride, int off, int& lo, int& hi) {
    lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int top = in - 1 - off;  // o·stride ≤ top
    hi = top < 0 ? 0 : std::min(count, top / stride + 1);
    if (hi < lo) hi = lo;
}

// Lowers image xn (C×H×W, packed) for group g into col: row (cc, r, s) holds, for every output
// (p, q), the input under that tap, or 0 in the padding. col is (Cg·R·S) × (P·Q).
void im2col(const Conv& c, const float* xn, int g, float* col) {
    const size_t PQ = size_t(c.P) * c.Q, HW = size_t(c.H) * c.W;
    for (int cc = 0; cc < c.Cg; cc++) {
        const float* xp = xn + size_t(g * c.Cg + cc) * HW;
        for (int r = 0; r < c.R; r++)
            for (int s = 0; s < c.S; s++) {
                float* row = col + (size_t(cc * c.R + r) * c.S + s) * PQ;
                std::fill(row, row + PQ, 0.0f);
                int p0, p1, q0, q1;
                const int ih0 = r * c.dil_h - c.pad_h, iw0 = s * c.dil_w - c.pad_w;
                valid_range(c.H, c.P, c.u, ih0, p0, p1);
                valid_range(c.W, c.Q, c.v, iw0, q0, q1);
                for (int p = p0; p < p1; p++) {
                    const float* xr = xp + size_t(p * c.u + ih0) * c.W + iw0;
                    for (int q = q0; q < q1; q++) row[size_t(p) * c.Q + q] = xr[size_t(q) * c.v];
                }
            }
    }
}

// y (N×K×P×Q) = x (N×C×H×W) ⊛ w (K×Cg×R×S), all packed; w already flipped for CUDNN_CONVOLUTION.
void forward_direct(const Conv& c, const float* x, const float* w, double* y) {
    const size_t PQ = size_t(c.P) * c.Q, HW = size_t(c.H) * c.W;
    for (int n = 0; n < c.N; n++)
        for (int k = 0; k < c.K; k++) {
            const int g = k / c.Kg;
            double* acc = y + (size_t(n) * c.K + k) * PQ;
            for (int cc = 0; cc < c.Cg; cc++) {
                const float* xp = x + (size_t(n) * c.C + g * c.Cg + cc) * HW;
                const float* wp = w + (size_t(k) * c.Cg + cc) * c.R * c.S;
                for (int r = 0; r < c.R; r++) {
                    int p0, p1;
                    const int ih0 = r * c.dil_h - c.pad_h;
                    valid_range(c.H, c.P, c.u, ih0, p0, p1);
                    for (int s = 0; s < c.S; s++) {
                        int q0, q1;
                        const int iw0 = s * c.dil_w - c.pad_w;
                        valid_range(c.W, c.Q, c.v, iw0, q0, q1);
                        const double wv = wp[r * c.S + s];
                        for (int p = p0; p < p1; p++) {
                            const float* xr = xp + size_t(p * c.u + ih0) * c.W + iw0;
                            double* ar = acc + size_t(p) * c.Q;
                            for (int q = q0; q < q1; q++) ar[q] += wv * xr[size_t(q) * c.v];
                        }
                    }
                }
            }
        }
}

// The same as one GEMM per image and group: y_g (Kg × PQ) = w_g (Kg × CgRS) · col (CgRS × PQ).
void forward_gemm(const Conv& c, const float* x, const float* w, double* y, float* col) {
    const size_t PQ = size_t(c.P) * c.Q, CRS = size_t(c.Cg) * c.R * c.S;
    for (int n = 0; n < c.N; n++)
        for (int g = 0; g < c.G; g++) {
            im2col(c, x + size_t(n) * c.C * c.H * c.W, g, col);
            // Four output channels per pass over col, so the lowered input is read a quarter as often.
            int kk = 0;
            for (; kk + 4 <= c.Kg; kk += 4) {
                const int k = g * c.Kg + kk;
                double* a0 = y + (size_t(n) * c.K + k) * PQ;
                double *a1 = a0 + PQ, *a2 = a1 + PQ, *a3 = a2 + PQ;
                const float* w0 = w + size_t(k) * CRS;
                for (size_t j = 0; j < CRS; j++) {
                    const double v0 = w0[j], v1 = w0[CRS + j], v2 = w0[2 * CRS + j], v3 = w0[3 * CRS + j];
                    const float* cr = col + j * PQ;
                    for (size_t i = 0; i < PQ; i++) {
                        const double xv = cr[i];
                        a0[i] += v0 * xv, a1[i] += v1 * xv, a2[i] += v2 * xv, a3[i] += v3 * xv;
                    }
                }
            }
            for (; kk < c.Kg; kk++) {
                const int k = g * c.Kg + kk;
                double* acc = y + (size_t(n) * c.K + k) * PQ;
                const float* wr = w + size_t(k) * CRS;
                for (size_t j = 0; j < CRS; j++) {
                    const double wv = wr[j];
                    const float* cr = col + j * PQ;
                    for (size_t i = 0; i < PQ; i++) acc[i] += wv * cr[i];
                }
            }
        }
}

// dxg (Cg×H×W: image n's channels of output channel k's group, zeroed or partial) += the
// transpose of output channel k's filter applied to dyk (P×Q, image n's gradient of channel k).
void data_of_channel(const Conv& c, const float* dyk, const float* w, int k, double* dxg) {
    const size_t HW = size_t(c.H) * c.W;
    for (int cc = 0; cc < c.Cg; cc++) {
        double* dxp = dxg + size_t(cc) * HW;
        const float* wp = w + (size_t(k) * c.Cg + cc) * c.R * c.S;
        for (int r = 0; r < c.R; r++) {
            int p0, p1;
            const int ih0 = r * c.dil_h - c.pad_h;
            valid_range(c.H, c.P, c.u, ih0, p0, p1);
            for (int s = 0; s < c.S; s++) {
                int q0, q1;
                const int iw0 = s * c.dil_w - c.pad_w;
                valid_range(c.W, c.Q, c.v, iw0, q0, q1);
                const double wv = wp[r * c.S + s];
                for (int p = p0; p < p1; p++) {
                    double* xr = dxp + size_t(p * c.u + ih0) * c.W + iw0;
                    const float* dr = dyk + size_t(p) * c.Q;
                    for (int q = q0; q < q1; q++) xr[size_t(q) * c.v] += wv * dr[q];
                }
            }
        }
    }
}

// dx (N×C×H×W, zeroed) += the transpose of the convolution applied to dy (N×K×P×Q).
void backward_data_direct(const Conv& c, const float* dy, const float* w, double* dx) {
    const size_t PQ = size_t(c.P) * c.Q, HW = size_t(c.H) * c.W;
    for (int n = 0; n < c.N; n++)
        for (int k = 0; k < c.K; k++)
            data_of_channel(c, dy + (size_t(n) * c.K + k) * PQ, w, k, dx + (size_t(n) * c.C + size_t(k / c.Kg) * c.Cg) * HW);
}

// The order in which atomics land changes between calls (it is the order thread blocks finish):
// each call of an atomic algorithm starts its partial sums at another index.
unsigned next_atomic_start() {
    static std::atomic<unsigned> calls{0};
    return calls.fetch_add(1, std::memory_order_relaxed) * 7919u;
}

// BWD_DATA_ALGO_0: each output channel's contribution to dx rounded to float and added in float,
// the channels in an order that rotates from call to call, so two calls differ in the last bits.
void backward_data_atomic(const Conv& c, const float* dy, const float* w, double* dx) {
    const size_t PQ = size_t(c.P) * c.Q, HW = size_t(c.H) * c.W;
    const unsigned start = next_atomic_start();
    std::vector<double> part(size_t(c.Cg) * HW);
    std::vector<float> acc(size_t(c.C) * HW);
    for (int n = 0; n < c.N; n++) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int i = 0; i < c.K; i++) {
            const int k = int((start + unsigned(i)) % unsigned(c.K));
            std::fill(part.begin(), part.end(), 0.0);
            data_of_channel(c, dy + (size_t(n) * c.K + k) * PQ, w, k, part.data());
            float* a = acc.data() + size_t(k / c.Kg) * c.Cg * HW;
            for (size_t j = 0; j < part.size(); j++) a[j] += static_cast<float>(part[j]);
        }
        for (size_t j = 0; j < acc.size(); j++) dx[size_t(n) * c.C * HW + j] = acc[j];
    }
}

// The same through the workspace: dcol (CgRS × PQ) = w_gᵀ · dy_g, then col2im adds it into dx.
void backward_data_gemm(const Conv& c, const float* dy, const float* w, double* dx, float* col) {
    const size_t PQ = size_t(c.P) * c.Q, HW = size_t(c.H) * c.W, CRS = size_t(c.Cg) * c.R * c.S;
    std::vector<double> acc(PQ);
    for (int n = 0; n < c.N; n++)
        for (int g = 0; g < c.G; g++) {
            for (size_t j = 0; j < CRS; j++) {
                std::fill(acc.begin(), acc.end(), 0.0);
                for (int kk = 0; kk < c.Kg; kk++) {
                    const int k = g * c.Kg + kk;
                    const double wv = w[size_t(k) * CRS + j];
                    const float* dr = dy + (size_t(n) * c.K + k) * PQ;
                    for (size_t i = 0; i < PQ; i++) acc[i] += wv * dr[i];
                }
                float* cr = col + j * PQ;
                for (size_t i = 0; i < PQ; i++) cr[i] = static_cast<float>(acc[i]);  // fp32 intermediate, as a GPU keeps it
            }
            for (int cc = 0; cc < c.Cg; cc++) {
                double* dxp = dx + (size_t(n) * c.C + g * c.Cg + cc) * HW;
                for (int r = 0; r < c.R; r++)
                    for (int s = 0; s < c.S; s++) {
                        const float* cr = col + (size_t(cc * c.R + r) * c.S + s) * PQ;
                        int p0, p1, q0, q1;
                        const int ih0 = r * c.dil_h - c.pad_h, iw0 = s * c.dil_w - c.pad_w;
                        valid_range(c.H, c.P, c.u, ih0, p0, p1);
                        valid_range(c.W, c.Q, c.v, iw0, q0, q1);
                        for (int p = p0; p < p1; p++) {
                            double* xr = dxp + size_t(p * c.u + ih0) * c.W + iw0;
                            for (int q = q0; q < q1; q++) xr[size_t(q) * c.v] += cr[size_t(p) * c.Q + q];
                        }
                    }
            }
        }
}

// dw (K×Cg×R×S, zeroed or partial) += Σ over image n's outputs of dy · the input under each tap
// (xn: C×H×W, dyn: K×P×Q of that image).
void filter_of_image(const Conv& c, const float* xn, const float* dyn, double* dw) {
    const size_t PQ = size_t(c.P) * c.Q, HW = size_t(c.H) * c.W;
    for (int k = 0; k < c.K; k++) {
        const int g = k / c.Kg;
        const float* dyp = dyn + size_t(k) * PQ;
        for (int cc = 0; cc < c.Cg; cc++) {
            const float* xp = xn + size_t(g * c.Cg + cc) * HW;
            double* dwp = dw + (size_t(k) * c.Cg + cc) * c.R * c.S;
            for (int r = 0; r < c.R; r++) {
                int p0, p1;
                const int ih0 = r * c.dil_h - c.pad_h;
                valid_range(c.H, c.P, c.u, ih0, p0, p1);
                for (int s = 0; s < c.S; s++) {
                    int q0, q1;
                    const int iw0 = s * c.dil_w - c.pad_w;
                    valid_range(c.W, c.Q, c.v, iw0, q0, q1);
                    double sum = 0;
                    for (int p = p0; p < p1; p++) {
                        const float* xr = xp + size_t(p * c.u + ih0) * c.W + iw0;
                        const float* dr = dyp + size_t(p) * c.Q;
                        for (int q = q0; q < q1; q++) sum += double(dr[q]) * xr[size_t(q) * c.v];
                    }
                    dwp[r * c.S + s] += sum;
                }
            }
        }
    }
}

// dw (K×Cg×R×S, zeroed) += Σ over images and outputs of dy · the input under each tap.
void backward_filter_direct(const Conv& c, const float* x, const float* dy, double* dw) {
    const size_t xs = size_t(c.C) * c.H * c.W, ys = size_t(c.K) * c.P * c.Q;
    for (int n = 0; n < c.N; n++) filter_of_image(c, x + size_t(n) * xs, dy + size_t(n) * ys, dw);
}

// BWD_FILTER_ALGO_0: each image's contribution to dw rounded to float and added in float, the
// images in an order that rotates from call to call, so two calls differ in the last bits.
// `acc_ws`: the float accumulator in the workspace (the tensor-core variant), else one of its own.
void backward_filter_atomic(const Conv& c, const float* x, const float* dy, double* dw, float* acc_ws) {
    const size_t xs = size_t(c.C) * c.H * c.W, ys = size_t(c.K) * c.P * c.Q, ws = size_t(c.K) * c.Cg * c.R * c.S;
    const unsigned start = next_atomic_start();
    std::vector<double> part(ws);
    std::vector<float> own(acc_ws ? 0 : ws);
    float* acc = acc_ws ? acc_ws : own.data();
    std::fill(acc, acc + ws, 0.0f);
    for (int i = 0; i < c.N; i++) {
        const int n = int((start + unsigned(i)) % unsigned(c.N));
        std::fill(part.begin(), part.end(), 0.0);
        filter_of_image(c, x + size_t(n) * xs, dy + size_t(n) * ys, part.data());
        for (size_t j = 0; j < ws; j++) acc[j] += static_cast<float>(part[j]);
    }
    for (size_t j = 0; j < ws; j++) dw[j] = acc[j];
}

// The same as one GEMM per image and group: dw_g (Kg × CgRS) += dy_g (Kg × PQ) · colᵀ (PQ × CgRS).
// The lowered input is stored transposed here, one row of Cg·R·S taps per output pixel, so that
// the inner loop is an axpy along a weight row (vectorisable, and each sum keeps a fixed order).
void backward_filter_gemm(const Conv& c, const float* x, const float* dy, double* dw, float* colT) {
    const size_t PQ = size_t(c.P) * c.Q, CRS = size_t(c.Cg) * c.R * c.S, HW = size_t(c.H) * c.W;
    for (int n = 0; n < c.N; n++)
        for (int g = 0; g < c.G; g++) {
            // colT[(p, q)][(cc, r, s)]: the input under tap (cc, r, s) for output (p, q), 0 in the padding.
            std::fill(colT, colT + PQ * CRS, 0.0f);
            for (int cc = 0; cc < c.Cg; cc++) {
                const float* xp = x + (size_t(n) * c.C + g * c.Cg + cc) * HW;
                for (int r = 0; r < c.R; r++)
                    for (int s = 0; s < c.S; s++) {
                        const size_t j = (size_t(cc) * c.R + r) * c.S + s;
                        int p0, p1, q0, q1;
                        const int ih0 = r * c.dil_h - c.pad_h, iw0 = s * c.dil_w - c.pad_w;
                        valid_range(c.H, c.P, c.u, ih0, p0, p1);
                        valid_range(c.W, c.Q, c.v, iw0, q0, q1);
                        for (int p = p0; p < p1; p++) {
                            const float* xr = xp + size_t(p * c.u + ih0) * c.W + iw0;
                            for (int q = q0; q < q1; q++) colT[(size_t(p) * c.Q + q) * CRS + j] = xr[size_t(q) * c.v];
                        }
                    }
            }
            for (int kk = 0; kk < c.Kg; kk++) {
                const int k = g * c.Kg + kk;
                const float* dr = dy + (size_t(n) * c.K + k) * PQ;
                double* dwr = dw + size_t(k) * CRS;
                for (size_t i = 0; i < PQ; i++) {
                    const double d = dr[i];
                    const float* cr = colT + i * CRS;
                    for (size_t j = 0; j < CRS; j++) dwr[j] += d * cr[j];
                }
            }
        }
}

// One queued convolution, every value copied at the call. a and b are the inputs (x and w forward,
// dy and w backward-data, x and dy backward-filter), out the output (y, dx, dw).
struct ConvWork {
    Direction dir;
    Method method;
    ConvSetup s;
    const float *a, *b;
    float* out;
    float* workspace;
    double alpha, beta;
};

// A tensor-core variant of the direct and atomic loops reads the filter from its staged copy in
// the workspace (forward, backward-data) or accumulates the filter gradient there (backward-filter).
bool stages_in_workspace(const ConvWork& job) { return job.method != Method::Gemm && job.s.math == CUDNN_TENSOR_OP_MATH; }

const float* staged(const ConvWork& job, const std::vector<float>& w) {
    if (!stages_in_workspace(job)) return w.data();
    std::copy(w.begin(), w.end(), job.workspace);
    return job.workspace;
}

void run(const ConvWork& job) {
    const Conv& c = job.s.geo;
    const Rounding r = c.rounding;
    std::vector<double> res;
    switch (job.dir) {
        case Direction::Forward:
            if (job.alpha != 0) {
                std::vector<float> x = gather(job.s.x, job.a, r), w = gather(job.s.w, job.b, r, c.flip);
                res.assign(job.s.y.count(), 0.0);
                if (job.method == Method::Gemm) forward_gemm(c, x.data(), w.data(), res.data(), job.workspace);
                else forward_direct(c, x.data(), staged(job, w), res.data());
            }
            store(job.s.y, job.out, res.empty() ? nullptr : res.data(), job.alpha, job.beta);
            break;
        case Direction::BackwardData:
            if (job.alpha != 0) {
                std::vector<float> dy = gather(job.s.y, job.a, r), w = gather(job.s.w, job.b, r, c.flip);
                res.assign(job.s.x.count(), 0.0);
                if (job.method == Method::Gemm) backward_data_gemm(c, dy.data(), w.data(), res.data(), job.workspace);
                else if (job.method == Method::Atomic) backward_data_atomic(c, dy.data(), staged(job, w), res.data());
                else backward_data_direct(c, dy.data(), staged(job, w), res.data());
            }
            store(job.s.x, job.out, res.empty() ? nullptr : res.data(), job.alpha, job.beta);
            break;
        case Direction::BackwardFilter:
            if (job.alpha != 0) {
                std::vector<float> x = gather(job.s.x, job.a, r), dy = gather(job.s.y, job.b, r);
                res.assign(job.s.w.count(), 0.0);
                if (job.method == Method::Gemm) backward_filter_gemm(c, x.data(), dy.data(), res.data(), job.workspace);
                else if (job.method == Method::Atomic)
                    backward_filter_atomic(c, x.data(), dy.data(), res.data(), stages_in_workspace(job) ? job.workspace : nullptr);
                else backward_filter_direct(c, x.data(), dy.data(), res.data());
            }
            // The gradient of the flipped filter is the flipped gradient.
            store(job.s.w, job.out, res.empty() ? nullptr : res.data(), job.alpha, job.beta, c.flip);
            break;
    }
}

// The common back end of the three convolution calls (the caller holds lock() and has run conv_setup).
cudnnStatus_t convolve(const char* call, const cudnnContext& h, Direction dir, const ConvSetup& s, int algo, const void* alpha,
                       const void* beta, Extent a, Extent b, Extent out, void* workSpace, size_t workSpaceSizeInBytes) {
    AlgoInfo info;
    if (cudnnStatus_t st = algo_of(call, dir, algo, info)) return st;
    const Method method = info.method;
    double al, be;
    if (!read_scalar(call, "alpha", alpha, al) || !read_scalar(call, "beta", beta, be)) return CUDNN_STATUS_BAD_PARAM;
    const size_t need = workspace_bytes(s.geo, method, s.math);
    if (workSpaceSizeInBytes < need)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "workSpaceSizeInBytes = " + std::to_string(workSpaceSizeInBytes) + " but algo " +
                                                      std::to_string(algo) + " needs " + std::to_string(need) + " bytes for this geometry");
    std::vector<Extent> extents = {a, b, out};
    if (workSpaceSizeInBytes > 0) {
        if (!workSpace) return fail(call, CUDNN_STATUS_BAD_PARAM, "workSpace is null but workSpaceSizeInBytes = " + std::to_string(workSpaceSizeInBytes));
        extents.push_back({"workSpace", workSpace, workSpaceSizeInBytes});
    }
    if (cudnnStatus_t st = check_operands(call, extents)) return st;
    ConvWork job{dir, method, s, static_cast<const float*>(a.p), static_cast<const float*>(b.p), static_cast<float*>(const_cast<void*>(out.p)),
                 static_cast<float*>(workSpace), al, be};
    return launch(call, h.stream, std::move(extents), [job] { run(job); });
}

// ---- algorithm queries

template <typename Perf> bool perfResults_ok(const char* call, Perf* perf, int requested) {
    if (!perf) {
        violation(call, "perfResults is a null host pointer");
        return false;
    }
    return check_host(call, "perfResults", perf, sizeof(Perf) * size_t(requested));
}

// Fills perfResults with up to requestedAlgoCount rows, best first, as cuDNN's queries do:
//   * every enumerant has a row, and one it cannot run for this configuration says
//     CUDNN_STATUS_NOT_SUPPORTED (cuDNN reports each algorithm's status per row; NVIDIA's
//     forum: "cudnnGetConvolutionForwardAlgorithm_v7 and cudnnFindConvolutionForwardAlgorithm are
//     simply reporting the returned cudnnStatus_t for each algo"; callers must filter on status);
//   * an algorithm with a tensor-core kernel is listed twice, as CUDNN_TENSOR_OP_MATH and as
//     CUDNN_DEFAULT_MATH, whatever math type the descriptor holds (the Find*Ex reference: the
//     algorithms are tried with tensor-op math where available and "returned as such"; both the
//     heuristics and Find search both math types), so a row's math type may differ from the
//     descriptor's, and the caller sets the chosen row's on the descriptor before the call;
//   * each row says whether it is deterministic: ALGO_0 of both backward directions is not (the
//     reference lists them as using atomic adds), and neither are they here;
//   * workspace sizes differ between algorithms and between math types (workspace_bytes);
//   * Find: sorted by time, fastest first ("the first element has the lowest compute time"), the
//     NOT_SUPPORTED rows after the timed ones. The heuristics (`timed` false, time -1) rank the
//     same way, except that for a 3×3 unit-stride convolution they put WINOGRAD first, a kernel this
//     device does not have: the first row is then NOT_SUPPORTED and must be read past.
// The rows are at most max_rows(dir), what cudnnGetConvolution*AlgorithmMaxCount answers.
template <typename Algo>
cudnnStatus_t report_algos(const char* call, Direction dir, const ConvSetup& s, int requested, int* returned, AlgoPerf<Algo>* perf, bool timed) {
    if (requested < 1) return fail(call, CUDNN_STATUS_BAD_PARAM, "requestedAlgoCount = " + std::to_string(requested) + " must be at least 1");
    if (!returned) return fail(call, CUDNN_STATUS_BAD_PARAM, "returnedAlgoCount is a null host pointer");
    if (!perfResults_ok(call, perf, requested)) return CUDNN_STATUS_BAD_PARAM;
    if (!check_host(call, "returnedAlgoCount", returned, sizeof(int))) return CUDNN_STATUS_BAD_PARAM;
    std::vector<AlgoPerf<Algo>> supported, unsupported;
    for (const AlgoInfo& a : algos_of(dir)) {
        AlgoPerf<Algo> row{};
        row.algo = static_cast<Algo>(a.id);
        row.determinism = a.deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
        row.mathType = CUDNN_DEFAULT_MATH;
        if (!a.implemented) {
            row.status = CUDNN_STATUS_NOT_SUPPORTED;
            row.time = -1.0f;
            row.memory = 0;
            unsupported.push_back(row);
            continue;
        }
        row.status = CUDNN_STATUS_SUCCESS;
        for (bool tc : {true, false}) {
            if (tc && !a.tensor_op) continue;
            row.mathType = tc ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH;
            row.time = estimated_ms(s.geo, a.method, tc);
            row.memory = workspace_bytes(s.geo, a.method, row.mathType);
            supported.push_back(row);
        }
    }
    std::stable_sort(supported.begin(), supported.end(), [](const auto& l, const auto& r) { return l.time < r.time; });
    const Conv& g = s.geo;
    const bool winograd_first = !timed && g.R == 3 && g.S == 3 && g.u == 1 && g.v == 1 && g.dil_h == 1 && g.dil_w == 1 && dir != Direction::BackwardFilter;
    std::vector<AlgoPerf<Algo>> rows;
    if (winograd_first)
        for (auto it = unsupported.begin(); it != unsupported.end(); ++it)
            if (std::string(algos_of(dir)[size_t(it->algo)].name) == "WINOGRAD") {
                rows.push_back(*it);
                unsupported.erase(it);
                break;
            }
    rows.insert(rows.end(), supported.begin(), supported.end());
    rows.insert(rows.end(), unsupported.begin(), unsupported.end());
    if (!timed)
        for (auto& row : rows) row.time = -1.0f;
    const int n = std::min<int>(requested, static_cast<int>(rows.size()));
    for (int i = 0; i < n; i++) perf[i] = rows[size_t(i)];
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

// cudnnFind* times every algorithm on the handle's stream with buffers of its own and waits for the
// timings, so the work queued before it runs first; during stream capture it cannot (the wait
// invalidates the capture, as it would on a GPU).
cudnnStatus_t find_waits(const char* call, const cudnnContext& h) {
    CUresult r = sync_stream(h.stream);
    if (r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)
        return fail(call, CUDNN_STATUS_EXECUTION_FAILED, "cannot time algorithms on a stream being captured (the capture is invalidated)");
    if (r == CUDA_ERROR_INVALID_HANDLE) return fail(call, CUDNN_STATUS_EXECUTION_FAILED, "the handle's stream is not a live stream");
    if (r != CUDA_SUCCESS) return fail(call, CUDNN_STATUS_EXECUTION_FAILED, "the context has a sticky error from an earlier fault");
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t workspace_query(const char* call, Direction dir, const ConvSetup& s, int algo, size_t* sizeInBytes) {
    AlgoInfo info;
    if (cudnnStatus_t st = algo_of(call, dir, algo, info)) return st;
    if (!sizeInBytes) return fail(call, CUDNN_STATUS_BAD_PARAM, "sizeInBytes is a null host pointer");
    if (!check_host(call, "sizeInBytes", sizeInBytes, sizeof(size_t))) return CUDNN_STATUS_BAD_PARAM;
    *sizeInBytes = workspace_bytes(s.geo, info.method, s.math);
    return CUDNN_STATUS_SUCCESS;
}

// ---- batch normalisation

// Spatial modes only: SPATIAL and SPATIAL_PERSISTENT compute the same statistics (per channel over
// N, H, W); PER_ACTIVATION is valid cuDNN but not implemented here.
cudnnStatus_t check_bn_mode(const char* call, cudnnBatchNormMode_t mode) {
    if (mode == CUDNN_BATCHNORM_SPATIAL || mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT) return CUDNN_STATUS_SUCCESS;
    if (mode == CUDNN_BATCHNORM_PER_ACTIVATION)
        return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "mode CUDNN_BATCHNORM_PER_ACTIVATION is not implemented by the software device");
    return fail(call, CUDNN_STATUS_BAD_PARAM, "mode = " + std::to_string(static_cast<int>(mode)) + " is not a cudnnBatchNormMode_t");
}

cudnnStatus_t check_epsilon(const char* call, double eps) {
    if (!(eps >= kBnMinEpsilon) || std::isinf(eps)) {
        char text[32];
        std::snprintf(text, sizeof text, "%g", eps);
        return fail(call, CUDNN_STATUS_BAD_PARAM, std::string("epsilon = ") + text + " is below CUDNN_BN_MIN_EPSILON (0) or not finite");
    }
    return CUDNN_STATUS_SUCCESS;
}

// x and the tensors that must have its dims (y; dy, dx), and the 1×C×1×1 parameter descriptor.
struct BnSetup {
    Tensor4 x, p;
    std::vector<Tensor4> others;
};

cudnnStatus_t bn_setup(const char* call, cudnnTensorDescriptor_t xD, std::vector<std::pair<const char*, cudnnTensorDescriptor_t>> others,
                       const char* pName, cudnnTensorDescriptor_t pD, BnSetup& out) {
    if (cudnnStatus_t s = tensor4_of(call, "xDesc", xD, out.x)) return s;
    for (auto [name, d] : others) {
        Tensor4 t;
        if (cudnnStatus_t s = tensor4_of(call, name, d, t)) return s;
        if (!t.same_dims(out.x))
            return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(name) + " is " + t.dims() + " but xDesc is " + out.x.dims());
        out.others.push_back(t);
    }
    if (cudnnStatus_t s = tensor4_of(call, pName, pD, out.p)) return s;
    if (out.p.n != 1 || out.p.c != out.x.c || out.p.h != 1 || out.p.w != 1)
        return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(pName) + " is " + out.p.dims() + "; spatial batch norm needs 1×" +
                                                      std::to_string(out.x.c) + "×1×1");
    return CUDNN_STATUS_SUCCESS;
}

// Per-channel values of a 1×C×1×1 parameter tensor.
std::vector<double> load_param(const Tensor4& p, const float* base) {
    std::vector<double> v(size_t(p.c));
    for (size_t c = 0; c < v.size(); c++) v[c] = base[c * p.sc];
    return v;
}

// dst[c] = alpha·v[c] + beta·dst[c], dst not read when beta == 0.
void store_param(const Tensor4& p, float* base, const std::vector<double>& v, double alpha = 1, double beta = 0) {
    for (size_t c = 0; c < v.size(); c++) {
        float& d = base[c * p.sc];
        double r = alpha * v[c];
        if (beta != 0) r += beta * static_cast<double>(d);
        d = static_cast<float>(r);
    }
}

// Mean and biased variance (two passes) of each channel of packed x (N×C×H×W).
void channel_stats(const Tensor4& t, const std::vector<float>& x, std::vector<double>& mean, std::vector<double>& var) {
    const size_t C = t.c, HW = size_t(t.h) * t.w, m = size_t(t.n) * HW;
    mean.assign(C, 0.0);
    var.assign(C, 0.0);
    for (size_t n = 0; n < size_t(t.n); n++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++) mean[c] += x[(n * C + c) * HW + i];
    for (double& v : mean) v /= double(m);
    for (size_t n = 0; n < size_t(t.n); n++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++) {
                double d = x[(n * C + c) * HW + i] - mean[c];
                var[c] += d * d;
            }
    for (double& v : var) v /= double(m);
}

struct BnTraining {
    BnSetup s;  // others[0]: y
    const float *x, *scale, *bias;
    float *y, *run_mean, *run_var, *save_mean, *save_inv_std;
    double alpha, beta, factor, eps;
};

void run(const BnTraining& j) {
    const Tensor4& t = j.s.x;
    const size_t C = t.c, HW = size_t(t.h) * t.w, m = size_t(t.n) * HW;
    std::vector<float> x = gather(t, j.x, Rounding::Exact);
    std::vector<double> mean, var;
    channel_stats(t, x, mean, var);
    std::vector<double> gamma = load_param(j.s.p, j.scale), bias = load_param(j.s.p, j.bias), inv_std(C);
    for (size_t c = 0; c < C; c++) inv_std[c] = 1.0 / std::sqrt(var[c] + j.eps);
    std::vector<double> y(t.count());
    for (size_t n = 0; n < size_t(t.n); n++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++) {
                size_t o = (n * C + c) * HW + i;
                y[o] = gamma[c] * (x[o] - mean[c]) * inv_std[c] + bias[c];
            }
    store(j.s.others[0], j.y, y.data(), j.alpha, j.beta);
    if (j.run_mean) {
        // cuDNN's estimator: the running variance takes the unbiased batch variance, var·m/(m−1)
        // (with one value per channel there is none; the biased one, 0, is used).
        std::vector<double> rm = load_param(j.s.p, j.run_mean), rv = load_param(j.s.p, j.run_var);
        for (size_t c = 0; c < C; c++) {
            double unbiased = m > 1 ? var[c] * double(m) / double(m - 1) : var[c];
            rm[c] = (1 - j.factor) * rm[c] + j.factor * mean[c];
            rv[c] = (1 - j.factor) * rv[c] + j.factor * unbiased;
        }
        store_param(j.s.p, j.run_mean, rm);
        store_param(j.s.p, j.run_var, rv);
    }
    if (j.save_mean) {
        store_param(j.s.p, j.save_mean, mean);
        store_param(j.s.p, j.save_inv_std, inv_std);
    }
}

struct BnInference {
    BnSetup s;  // others[0]: y
    const float *x, *scale, *bias, *mean, *var;
    float* y;
    double alpha, beta, eps;
};

void run(const BnInference& j) {
    const Tensor4& t = j.s.x;
    const size_t C = t.c, HW = size_t(t.h) * t.w;
    std::vector<float> x = gather(t, j.x, Rounding::Exact);
    std::vector<double> gamma = load_param(j.s.p, j.scale), bias = load_param(j.s.p, j.bias), mean = load_param(j.s.p, j.mean),
                        var = load_param(j.s.p, j.var);
    std::vector<double> y(t.count());
    for (size_t c = 0; c < C; c++) var[c] = 1.0 / std::sqrt(var[c] + j.eps);  // now the inverse std
    for (size_t n = 0; n < size_t(t.n); n++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++) {
                size_t o = (n * C + c) * HW + i;
                y[o] = gamma[c] * (x[o] - mean[c]) * var[c] + bias[c];
            }
    store(j.s.others[0], j.y, y.data(), j.alpha, j.beta);
}

struct BnBackward {
    BnSetup s;  // others[0]: dy, others[1]: dx
    const float *x, *dy, *scale, *saved_mean, *saved_inv_std;
    float *dx, *dscale, *dbias;
    double alpha_data, beta_data, alpha_param, beta_param, eps;
};

// With x̂ = (x − mean)·inv_std over the m = N·H·W values of a channel:
//   dbias = Σ dy, dscale = Σ dy·x̂, dx = scale·inv_std·(dy − dbias/m − x̂·dscale/m).
void run(const BnBackward& j) {
    const Tensor4& t = j.s.x;
    const size_t C = t.c, HW = size_t(t.h) * t.w, m = size_t(t.n) * HW;
    std::vector<float> x = gather(t, j.x, Rounding::Exact), dy = gather(j.s.others[0], j.dy, Rounding::Exact);
    std::vector<double> mean, inv_std;
    if (j.saved_mean) {
        mean = load_param(j.s.p, j.saved_mean);
        inv_std = load_param(j.s.p, j.saved_inv_std);
    } else {
        channel_stats(t, x, mean, inv_std);
        for (double& v : inv_std) v = 1.0 / std::sqrt(v + j.eps);
    }
    std::vector<double> gamma = load_param(j.s.p, j.scale), dbias(C, 0.0), dscale(C, 0.0);
    for (size_t n = 0; n < size_t(t.n); n++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++) {
                size_t o = (n * C + c) * HW + i;
                dbias[c] += dy[o];
                dscale[c] += dy[o] * (x[o] - mean[c]) * inv_std[c];
            }
    std::vector<double> dx(t.count());
    for (size_t n = 0; n < size_t(t.n); n++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++) {
                size_t o = (n * C + c) * HW + i;
                double xhat = (x[o] - mean[c]) * inv_std[c];
                dx[o] = gamma[c] * inv_std[c] * (dy[o] - dbias[c] / double(m) - xhat * dscale[c] / double(m));
            }
    store(j.s.others[1], j.dx, dx.data(), j.alpha_data, j.beta_data);
    store_param(j.s.p, j.dscale, dscale, j.alpha_param, j.beta_param);
    store_param(j.s.p, j.dbias, dbias, j.alpha_param, j.beta_param);
}

// Exactly one of a pair (running mean / variance, saved mean / inverse variance) is BAD_PARAM.
cudnnStatus_t check_pair(const char* call, const char* a, const void* pa, const char* b, const void* pb) {
    if ((pa == nullptr) != (pb == nullptr))
        return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(pa ? b : a) + " is null but " + (pa ? a : b) + " is not: give both or neither");
    return CUDNN_STATUS_SUCCESS;
}

}  // namespace

// ==== library, handle, errors (cudnn_graph.h)

// RLMIXUP_SOFTWARE_DEVICE_CUDNN_VERSION (in the C environment) makes the device report another
// version, e.g. 8907 for cuDNN 8.9.7 (cuDNN 8's encoding), to test the engine's version check.
SWDEV_API size_t cudnnGetVersion() {
    const char* v = std::getenv("RLMIXUP_SOFTWARE_DEVICE_CUDNN_VERSION");
    return v && *v ? static_cast<size_t>(std::strtoull(v, nullptr, 10)) : kVersion;
}
SWDEV_DESCRIBE(cudnnGetVersion)

// Static strings, the header's name of each status, as cuDNN returns them.
SWDEV_API const char* cudnnGetErrorString(cudnnStatus_t status) {
    switch (status) {
#define SWDEV_CASE(name, value) \
    case name: return #name;
        SWDEV_CUDNN_STATUSES(SWDEV_CASE)
#undef SWDEV_CASE
    }
    return "CUDNN_UNKNOWN_STATUS";
}
SWDEV_DESCRIBE(cudnnGetErrorString)

SWDEV_API cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
    const char* call = "cudnnCreate";
    if (!handle) return fail(call, CUDNN_STATUS_BAD_PARAM, "handle is a null host pointer");
    if (!check_host(call, "handle", handle, sizeof *handle)) return CUDNN_STATUS_BAD_PARAM;
    std::lock_guard g(lock());
    auto* h = new cudnnContext();
    live<cudnnContext>().insert(h);
    *handle = h;
    return CUDNN_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cudnnCreate)

// cudnnDestroy implicitly synchronises the device (the documentation says so), so the work queued
// through the handle has run when it returns.
SWDEV_API cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
    std::lock_guard g(lock());
    if (!handle_of("cudnnDestroy", handle)) return CUDNN_STATUS_BAD_PARAM;
    sync_all();
    live<cudnnContext>().erase(handle);
    return CUDNN_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cudnnDestroy)

// The stream must be live now (null is the legacy default stream); one destroyed later makes the
// next launch fail (enqueue reports it).
SWDEV_API cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
    const char* call = "cudnnSetStream";
    std::lock_guard g(lock());
    cudnnContext* h = handle_of(call, handle);
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    if (!stream_of(streamId)) return fail(call, CUDNN_STATUS_BAD_PARAM, "streamId is not a live stream (destroyed, or never created)");
    h->stream = streamId;
    return CUDNN_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cudnnSetStream)

// ==== descriptors (cudnn_ops.h, cudnn_cnn.h)

namespace {
template <typename T> cudnnStatus_t create_descriptor(const char* call, const char* arg, T** out) {
    if (!out) return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(arg) + " is a null host pointer");
    if (!check_host(call, arg, out, sizeof *out)) return CUDNN_STATUS_BAD_PARAM;
    std::lock_guard g(lock());
    T* d = new T();
    live<T>().insert(d);
    *out = d;
    return CUDNN_STATUS_SUCCESS;
}

// Destroying null is a no-op; destroying one twice, or something else, is BAD_PARAM.
template <typename T> cudnnStatus_t destroy_descriptor(const char* call, const char* arg, T* d, const char* kind) {
    if (!d) return CUDNN_STATUS_SUCCESS;
    std::lock_guard g(lock());
    if (!descriptor_of(call, arg, d, kind, false)) return CUDNN_STATUS_BAD_PARAM;
    live<T>().erase(d);
    return CUDNN_STATUS_SUCCESS;
}

// Fills a tensor descriptor after the checks every setter shares: dims ≥ 1, at most 2^31 elements
// (cuDNN's limit, NOT_SUPPORTED), strides ≥ 1.
cudnnStatus_t set_tensor(const char* call, cudnnTensorStruct* t, int nb, const int* dim, const long long* stride) {
    unsigned long long elements = 1;
    for (int i = 0; i < nb; i++) {
        if (dim[i] < 1)
            return fail(call, CUDNN_STATUS_BAD_PARAM, "dimension " + std::to_string(i) + " = " + std::to_string(dim[i]) + " is not positive");
        if (stride[i] < 1)
            return fail(call, CUDNN_STATUS_BAD_PARAM, "stride " + std::to_string(i) + " = " + std::to_string(stride[i]) + " is not positive");
        elements *= static_cast<unsigned long long>(dim[i]);
        if (elements > (1ull << 31)) return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "the tensor has more than 2^31 elements");
    }
    t->nb = nb;
    for (int i = 0; i < nb; i++) t->dim[i] = dim[i], t->stride[i] = stride[i];
    t->set = true;
    return CUDNN_STATUS_SUCCESS;
}
}  // namespace

SWDEV_API cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* tensorDesc) {
    return create_descriptor("cudnnCreateTensorDescriptor", "tensorDesc", tensorDesc);
}
SWDEV_DESCRIBE(cudnnCreateTensorDescriptor)

// NCHW strides (C·H·W, H·W, W, 1) or NHWC strides (H·W·C, 1, W·C, C); NCHW_VECT_C needs the
// vectorised int8 types the software device does not compute in.
SWDEV_API cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format, cudnnDataType_t dataType,
                                                   int n, int c, int h, int w) {
    const char* call = "cudnnSetTensor4dDescriptor";
    std::lock_guard g(lock());
    cudnnTensorStruct* t = descriptor_of(call, "tensorDesc", tensorDesc, "tensor", false);
    if (!t) return CUDNN_STATUS_BAD_PARAM;
    if (format < CUDNN_TENSOR_NCHW || format > CUDNN_TENSOR_NCHW_VECT_C)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "format = " + std::to_string(static_cast<int>(format)) + " is not a cudnnTensorFormat_t");
    if (cudnnStatus_t s = check_data_type(call, "dataType", dataType)) return s;
    if (format == CUDNN_TENSOR_NCHW_VECT_C) return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "format CUDNN_TENSOR_NCHW_VECT_C with float data");
    const int dim[4] = {n, c, h, w};
    long long stride[4] = {(long long)c * h * w, (long long)h * w, w, 1};
    if (format == CUDNN_TENSOR_NHWC) stride[0] = (long long)h * w * c, stride[1] = 1, stride[2] = (long long)w * c, stride[3] = c;
    return set_tensor(call, t, 4, dim, stride);
}
SWDEV_DESCRIBE(cudnnSetTensor4dDescriptor)

// nbDims outside [4, CUDNN_DIM_MAX] is NOT_SUPPORTED, as documented; strides are explicit.
SWDEV_API cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t dataType, int nbDims, const int* dimA,
                                                   const int* strideA) {
    const char* call = "cudnnSetTensorNdDescriptor";
    std::lock_guard g(lock());
    cudnnTensorStruct* t = descriptor_of(call, "tensorDesc", tensorDesc, "tensor", false);
    if (!t) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = check_data_type(call, "dataType", dataType)) return s;
    if (nbDims < 4 || nbDims > kDimMax)
        return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "nbDims = " + std::to_string(nbDims) + " is outside [4, CUDNN_DIM_MAX = 8]");
    if (!dimA || !strideA) return fail(call, CUDNN_STATUS_BAD_PARAM, std::string(dimA ? "strideA" : "dimA") + " is a null host pointer");
    if (!check_host(call, "dimA", dimA, sizeof(int) * nbDims) || !check_host(call, "strideA", strideA, sizeof(int) * nbDims))
        return CUDNN_STATUS_BAD_PARAM;
    long long stride[kDimMax];
    for (int i = 0; i < nbDims; i++) stride[i] = strideA[i];
    return set_tensor(call, t, nbDims, dimA, stride);
}
SWDEV_DESCRIBE(cudnnSetTensorNdDescriptor)

SWDEV_API cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
    return destroy_descriptor("cudnnDestroyTensorDescriptor", "tensorDesc", tensorDesc, "tensor");
}
SWDEV_DESCRIBE(cudnnDestroyTensorDescriptor)

SWDEV_API cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* filterDesc) {
    return create_descriptor("cudnnCreateFilterDescriptor", "filterDesc", filterDesc);
}
SWDEV_DESCRIBE(cudnnCreateFilterDescriptor)

// k output channels, c input channels per group, h×w kernel; NCHW is KCRS in memory, NHWC KRSC.
SWDEV_API cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType, cudnnTensorFormat_t format,
                                                   int k, int c, int h, int w) {
    const char* call = "cudnnSetFilter4dDescriptor";
    std::lock_guard g(lock());
    cudnnFilterStruct* f = descriptor_of(call, "filterDesc", filterDesc, "filter", false);
    if (!f) return CUDNN_STATUS_BAD_PARAM;
    if (format < CUDNN_TENSOR_NCHW || format > CUDNN_TENSOR_NCHW_VECT_C)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "format = " + std::to_string(static_cast<int>(format)) + " is not a cudnnTensorFormat_t");
    if (cudnnStatus_t s = check_data_type(call, "dataType", dataType)) return s;
    if (format == CUDNN_TENSOR_NCHW_VECT_C) return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "format CUDNN_TENSOR_NCHW_VECT_C with float data");
    if (k < 1 || c < 1 || h < 1 || w < 1)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "k, c, h, w = " + std::to_string(k) + ", " + std::to_string(c) + ", " + std::to_string(h) + ", " +
                                                      std::to_string(w) + ": all must be positive");
    if ((unsigned long long)k * c * h * w > (1ull << 31)) return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "the filter has more than 2^31 elements");
    f->format = format;
    f->k = k, f->c = c, f->r = h, f->s = w;
    f->set = true;
    return CUDNN_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cudnnSetFilter4dDescriptor)

SWDEV_API cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
    return destroy_descriptor("cudnnDestroyFilterDescriptor", "filterDesc", filterDesc, "filter");
}
SWDEV_DESCRIBE(cudnnDestroyFilterDescriptor)

SWDEV_API cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* convDesc) {
    return create_descriptor("cudnnCreateConvolutionDescriptor", "convDesc", convDesc);
}
SWDEV_DESCRIBE(cudnnCreateConvolutionDescriptor)

// BAD_PARAM as documented: a negative padding, a stride or dilation below 1, an invalid mode; the
// compute type must be a data type (only float is usable with float tensors; checked at the call).
SWDEV_API cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h, int pad_w, int u, int v,
                                                        int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                                        cudnnDataType_t computeType) {
    const char* call = "cudnnSetConvolution2dDescriptor";
    std::lock_guard g(lock());
    cudnnConvolutionStruct* c = descriptor_of(call, "convDesc", convDesc, "convolution", false);
    if (!c) return CUDNN_STATUS_BAD_PARAM;
    if (pad_h < 0 || pad_w < 0)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "pad_h, pad_w = " + std::to_string(pad_h) + ", " + std::to_string(pad_w) + ": padding must not be negative");
    if (u < 1 || v < 1)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "u, v = " + std::to_string(u) + ", " + std::to_string(v) + ": strides must be positive");
    if (dilation_h < 1 || dilation_w < 1)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "dilation_h, dilation_w = " + std::to_string(dilation_h) + ", " + std::to_string(dilation_w) +
                                                      ": dilations must be positive");
    if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "mode = " + std::to_string(static_cast<int>(mode)) + " is not a cudnnConvolutionMode_t");
    if (computeType < CUDNN_DATA_FLOAT || computeType > CUDNN_DATA_FAST_FLOAT_FOR_FP8)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "computeType = " + std::to_string(static_cast<int>(computeType)) + " is not a cudnnDataType_t");
    c->pad_h = pad_h, c->pad_w = pad_w, c->u = u, c->v = v, c->dil_h = dilation_h, c->dil_w = dilation_w;
    c->mode = mode;
    c->compute = computeType;
    c->set = true;
    return CUDNN_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cudnnSetConvolution2dDescriptor)

SWDEV_API cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t mathType) {
    const char* call = "cudnnSetConvolutionMathType";
    std::lock_guard g(lock());
    cudnnConvolutionStruct* c = descriptor_of(call, "convDesc", convDesc, "convolution", false);
    if (!c) return CUDNN_STATUS_BAD_PARAM;
    if (mathType < CUDNN_DEFAULT_MATH || mathType > CUDNN_FMA_MATH)
        return fail(call, CUDNN_STATUS_BAD_PARAM, "mathType = " + std::to_string(static_cast<int>(mathType)) + " is not a cudnnMathType_t");
    c->math = mathType;
    return CUDNN_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cudnnSetConvolutionMathType)

SWDEV_API cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int groupCount) {
    const char* call = "cudnnSetConvolutionGroupCount";
    std::lock_guard g(lock());
    cudnnConvolutionStruct* c = descriptor_of(call, "convDesc", convDesc, "convolution", false);
    if (!c) return CUDNN_STATUS_BAD_PARAM;
    if (groupCount < 1) return fail(call, CUDNN_STATUS_BAD_PARAM, "groupCount = " + std::to_string(groupCount) + " must be positive");
    c->groups = groupCount;
    return CUDNN_STATUS_SUCCESS;
}
SWDEV_DESCRIBE(cudnnSetConvolutionGroupCount)

SWDEV_API cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
    return destroy_descriptor("cudnnDestroyConvolutionDescriptor", "convDesc", convDesc, "convolution");
}
SWDEV_DESCRIBE(cudnnDestroyConvolutionDescriptor)

// ==== how many rows an algorithm query can return (cudnn_cnn.h): every algorithm and tensor-core variant

cudnnStatus_t max_count(const char* call, cudnnHandle_t handle, Direction dir, int* count) {
    std::lock_guard g(lock());
    if (!handle_of(call, handle)) return CUDNN_STATUS_BAD_PARAM;
    if (!count) return fail(call, CUDNN_STATUS_BAD_PARAM, "count is a null host pointer");
    if (!check_host(call, "count", count, sizeof(int))) return CUDNN_STATUS_BAD_PARAM;
    *count = max_rows(dir);
    return CUDNN_STATUS_SUCCESS;
}

SWDEV_API cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
    return max_count("cudnnGetConvolutionForwardAlgorithmMaxCount", handle, Direction::Forward, count);
}
SWDEV_DESCRIBE(cudnnGetConvolutionForwardAlgorithmMaxCount)

SWDEV_API cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
    return max_count("cudnnGetConvolutionBackwardDataAlgorithmMaxCount", handle, Direction::BackwardData, count);
}
SWDEV_DESCRIBE(cudnnGetConvolutionBackwardDataAlgorithmMaxCount)

SWDEV_API cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
    return max_count("cudnnGetConvolutionBackwardFilterAlgorithmMaxCount", handle, Direction::BackwardFilter, count);
}
SWDEV_DESCRIBE(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount)

// ==== algorithm choice (cudnn_cnn.h). _v7 asks the heuristics; Find "times" them (see find_waits).

SWDEV_API cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, cudnnTensorDescriptor_t srcDesc,
                                                               cudnnFilterDescriptor_t filterDesc, cudnnConvolutionDescriptor_t convDesc,
                                                               cudnnTensorDescriptor_t destDesc, int requestedAlgoCount, int* returnedAlgoCount,
                                                               cudnnConvolutionFwdAlgoPerf_t* perfResults) {
    const char* call = "cudnnGetConvolutionForwardAlgorithm_v7";
    std::lock_guard g(lock());
    if (!handle_of(call, handle)) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, srcDesc, "srcDesc", filterDesc, "filterDesc", convDesc, destDesc, "destDesc", Direction::Forward, s)) return st;
    return report_algos(call, Direction::Forward, s, requestedAlgoCount, returnedAlgoCount, perfResults, false);
}
SWDEV_DESCRIBE(cudnnGetConvolutionForwardAlgorithm_v7)

SWDEV_API cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t handle, cudnnTensorDescriptor_t xDesc, cudnnFilterDescriptor_t wDesc,
                                                             cudnnConvolutionDescriptor_t convDesc, cudnnTensorDescriptor_t yDesc,
                                                             int requestedAlgoCount, int* returnedAlgoCount,
                                                             cudnnConvolutionFwdAlgoPerf_t* perfResults) {
    const char* call = "cudnnFindConvolutionForwardAlgorithm";
    std::lock_guard g(lock());
    cudnnContext* h = handle_of(call, handle);
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, xDesc, "xDesc", wDesc, "wDesc", convDesc, yDesc, "yDesc", Direction::Forward, s)) return st;
    if (cudnnStatus_t st = report_algos(call, Direction::Forward, s, requestedAlgoCount, returnedAlgoCount, perfResults, true)) return st;
    return find_waits(call, *h);
}
SWDEV_DESCRIBE(cudnnFindConvolutionForwardAlgorithm)

SWDEV_API cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle, cudnnFilterDescriptor_t filterDesc,
                                                                    cudnnTensorDescriptor_t diffDesc, cudnnConvolutionDescriptor_t convDesc,
                                                                    cudnnTensorDescriptor_t gradDesc, int requestedAlgoCount,
                                                                    int* returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
    const char* call = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
    std::lock_guard g(lock());
    if (!handle_of(call, handle)) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, gradDesc, "gradDesc", filterDesc, "filterDesc", convDesc, diffDesc, "diffDesc", Direction::BackwardData, s))
        return st;
    return report_algos(call, Direction::BackwardData, s, requestedAlgoCount, returnedAlgoCount, perfResults, false);
}
SWDEV_DESCRIBE(cudnnGetConvolutionBackwardDataAlgorithm_v7)

SWDEV_API cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t handle, cudnnFilterDescriptor_t wDesc,
                                                                  cudnnTensorDescriptor_t dyDesc, cudnnConvolutionDescriptor_t convDesc,
                                                                  cudnnTensorDescriptor_t dxDesc, int requestedAlgoCount, int* returnedAlgoCount,
                                                                  cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
    const char* call = "cudnnFindConvolutionBackwardDataAlgorithm";
    std::lock_guard g(lock());
    cudnnContext* h = handle_of(call, handle);
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, dxDesc, "dxDesc", wDesc, "wDesc", convDesc, dyDesc, "dyDesc", Direction::BackwardData, s)) return st;
    if (cudnnStatus_t st = report_algos(call, Direction::BackwardData, s, requestedAlgoCount, returnedAlgoCount, perfResults, true)) return st;
    return find_waits(call, *h);
}
SWDEV_DESCRIBE(cudnnFindConvolutionBackwardDataAlgorithm)

SWDEV_API cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle, cudnnTensorDescriptor_t srcDesc,
                                                                      cudnnTensorDescriptor_t diffDesc, cudnnConvolutionDescriptor_t convDesc,
                                                                      cudnnFilterDescriptor_t gradDesc, int requestedAlgoCount,
                                                                      int* returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
    const char* call = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
    std::lock_guard g(lock());
    if (!handle_of(call, handle)) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, srcDesc, "srcDesc", gradDesc, "gradDesc", convDesc, diffDesc, "diffDesc", Direction::BackwardFilter, s))
        return st;
    return report_algos(call, Direction::BackwardFilter, s, requestedAlgoCount, returnedAlgoCount, perfResults, false);
}
SWDEV_DESCRIBE(cudnnGetConvolutionBackwardFilterAlgorithm_v7)

SWDEV_API cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t handle, cudnnTensorDescriptor_t xDesc,
                                                                    cudnnTensorDescriptor_t dyDesc, cudnnConvolutionDescriptor_t convDesc,
                                                                    cudnnFilterDescriptor_t dwDesc, int requestedAlgoCount, int* returnedAlgoCount,
                                                                    cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
    const char* call = "cudnnFindConvolutionBackwardFilterAlgorithm";
    std::lock_guard g(lock());
    cudnnContext* h = handle_of(call, handle);
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, xDesc, "xDesc", dwDesc, "dwDesc", convDesc, dyDesc, "dyDesc", Direction::BackwardFilter, s)) return st;
    if (cudnnStatus_t st = report_algos(call, Direction::BackwardFilter, s, requestedAlgoCount, returnedAlgoCount, perfResults, true)) return st;
    return find_waits(call, *h);
}
SWDEV_DESCRIBE(cudnnFindConvolutionBackwardFilterAlgorithm)

// ==== workspace sizes: the same figures the algorithm queries report

SWDEV_API cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, cudnnTensorDescriptor_t xDesc, cudnnFilterDescriptor_t wDesc,
                                                                cudnnConvolutionDescriptor_t convDesc, cudnnTensorDescriptor_t yDesc,
                                                                cudnnConvolutionFwdAlgo_t algo, size_t* sizeInBytes) {
    const char* call = "cudnnGetConvolutionForwardWorkspaceSize";
    std::lock_guard g(lock());
    if (!handle_of(call, handle)) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, xDesc, "xDesc", wDesc, "wDesc", convDesc, yDesc, "yDesc", Direction::Forward, s)) return st;
    return workspace_query(call, Direction::Forward, s, algo, sizeInBytes);
}
SWDEV_DESCRIBE(cudnnGetConvolutionForwardWorkspaceSize)

SWDEV_API cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, cudnnFilterDescriptor_t wDesc,
                                                                     cudnnTensorDescriptor_t dyDesc, cudnnConvolutionDescriptor_t convDesc,
                                                                     cudnnTensorDescriptor_t dxDesc, cudnnConvolutionBwdDataAlgo_t algo,
                                                                     size_t* sizeInBytes) {
    const char* call = "cudnnGetConvolutionBackwardDataWorkspaceSize";
    std::lock_guard g(lock());
    if (!handle_of(call, handle)) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, dxDesc, "dxDesc", wDesc, "wDesc", convDesc, dyDesc, "dyDesc", Direction::BackwardData, s)) return st;
    return workspace_query(call, Direction::BackwardData, s, algo, sizeInBytes);
}
SWDEV_DESCRIBE(cudnnGetConvolutionBackwardDataWorkspaceSize)

SWDEV_API cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle, cudnnTensorDescriptor_t xDesc,
                                                                       cudnnTensorDescriptor_t dyDesc, cudnnConvolutionDescriptor_t convDesc,
                                                                       cudnnFilterDescriptor_t gradDesc, cudnnConvolutionBwdFilterAlgo_t algo,
                                                                       size_t* sizeInBytes) {
    const char* call = "cudnnGetConvolutionBackwardFilterWorkspaceSize";
    std::lock_guard g(lock());
    if (!handle_of(call, handle)) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, xDesc, "xDesc", gradDesc, "gradDesc", convDesc, dyDesc, "dyDesc", Direction::BackwardFilter, s)) return st;
    return workspace_query(call, Direction::BackwardFilter, s, algo, sizeInBytes);
}
SWDEV_DESCRIBE(cudnnGetConvolutionBackwardFilterWorkspaceSize)

// ==== the convolutions: out = alpha·op(inputs) + beta·out

SWDEV_API cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha, cudnnTensorDescriptor_t xDesc, const void* x,
                                                cudnnFilterDescriptor_t wDesc, const void* w, cudnnConvolutionDescriptor_t convDesc,
                                                cudnnConvolutionFwdAlgo_t algo, void* workSpace, size_t workSpaceSizeInBytes, const void* beta,
                                                cudnnTensorDescriptor_t yDesc, void* y) {
    const char* call = "cudnnConvolutionForward";
    std::lock_guard g(lock());
    cudnnContext* h = handle_of(call, handle);
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, xDesc, "xDesc", wDesc, "wDesc", convDesc, yDesc, "yDesc", Direction::Forward, s)) return st;
    return convolve(call, *h, Direction::Forward, s, algo, alpha, beta, {"x", x, s.x.bytes()}, {"w", w, s.w.bytes()}, {"y", y, s.y.bytes()},
                    workSpace, workSpaceSizeInBytes);
}
SWDEV_DESCRIBE(cudnnConvolutionForward)

SWDEV_API cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha, cudnnFilterDescriptor_t wDesc, const void* w,
                                                     cudnnTensorDescriptor_t dyDesc, const void* dy, cudnnConvolutionDescriptor_t convDesc,
                                                     cudnnConvolutionBwdDataAlgo_t algo, void* workSpace, size_t workSpaceSizeInBytes,
                                                     const void* beta, cudnnTensorDescriptor_t dxDesc, void* dx) {
    const char* call = "cudnnConvolutionBackwardData";
    std::lock_guard g(lock());
    cudnnContext* h = handle_of(call, handle);
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, dxDesc, "dxDesc", wDesc, "wDesc", convDesc, dyDesc, "dyDesc", Direction::BackwardData, s)) return st;
    return convolve(call, *h, Direction::BackwardData, s, algo, alpha, beta, {"dy", dy, s.y.bytes()}, {"w", w, s.w.bytes()},
                    {"dx", dx, s.x.bytes()}, workSpace, workSpaceSizeInBytes);
}
SWDEV_DESCRIBE(cudnnConvolutionBackwardData)

SWDEV_API cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha, cudnnTensorDescriptor_t xDesc, const void* x,
                                                       cudnnTensorDescriptor_t dyDesc, const void* dy, cudnnConvolutionDescriptor_t convDesc,
                                                       cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace, size_t workSpaceSizeInBytes,
                                                       const void* beta, cudnnFilterDescriptor_t dwDesc, void* dw) {
    const char* call = "cudnnConvolutionBackwardFilter";
    std::lock_guard g(lock());
    cudnnContext* h = handle_of(call, handle);
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    ConvSetup s;
    if (cudnnStatus_t st = conv_setup(call, xDesc, "xDesc", dwDesc, "dwDesc", convDesc, dyDesc, "dyDesc", Direction::BackwardFilter, s)) return st;
    return convolve(call, *h, Direction::BackwardFilter, s, algo, alpha, beta, {"x", x, s.x.bytes()}, {"dy", dy, s.y.bytes()},
                    {"dw", dw, s.w.bytes()}, workSpace, workSpaceSizeInBytes);
}
SWDEV_DESCRIBE(cudnnConvolutionBackwardFilter)

// ==== batch normalisation (cudnn_ops.h), spatial: statistics per channel over N, H, W

SWDEV_API cudnnStatus_t cudnnBatchNormalizationForwardTraining(cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
                                                               cudnnTensorDescriptor_t xDesc, const void* x, cudnnTensorDescriptor_t yDesc, void* y,
                                                               cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale,
                                                               const void* bnBias, double exponentialAverageFactor, void* resultRunningMean,
                                                               void* resultRunningVariance, double epsilon, void* resultSaveMean,
                                                               void* resultSaveInvVariance) {
    const char* call = "cudnnBatchNormalizationForwardTraining";
    std::lock_guard g(lock());
    cudnnContext* h = handle_of(call, handle);
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = check_bn_mode(call, mode)) return s;
    BnSetup s;
    if (cudnnStatus_t st = bn_setup(call, xDesc, {{"yDesc", yDesc}}, "bnScaleBiasMeanVarDesc", bnScaleBiasMeanVarDesc, s)) return st;
    if (!injective(s.others[0])) return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "yDesc's strides make elements overlap; an output must not");
    double al, be;
    if (!read_scalar(call, "alpha", alpha, al) || !read_scalar(call, "beta", beta, be)) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t st = check_epsilon(call, epsilon)) return st;
    if (cudnnStatus_t st = check_pair(call, "resultRunningMean", resultRunningMean, "resultRunningVariance", resultRunningVariance)) return st;
    if (cudnnStatus_t st = check_pair(call, "resultSaveMean", resultSaveMean, "resultSaveInvVariance", resultSaveInvVariance)) return st;
    const size_t pb = s.p.bytes();
    std::vector<Extent> extents = {{"x", x, s.x.bytes()}, {"y", y, s.others[0].bytes()}, {"bnScale", bnScale, pb}, {"bnBias", bnBias, pb}};
    if (resultRunningMean) extents.insert(extents.end(), {{"resultRunningMean", resultRunningMean, pb}, {"resultRunningVariance", resultRunningVariance, pb}});
    if (resultSaveMean) extents.insert(extents.end(), {{"resultSaveMean", resultSaveMean, pb}, {"resultSaveInvVariance", resultSaveInvVariance, pb}});
    if (cudnnStatus_t st = check_operands(call, extents)) return st;
    BnTraining job{s, static_cast<const float*>(x), static_cast<const float*>(bnScale), static_cast<const float*>(bnBias),
                   static_cast<float*>(y), static_cast<float*>(resultRunningMean), static_cast<float*>(resultRunningVariance),
                   static_cast<float*>(resultSaveMean), static_cast<float*>(resultSaveInvVariance), al, be, exponentialAverageFactor, epsilon};
    return launch(call, h->stream, std::move(extents), [job] { run(job); });
}
SWDEV_DESCRIBE(cudnnBatchNormalizationForwardTraining)

SWDEV_API cudnnStatus_t cudnnBatchNormalizationForwardInference(cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
                                                                cudnnTensorDescriptor_t xDesc, const void* x, cudnnTensorDescriptor_t yDesc, void* y,
                                                                cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale,
                                                                const void* bnBias, const void* estimatedMean, const void* estimatedVariance,
                                                                double epsilon) {
    const char* call = "cudnnBatchNormalizationForwardInference";
    std::lock_guard g(lock());
    cudnnContext* h = handle_of(call, handle);
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = check_bn_mode(call, mode)) return s;
    BnSetup s;
    if (cudnnStatus_t st = bn_setup(call, xDesc, {{"yDesc", yDesc}}, "bnScaleBiasMeanVarDesc", bnScaleBiasMeanVarDesc, s)) return st;
    if (!injective(s.others[0])) return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "yDesc's strides make elements overlap; an output must not");
    double al, be;
    if (!read_scalar(call, "alpha", alpha, al) || !read_scalar(call, "beta", beta, be)) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t st = check_epsilon(call, epsilon)) return st;
    const size_t pb = s.p.bytes();
    std::vector<Extent> extents = {{"x", x, s.x.bytes()},       {"y", y, s.others[0].bytes()},          {"bnScale", bnScale, pb},
                                   {"bnBias", bnBias, pb}, {"estimatedMean", estimatedMean, pb}, {"estimatedVariance", estimatedVariance, pb}};
    if (cudnnStatus_t st = check_operands(call, extents)) return st;
    BnInference job{s, static_cast<const float*>(x), static_cast<const float*>(bnScale), static_cast<const float*>(bnBias),
                    static_cast<const float*>(estimatedMean), static_cast<const float*>(estimatedVariance), static_cast<float*>(y), al, be, epsilon};
    return launch(call, h->stream, std::move(extents), [job] { run(job); });
}
SWDEV_DESCRIBE(cudnnBatchNormalizationForwardInference)

// savedMean and savedInvVariance: both (the forward's, used as they are; epsilon then only has to
// be valid) or neither (recomputed from x with epsilon). dBnScaleResult and dBnBiasResult must not
// be null.
SWDEV_API cudnnStatus_t cudnnBatchNormalizationBackward(cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alphaDataDiff,
                                                        const void* betaDataDiff, const void* alphaParamDiff, const void* betaParamDiff,
                                                        cudnnTensorDescriptor_t xDesc, const void* x, cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                        cudnnTensorDescriptor_t dxDesc, void* dx, cudnnTensorDescriptor_t dBnScaleBiasDesc,
                                                        const void* bnScale, void* dBnScaleResult, void* dBnBiasResult, double epsilon,
                                                        const void* savedMean, const void* savedInvVariance) {
    const char* call = "cudnnBatchNormalizationBackward";
    std::lock_guard g(lock());
    cudnnContext* h = handle_of(call, handle);
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = check_bn_mode(call, mode)) return s;
    BnSetup s;
    if (cudnnStatus_t st = bn_setup(call, xDesc, {{"dyDesc", dyDesc}, {"dxDesc", dxDesc}}, "dBnScaleBiasDesc", dBnScaleBiasDesc, s)) return st;
    if (!injective(s.others[1])) return fail(call, CUDNN_STATUS_NOT_SUPPORTED, "dxDesc's strides make elements overlap; an output must not");
    double ad, bd, ap, bp;
    if (!read_scalar(call, "alphaDataDiff", alphaDataDiff, ad) || !read_scalar(call, "betaDataDiff", betaDataDiff, bd) ||
        !read_scalar(call, "alphaParamDiff", alphaParamDiff, ap) || !read_scalar(call, "betaParamDiff", betaParamDiff, bp))
        return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t st = check_epsilon(call, epsilon)) return st;
    if (cudnnStatus_t st = check_pair(call, "savedMean", savedMean, "savedInvVariance", savedInvVariance)) return st;
    const size_t pb = s.p.bytes();
    std::vector<Extent> extents = {{"x", x, s.x.bytes()},           {"dy", dy, s.others[0].bytes()},          {"dx", dx, s.others[1].bytes()},
                                   {"bnScale", bnScale, pb}, {"dBnScaleResult", dBnScaleResult, pb}, {"dBnBiasResult", dBnBiasResult, pb}};
    if (savedMean) extents.insert(extents.end(), {{"savedMean", savedMean, pb}, {"savedInvVariance", savedInvVariance, pb}});
    if (cudnnStatus_t st = check_operands(call, extents)) return st;
    BnBackward job{s, static_cast<const float*>(x), static_cast<const float*>(dy), static_cast<const float*>(bnScale),
                   static_cast<const float*>(savedMean), static_cast<const float*>(savedInvVariance), static_cast<float*>(dx),
                   static_cast<float*>(dBnScaleResult), static_cast<float*>(dBnBiasResult), ad, bd, ap, bp, epsilon};
    return launch(call, h->stream, std::move(extents), [job] { run(job); });
}
SWDEV_DESCRIBE(cudnnBatchNormalizationBackward)
