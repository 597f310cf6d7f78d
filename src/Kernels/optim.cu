// optim.cu — the optimisers, one flat pass over the parameter arena. CPU twins: CpuBackend.SgdStep
// and AdamStep, i.e. Simd.Sgd and Simd.Adam (src/Core/Cpu/Simd.cs).
//
// Kernels (n parameters, grid-stride, any block size up to K_MAX_THREADS):
//   sgd_step    PyTorch SGD, dampening 0: g = fma(wd, p, grad); buf = fma(momentum, buf, g);
//               step = nesterov ? fma(momentum, buf, g) : buf; p = p − lr·step
//   adam_step   PyTorch Adam with L2 decay: g = fma(wd, p, grad); m = β1·m + (1−β1)·g;
//               v = β2·v + (1−β2)·g·g; p = p − step_size·m / (sqrt(v)/bc2_sqrt + eps)
//
// adam_step takes the bias corrections ready-made, as the twin computes them on the host in double:
// step_size = lr/(1 − β1^t), bc2_sqrt = sqrt(1 − β2^t), with t the 1-based step. Both kernels do the
// twin's float operations in its order, with its explicit fmas and IEEE sqrt and division, and no
// other contraction, so the parameters and the buffers are bit-identical to the CPU's.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) sgd_step(float* param,       // (n)
                                                                      const float* grad,  // (n)
                                                                      float* momentum_buf,// (n)
                                                                      size_t n, float lr, float momentum,
                                                                      float weight_decay, int nesterov) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
        const float p = param[i];
        const float g = k_fmaf(weight_decay, p, grad[i]);
        const float b = k_fmaf(momentum, momentum_buf[i], g);
        momentum_buf[i] = b;
        const float step = nesterov ? k_fmaf(momentum, b, g) : b;
        param[i] = k_sub_rn(p, k_mul_rn(lr, step));
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) adam_step(float* param,      // (n)
                                                                       const float* grad, // (n)
                                                                       float* m,          // (n) first moment
                                                                       float* v,          // (n) second moment
                                                                       size_t n, float step_size, float bc2_sqrt,
                                                                       float beta1, float beta2, float eps, float weight_decay) {
    const float one_b1 = 1.0f - beta1, one_b2 = 1.0f - beta2;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
        const float p = param[i];
        const float g = k_fmaf(weight_decay, p, grad[i]);
        const float mi = k_add_rn(k_mul_rn(beta1, m[i]), k_mul_rn(one_b1, g));
        const float vi = k_add_rn(k_mul_rn(beta2, v[i]), k_mul_rn(k_mul_rn(one_b2, g), g));
        m[i] = mi;
        v[i] = vi;
        const float denom = k_add_rn(k_div_rn(k_sqrt_rn(vi), bc2_sqrt), eps);
        param[i] = k_sub_rn(p, k_div_rn(k_mul_rn(step_size, mi), denom));
    }
}

// ---- kernel launchers

#ifdef KERNELS_HOST_EMULATION
#include <cmath>
// Each returns nullptr on success, else why it cannot be launched. grid ≤ 0: k_grid_for(n, block).
inline const char* sgd_step_launch(float* param, const float* grad, float* momentum_buf, size_t n, float lr, float momentum,
                                   float weight_decay, bool nesterov, int block, int grid = 0) {
    if (n < 1) return "sgd_step: no parameters";
    if (block < 1 || block > K_MAX_THREADS) return "sgd_step: block size out of range";
    launch(sgd_step, dim3(grid > 0 ? (unsigned)grid : k_grid_for(n, block)), dim3(block), param, grad, momentum_buf, n, lr, momentum,
           weight_decay, nesterov ? 1 : 0);
    return nullptr;
}

// adam_step as the GPU backend launches it: the bias corrections already folded into step_size and
// bc2_sqrt (KernelCatalog.AdamScalars computes them).
inline const char* adam_step_scaled_launch(float* param, const float* grad, float* m, float* v, size_t n, float step_size, float bc2_sqrt,
                                           float beta1, float beta2, float eps, float weight_decay, int block, int grid = 0) {
    if (n < 1) return "adam_step: no parameters";
    if (block < 1 || block > K_MAX_THREADS) return "adam_step: block size out of range";
    launch(adam_step, dim3(grid > 0 ? (unsigned)grid : k_grid_for(n, block)), dim3(block), param, grad, m, v, n, step_size, bc2_sqrt,
           beta1, beta2, eps, weight_decay);
    return nullptr;
}

// The bias corrections are computed here in double from the 1-based step, as CpuBackend.AdamStep does.
inline const char* adam_step_launch(float* param, const float* grad, float* m, float* v, size_t n, int step, float lr,
                                    float beta1, float beta2, float eps, float weight_decay, int block, int grid = 0) {
    if (step < 1) return "adam_step: step is 1-based";
    const double bc1 = 1.0 - std::pow((double)beta1, (double)step), bc2 = 1.0 - std::pow((double)beta2, (double)step);
    const float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)std::sqrt(bc2);
    return adam_step_scaled_launch(param, grad, m, v, n, step_size, bc2_sqrt, beta1, beta2, eps, weight_decay, block, grid);
}
#endif
