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
