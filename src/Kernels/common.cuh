// common.cuh — the one shared header of src/Kernels. It lets the same .cu sources compile three ways:
//   (a) clang++ -x cuda --cuda-device-only -nocudainc -nocudalib  → PTX, with no CUDA headers at all
//   (b) nvcc / NVRTC (__CUDACC__, __CUDACC_RTC__)                   → the real CUDA builtins
//   (c) a plain host C++20 compiler                                  → host emulation: the software
//       device (tests/SoftwareDevice) runs each block's threads as fibers, one block at a time.
// Kernels only use the .x components of the built-in index variables.
#pragma once

#if defined(__CUDA__) && defined(__clang__) && !defined(__CUDACC__)
// ---- (a) clang device-only compile without CUDA headers
#define KERNELS_DEVICE 1
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#include <__clang_cuda_builtin_vars.h>
typedef __SIZE_TYPE__ size_t;
__device__ inline float k_fmaf(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
__device__ inline float k_sqrtf(float a) { return __builtin_sqrtf(a); }
__device__ inline float k_floorf(float a) { return __builtin_floorf(a); }
// IEEE round-to-nearest operations that may not be contracted into an fma: clang contracts a·b + c
// for CUDA by default, and ptxas fuses a plain mul.f32 + add.f32, but never an explicit .rn one.
// (The __nvvm_mul_rn_f builtins are folded back into plain fmul by LLVM, hence inline PTX.) The
// kernels that must match their CPU twin bit for bit use these.
__device__ inline float k_mul_rn(float a, float b) { float r; asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b)); return r; }
__device__ inline float k_add_rn(float a, float b) { float r; asm("add.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b)); return r; }
__device__ inline float k_sub_rn(float a, float b) { float r; asm("sub.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b)); return r; }
__device__ inline float k_div_rn(float a, float b) { float r; asm("div.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b)); return r; }
__device__ inline float k_sqrt_rn(float a) { float r; asm("sqrt.rn.f32 %0, %1;" : "=f"(r) : "f"(a)); return r; }
// Fast 2^x and log2(x) (ex2.approx / lg2.approx, about 2 ulp): there is no libm on this path.
__device__ inline float k_exp2f(float a) { return __nvvm_ex2_approx_f(a); }
__device__ inline float k_log2f(float a) { return __nvvm_lg2_approx_f(a); }
#define K_INFF __builtin_inff()

#elif defined(__CUDACC__) || defined(__CUDACC_RTC__)
// ---- (b) nvcc / NVRTC: the real builtins and math library
#define KERNELS_DEVICE 1
__device__ inline float k_fmaf(float a, float b, float c) { return fmaf(a, b, c); }
__device__ inline float k_sqrtf(float a) { return sqrtf(a); }
__device__ inline float k_floorf(float a) { return floorf(a); }
__device__ inline float k_mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline float k_add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ inline float k_sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ inline float k_div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ inline float k_sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ inline float k_exp2f(float a) { return exp2f(a); }
__device__ inline float k_log2f(float a) { return __log2f(a); }
#define K_INFF __int_as_float(0x7f800000)

#else
// ---- (c) host emulation: the software device (tests/SoftwareDevice) compiles these sources as
// plain C++ and runs a launch one block at a time, each of the block's threads as a fiber on one OS
// thread: a __shared__ variable can then be a plain static, __syncthreads() switches to the next
// fiber until every thread of the block has arrived, and the scheduler sets the built-in index
// variables before it resumes a thread.
#define KERNELS_HOST_EMULATION 1
#include <cmath>
#include <cstddef>

#define __global__
#define __device__
#define __shared__ static
#define __launch_bounds__(...)

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
inline dim3 threadIdx, blockIdx, blockDim, gridDim;  // set by the software device's scheduler
void __syncthreads();                                // the software device's block barrier
inline float k_fmaf(float a, float b, float c) { return std::fma(a, b, c); }
inline float k_sqrtf(float a) { return std::sqrt(a); }
inline float k_floorf(float a) { return std::floor(a); }
// The host compiler targets plain x86-64 (no FMA instructions), so nothing is contracted here.
inline float k_mul_rn(float a, float b) { return a * b; }
inline float k_add_rn(float a, float b) { return a + b; }
inline float k_sub_rn(float a, float b) { return a - b; }
inline float k_div_rn(float a, float b) { return a / b; }
inline float k_sqrt_rn(float a) { return std::sqrt(a); }
// Exact here; the device's approximations differ by a few ulp (the tests' tolerances say how much).
inline float k_exp2f(float a) { return std::exp2(a); }
inline float k_log2f(float a) { return std::log2(a); }
#define K_INFF __builtin_inff()
#endif

// ---- small helpers shared by the kernels

// Keeps a loop rolled on the device (fewer registers where unrolling buys nothing); no-op on the host.
#ifdef KERNELS_DEVICE
#define K_NO_UNROLL _Pragma("unroll 1")
#else
#define K_NO_UNROLL
#endif

__device__ inline int k_min(int a, int b) { return a < b ? a : b; }
__device__ inline int k_max(int a, int b) { return a > b ? a : b; }

#define K_LOG2E 1.4426950408889634f
#define K_LN2 0.6931471805599453f
// e^x and ln x through the base-2 primitives (fast approximations on the device).
__device__ inline float k_expf(float x) { return k_exp2f(x * K_LOG2E); }
__device__ inline float k_logf(float x) { return k_log2f(x) * K_LN2; }

// The largest block size any kernel here supports; shared reduction buffers are sized by it, and
// every kernel is declared __launch_bounds__(K_MAX_THREADS, 1): ptxas keeps it within the 64
// registers per thread a block of that size may use, and the minimum of one block per SM stops it
// from squeezing to 32 registers (and spilling) to fit two such blocks on an sm_90 SM.
#define K_MAX_THREADS 1024
// The most blocks a grid-stride kernel's launcher asks for; the loop covers what lies beyond.
#define K_MAX_GRID 65535

// Block-wide reductions over blockDim.x values, for any block size up to K_MAX_THREADS: a tree in
// shared memory (buf holds blockDim.x entries), padded to the next power of two, so the order of the
// additions depends only on the block size and the result is deterministic. Every thread gets the
// result; the closing barrier lets the caller reuse buf at once.
template <typename T>
__device__ inline T k_block_sum(T v, T* buf) {
    const int tid = threadIdx.x, nt = blockDim.x;
    buf[tid] = v;
    __syncthreads();
    int half = 1;
    while (half < nt) half <<= 1;
    for (half >>= 1; half > 0; half >>= 1) {
        if (tid < half && tid + half < nt) buf[tid] += buf[tid + half];
        __syncthreads();
    }
    const T r = buf[0];
    __syncthreads();
    return r;
}

__device__ inline float k_block_max(float v, float* buf) {
    const int tid = threadIdx.x, nt = blockDim.x;
    buf[tid] = v;
    __syncthreads();
    int half = 1;
    while (half < nt) half <<= 1;
    for (half >>= 1; half > 0; half >>= 1) {
        if (tid < half && tid + half < nt) { const float o = buf[tid + half]; if (o > buf[tid]) buf[tid] = o; }
        __syncthreads();
    }
    const float r = buf[0];
    __syncthreads();
    return r;
}

