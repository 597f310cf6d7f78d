// Host emulation of src/Kernels for the tests: the .cu sources compiled as plain C++ (common.cuh's
// host mode) behind extern "C" entry points that take explicit block and grid sizes (grid ≤ 0: the
// launcher's own choice). Each returns nullptr on success, else the launcher's reason for refusing.
// Built and loaded by KernelEmulator.cs: g++ -std=c++20 -O2 -pthread -shared -fPIC -I<kernels>.
#include "saliency.cu"
#include "mask.cu"
#include "mix.cu"
#include "elementwise.cu"
#include "bias.cu"
#include "pool.cu"
#include "loss.cu"
#include "optim.cu"
#include "augment.cu"

#define EMU_EXPORT extern "C" __attribute__((visibility("default")))

EMU_EXPORT const char* emu_saliency_maps(float* maps, const float* grad, int B, int C, int H, int W, int p,
                                         int block, int grid) {
    return saliency_maps_launch(maps, grad, B, C, H, W, p, block, grid);
}

EMU_EXPORT const char* emu_percentile_masks(float* masks, float* thresholds, const float* maps, const float* q,
                                            int B, int cells, int block, int grid) {
    return percentile_masks_launch(masks, thresholds, maps, q, B, cells, block, grid);
}

EMU_EXPORT const char* emu_mask_mix(float* mixed, float* mixed_targets, float* fractions, const float* x,
                                    const float* targets, const float* masks, const int* perm, const float* lambda1,
                                    int n_lambda, int B, int C, int H, int W, int p, int K, int block, int grid) {
    return mask_mix_launch(mixed, mixed_targets, fractions, x, targets, masks, perm, lambda1, n_lambda,
                           B, C, H, W, p, K, block, grid);
}

EMU_EXPORT const char* emu_input_mixup(float* mixed, float* mixed_targets, const float* x, const float* targets,
                                       const int* perm, float lambda, int B, int D, int K, int block, int grid) {
    return input_mixup_launch(mixed, mixed_targets, x, targets, perm, lambda, B, D, K, block, grid);
}

EMU_EXPORT const char* emu_cutmix(float* mixed, float* mixed_targets, const float* x, const float* targets,
                                  const int* perm, int y0, int x0, int y1, int x1, int B, int C, int H, int W, int K,
                                  int block, int grid) {
    return cutmix_launch(mixed, mixed_targets, x, targets, perm, y0, x0, y1, x1, B, C, H, W, K, block, grid);
}

// ---- elementwise.cu

EMU_EXPORT const char* emu_fill(float* y, float value, size_t n, int block, int grid) { return fill_launch(y, value, n, block, grid); }
EMU_EXPORT const char* emu_add(float* y, const float* a, const float* b, size_t n, int block, int grid) { return add_launch(y, a, b, n, block, grid); }
EMU_EXPORT const char* emu_axpy(float* y, float alpha, const float* x, size_t n, int block, int grid) { return axpy_launch(y, alpha, x, n, block, grid); }
EMU_EXPORT const char* emu_scale(float* y, float alpha, size_t n, int block, int grid) { return scale_launch(y, alpha, n, block, grid); }
EMU_EXPORT const char* emu_relu_forward(float* y, const float* x, size_t n, int block, int grid) { return relu_forward_launch(y, x, n, block, grid); }
EMU_EXPORT const char* emu_relu_backward(float* dx, const float* y, const float* dy, size_t n, int block, int grid) {
    return relu_backward_launch(dx, y, dy, n, block, grid);
}
EMU_EXPORT const char* emu_tanh_forward(float* y, const float* x, size_t n, int block, int grid) { return tanh_forward_launch(y, x, n, block, grid); }
EMU_EXPORT const char* emu_tanh_backward(float* dx, const float* y, const float* dy, size_t n, int block, int grid) {
    return tanh_backward_launch(dx, y, dy, n, block, grid);
}

// ---- bias.cu

EMU_EXPORT const char* emu_add_channel_bias(float* y, const float* bias, int N, int C, int HW, int block, int grid) {
    return add_channel_bias_launch(y, bias, N, C, HW, block, grid);
}
EMU_EXPORT const char* emu_channel_bias_backward(float* dbias, const float* dy, int N, int C, int HW, int block, int grid) {
    return channel_bias_backward_launch(dbias, dy, N, C, HW, block, grid);
}
EMU_EXPORT const char* emu_add_row_bias(float* y, const float* b, int N, int out, int block, int grid) {
    return add_row_bias_launch(y, b, N, out, block, grid);
}
EMU_EXPORT const char* emu_row_bias_backward(float* db, const float* dy, int N, int out, int block, int grid) {
    return row_bias_backward_launch(db, dy, N, out, block, grid);
}

// ---- pool.cu

EMU_EXPORT const char* emu_global_avg_pool_forward(float* y, const float* x, int rows, int HW, int block, int grid) {
    return global_avg_pool_forward_launch(y, x, rows, HW, block, grid);
}
EMU_EXPORT const char* emu_global_avg_pool_backward(float* dx, const float* dy, int rows, int HW, int block, int grid) {
    return global_avg_pool_backward_launch(dx, dy, rows, HW, block, grid);
}

// ---- loss.cu

EMU_EXPORT const char* emu_log_softmax_forward(float* logp, const float* z, int rows, int K, int block, int grid) {
    return log_softmax_forward_launch(logp, z, rows, K, block, grid);
}
EMU_EXPORT const char* emu_log_softmax_backward(float* dz, const float* logp, const float* dlogp, int rows, int K, int block, int grid) {
    return log_softmax_backward_launch(dz, logp, dlogp, rows, K, block, grid);
}
EMU_EXPORT const char* emu_soft_cross_entropy_forward(float* losses, const float* logp, const float* targets, int rows, int K, int block, int grid) {
    return soft_cross_entropy_forward_launch(losses, logp, targets, rows, K, block, grid);
}
EMU_EXPORT const char* emu_soft_cross_entropy_backward(float* dz, const float* logp, const float* targets, int rows, int K, float scale,
                                                       int block, int grid) {
    return soft_cross_entropy_backward_launch(dz, logp, targets, rows, K, scale, block, grid);
}
EMU_EXPORT const char* emu_argmax_rows(int* pred, const float* z, int rows, int K, int block, int grid) {
    return argmax_rows_launch(pred, z, rows, K, block, grid);
}
EMU_EXPORT const char* emu_count_correct(int* count, const int* pred, const unsigned char* labels, int n, int block) {
    return count_correct_launch(count, pred, labels, n, block);
}

// ---- optim.cu

EMU_EXPORT const char* emu_sgd_step(float* param, const float* grad, float* momentum_buf, size_t n, float lr, float momentum,
                                    float weight_decay, int nesterov, int block, int grid) {
    return sgd_step_launch(param, grad, momentum_buf, n, lr, momentum, weight_decay, nesterov != 0, block, grid);
}
EMU_EXPORT const char* emu_adam_step(float* param, const float* grad, float* m, float* v, size_t n, int step, float lr, float beta1,
                                     float beta2, float eps, float weight_decay, int block, int grid) {
    return adam_step_launch(param, grad, m, v, n, step, lr, beta1, beta2, eps, weight_decay, block, grid);
}
EMU_EXPORT const char* emu_adam_step_scaled(float* param, const float* grad, float* m, float* v, size_t n, float step_size, float bc2_sqrt,
                                            float beta1, float beta2, float eps, float weight_decay, int block, int grid) {
    return adam_step_scaled_launch(param, grad, m, v, n, step_size, bc2_sqrt, beta1, beta2, eps, weight_decay, block, grid);
}

// ---- augment.cu

EMU_EXPORT const char* emu_gather_augment(float* x, float* targets, const unsigned char* images, const unsigned char* labels, int N,
                                          const int* indices, const int* aug, const float* mean, const float* std,
                                          int B, int H, int W, int K, int block, int grid) {
    return gather_augment_launch(x, targets, images, labels, N, indices, aug, mean, std, B, H, W, K, block, grid);
}
