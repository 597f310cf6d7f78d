// kernels.cpp — runs host-emulated kernels: one block at a time, each thread of the block a fiber
// on the calling OS thread. A fiber runs until its kernel body returns or it reaches
// __syncthreads(); when every thread of the block waits at the barrier they are resumed in order.
// Kernels without a barrier therefore run thread after thread with no switch but the fiber's start
// and end. The switch is a few instructions (callee-saved registers, the stack pointer and the
// x87/SSE control words), not swapcontext, which makes a system call per switch.
//
// Device memory faults: freed allocations and the page after every allocation are inaccessible
// (runtime.cpp), so a kernel that reads past a buffer or uses a freed one faults. While a kernel
// runs, a SIGSEGV/SIGBUS handler turns a fault inside the device address range into a reported
// CUDA_ERROR_ILLEGAL_ADDRESS (the launch is abandoned, as a GPU would abandon it); any other fault
// is passed on to the handler that was installed before (the .NET runtime's).
#include <signal.h>
#include <sys/mman.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "../../src/Kernels/common.cuh"
#include "kernel_host.h"

// ---- the context switch

extern "C" void swdev_fiber_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl swdev_fiber_switch
    .hidden swdev_fiber_switch
    .type swdev_fiber_switch, @function
swdev_fiber_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size swdev_fiber_switch, .-swdev_fiber_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");

namespace swdev {
namespace {

constexpr size_t kStack = 128 * 1024;  // per fiber; kernels keep big arrays in __shared__ statics

enum class FiberState { Ready, AtBarrier, Done };

struct Fiber {
    void* sp = nullptr;
    unsigned char* stack = nullptr;
    FiberState state = FiberState::Ready;
    unsigned tid = 0;
};

struct Launch {
    const HostKernel* kernel = nullptr;
    const unsigned char* args = nullptr;
    const size_t* offsets = nullptr;
};

std::vector<Fiber> g_fibers;
void* g_scheduler_sp = nullptr;
Fiber* g_current = nullptr;
Launch g_launch;
bool g_in_kernel = false;
sigjmp_buf g_fault_jump;
volatile uintptr_t g_fault_address = 0;
struct sigaction g_old_segv, g_old_bus;

void fiber_main() {
    Fiber* f = g_current;
    g_launch.kernel->invoke(g_launch.kernel->fn, g_launch.args, g_launch.offsets);
    f->state = FiberState::Done;
    swdev_fiber_switch(&f->sp, g_scheduler_sp);
    __builtin_unreachable();
}

// A fresh fiber: its stack holds what swdev_fiber_switch pops (control words, six registers) and
// then fiber_main as the return address, 16-byte aligned as at a function's entry.
void prepare(Fiber& f) {
    if (!f.stack) {
        void* p = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            std::fprintf(stderr, "rlmixup software device: cannot map a fiber stack\n");
            std::abort();
        }
        f.stack = static_cast<unsigned char*>(p);
    }
    auto* top = reinterpret_cast<uint64_t*>(f.stack + kStack);
    *--top = 0;                                              // fiber_main's (never used) return address
    *--top = reinterpret_cast<uint64_t>(&fiber_main);        // where `ret` goes
    for (int i = 0; i < 6; i++) *--top = 0;                  // rbp, rbx, r12–r15
    *--top = 0x037F'0000'1F80ull;                            // mxcsr 0x1F80, x87 control word 0x037F
    f.sp = top;
    f.state = FiberState::Ready;
}

void resume(Fiber& f) {
    g_current = &f;
    threadIdx = ::dim3(f.tid);
    swdev_fiber_switch(&g_scheduler_sp, f.sp);
}

void on_fault(int sig, siginfo_t* info, void* ctx) {
    auto a = reinterpret_cast<uintptr_t>(info->si_addr);
    if (g_in_kernel && in_device_range(a)) {
        g_fault_address = a;
        siglongjmp(g_fault_jump, 1);
    }
    // Not ours: hand it to whoever was there before (the .NET runtime turns its own into exceptions).
    const struct sigaction& old = sig == SIGBUS ? g_old_bus : g_old_segv;
    if (old.sa_flags & SA_SIGINFO) {
        if (old.sa_sigaction) old.sa_sigaction(sig, info, ctx);
        return;
    }
    if (old.sa_handler == SIG_IGN) return;
    if (old.sa_handler == SIG_DFL || old.sa_handler == nullptr) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    old.sa_handler(sig);
}

}  // namespace

const HostKernel* find_host_kernel(const std::string& name) {
    for (auto& k : host_kernels())
        if (k.name == name) return &k;
    return nullptr;
}

std::string describe_address(uintptr_t a);  // runtime.cpp

bool run_kernel(const HostKernel& k, Dim3 grid, Dim3 block, const std::vector<unsigned char>& args,
                const std::vector<size_t>& offsets) {
    const unsigned nthreads = block.x * block.y * block.z;
    if (g_fibers.size() < nthreads) g_fibers.resize(nthreads);
    g_launch = Launch{&k, args.data(), offsets.data()};
    ::blockDim = ::dim3(block.x, block.y, block.z);
    ::gridDim = ::dim3(grid.x, grid.y, grid.z);

    struct sigaction sa {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
    bool ok = true;
    g_in_kernel = true;
    if (sigsetjmp(g_fault_jump, 1) == 0) {
        for (unsigned b = 0; b < grid.x * grid.y * grid.z; b++) {
            ::blockIdx = ::dim3(b % grid.x, b / grid.x % grid.y, b / (grid.x * grid.y));
            for (unsigned t = 0; t < nthreads; t++) {
                g_fibers[t].tid = t;
                prepare(g_fibers[t]);
            }
            // Run every thread to its end or its next barrier; repeat while any waits at one.
            bool waiting = true;
            while (waiting) {
                waiting = false;
                unsigned done = 0;
                for (unsigned t = 0; t < nthreads; t++) {
                    Fiber& f = g_fibers[t];
                    if (f.state == FiberState::Done) {
                        done++;
                        continue;
                    }
                    f.state = FiberState::Ready;
                    resume(f);
                    if (f.state == FiberState::AtBarrier) waiting = true;
                    else done++;
                }
                if (waiting && done > 0) {
                    // Some threads returned while others wait at __syncthreads: undefined on a GPU.
                    fault(CUDA_ERROR_LAUNCH_FAILED, k.name.c_str(),
                          "__syncthreads() reached by only some threads of block " + std::to_string(b) + " (divergent barrier)");
                    ok = false;
                    waiting = false;
                    b = grid.x * grid.y * grid.z;  // abandon the launch
                    break;
                }
            }
        }
    } else {
        fault(CUDA_ERROR_ILLEGAL_ADDRESS, k.name.c_str(), "illegal address: " + describe_address(g_fault_address));
        ok = false;
    }
    g_in_kernel = false;
    sigaction(SIGSEGV, &g_old_segv, nullptr);
    sigaction(SIGBUS, &g_old_bus, nullptr);
    return ok;
}

}  // namespace swdev

// The block barrier of the host-emulated kernels (declared in common.cuh).
void __syncthreads() {
    using namespace swdev;
    Fiber* f = g_current;
    f->state = FiberState::AtBarrier;
    swdev_fiber_switch(&f->sp, g_scheduler_sp);
    threadIdx = ::dim3(f->tid);
}
