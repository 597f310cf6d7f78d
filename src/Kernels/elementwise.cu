// elementwise.cu — the elementwise ops of IBackend. CPU twins: CpuBackend.Fill, Add, Axpy, Scale,
// ReluForward/Backward, TanhForward/Backward (src/Core/Cpu/CpuBackend.cs, Simd.cs).
//
// Kernels (n elements, any n ≥ 1; size_t so that tensors past 2^31 elements are fine):
//   fill            y = value
//   add             y = a + b
//   axpy            y = fma(alpha, x, y)               (y += alpha·x)
//   scale           y = fma(y, alpha, 0)               (y ·= alpha, as the CPU's ScaleShift)
//   relu_forward    y = max(x, 0)                      (NaN stays NaN)
//   relu_backward   dx = y > 0 ? dy : 0                (y = the forward output)
//   tanh_forward    y = tanh(x)
//   tanh_backward   dx = dy·(1 − y²)                   (y = the forward output)
//
// All are grid-stride loops, any block size up to K_MAX_THREADS and any grid. Everything but
// tanh_forward does the CPU twin's exact float operations (explicit fma where the twin has one,
// non-contractible products elsewhere), so the results are bit-identical. tanh_forward uses the
// fast exp: a polynomial below |x| = 0.25, 1 − 2/(e^{2|x|} + 1) above (a few ulp from tanhf).
#include "common.cuh"

#define K_GRID_STRIDE(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)blockDim.x * gridDim.x)

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) fill(float* y, float value, size_t n) {
    K_GRID_STRIDE(i, n) y[i] = value;
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) add(float* y, const float* a, const float* b, size_t n) {
    K_GRID_STRIDE(i, n) y[i] = k_add_rn(a[i], b[i]);
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) axpy(float* y, float alpha, const float* x, size_t n) {
    K_GRID_STRIDE(i, n) y[i] = k_fmaf(alpha, x[i], y[i]);
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) scale(float* y, float alpha, size_t n) {
    K_GRID_STRIDE(i, n) y[i] = k_fmaf(y[i], alpha, 0.0f);
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) relu_forward(float* y, const float* x, size_t n) {
    K_GRID_STRIDE(i, n) {
        const float v = x[i];
        y[i] = v > 0.0f || v != v ? v : 0.0f;
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) relu_backward(float* dx, const float* y, const float* dy, size_t n) {
    K_GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// tanh without libm. Below 0.25 the odd Taylor series to x^11 (truncation < 1e-10 relative);
// above, 1 − 2/(e^{2|x|} + 1), which saturates to ±1 when the exponential overflows.
__device__ inline float k_tanhf(float x) {
    const float a = x < 0.0f ? -x : x;
    float t;
    if (a < 0.25f) {
        const float x2 = x * x;
        float p = -1382.0f / 155925.0f;
        p = k_fmaf(p, x2, 62.0f / 2835.0f);
        p = k_fmaf(p, x2, -17.0f / 315.0f);
        p = k_fmaf(p, x2, 2.0f / 15.0f);
        p = k_fmaf(p, x2, -1.0f / 3.0f);
        return k_fmaf(x * x2, p, x);
    }
    t = 1.0f - 2.0f / (k_expf(2.0f * a) + 1.0f);
    return x < 0.0f ? -t : t;
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) tanh_forward(float* y, const float* x, size_t n) {
    K_GRID_STRIDE(i, n) y[i] = k_tanhf(x[i]);
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) tanh_backward(float* dx, const float* y, const float* dy, size_t n) {
    K_GRID_STRIDE(i, n) {
        const float v = y[i];
        dx[i] = k_mul_rn(dy[i], k_sub_rn(1.0f, k_mul_rn(v, v)));
    }
}
