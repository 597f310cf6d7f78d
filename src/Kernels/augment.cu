// augment.cu — the training batch, built on the device from the resident uint8 dataset. CPU twin:
// CpuBatchSource.Fill and WriteImage (src/Engine/Data/InputPipeline.cs).
//
// Kernels:
//   gather_augment   images (N,3,H,W) uint8, labels (N) uint8, indices (B), aug (B,3) = (dx, dy, flip)
//                    → x (B,3,H,W) float: output pixel (y, x) of image i reads source pixel
//                    (y + dy, x' + dx) of images[indices[i]], x' = flip ? W−1−x : x, zero (in the raw
//                    0..255 space) outside the image, then v·scale_c + shift_c with
//                    scale_c = 1/(255·std_c), shift_c = −mean_c/std_c;
//                    and targets (B,K) = one-hot of labels[indices[i]]
//
// Grid-stride over the B·3·H·W pixels and then the B·K targets, any block size up to K_MAX_THREADS.
// The arithmetic is the twin's float operations (scale and shift per channel, then one product and
// one sum, not contracted), so the batch is bit-identical to the CPU's. The mean and std come as
// three floats each. The launcher (host) checks the indices, the shifts and the labels.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) gather_augment(float* x,                     // (B,3,H,W)
                                                                            float* targets,               // (B,K)
                                                                            const unsigned char* images,  // (N,3,H,W)
                                                                            const unsigned char* labels,  // (N)
                                                                            const int* indices,           // (B)
                                                                            const int* aug,               // (B,3) dx, dy, flip
                                                                            float mean0, float mean1, float mean2,
                                                                            float std0, float std1, float std2,
                                                                            int B, int H, int W, int K) {
    const int plane = H * W;
    const size_t npix = (size_t)B * 3 * plane, ntarget = (size_t)B * K;
    const size_t stride = (size_t)blockDim.x * gridDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < npix + ntarget; e += stride) {
        if (e < npix) {
            const int i = (int)(e / ((size_t)3 * plane)), c = (int)(e / plane % 3), px = (int)(e % plane);
            const int y = px / W, xo = px % W;
            const float mean = c == 0 ? mean0 : c == 1 ? mean1 : mean2, std = c == 0 ? std0 : c == 1 ? std1 : std2;
            const float scale = k_div_rn(1.0f, k_mul_rn(255.0f, std)), shift = k_div_rn(-mean, std);
            const int dx = aug[i * 3], dy = aug[i * 3 + 1], flip = aug[i * 3 + 2];
            const int sy = y + dy, sx = (flip ? W - 1 - xo : xo) + dx;
            float v = shift;
            if (sy >= 0 && sy < H && sx >= 0 && sx < W) {
                const unsigned char raw = images[((size_t)indices[i] * 3 + c) * plane + (size_t)sy * W + sx];
                v = k_add_rn(k_mul_rn((float)raw, scale), shift);
            }
            x[e] = v;
        } else {
            const size_t t = e - npix;
            const int i = (int)(t / K), k = (int)(t % K);
            targets[t] = (int)labels[indices[i]] == k ? 1.0f : 0.0f;
        }
    }
}
