// runtime.cpp — the software device's state: the device address range and its allocations, the
// pointer and extent checks, the per-stream queues with graph capture, violations and the sticky
// error, TF32/fp16 rounding, and the export descriptions.
#include "swdev.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

namespace swdev {

std::recursive_mutex& lock() {
    static std::recursive_mutex m;
    return m;
}

// ---- violations

namespace {
std::vector<std::string>& violations() {
    static std::vector<std::string> v;
    return v;
}
std::vector<std::string>& exports() {
    static std::vector<std::string> v;
    return v;
}
}  // namespace

void violation(const char* call, const std::string& message) {
    std::lock_guard g(lock());
    std::string line = std::string(call) + ": " + message;
    std::fprintf(stderr, "rlmixup software device: %s\n", line.c_str());
    violations().push_back(std::move(line));
}

ExportRecord::ExportRecord(std::string description) { exports().push_back(std::move(description)); }

// ---- the device address range

namespace {
constexpr size_t kRange = size_t(1) << 38;  // 256 GiB of address space, reserved, never committed up front
constexpr size_t kPage = 4096;

struct Allocation {
    uintptr_t base;   // first byte handed out
    size_t size;      // bytes asked for
    uintptr_t map;    // the committed pages [map, map + mapped)
    size_t mapped;
    bool live;
};

struct Region {
    uintptr_t begin = 0, end = 0, next = 0;
    size_t live_bytes = 0;
    std::map<uintptr_t, Allocation> by_base;  // every allocation ever made, live or freed
};

Region& region() {
    static Region r = [] {
        Region x;
        void* p = mmap(nullptr, kRange, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            std::fprintf(stderr, "rlmixup software device: cannot reserve the device address range\n");
            std::abort();
        }
        x.begin = x.next = reinterpret_cast<uintptr_t>(p);
        x.end = x.begin + kRange;
        return x;
    }();
    return r;
}

// The allocation whose [base, base + size] contains a (one past the end included), or null.
Allocation* find(uintptr_t a) {
    auto& r = region();
    auto it = r.by_base.upper_bound(a);
    if (it == r.by_base.begin()) return nullptr;
    --it;
    Allocation& al = it->second;
    return a <= al.base + al.size ? &al : nullptr;
}

std::string hex(uintptr_t a) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(a));
    return b;
}

std::map<uintptr_t, size_t>& pinned() {
    static std::map<uintptr_t, size_t> m;
    return m;
}
}  // namespace

size_t device_total_bytes() { return size_t(16) << 30; }
size_t device_free_bytes() {
    std::lock_guard g(lock());
    return device_total_bytes() - region().live_bytes;
}

bool in_device_range(uintptr_t a) {
    auto& r = region();
    return a >= r.begin && a < r.end;
}

// Pages of their own for every allocation, with the data ending (up to 256-byte alignment) at the
// last page's end and an inaccessible page after it: a kernel that runs past a buffer faults at
// once (reported as an illegal address) instead of corrupting a neighbour.
CUresult device_alloc(size_t bytes, CUdeviceptr* out) {
    std::lock_guard g(lock());
    if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    auto& r = region();
    if (r.live_bytes + bytes > device_total_bytes()) return CUDA_ERROR_OUT_OF_MEMORY;
    size_t padded = (bytes + 255) & ~size_t(255);
    size_t mapped = (padded + kPage - 1) & ~(kPage - 1);
    if (r.next + mapped + kPage > r.end) return CUDA_ERROR_OUT_OF_MEMORY;
    uintptr_t map = r.next;
    r.next += mapped + kPage;  // + one guard page
    if (mprotect(reinterpret_cast<void*>(map), mapped, PROT_READ | PROT_WRITE) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    uintptr_t base = map + mapped - padded;
    // cuMemAlloc does not zero: a NaN in every float (and -1 in every int) of a fresh block.
    std::memset(reinterpret_cast<void*>(map), 0xFF, mapped);
    r.by_base[base] = Allocation{base, bytes, map, mapped, true};
    r.live_bytes += bytes;
    *out = base;
    return CUDA_SUCCESS;
}

CUresult device_free(const char* call, CUdeviceptr p) {
    std::lock_guard g(lock());
    auto& r = region();
    auto it = r.by_base.find(static_cast<uintptr_t>(p));
    if (it == r.by_base.end()) {
        violation(call, "dptr " + hex(p) + " is not the start of a device allocation");
        return CUDA_ERROR_INVALID_VALUE;
    }
    Allocation& al = it->second;
    if (!al.live) {
        violation(call, "dptr " + hex(p) + " was already freed (double free)");
        return CUDA_ERROR_INVALID_VALUE;
    }
    // Poisoned, then made inaccessible: a later kernel access faults, an API access is reported.
    std::memset(reinterpret_cast<void*>(al.map), 0xDB, al.mapped);
    madvise(reinterpret_cast<void*>(al.map), al.mapped, MADV_DONTNEED);
    mprotect(reinterpret_cast<void*>(al.map), al.mapped, PROT_NONE);
    al.live = false;
    r.live_bytes -= al.size;
    return CUDA_SUCCESS;
}

void* pinned_alloc(size_t bytes) {
    std::lock_guard g(lock());
    void* p = nullptr;
    if (posix_memalign(&p, 4096, bytes == 0 ? 1 : bytes) != 0) return nullptr;
    pinned()[reinterpret_cast<uintptr_t>(p)] = bytes;
    return p;
}

bool pinned_free(void* p) {
    std::lock_guard g(lock());
    auto it = pinned().find(reinterpret_cast<uintptr_t>(p));
    if (it == pinned().end()) return false;
    pinned().erase(it);
    std::free(p);
    return true;
}

bool is_pinned(const void* p, size_t bytes) {
    std::lock_guard g(lock());
    auto a = reinterpret_cast<uintptr_t>(p);
    auto it = pinned().upper_bound(a);
    if (it == pinned().begin()) return false;
    --it;
    return a + bytes <= it->first + it->second;
}

PtrKind kind_of(const void* p) {
    std::lock_guard g(lock());
    auto a = reinterpret_cast<uintptr_t>(p);
    if (a == 0) return PtrKind::Null;
    if (in_device_range(a)) {
        Allocation* al = find(a);
        return al && al->live ? PtrKind::Device : PtrKind::FreedDevice;
    }
    return is_pinned(p, 0) ? PtrKind::PinnedHost : PtrKind::Host;
}

bool check_device(const char* call, const char* arg, const void* p, size_t bytes) {
    std::lock_guard g(lock());
    auto a = reinterpret_cast<uintptr_t>(p);
    if (a == 0) {
        violation(call, std::string(arg) + " is a null device pointer");
        return false;
    }
    if (!in_device_range(a)) {
        violation(call, std::string(arg) + " = " + hex(a) + " is host memory, not a device address");
        return false;
    }
    Allocation* al = find(a);
    if (!al) {
        violation(call, std::string(arg) + " = " + hex(a) + " is in no device allocation");
        return false;
    }
    if (!al->live) {
        violation(call, std::string(arg) + " = " + hex(a) + " is in a freed allocation (use after free; block " + hex(al->base) +
                            ", " + std::to_string(al->size) + " bytes)");
        return false;
    }
    size_t offset = a - al->base;
    if (bytes > al->size - offset) {
        violation(call, std::string(arg) + ": " + std::to_string(bytes) + " bytes from offset " + std::to_string(offset) +
                            " of a " + std::to_string(al->size) + "-byte allocation run " +
                            std::to_string(bytes - (al->size - offset)) + " bytes past its end");
        return false;
    }
    return true;
}

// For a kernel fault: where the address lies relative to the allocations.
std::string describe_address(uintptr_t a) {
    std::lock_guard g(lock());
    auto& r = region();
    auto it = r.by_base.upper_bound(a);
    if (it != r.by_base.begin()) {
        --it;
        const Allocation& al = it->second;
        if (a >= al.map && a < al.map + al.mapped + kPage) {
            if (!al.live) return hex(a) + " is in a freed allocation (use after free; block " + hex(al.base) + ", " + std::to_string(al.size) + " bytes)";
            if (a >= al.base + al.size)
                return hex(a) + " is " + std::to_string(a - (al.base + al.size)) + " bytes past the end of the " + std::to_string(al.size) +
                       "-byte allocation at " + hex(al.base);
        }
    }
    return hex(a) + " is in no device allocation";
}

bool check_device_strided(const char* call, const char* arg, const void* p, size_t count, size_t row_bytes, size_t stride_bytes) {
    if (count == 0 || row_bytes == 0) return true;
    size_t span = (count - 1) * stride_bytes + row_bytes;
    return check_device(call, arg, p, span);
}

bool check_host(const char* call, const char* arg, const void* p, size_t bytes) {
    auto a = reinterpret_cast<uintptr_t>(p);
    if (a == 0) {
        if (bytes == 0) return true;
        violation(call, std::string(arg) + " is a null host pointer");
        return false;
    }
    std::lock_guard g(lock());
    if (in_device_range(a)) {
        violation(call, std::string(arg) + " = " + hex(a) + " is a device address where host memory is expected");
        return false;
    }
    return true;
}

// ---- streams

namespace {
struct Task {
    uint64_t id;
    std::string what;
    Work work;
};
}  // namespace

}  // namespace swdev

struct CUstream_st {
    std::deque<swdev::Task> queue;
    unsigned flags = 0;
    bool capturing = false;
    bool capture_invalid = false;
    CUgraph capture = nullptr;
};

struct CUgraph_st {
    std::vector<swdev::Task> tasks;
};

struct CUgraphExec_st {
    std::vector<swdev::Task> tasks;
};

namespace swdev {

namespace {
uint64_t g_next_task = 1;
CUresult g_sticky = CUDA_SUCCESS;
std::vector<CUstream>& streams() {
    static std::vector<CUstream> v;
    return v;
}
CUstream_st& legacy() {
    static CUstream_st s;
    return s;
}
}  // namespace

CUstream_st* stream_of(CUstream s) {
    if (s == nullptr) return &legacy();
    for (CUstream x : streams())
        if (x == s) return x;
    return nullptr;
}

CUresult stream_create(unsigned flags, CUstream* out) {
    std::lock_guard g(lock());
    auto* s = new CUstream_st();
    s->flags = flags;
    streams().push_back(s);
    *out = s;
    return CUDA_SUCCESS;
}

CUresult stream_destroy(CUstream s) {
    std::lock_guard g(lock());
    auto& v = streams();
    for (size_t i = 0; i < v.size(); i++)
        if (v[i] == s) {
            // Work already queued still completes (cuStreamDestroy returns at once; the device finishes it).
            CUresult r = sync_stream(s);
            v.erase(v.begin() + i);
            delete s;
            return r;
        }
    return CUDA_ERROR_INVALID_HANDLE;
}

CUresult enqueue(CUstream stream, const char* what, Work work) {
    std::lock_guard g(lock());
    CUstream_st* s = stream_of(stream);
    if (!s) {
        violation(what, "the stream is not a live stream");
        return CUDA_ERROR_INVALID_HANDLE;
    }
    Task t{g_next_task++, what, std::move(work)};
    if (s->capturing) {
        s->capture->tasks.push_back(std::move(t));
        return CUDA_SUCCESS;
    }
    s->queue.push_back(std::move(t));
    return CUDA_SUCCESS;
}

namespace {
void run(Task& t) {
    if (g_sticky != CUDA_SUCCESS) return;  // a faulted context runs nothing more
    t.work();
}

// Runs the queue of s up to and including task `until` (0: all of it).
void drain(CUstream_st* s, uint64_t until) {
    while (!s->queue.empty()) {
        Task t = std::move(s->queue.front());
        s->queue.pop_front();
        run(t);
        if (until != 0 && t.id >= until) break;
    }
}
}  // namespace

CUresult sync_stream(CUstream stream) {
    std::lock_guard g(lock());
    CUstream_st* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    if (s->capturing) {
        s->capture_invalid = true;
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    // The legacy stream waits for every blocking stream's earlier work, and they for it.
    if (s == &legacy())
        for (CUstream x : streams())
            if ((x->flags & 1u) == 0) drain(x, 0);
    drain(s, 0);
    return g_sticky;
}

CUresult sync_until(CUstream stream, uint64_t task) {
    std::lock_guard g(lock());
    CUstream_st* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    drain(s, task);
    return g_sticky;
}

bool task_done(CUstream stream, uint64_t task) {
    std::lock_guard g(lock());
    CUstream_st* s = stream_of(stream);
    if (!s) return true;
    return s->queue.empty() || s->queue.front().id > task;
}

uint64_t last_task_id() {
    std::lock_guard g(lock());
    return g_next_task - 1;
}

CUresult sync_all() {
    std::lock_guard g(lock());
    drain(&legacy(), 0);
    for (CUstream x : streams())
        if (!x->capturing) drain(x, 0);
    return g_sticky;
}

void fault(CUresult error, const char* what, const std::string& message) {
    std::lock_guard g(lock());
    violation(what, message);
    if (g_sticky == CUDA_SUCCESS) g_sticky = error;
}

CUresult sticky_error() {
    std::lock_guard g(lock());
    return g_sticky;
}

void clear_sticky_error() {
    std::lock_guard g(lock());
    g_sticky = CUDA_SUCCESS;
}

bool capturing(CUstream stream) {
    std::lock_guard g(lock());
    CUstream_st* s = stream_of(stream);
    return s && s->capturing;
}

bool any_capturing() {
    std::lock_guard g(lock());
    for (CUstream x : streams())
        if (x->capturing) return true;
    return false;
}

CUresult begin_capture(CUstream stream) {
    std::lock_guard g(lock());
    CUstream_st* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    if (s == &legacy()) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    if (s->capturing) return CUDA_ERROR_ILLEGAL_STATE;
    s->capturing = true;
    s->capture_invalid = false;
    s->capture = new CUgraph_st();
    return CUDA_SUCCESS;
}

CUresult end_capture(CUstream stream, CUgraph* out) {
    std::lock_guard g(lock());
    CUstream_st* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    if (!s->capturing) return CUDA_ERROR_ILLEGAL_STATE;
    s->capturing = false;
    CUgraph graph = s->capture;
    s->capture = nullptr;
    if (s->capture_invalid) {
        delete graph;
        *out = nullptr;
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    }
    *out = graph;
    return CUDA_SUCCESS;
}

CUresult graph_instantiate(CUgraph graph, CUgraphExec* out) {
    std::lock_guard g(lock());
    if (!graph) return CUDA_ERROR_INVALID_VALUE;
    auto* e = new CUgraphExec_st();
    e->tasks = graph->tasks;
    *out = e;
    return CUDA_SUCCESS;
}

CUresult graph_launch(CUgraphExec exec, CUstream stream) {
    std::lock_guard g(lock());
    if (!exec) return CUDA_ERROR_INVALID_VALUE;
    auto tasks = exec->tasks;
    return enqueue(stream, "cuGraphLaunch", [tasks]() mutable {
        for (auto& t : tasks) run(t);
    });
}

void graph_destroy(CUgraph graph) { delete graph; }
void graph_exec_destroy(CUgraphExec exec) { delete exec; }

// ---- rounding

float round_tf32(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0x7F800000u) return x;  // Inf and NaN unchanged
    u += 0x0FFFu + ((u >> 13) & 1u);                 // round to nearest even at bit 13
    u &= ~0x1FFFu;
    float r;
    std::memcpy(&r, &u, 4);
    return r;
}

float round_fp16(float x) { return static_cast<float>(static_cast<_Float16>(x)); }

// ---- for the tests

std::string joined_exports() {
    std::string s;
    for (auto& e : exports()) s += e + "\n";
    return s;
}

std::vector<std::string> take_violations() {
    std::lock_guard g(lock());
    auto v = std::move(violations());
    violations().clear();
    return v;
}

}  // namespace swdev

// What the backend's `info` and the tests look for to know they are on the software device.
SWDEV_API const char* rlmixupSoftwareDevice() {
    return "RL-Mixup software device (CPU simulation of the CUDA driver API, cuBLAS and cuDNN; not a GPU)";
}

// Copies the violations recorded since the last call (one per line) into buf, NUL-terminated and
// cut to size; returns how many there were, and forgets them. The sticky error is cleared with them
// when `reset` is set, so that a test can go on after a deliberate fault.
SWDEV_API int rlmixupSoftwareDeviceViolations(char* buf, int size, int reset) {
    auto v = swdev::take_violations();
    std::string s;
    for (auto& x : v) s += x + "\n";
    if (buf && size > 0) {
        std::strncpy(buf, s.c_str(), static_cast<size_t>(size) - 1);
        buf[size - 1] = 0;
    }
    if (reset) swdev::clear_sticky_error();
    return static_cast<int>(v.size());
}

// Every exported API function as "name|return kind:size|param kind:size|...", one per line.
SWDEV_API const char* rlmixupSoftwareDeviceExports() {
    static std::string s = swdev::joined_exports();
    return s.c_str();
}
