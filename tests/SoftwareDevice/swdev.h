// swdev.h — the software device's internals, shared by its three faces: the CUDA driver API
// (driver.cpp), cuBLAS (cublas.cpp) and cuDNN (cudnn.cpp). One shared library, libswdev.so,
// implements all three; the build links libcuda.so.1, libcublas.so.12 and libcudnn.so.9 to it, so
// that whichever name the backend loads first, every name resolves to the same state.
//
// What it models, and why (tests/SoftwareDevice/README.md has the whole contract):
//   memory   device allocations live in one reserved address range of their own; a fresh one is
//            filled with a NaN pattern (cuMemAlloc does not zero) and a freed one is poisoned and
//            never handed out again, so a use after free is recognised. Every pointer argument is
//            checked to be of the right kind, and every extent a call touches to lie in one live
//            allocation; a violation fails the call with the API's documented error code and is
//            printed as one line naming the call, the argument and the overrun.
//   streams  asynchronous work (kernels, async copies, memsets, cuBLAS, cuDNN) is queued per
//            stream and runs only when the stream is synchronised, an event on it is waited for, or
//            a call the CUDA documentation says blocks is made; a missing synchronisation therefore
//            shows up as wrong data, as it would on a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>
#include <type_traits>

// ---- C types of the driver API that the other faces share (sizes and kinds as in cuda.h 12.6)

enum CUresult : int {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_DEINITIALIZED = 4,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_INVALID_PTX = 218,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_ILLEGAL_STATE = 401,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_LAUNCH_FAILED = 719,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
    CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901,
    CUDA_ERROR_UNKNOWN = 999,
};

typedef unsigned long long CUdeviceptr;
typedef int CUdevice;
struct CUctx_st;
struct CUstream_st;
struct CUevent_st;
struct CUmod_st;
struct CUfunc_st;
struct CUgraph_st;
struct CUgraphExec_st;
typedef CUctx_st* CUcontext;
typedef CUstream_st* CUstream;
typedef CUevent_st* CUevent;
typedef CUmod_st* CUmodule;
typedef CUfunc_st* CUfunction;
typedef CUgraph_st* CUgraph;
typedef CUgraphExec_st* CUgraphExec;

#define SWDEV_API extern "C" __attribute__((visibility("default")))

namespace swdev {

// ---- violations: one line each on stderr, also kept for the tests (rlmixupSoftwareDeviceViolations)

// Records "<call>: <message>". Every check below calls it on failure.
void violation(const char* call, const std::string& message);

// ---- memory

enum class PtrKind { Null, Device, FreedDevice, PinnedHost, Host };
PtrKind kind_of(const void* p);

// [p, p + bytes) must lie in one live device allocation (bytes == 0: p must be a live device
// address or one past the end of an allocation). On failure, reports "<arg> ..." for <call>.
bool check_device(const char* call, const char* arg, const void* p, size_t bytes);
inline bool check_device(const char* call, const char* arg, CUdeviceptr p, size_t bytes) {
    return check_device(call, arg, reinterpret_cast<const void*>(p), bytes);
}
// p must be host memory (pageable or pinned), not a device address; null only when bytes == 0.
bool check_host(const char* call, const char* arg, const void* p, size_t bytes);
// An extent described as `count` rows of `row_bytes`, `stride_bytes` apart (a matrix with a leading
// dimension, a strided batch): the whole span from the first byte to the last must be in one live
// allocation. count == 0 or row_bytes == 0 touches nothing and passes.
bool check_device_strided(const char* call, const char* arg, const void* p, size_t count, size_t row_bytes, size_t stride_bytes);

// ---- streams: stream-ordered work

// The stream work is queued on. nullptr is the legacy default stream (stream 0).
using Work = std::function<void()>;

// Queues `work` on `stream` (or records it into the stream's capture). `what` names it in reports.
// Returns CUDA_ERROR_INVALID_HANDLE for a destroyed or unknown stream.
CUresult enqueue(CUstream stream, const char* what, Work work);

// Runs everything queued on `stream` (and on the legacy stream when it synchronises with it).
CUresult sync_stream(CUstream stream);
// Runs everything queued anywhere (cuCtxSynchronize, and the calls the documentation says block).
CUresult sync_all();

// An asynchronous fault found while running queued work (an illegal address in a kernel, a cuBLAS
// or cuDNN execution error): the context's sticky error, returned by every later synchronising call.
void fault(CUresult error, const char* what, const std::string& message);
CUresult sticky_error();

// True while `stream` is being captured into a graph.
bool capturing(CUstream stream);

// ---- TF32 and fp16 rounding of a float32 input, as tensor cores see it
float round_tf32(float x);  // to 10 mantissa bits, round to nearest even (cuBLAS/cuDNN TF32 math)
float round_fp16(float x);  // to IEEE binary16 and back (cuDNN's ALLOW_CONVERSION math)

// ---- self-description of exported functions, for the ABI test

// Each exported function registers "name|ret:kind:size|kind:size|..." built from its C++ type, so
// the test can hold the exports against NVIDIA's headers (../shared/cuda-abi).
template <typename T> constexpr const char* abi_kind() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_pointer_v<U>) return "pointer";
    else if constexpr (std::is_enum_v<U>) return "enum";
    else if constexpr (std::is_same_v<U, float>) return "float";
    else if constexpr (std::is_same_v<U, double>) return "double";
    else if constexpr (std::is_integral_v<U>) return "integer";
    else if constexpr (std::is_void_v<U>) return "void";
    else return "struct";
}
template <typename T> constexpr size_t abi_size() {
    if constexpr (std::is_void_v<T>) return 0;
    else return sizeof(T);
}
template <typename R, typename... P> std::string describe(const char* name, R (*)(P...)) {
    std::string s = std::string(name) + "|" + abi_kind<R>() + ":" + std::to_string(abi_size<R>());
    ((s += std::string("|") + abi_kind<P>() + ":" + std::to_string(abi_size<P>())), ...);
    return s;
}
struct ExportRecord {
    ExportRecord(std::string description);
};

// ---- used by driver.cpp (and by the tests' hooks in runtime.cpp)

std::recursive_mutex& lock();       // one lock around all state; queued work runs under it
size_t device_total_bytes();
size_t device_free_bytes();
bool in_device_range(uintptr_t a);
CUresult device_alloc(size_t bytes, CUdeviceptr* out);
CUresult device_free(const char* call, CUdeviceptr p);
void* pinned_alloc(size_t bytes);
bool pinned_free(void* p);
bool is_pinned(const void* p, size_t bytes);
CUstream_st* stream_of(CUstream s);  // the stream's state, or null for a destroyed or unknown one
CUresult stream_create(unsigned flags, CUstream* out);
CUresult stream_destroy(CUstream s);
uint64_t last_task_id();            // the id of the task queued last (events record it)
CUresult sync_until(CUstream stream, uint64_t task);
bool task_done(CUstream stream, uint64_t task);
bool any_capturing();
CUresult begin_capture(CUstream stream);
CUresult end_capture(CUstream stream, CUgraph* out);
CUresult graph_instantiate(CUgraph graph, CUgraphExec* out);
CUresult graph_launch(CUgraphExec exec, CUstream stream);
void graph_destroy(CUgraph graph);
void graph_exec_destroy(CUgraphExec exec);
void clear_sticky_error();

}  // namespace swdev

// Registers an exported function's signature for the ABI test; write it after the definition.
#define SWDEV_DESCRIBE(fn) static ::swdev::ExportRecord swdev_export_##fn(::swdev::describe(#fn, &fn));
