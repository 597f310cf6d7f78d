// driver.cpp — the CUDA driver API subset the backend calls (src/Core/Cuda/Native/CuDriver.cs),
// on the software device: one device that reports itself as an sm_90 part with sm_90's launch
// limits, whose memory is the runtime's device address range, whose streams are the runtime's
// queues, and whose kernels are the host-emulated builds of src/Kernels, found by the names and
// held to the parameter lists of the PTX the backend loads.
//
// What blocks, after the CUDA documentation ("API synchronization behavior" and each function's
// notes): cuMemcpyDtoHAsync into pageable memory returns once the copy is done (so it runs the
// stream up to it); from or into page-locked memory (cuMemHostAlloc) copies are truly asynchronous.
// cuMemcpyHtoDAsync from pageable memory stages the source at the call. cuMemFree and
// cuMemFreeHost wait for the device; cuCtxSynchronize, cuStreamSynchronize and cuEventSynchronize
// wait for what they name. Everything else queues and returns.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>

#include "kernel_host.h"
#include "swdev.h"

// ---- enums of the driver API used here (values as in cuda.h 12.6)

enum CUdevice_attribute : int {
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y = 3,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z = 4,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
    CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY = 9,
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
    CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK = 12,
    CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_INTEGRATED = 18,
    CU_DEVICE_ATTRIBUTE_ECC_ENABLED = 32,
    CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33,
    CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36,
    CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37,
    CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38,
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39,
    CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT = 40,
    CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING = 41,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR = 81,
    CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR = 82,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR = 106,
    CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115,
};

enum CUfunction_attribute : int {
    CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
    CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1,
    CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES = 2,
    CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3,
    CU_FUNC_ATTRIBUTE_NUM_REGS = 4,
    CU_FUNC_ATTRIBUTE_PTX_VERSION = 5,
    CU_FUNC_ATTRIBUTE_BINARY_VERSION = 6,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
};

enum CUjit_option : int {
    CU_JIT_MAX_REGISTERS = 0,
    CU_JIT_INFO_LOG_BUFFER = 3,
    CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4,
    CU_JIT_ERROR_LOG_BUFFER = 5,
    CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
};
enum CUstreamCaptureMode : int { CU_STREAM_CAPTURE_MODE_GLOBAL = 0 };

// The modelled part: sm_90 (H100/H200) limits. RLMIXUP_SOFTWARE_DEVICE_CC=major.minor makes it report
// another compute capability (tests of the backend's refusal of GPUs older than its PTX).
namespace {
int cc_part(int which) {
    const char* e = std::getenv("RLMIXUP_SOFTWARE_DEVICE_CC");
    int major = 9, minor = 0;
    if (e && std::sscanf(e, "%d.%d", &major, &minor) < 1) major = 9;
    return which == 0 ? major : minor;
}
constexpr int kMaxThreads = 1024, kMaxBlockX = 1024, kMaxBlockY = 1024, kMaxBlockZ = 64;
constexpr int kMaxGridX = 2147483647, kMaxGridY = 65535, kMaxGridZ = 65535;
constexpr int kSharedPerBlock = 48 * 1024, kSharedOptin = 227 * 1024;
constexpr const char* kName = "RL-Mixup software device (CPU simulation)";
constexpr int kDriverVersion = 12060;
}  // namespace

// ---- contexts, modules, functions, events

struct CUctx_st {
    int device = 0;
    int retained = 0;
};

struct PtxParam {
    std::string type;  // .u64, .u32, .f32, ...
    size_t size;
};

struct PtxEntry {
    std::string name;
    std::vector<PtxParam> params;
    int max_threads = kMaxThreads;  // .maxntid
    size_t static_shared = 0;       // bytes of .shared declared in (or used by) the entry
};

struct CUmod_st {
    std::string target;
    std::map<std::string, PtxEntry> entries;
    std::vector<std::unique_ptr<CUfunc_st>> functions;
    bool unloaded = false;
};

struct CUfunc_st {
    CUmodule module;
    PtxEntry entry;
    const swdev::HostKernel* host;
    std::vector<size_t> offsets;  // of each parameter in the packed launch buffer
    size_t buffer_size = 0;
    int max_dynamic_shared = kSharedPerBlock;
};

struct CUevent_st {
    unsigned flags = 0;
    bool recorded = false;
    CUstream stream = nullptr;
    uint64_t task = 0;
    bool completed = false;
    double time_ms = 0;
};

namespace {
bool g_initialised = false;
CUctx_st g_primary;
thread_local CUcontext t_current = nullptr;
std::vector<CUmodule> g_modules;
std::vector<CUevent> g_events;

using namespace swdev;

double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

CUresult need_context(const char* call) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (t_current == nullptr) {
        violation(call, "no context is current on the calling thread");
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    return CUDA_SUCCESS;
}

bool live_module(CUmodule m) {
    for (CUmodule x : g_modules)
        if (x == m) return !m->unloaded;
    return false;
}

bool live_function(CUfunction f) {
    for (CUmodule m : g_modules)
        if (!m->unloaded)
            for (auto& fn : m->functions)
                if (fn.get() == f) return true;
    return false;
}

bool live_event(CUevent e) {
    for (CUevent x : g_events)
        if (x == e) return true;
    return false;
}

size_t ptx_type_size(const std::string& t) {
    if (t == ".u64" || t == ".s64" || t == ".b64" || t == ".f64") return 8;
    if (t == ".u32" || t == ".s32" || t == ".b32" || t == ".f32") return 4;
    if (t == ".u16" || t == ".s16" || t == ".b16" || t == ".f16") return 2;
    if (t == ".u8" || t == ".s8" || t == ".b8") return 1;
    return 0;
}

std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// Registers an entry's body uses must be declared in it (.reg .b32 %r<39>; declares %r0..%r38),
// as ptxas requires; special registers (%tid, %ctaid, ...) are always there. Returns "" or the
// first offence, ptxas-style, with its line number in the module.
std::string check_registers(const std::string& text, size_t body_begin, size_t body_end) {
    static const char* special[] = {"tid", "ntid", "ctaid", "nctaid", "laneid", "warpid", "nwarpid", "smid", "nsmid", "gridid",
                                    "clock", "clock64", "lanemask_eq", "lanemask_le", "lanemask_lt", "lanemask_ge", "lanemask_gt",
                                    "dynamic_smem_size", "total_smem_size", "globaltimer", "envreg"};
    std::map<std::string, long> ranges;  // prefix → count (%p<21>)
    std::vector<std::string> named;
    std::string body = text.substr(body_begin, body_end - body_begin);
    size_t pos = 0;
    while ((pos = body.find(".reg", pos)) != std::string::npos) {
        size_t end = body.find(';', pos);
        std::string decl = body.substr(pos, end - pos);
        pos = end;
        size_t pct = decl.find('%');
        while (pct != std::string::npos) {
            size_t a = pct + 1, b = a;
            while (b < decl.size() && (std::isalnum(static_cast<unsigned char>(decl[b])) || decl[b] == '_')) b++;
            std::string name = decl.substr(a, b - a);
            if (b < decl.size() && decl[b] == '<') ranges[name] = std::atol(decl.c_str() + b + 1);
            else named.push_back(name);
            pct = decl.find('%', b);
        }
    }
    for (size_t i = 0; i < body.size(); i++) {
        if (body[i] == '/' && i + 1 < body.size() && body[i + 1] == '/') {  // a comment runs to the line end
            i = body.find('\n', i);
            if (i == std::string::npos) break;
            continue;
        }
        if (body[i] != '%') continue;
        size_t a = i + 1, b = a;
        while (b < body.size() && (std::isalnum(static_cast<unsigned char>(body[b])) || body[b] == '_')) b++;
        std::string name = body.substr(a, b - a);
        i = b;
        if (name.empty()) continue;
        size_t decl = body.rfind(".reg", a);
        if (decl != std::string::npos && body.find(';', decl) > a) continue;  // the declaration itself
        bool ok = std::find(named.begin(), named.end(), name) != named.end();
        for (const char* sp : special) ok = ok || name == sp || name.rfind(std::string(sp), 0) == 0;
        for (auto& [prefix, count] : ranges) {
            if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
            std::string digits = name.substr(prefix.size());
            if (digits.find_first_not_of("0123456789") == std::string::npos && std::atol(digits.c_str()) < count) ok = true;
        }
        if (!ok) {
            long line = 1 + static_cast<long>(std::count(text.begin(), text.begin() + static_cast<long>(body_begin + a), '\n'));
            return "ptxas application ptx input, line " + std::to_string(line) + "; error   : Unknown symbol '%" + name + "'";
        }
    }
    return "";
}

// The interface of a PTX module: .target, and per .entry its .param list, .maxntid and static
// .shared bytes; each entry's registers are checked to be declared. Returns an empty string on
// success, else what is wrong.
std::string parse_ptx(const std::string& text, CUmod_st& m) {
    if (text.find(".version") == std::string::npos || text.find(".target") == std::string::npos)
        return "the image is not PTX text (no .version/.target directive)";
    size_t t = text.find(".target");
    m.target = trim(text.substr(t + 7, text.find('\n', t) - t - 7));
    size_t pos = 0;
    while ((pos = text.find(".entry", pos)) != std::string::npos) {
        size_t open = text.find('(', pos);
        size_t nameStart = pos + 6;
        if (open == std::string::npos) return "an .entry without a parameter list";
        PtxEntry e;
        e.name = trim(text.substr(nameStart, open - nameStart));
        size_t close = text.find(')', open);
        std::string plist = text.substr(open + 1, close - open - 1);
        std::stringstream ss(plist);
        std::string item;
        while (std::getline(ss, item, ',')) {
            item = trim(item);
            if (item.empty()) continue;
            // ".param .u64 name" (alignment and arrays, ".param .align 8 .b8 name[16]", are not used here)
            std::stringstream is(item);
            std::string directive, type;
            is >> directive >> type;
            if (directive != ".param" || ptx_type_size(type) == 0) return "entry " + e.name + ": unsupported parameter '" + item + "'";
            e.params.push_back(PtxParam{type, ptx_type_size(type)});
        }
        size_t body = text.find('{', close);
        size_t header = text.find(".maxntid", close);
        if (header != std::string::npos && header < body) e.max_threads = std::atoi(text.c_str() + header + 8);
        // The body ends at the matching brace.
        int depth = 0;
        size_t end = body;
        for (; end < text.size(); end++) {
            if (text[end] == '{') depth++;
            else if (text[end] == '}' && --depth == 0) break;
        }
        std::string undefined = check_registers(text, body, end);
        if (!undefined.empty()) return undefined;
        std::string b = text.substr(body, end - body);
        size_t sp = 0;
        while ((sp = b.find(".shared", sp)) != std::string::npos) {
            size_t line_end = b.find('\n', sp);
            std::string line = b.substr(sp, line_end - sp);
            sp = line_end;
            size_t lb = line.find('['), rb = line.find(']');
            if (line.find(".b8") == std::string::npos || lb == std::string::npos || rb == std::string::npos) continue;  // ld.shared etc.
            e.static_shared += std::strtoull(line.c_str() + lb + 1, nullptr, 10);
        }
        m.entries[e.name] = e;
        pos = end;
    }
    if (m.entries.empty()) return "the PTX declares no .entry";
    return "";
}
}  // namespace

// ---- initialisation, version, errors

SWDEV_API CUresult cuInit(unsigned int flags) {
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    g_initialised = true;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuInit)

SWDEV_API CUresult cuDriverGetVersion(int* driverVersion) {
    if (!driverVersion) return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = kDriverVersion;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuDriverGetVersion)

namespace {
const char* error_name(CUresult e) {
    switch (e) {
        case CUDA_SUCCESS: return "CUDA_SUCCESS";
        case CUDA_ERROR_INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
        case CUDA_ERROR_OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
        case CUDA_ERROR_NOT_INITIALIZED: return "CUDA_ERROR_NOT_INITIALIZED";
        case CUDA_ERROR_DEINITIALIZED: return "CUDA_ERROR_DEINITIALIZED";
        case CUDA_ERROR_NO_DEVICE: return "CUDA_ERROR_NO_DEVICE";
        case CUDA_ERROR_INVALID_DEVICE: return "CUDA_ERROR_INVALID_DEVICE";
        case CUDA_ERROR_INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
        case CUDA_ERROR_INVALID_CONTEXT: return "CUDA_ERROR_INVALID_CONTEXT";
        case CUDA_ERROR_INVALID_PTX: return "CUDA_ERROR_INVALID_PTX";
        case CUDA_ERROR_INVALID_HANDLE: return "CUDA_ERROR_INVALID_HANDLE";
        case CUDA_ERROR_ILLEGAL_STATE: return "CUDA_ERROR_ILLEGAL_STATE";
        case CUDA_ERROR_NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
        case CUDA_ERROR_NOT_READY: return "CUDA_ERROR_NOT_READY";
        case CUDA_ERROR_ILLEGAL_ADDRESS: return "CUDA_ERROR_ILLEGAL_ADDRESS";
        case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
        case CUDA_ERROR_LAUNCH_FAILED: return "CUDA_ERROR_LAUNCH_FAILED";
        case CUDA_ERROR_NOT_SUPPORTED: return "CUDA_ERROR_NOT_SUPPORTED";
        case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED: return "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED";
        case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: return "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED";
        case CUDA_ERROR_UNKNOWN: return "CUDA_ERROR_UNKNOWN";
    }
    return nullptr;
}

const char* error_string(CUresult e) {
    switch (e) {
        case CUDA_SUCCESS: return "no error";
        case CUDA_ERROR_INVALID_VALUE: return "invalid argument";
        case CUDA_ERROR_OUT_OF_MEMORY: return "out of memory";
        case CUDA_ERROR_NOT_INITIALIZED: return "initialization error";
        case CUDA_ERROR_INVALID_CONTEXT: return "invalid device context";
        case CUDA_ERROR_INVALID_HANDLE: return "invalid resource handle";
        case CUDA_ERROR_NOT_FOUND: return "named symbol not found";
        case CUDA_ERROR_NOT_READY: return "device not ready";
        case CUDA_ERROR_ILLEGAL_ADDRESS: return "an illegal memory access was encountered";
        case CUDA_ERROR_LAUNCH_FAILED: return "unspecified launch failure";
        default: return error_name(e);
    }
}
}  // namespace

SWDEV_API CUresult cuGetErrorName(CUresult error, const char** pStr) {
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    *pStr = error_name(error);
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
SWDEV_DESCRIBE(cuGetErrorName)

SWDEV_API CUresult cuGetErrorString(CUresult error, const char** pStr) {
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    *pStr = error_string(error);
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
SWDEV_DESCRIBE(cuGetErrorString)

// ---- devices

SWDEV_API CUresult cuDeviceGet(CUdevice* device, int ordinal) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuDeviceGet)

SWDEV_API CUresult cuDeviceGetCount(int* count) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuDeviceGetCount)

SWDEV_API CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::strncpy(name, kName, static_cast<size_t>(len) - 1);
    name[len - 1] = 0;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuDeviceGetName)

SWDEV_API CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    switch (attrib) {
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = kMaxThreads; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: *pi = kMaxBlockX; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: *pi = kMaxBlockY; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: *pi = kMaxBlockZ; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *pi = kMaxGridX; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: *pi = kMaxGridY; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: *pi = kMaxGridZ; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *pi = kSharedPerBlock; break;
        case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: *pi = 65536; break;
        case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *pi = 32; break;
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: *pi = 65536; break;
        case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *pi = 1000000; break;
        case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *pi = 1; break;  // one block at a time
        case CU_DEVICE_ATTRIBUTE_INTEGRATED: *pi = 0; break;
        case CU_DEVICE_ATTRIBUTE_ECC_ENABLED: *pi = 0; break;
        case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *pi = 0; break;
        case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: *pi = 1000000; break;
        case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *pi = 64; break;
        case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *pi = 50 * 1024 * 1024; break;
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: *pi = 2048; break;
        case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: *pi = 0; break;  // copies run in stream order
        case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *pi = 1; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: *pi = 228 * 1024; break;
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: *pi = 65536; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: *pi = 32; break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *pi = cc_part(0); break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *pi = cc_part(1); break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *pi = kSharedOptin; break;
        case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: *pi = 1; break;
        default:
            violation("cuDeviceGetAttribute", "attribute " + std::to_string(static_cast<int>(attrib)) + " is not modelled by the software device");
            return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuDeviceGetAttribute)

SWDEV_API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = device_total_bytes();
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuDeviceTotalMem_v2)

// ---- contexts

SWDEV_API CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard g(lock());
    g_primary.retained++;
    *pctx = &g_primary;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuDevicePrimaryCtxRetain)

SWDEV_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::lock_guard g(lock());
    if (g_primary.retained <= 0) return CUDA_ERROR_INVALID_CONTEXT;
    g_primary.retained--;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuDevicePrimaryCtxRelease_v2)

SWDEV_API CUresult cuCtxSetCurrent(CUcontext ctx) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (ctx != nullptr && ctx != &g_primary) return CUDA_ERROR_INVALID_CONTEXT;
    t_current = ctx;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuCtxSetCurrent)

SWDEV_API CUresult cuCtxGetCurrent(CUcontext* pctx) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    *pctx = t_current;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuCtxGetCurrent)

SWDEV_API CUresult cuCtxSynchronize() {
    if (CUresult r = need_context("cuCtxSynchronize")) return r;
    return sync_all();
}
SWDEV_DESCRIBE(cuCtxSynchronize)

// ---- memory

SWDEV_API CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
    if (CUresult r = need_context("cuMemAlloc")) return r;
    if (!dptr) return CUDA_ERROR_INVALID_VALUE;
    if (any_capturing()) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    return device_alloc(bytesize, dptr);
}
SWDEV_DESCRIBE(cuMemAlloc_v2)

SWDEV_API CUresult cuMemFree_v2(CUdeviceptr dptr) {
    if (CUresult r = need_context("cuMemFree")) return r;
    if (dptr == 0) return CUDA_SUCCESS;
    // cuMemFree waits for the device: work queued before it may still use the block.
    sync_all();
    return device_free("cuMemFree", dptr);
}
SWDEV_DESCRIBE(cuMemFree_v2)

SWDEV_API CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
    if (CUresult r = need_context("cuMemAllocAsync")) return r;
    if (!dptr) return CUDA_ERROR_INVALID_VALUE;
    if (!stream_of(hStream)) return CUDA_ERROR_INVALID_HANDLE;
    // The block exists at once; stream order makes it usable by work queued after this call.
    return device_alloc(bytesize, dptr);
}
SWDEV_DESCRIBE(cuMemAllocAsync)

SWDEV_API CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
    if (CUresult r = need_context("cuMemFreeAsync")) return r;
    if (!check_device("cuMemFreeAsync", "dptr", dptr, 0)) return CUDA_ERROR_INVALID_VALUE;
    return enqueue(hStream, "cuMemFreeAsync", [dptr] { device_free("cuMemFreeAsync", dptr); });
}
SWDEV_DESCRIBE(cuMemFreeAsync)

SWDEV_API CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
    if (CUresult r = need_context("cuMemGetInfo")) return r;
    if (!free || !total) return CUDA_ERROR_INVALID_VALUE;
    *free = device_free_bytes();
    *total = device_total_bytes();
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuMemGetInfo_v2)

SWDEV_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount, CUstream hStream) {
    const char* call = "cuMemcpyHtoDAsync";
    if (CUresult r = need_context(call)) return r;
    if (ByteCount == 0) return CUDA_SUCCESS;
    if (!check_device(call, "dstDevice", dstDevice, ByteCount) || !check_host(call, "srcHost", srcHost, ByteCount))
        return CUDA_ERROR_INVALID_VALUE;
    void* dst = reinterpret_cast<void*>(dstDevice);
    if (is_pinned(srcHost, ByteCount))  // truly asynchronous: the source is read when the stream gets there
        return enqueue(hStream, call, [dst, srcHost, ByteCount] { std::memcpy(dst, srcHost, ByteCount); });
    // Pageable memory is staged at the call: the caller may reuse it at once.
    auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(srcHost),
                                                               static_cast<const unsigned char*>(srcHost) + ByteCount);
    return enqueue(hStream, call, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
}
SWDEV_DESCRIBE(cuMemcpyHtoDAsync_v2)

SWDEV_API CUresult cuMemcpyDtoHAsync_v2(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream) {
    const char* call = "cuMemcpyDtoHAsync";
    if (CUresult r = need_context(call)) return r;
    if (ByteCount == 0) return CUDA_SUCCESS;
    if (!check_host(call, "dstHost", dstHost, ByteCount) || !check_device(call, "srcDevice", srcDevice, ByteCount))
        return CUDA_ERROR_INVALID_VALUE;
    const void* src = reinterpret_cast<const void*>(srcDevice);
    bool pinned = is_pinned(dstHost, ByteCount);
    if (CUresult r = enqueue(hStream, call, [dstHost, src, ByteCount] { std::memcpy(dstHost, src, ByteCount); })) return r;
    if (pinned || capturing(hStream)) return CUDA_SUCCESS;  // read it after synchronising the stream
    // Into pageable memory the call returns once the copy is done.
    return sync_until(hStream, last_task_id());
}
SWDEV_DESCRIBE(cuMemcpyDtoHAsync_v2)

SWDEV_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream) {
    const char* call = "cuMemcpyDtoDAsync";
    if (CUresult r = need_context(call)) return r;
    if (ByteCount == 0) return CUDA_SUCCESS;
    if (!check_device(call, "dstDevice", dstDevice, ByteCount) || !check_device(call, "srcDevice", srcDevice, ByteCount))
        return CUDA_ERROR_INVALID_VALUE;
    void* dst = reinterpret_cast<void*>(dstDevice);
    const void* src = reinterpret_cast<const void*>(srcDevice);
    return enqueue(hStream, call, [dst, src, ByteCount] { std::memmove(dst, src, ByteCount); });
}
SWDEV_DESCRIBE(cuMemcpyDtoDAsync_v2)

SWDEV_API CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream) {
    const char* call = "cuMemsetD32Async";
    if (CUresult r = need_context(call)) return r;
    if (N == 0) return CUDA_SUCCESS;
    if (dstDevice % 4 != 0) {
        violation(call, "dstDevice is not 4-byte aligned");
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!check_device(call, "dstDevice", dstDevice, N * 4)) return CUDA_ERROR_INVALID_VALUE;
    auto* dst = reinterpret_cast<unsigned int*>(dstDevice);
    return enqueue(hStream, call, [dst, ui, N] { std::fill(dst, dst + N, ui); });
}
SWDEV_DESCRIBE(cuMemsetD32Async)

SWDEV_API CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags) {
    if (CUresult r = need_context("cuMemHostAlloc")) return r;
    if (!pp || bytesize == 0 || (Flags & ~0x0Fu) != 0) return CUDA_ERROR_INVALID_VALUE;
    *pp = pinned_alloc(bytesize);
    return *pp ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
SWDEV_DESCRIBE(cuMemHostAlloc)

SWDEV_API CUresult cuMemFreeHost(void* p) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    sync_all();  // queued copies may still read or write it
    if (!pinned_free(p)) {
        violation("cuMemFreeHost", "p is not page-locked memory from cuMemHostAlloc");
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuMemFreeHost)

// ---- streams and events

SWDEV_API CUresult cuStreamCreate(CUstream* phStream, unsigned int Flags) {
    if (CUresult r = need_context("cuStreamCreate")) return r;
    if (!phStream || Flags > 1) return CUDA_ERROR_INVALID_VALUE;
    return stream_create(Flags, phStream);
}
SWDEV_DESCRIBE(cuStreamCreate)

SWDEV_API CUresult cuStreamDestroy_v2(CUstream hStream) {
    if (CUresult r = need_context("cuStreamDestroy")) return r;
    if (hStream == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    return stream_destroy(hStream);
}
SWDEV_DESCRIBE(cuStreamDestroy_v2)

SWDEV_API CUresult cuStreamSynchronize(CUstream hStream) {
    if (CUresult r = need_context("cuStreamSynchronize")) return r;
    return sync_stream(hStream);
}
SWDEV_DESCRIBE(cuStreamSynchronize)

SWDEV_API CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags) {
    if (CUresult r = need_context("cuEventCreate")) return r;
    if (!phEvent || (Flags & ~0x0Fu) != 0) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard g(lock());
    auto* e = new CUevent_st();
    e->flags = Flags;
    g_events.push_back(e);
    *phEvent = e;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuEventCreate)

SWDEV_API CUresult cuEventRecord(CUevent hEvent, CUstream hStream) {
    if (CUresult r = need_context("cuEventRecord")) return r;
    std::lock_guard g(lock());
    if (!live_event(hEvent)) return CUDA_ERROR_INVALID_HANDLE;
    hEvent->recorded = true;
    hEvent->completed = false;
    hEvent->stream = hStream;
    CUevent e = hEvent;
    CUresult r = enqueue(hStream, "cuEventRecord", [e] {
        e->completed = true;
        e->time_ms = now_ms();
    });
    hEvent->task = last_task_id();
    return r;
}
SWDEV_DESCRIBE(cuEventRecord)

SWDEV_API CUresult cuEventSynchronize(CUevent hEvent) {
    if (CUresult r = need_context("cuEventSynchronize")) return r;
    std::lock_guard g(lock());
    if (!live_event(hEvent)) return CUDA_ERROR_INVALID_HANDLE;
    if (!hEvent->recorded) return CUDA_SUCCESS;
    return sync_until(hEvent->stream, hEvent->task);
}
SWDEV_DESCRIBE(cuEventSynchronize)

SWDEV_API CUresult cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
    if (CUresult r = need_context("cuEventElapsedTime")) return r;
    std::lock_guard g(lock());
    if (!pMilliseconds) return CUDA_ERROR_INVALID_VALUE;
    if (!live_event(hStart) || !live_event(hEnd)) return CUDA_ERROR_INVALID_HANDLE;
    if ((hStart->flags & 2u) || (hEnd->flags & 2u)) return CUDA_ERROR_INVALID_HANDLE;  // CU_EVENT_DISABLE_TIMING
    if (!hStart->recorded || !hEnd->recorded) return CUDA_ERROR_INVALID_HANDLE;
    if (!hStart->completed || !hEnd->completed) return CUDA_ERROR_NOT_READY;
    *pMilliseconds = static_cast<float>(hEnd->time_ms - hStart->time_ms);
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuEventElapsedTime)

SWDEV_API CUresult cuEventDestroy_v2(CUevent hEvent) {
    if (CUresult r = need_context("cuEventDestroy")) return r;
    std::lock_guard g(lock());
    for (size_t i = 0; i < g_events.size(); i++)
        if (g_events[i] == hEvent) {
            // A recorded event still in a queue completes there; keep the object alive until then.
            if (hEvent->recorded && !hEvent->completed) sync_until(hEvent->stream, hEvent->task);
            g_events.erase(g_events.begin() + static_cast<long>(i));
            delete hEvent;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_INVALID_HANDLE;
}
SWDEV_DESCRIBE(cuEventDestroy_v2)

// ---- modules and launches

SWDEV_API CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions, CUjit_option* options,
                                      void** optionValues) {
    const char* call = "cuModuleLoadDataEx";
    if (CUresult r = need_context(call)) return r;
    if (!module || !image) return CUDA_ERROR_INVALID_VALUE;
    if (numOptions > 0 && (!options || !optionValues)) return CUDA_ERROR_INVALID_VALUE;
    if (!check_host(call, "image", image, 1)) return CUDA_ERROR_INVALID_VALUE;
    // The JIT's log buffers: each size option's value is overwritten with the bytes written.
    char* logs[2] = {nullptr, nullptr};  // error, info
    size_t* sizes[2] = {nullptr, nullptr};
    for (unsigned i = 0; i < numOptions; i++) {
        switch (options[i]) {
            case CU_JIT_ERROR_LOG_BUFFER: logs[0] = static_cast<char*>(optionValues[i]); break;
            case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES: sizes[0] = reinterpret_cast<size_t*>(&optionValues[i]); break;
            case CU_JIT_INFO_LOG_BUFFER: logs[1] = static_cast<char*>(optionValues[i]); break;
            case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES: sizes[1] = reinterpret_cast<size_t*>(&optionValues[i]); break;
            default: break;
        }
    }
    auto write_log = [&](int which, const std::string& text) {
        if (!logs[which] || !sizes[which] || *sizes[which] == 0) return;
        size_t n = std::min(text.size(), *sizes[which] - 1);
        std::memcpy(logs[which], text.data(), n);
        logs[which][n] = 0;
        *sizes[which] = n + 1;
    };
    auto m = std::make_unique<CUmod_st>();
    const char* ptx = static_cast<const char*>(image);
    std::string why = parse_ptx(ptx, *m);
    if (!why.empty()) {
        violation(call, why);
        write_log(0, why);
        write_log(1, "");
        return std::strncmp(ptx, "//", 2) == 0 || std::strstr(ptx, ".version") ? CUDA_ERROR_INVALID_PTX : CUDA_ERROR_INVALID_IMAGE;
    }
    write_log(0, "");
    write_log(1, "software device: " + std::to_string(m->entries.size()) + " entries, target " + m->target + "; kernels run as their host build");
    // PTX for a newer target than the device cannot be JIT-compiled for it.
    int target = std::atoi(m->target.c_str() + (m->target.rfind("sm_", 0) == 0 ? 3 : 0));
    if (target > cc_part(0) * 10 + cc_part(1)) {
        violation(call, "the PTX targets " + m->target + ", the device is sm_" + std::to_string(cc_part(0) * 10 + cc_part(1)));
        return CUDA_ERROR_INVALID_PTX;
    }
    std::lock_guard g(lock());
    *module = m.release();
    g_modules.push_back(*module);
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuModuleLoadDataEx)

SWDEV_API CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
    const char* call = "cuModuleGetFunction";
    if (CUresult r = need_context(call)) return r;
    if (!hfunc || !name) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard g(lock());
    if (!live_module(hmod)) return CUDA_ERROR_INVALID_HANDLE;
    auto it = hmod->entries.find(name);
    if (it == hmod->entries.end()) return CUDA_ERROR_NOT_FOUND;
    const HostKernel* host = find_host_kernel(name);
    if (!host) {
        violation(call, std::string("kernel '") + name + "' is in the PTX but not among the host-emulated kernels of src/Kernels");
        return CUDA_ERROR_NOT_FOUND;
    }
    const PtxEntry& e = it->second;
    // The PTX's parameter list and the .cu declaration the host build was compiled from must agree.
    if (e.params.size() != host->params.size()) {
        violation(call, std::string("kernel '") + name + "': the PTX declares " + std::to_string(e.params.size()) +
                            " parameters, the host build of its source " + std::to_string(host->params.size()));
        return CUDA_ERROR_INVALID_IMAGE;
    }
    auto f = std::make_unique<CUfunc_st>();
    size_t offset = 0;
    for (size_t i = 0; i < e.params.size(); i++) {
        const PtxParam& p = e.params[i];
        const HostParam& h = host->params[i];
        bool kindOk = p.type[1] == 'f' ? std::strcmp(h.kind, "float") == 0 || std::strcmp(h.kind, "double") == 0
                                       : std::strcmp(h.kind, "pointer") == 0 || std::strcmp(h.kind, "integer") == 0;
        if (p.size != h.size || !kindOk) {
            violation(call, std::string("kernel '") + name + "' parameter " + std::to_string(i) + ": the PTX has " + p.type +
                                " (" + std::to_string(p.size) + " bytes), the host build of its source a " + std::to_string(h.size) +
                                "-byte " + h.kind);
            return CUDA_ERROR_INVALID_IMAGE;
        }
        offset = (offset + p.size - 1) / p.size * p.size;  // natural alignment, as the PTX parameter space lays them out
        f->offsets.push_back(offset);
        offset += p.size;
    }
    f->buffer_size = offset;
    f->module = hmod;
    f->entry = e;
    f->host = host;
    *hfunc = f.get();
    hmod->functions.push_back(std::move(f));
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuModuleGetFunction)

SWDEV_API CUresult cuModuleUnload(CUmodule hmod) {
    if (CUresult r = need_context("cuModuleUnload")) return r;
    std::lock_guard g(lock());
    if (!live_module(hmod)) return CUDA_ERROR_INVALID_HANDLE;
    sync_all();  // launches of its kernels may still be queued
    hmod->unloaded = true;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuModuleUnload)

SWDEV_API CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX,
                                  unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                  void** kernelParams, void** extra) {
    const char* call = "cuLaunchKernel";
    if (CUresult r = need_context(call)) return r;
    std::lock_guard g(lock());
    if (!live_function(f)) return CUDA_ERROR_INVALID_HANDLE;
    const std::string& name = f->entry.name;
    std::string where = std::string(call) + " " + name;
    // sm_90's launch limits, and the kernel's own .maxntid.
    unsigned long long threads = static_cast<unsigned long long>(blockDimX) * blockDimY * blockDimZ;
    if (gridDimX == 0 || gridDimY == 0 || gridDimZ == 0 || blockDimX == 0 || blockDimY == 0 || blockDimZ == 0 ||
        gridDimX > static_cast<unsigned>(kMaxGridX) || gridDimY > static_cast<unsigned>(kMaxGridY) || gridDimZ > static_cast<unsigned>(kMaxGridZ) ||
        blockDimX > static_cast<unsigned>(kMaxBlockX) || blockDimY > static_cast<unsigned>(kMaxBlockY) || blockDimZ > static_cast<unsigned>(kMaxBlockZ) ||
        threads > static_cast<unsigned long long>(kMaxThreads)) {
        violation(where.c_str(), "grid (" + std::to_string(gridDimX) + "," + std::to_string(gridDimY) + "," + std::to_string(gridDimZ) +
                                     ") or block (" + std::to_string(blockDimX) + "," + std::to_string(blockDimY) + "," + std::to_string(blockDimZ) +
                                     ") outside sm_90's limits");
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (threads > static_cast<unsigned long long>(f->entry.max_threads)) {
        violation(where.c_str(), std::to_string(threads) + " threads per block, the kernel's .maxntid allows " + std::to_string(f->entry.max_threads));
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (sharedMemBytes > static_cast<unsigned>(f->max_dynamic_shared) ||
        f->entry.static_shared + sharedMemBytes > static_cast<size_t>(kSharedOptin)) {
        violation(where.c_str(), std::to_string(f->entry.static_shared) + " bytes of static and " + std::to_string(sharedMemBytes) +
                                     " of dynamic shared memory exceed the kernel's limit");
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (f->entry.static_shared > static_cast<size_t>(kSharedPerBlock)) {
        violation(where.c_str(), std::to_string(f->entry.static_shared) + " bytes of static shared memory exceed 48 KiB");
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (extra != nullptr) {
        violation(where.c_str(), "the software device takes kernel arguments through kernelParams only");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    const auto& ps = f->entry.params;
    if (!ps.empty() && !kernelParams) {
        violation(where.c_str(), "kernelParams is null for a kernel with " + std::to_string(ps.size()) + " parameters");
        return CUDA_ERROR_INVALID_VALUE;
    }
    // The driver copies each parameter's size (from the PTX) out of kernelParams[i]. Two values
    // whose bytes overlap were packed with the wrong size: the larger read takes the neighbour's.
    for (size_t i = 0; i < ps.size(); i++) {
        auto a = reinterpret_cast<uintptr_t>(kernelParams[i]);
        if (a == 0) {
            violation(where.c_str(), "kernelParams[" + std::to_string(i) + "] is null");
            return CUDA_ERROR_INVALID_VALUE;
        }
        for (size_t j = 0; j < ps.size(); j++) {
            auto b = reinterpret_cast<uintptr_t>(kernelParams[j]);
            if (i != j && b > a && b < a + ps[i].size) {
                violation(where.c_str(), "parameter " + std::to_string(i) + " is " + ps[i].type + " (" + std::to_string(ps[i].size) +
                                             " bytes) in the PTX, but the value of parameter " + std::to_string(j) + " starts " +
                                             std::to_string(b - a) + " bytes after it: argument " + std::to_string(i) +
                                             " was packed with the wrong size");
                return CUDA_ERROR_INVALID_VALUE;
            }
        }
    }
    std::vector<unsigned char> args(f->buffer_size);
    for (size_t i = 0; i < ps.size(); i++) std::memcpy(args.data() + f->offsets[i], kernelParams[i], ps[i].size);
    // Every pointer argument must be a live device address (null is allowed: a kernel may ignore it).
    for (size_t i = 0; i < ps.size(); i++) {
        if (std::strcmp(f->host->params[i].kind, "pointer") != 0) continue;
        CUdeviceptr p;
        std::memcpy(&p, args.data() + f->offsets[i], 8);
        if (p == 0) continue;
        if (!check_device(where.c_str(), ("parameter " + std::to_string(i)).c_str(), p, 0)) return CUDA_ERROR_INVALID_VALUE;
    }
    const HostKernel* host = f->host;
    std::vector<size_t> offsets = f->offsets;
    Dim3 grid{gridDimX, gridDimY, gridDimZ}, block{blockDimX, blockDimY, blockDimZ};
    return enqueue(hStream, name.c_str(), [host, grid, block, args, offsets] { run_kernel(*host, grid, block, args, offsets); });
}
SWDEV_DESCRIBE(cuLaunchKernel)

SWDEV_API CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
    if (CUresult r = need_context("cuFuncSetAttribute")) return r;
    std::lock_guard g(lock());
    if (!live_function(hfunc)) return CUDA_ERROR_INVALID_HANDLE;
    if (attrib != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        violation("cuFuncSetAttribute", "attribute " + std::to_string(static_cast<int>(attrib)) + " is not modelled");
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (value < 0 || static_cast<size_t>(value) + hfunc->entry.static_shared > static_cast<size_t>(kSharedOptin))
        return CUDA_ERROR_INVALID_VALUE;
    hfunc->max_dynamic_shared = value;
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuFuncSetAttribute)

SWDEV_API CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc) {
    if (CUresult r = need_context("cuFuncGetAttribute")) return r;
    std::lock_guard g(lock());
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    if (!live_function(hfunc)) return CUDA_ERROR_INVALID_HANDLE;
    switch (attrib) {
        case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = hfunc->entry.max_threads; break;
        case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *pi = static_cast<int>(hfunc->entry.static_shared); break;
        case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *pi = 0; break;
        case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *pi = 0; break;
        case CU_FUNC_ATTRIBUTE_NUM_REGS: *pi = 32; break;
        case CU_FUNC_ATTRIBUTE_PTX_VERSION:
        case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *pi = cc_part(0) * 10 + cc_part(1); break;
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *pi = hfunc->max_dynamic_shared; break;
        default:
            violation("cuFuncGetAttribute", "attribute " + std::to_string(static_cast<int>(attrib)) + " is not modelled");
            return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuFuncGetAttribute)

// ---- graphs: a capture records the stream's work instead of queueing it

SWDEV_API CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
    if (CUresult r = need_context("cuStreamBeginCapture")) return r;
    if (static_cast<int>(mode) < 0 || static_cast<int>(mode) > 2) return CUDA_ERROR_INVALID_VALUE;
    return begin_capture(hStream);
}
SWDEV_DESCRIBE(cuStreamBeginCapture_v2)

SWDEV_API CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
    if (CUresult r = need_context("cuStreamEndCapture")) return r;
    if (!phGraph) return CUDA_ERROR_INVALID_VALUE;
    return end_capture(hStream, phGraph);
}
SWDEV_DESCRIBE(cuStreamEndCapture)

SWDEV_API CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags) {
    if (CUresult r = need_context("cuGraphInstantiateWithFlags")) return r;
    if (!phGraphExec || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    return graph_instantiate(hGraph, phGraphExec);
}
SWDEV_DESCRIBE(cuGraphInstantiateWithFlags)

SWDEV_API CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
    if (CUresult r = need_context("cuGraphLaunch")) return r;
    return graph_launch(hGraphExec, hStream);
}
SWDEV_DESCRIBE(cuGraphLaunch)

SWDEV_API CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
    if (CUresult r = need_context("cuGraphExecDestroy")) return r;
    sync_all();
    graph_exec_destroy(hGraphExec);
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuGraphExecDestroy)

SWDEV_API CUresult cuGraphDestroy(CUgraph hGraph) {
    if (CUresult r = need_context("cuGraphDestroy")) return r;
    graph_destroy(hGraph);
    return CUDA_SUCCESS;
}
SWDEV_DESCRIBE(cuGraphDestroy)
