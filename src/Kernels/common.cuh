// common.cuh — the one shared header of src/Kernels. It lets the same .cu sources compile three ways:
//   (a) clang++ -x cuda --cuda-device-only -nocudainc -nocudalib  → PTX, with no CUDA headers at all
//   (b) nvcc / NVRTC (__CUDACC__, __CUDACC_RTC__)                   → the real CUDA builtins
//   (c) a plain host C++20 compiler                                  → host emulation for the tests:
//       threadIdx/blockIdx are thread-locals, each block's threads run as real std::threads, blocks
//       run one at a time (so a __shared__ variable can be a plain static), __syncthreads() is a
//       std::barrier, and launch(kernel, grid, block, args...) stands in for <<<grid, block>>>.
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
#define K_INFF __builtin_inff()

#elif defined(__CUDACC__) || defined(__CUDACC_RTC__)
// ---- (b) nvcc / NVRTC: the real builtins and math library
#define KERNELS_DEVICE 1
__device__ inline float k_fmaf(float a, float b, float c) { return fmaf(a, b, c); }
__device__ inline float k_sqrtf(float a) { return sqrtf(a); }
__device__ inline float k_floorf(float a) { return floorf(a); }
#define K_INFF __int_as_float(0x7f800000)

#else
// ---- (c) host emulation
#define KERNELS_HOST_EMULATION 1
#include <barrier>
#include <cmath>
#include <cstddef>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __shared__ static
#define __launch_bounds__(...)

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;                  // the same for every thread of a launch
inline std::barrier<>* k_block_barrier = nullptr; // the running block's barrier

inline void __syncthreads() { k_block_barrier->arrive_and_wait(); }
inline float k_fmaf(float a, float b, float c) { return std::fma(a, b, c); }
inline float k_sqrtf(float a) { return std::sqrt(a); }
inline float k_floorf(float a) { return std::floor(a); }
#define K_INFF __builtin_inff()

// Runs kernel<<<grid, block>>>(args...): blockDim.x threads, each walking the blocks in order;
// the barrier at the end of a block keeps blocks one at a time. grid.y/z and block.y/z must be 1.
template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, A... args) {
    blockDim = block;
    gridDim = grid;
    std::barrier<> bar((std::ptrdiff_t)block.x);
    k_block_barrier = &bar;
    std::vector<std::thread> threads;
    threads.reserve(block.x);
    for (unsigned t = 0; t < block.x; t++)
        threads.emplace_back([&, t] {
            threadIdx = dim3(t);
            for (unsigned b = 0; b < grid.x; b++) {
                blockIdx = dim3(b);
                kernel(args...);
                bar.arrive_and_wait();
            }
        });
    for (auto& th : threads) th.join();
    k_block_barrier = nullptr;
}
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

// The largest block size any kernel here supports; shared reduction buffers are sized by it, and
// every kernel is declared __launch_bounds__(K_MAX_THREADS, 1): ptxas keeps it within the 64
// registers per thread a block of that size may use, and the minimum of one block per SM stops it
// from squeezing to 32 registers (and spilling) to fit two such blocks on an sm_90 SM.
#define K_MAX_THREADS 1024
