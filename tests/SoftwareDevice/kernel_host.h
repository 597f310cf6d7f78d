// kernel_host.h — the host-emulated kernels of src/Kernels as the software device sees them.
//
// build.sh generates kernels.g.cpp from the .cu sources: it includes every src/Kernels/*.cu in host
// mode (common.cuh, case (c)) and lists each `extern "C" __global__` kernel by name. The parameter
// types come from the kernel's own C++ declaration (make_host_kernel deduces them), so the .cu
// source is the one place a signature is written; cuModuleGetFunction then holds them against the
// PTX's .param list, and cuLaunchKernel unpacks the arguments by the PTX's sizes.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "swdev.h"

namespace swdev {

struct HostParam {
    const char* kind;  // "pointer", "integer" or "float" (abi_kind)
    size_t size;
};

// Runs the kernel body for the current (blockIdx, threadIdx), its arguments unpacked from `args`
// at `offsets` (the packed launch buffer, laid out by the PTX parameter list).
using HostInvoke = void (*)(void (*fn)(), const unsigned char* args, const size_t* offsets);

struct HostKernel {
    std::string name;
    std::vector<HostParam> params;
    void (*fn)();
    HostInvoke invoke;
};

template <typename T> T load_arg(const unsigned char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

template <typename... P> struct HostInvoker {
    template <size_t... I>
    static void call(void (*f)(P...), const unsigned char* a, const size_t* o, std::index_sequence<I...>) {
        f(load_arg<P>(a + o[I])...);
    }
    static void invoke(void (*fn)(), const unsigned char* args, const size_t* offsets) {
        call(reinterpret_cast<void (*)(P...)>(fn), args, offsets, std::index_sequence_for<P...>{});
    }
};

template <typename... P> HostKernel make_host_kernel(const char* name, void (*fn)(P...)) {
    return HostKernel{name, {HostParam{abi_kind<P>(), sizeof(P)}...}, reinterpret_cast<void (*)()>(fn), &HostInvoker<P...>::invoke};
}

// The generated table (kernels.g.cpp).
const std::vector<HostKernel>& host_kernels();
const HostKernel* find_host_kernel(const std::string& name);

struct Dim3 {
    unsigned x = 1, y = 1, z = 1;
};

// Runs a whole launch on the calling thread: every block in order, each block's threads as fibers.
// A fault (an access to an address no live allocation owns) stops it, is reported and becomes the
// context's sticky error; returns false then.
bool run_kernel(const HostKernel& k, Dim3 grid, Dim3 block, const std::vector<unsigned char>& args,
                const std::vector<size_t>& offsets);

}  // namespace swdev
