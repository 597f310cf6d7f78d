// pool.cu — global average pooling. CPU twins: CpuBackend.GlobalAvgPoolForward / Backward
// (src/Core/Cpu/CpuBackend.cs).
//
// Kernels:
//   global_avg_pool_forward    y (N·C) = (Σ_hw x) / HW    one thread per (n,c) plane, summed in order
//   global_avg_pool_backward   dx (N,C,H,W) = dy / HW      grid-stride over the elements (overwrites)
//
// Both do the twin's float arithmetic in its order (the forward sums a plane sequentially, as the
// twin does), so they are bit-identical. The planes pooled here are small (4×4 at the end of a
// ResNet), so a thread per plane costs little.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) global_avg_pool_forward(float* y,       // (N,C)
                                                                                     const float* x, // (N,C,H,W)
                                                                                     int rows, int HW) { // rows = N·C
    const float count = (float)HW;
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += blockDim.x * gridDim.x) {
        const float* p = x + (size_t)r * HW;
        float s = 0.0f;
        K_NO_UNROLL
        for (int i = 0; i < HW; i++) s = k_add_rn(s, p[i]);
        y[r] = k_div_rn(s, count);
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) global_avg_pool_backward(float* dx,       // (N,C,H,W)
                                                                                      const float* dy, // (N,C)
                                                                                      int rows, int HW) {
    const size_t n = (size_t)rows * HW;
    const float count = (float)HW;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x)
        dx[i] = k_div_rn(dy[i / HW], count);
}
