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
