// bias.cu — the bias adds of convolutions and linear layers and their parameter gradients.
// CPU twins: CpuBackend.AddChannelBias, ChannelBiasBackward, and the bias parts of LinearForward and
// LinearBackward (src/Core/Cpu/CpuBackend.cs).
//
// Kernels:
//   add_channel_bias        y (N,C,H,W) += b[c]                 grid-stride over the elements
//   channel_bias_backward   dbias (C) += Σ_{n,h,w} dy           one block per channel (grid-stride
//                                                                over channels); double partial sums
//                                                                and a tree: deterministic
//   add_row_bias            y (N,out) += b[j]                   grid-stride over the elements
//   row_bias_backward       db (out) += Σ_n dy (N,out)          one thread per column, rows in order
//
// add_channel_bias, add_row_bias and row_bias_backward do the twin's float additions in its order,
// so they are bit-identical. channel_bias_backward sums in double, as the twin does, in another
// order (the twin sums each image's plane with float vectors first), so it agrees to rounding.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) add_channel_bias(float* y,          // (N,C,H,W)
                                                                              const float* bias, // (C)
                                                                              int N, int C, int HW) {
    const size_t n = (size_t)N * C * HW;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x)
        y[i] = k_add_rn(y[i], bias[(i / HW) % C]);
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) channel_bias_backward(float* dbias,     // (C) accumulated
                                                                                   const float* dy, // (N,C,H,W)
                                                                                   int N, int C, int HW) {
    __shared__ double partial[K_MAX_THREADS];
    const int tid = threadIdx.x, nt = blockDim.x;
    const int per_channel = N * HW;
    for (int c = blockIdx.x; c < C; c += gridDim.x) {
        double s = 0.0;
        // element e of the channel: image e / HW, pixel e % HW (consecutive threads read consecutive pixels)
        for (int e = tid; e < per_channel; e += nt)
            s += (double)dy[((size_t)(e / HW) * C + c) * HW + e % HW];
        s = k_block_sum(s, partial);
        if (tid == 0) dbias[c] += (float)s;
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) add_row_bias(float* y,       // (N,out)
                                                                          const float* b, // (out)
                                                                          int N, int out) {
    const size_t n = (size_t)N * out;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x)
        y[i] = k_add_rn(y[i], b[i % out]);
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) row_bias_backward(float* db,       // (out) accumulated
                                                                               const float* dy, // (N,out)
                                                                               int N, int out) {
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < out; j += blockDim.x * gridDim.x) {
        float s = db[j];
        K_NO_UNROLL
        for (int r = 0; r < N; r++) s = k_add_rn(s, dy[(size_t)r * out + j]);
        db[j] = s;
    }
}

// ---- kernel launchers

#ifdef KERNELS_HOST_EMULATION
// Each returns nullptr on success, else why it cannot be launched. grid ≤ 0: the default grid
// (elementwise: k_grid_for; channel_bias_backward: one block per channel; row_bias_backward:
// k_grid_for over the columns).
inline const char* add_channel_bias_launch(float* y, const float* bias, int N, int C, int HW, int block, int grid = 0) {
    if (N < 1 || C < 1 || HW < 1) return "add_channel_bias: empty shape";
    if (block < 1 || block > K_MAX_THREADS) return "add_channel_bias: block size out of range";
    const size_t n = (size_t)N * C * HW;
    launch(add_channel_bias, dim3(grid > 0 ? (unsigned)grid : k_grid_for(n, block)), dim3(block), y, bias, N, C, HW);
    return nullptr;
}

inline const char* channel_bias_backward_launch(float* dbias, const float* dy, int N, int C, int HW, int block, int grid = 0) {
    if (N < 1 || C < 1 || HW < 1) return "channel_bias_backward: empty shape";
    if ((long long)N * HW > 2147483647LL) return "channel_bias_backward: N·H·W exceeds 2^31 - 1";
    if (block < 1 || block > K_MAX_THREADS) return "channel_bias_backward: block size out of range";
    launch(channel_bias_backward, dim3(grid > 0 ? grid : (C < K_MAX_GRID ? C : K_MAX_GRID)), dim3(block), dbias, dy, N, C, HW);
    return nullptr;
}

inline const char* add_row_bias_launch(float* y, const float* b, int N, int out, int block, int grid = 0) {
    if (N < 1 || out < 1) return "add_row_bias: empty shape";
    if (block < 1 || block > K_MAX_THREADS) return "add_row_bias: block size out of range";
    launch(add_row_bias, dim3(grid > 0 ? (unsigned)grid : k_grid_for((size_t)N * out, block)), dim3(block), y, b, N, out);
    return nullptr;
}

inline const char* row_bias_backward_launch(float* db, const float* dy, int N, int out, int block, int grid = 0) {
    if (N < 1 || out < 1) return "row_bias_backward: empty shape";
    if (block < 1 || block > K_MAX_THREADS) return "row_bias_backward: block size out of range";
    launch(row_bias_backward, dim3(grid > 0 ? (unsigned)grid : k_grid_for((size_t)out, block)), dim3(block), db, dy, N, out);
    return nullptr;
}
#endif
