// Host emulation of src/Kernels for the tests: the .cu sources compiled as plain C++ (common.cuh's
// host mode) behind extern "C" entry points that take explicit block and grid sizes (grid ≤ 0: the
// launcher's own choice). Each returns nullptr on success, else the launcher's reason for refusing.
// Built and loaded by KernelEmulator.cs: g++ -std=c++20 -O2 -pthread -shared -fPIC -I<kernels>.
#include "saliency.cu"
#include "mask.cu"
#include "mix.cu"

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
