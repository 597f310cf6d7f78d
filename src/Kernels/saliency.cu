// saliency.cu — the saliency maps of RL-Mixup (method.md, "Saliency and observation").
// CPU twin: MixupReference.ChannelL2 + PoolNormalize (src/Core/Mixup/MixupReference.cs).
//
// Kernels:
//   saliency_maps   input gradient (B,C,H,W) → maps (B,p,p): channel L2, (H/p × W/p) average pool,
//                   each image normalised to sum 1 (uniform 1/p² when the gradient is all zero)
//
// One block per image (grid-stride over images), any block size up to K_MAX_THREADS. The gradient is
// read once, coalesced: the block stages bands of whole cell rows of s = sqrt(Σ_c g²) in shared
// memory, then each thread owns cells and sums them in the reference's order (row by row, float),
// so the pooled means are bit-identical to the CPU twin. The image total is a double block
// reduction, as the CPU twin sums in double; only its summation order differs.
#include "common.cuh"

#define SALIENCY_MAX_BAND 4096 // floats of s staged per band (16 KiB): needs (H/p)·W ≤ this
#define SALIENCY_MAX_CELLS 1024 // p² ≤ this (p ≤ 32)

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) saliency_maps(float* maps,        // (B,p,p)
                                         const float* grad,  // (B,C,H,W)
                                         int B, int C, int H, int W, int p) {
    __shared__ float band[SALIENCY_MAX_BAND];      // (rows of the band, W) of s
    __shared__ float cells[SALIENCY_MAX_CELLS];    // (p,p) pooled means of the current image
    __shared__ double partial[K_MAX_THREADS];      // one partial total per thread
    const int tid = threadIdx.x, nt = blockDim.x;
    const int ch = H / p, cw = W / p, plane = H * W, ncells = p * p;
    const int band_cell_rows = k_max(1, SALIENCY_MAX_BAND / (ch * W)); // cell rows per band
    const float inv = 1.0f / (float)(ch * cw);

    for (int i = blockIdx.x; i < B; i += gridDim.x) {
        const float* g = grad + (size_t)i * C * plane;
        double total = 0.0;
        for (int cy0 = 0; cy0 < p; cy0 += band_cell_rows) {
            const int cy1 = k_min(p, cy0 + band_cell_rows);
            const int y0 = cy0 * ch, n = (cy1 - cy0) * ch * W;
            // s = sqrt(Σ_c g²) for the band's pixels, fma-accumulated over channels in order
            for (int e = tid; e < n; e += nt) {
                const float* gp = g + (size_t)y0 * W + e;
                float sum = 0.0f;
                K_NO_UNROLL
                for (int c = 0; c < C; c++) { float v = gp[(size_t)c * plane]; sum = k_fmaf(v, v, sum); }
                band[e] = k_sqrtf(sum);
            }
            __syncthreads();
            // each thread owns cells of the band: mean over (ch × cw) pixels, summed row by row
            for (int cell = cy0 * p + tid; cell < cy1 * p; cell += nt) {
                const int cy = cell / p, cx = cell % p;
                float sum = 0.0f;
                K_NO_UNROLL
                for (int y = (cy - cy0) * ch; y < (cy - cy0 + 1) * ch; y++)
                    for (int x = cx * cw; x < (cx + 1) * cw; x++) sum += band[y * W + x];
                const float m = sum * inv;
                cells[cell] = m;
                total += (double)m;
            }
            __syncthreads(); // the band is overwritten by the next pass
        }
        // block reduction of the totals, for any block size
        partial[tid] = total;
        __syncthreads();
        int half = 1;
        while (half < nt) half <<= 1;
        for (half >>= 1; half > 0; half >>= 1) {
            if (tid < half && tid + half < nt) partial[tid] += partial[tid + half];
            __syncthreads();
        }
        const double sum = partial[0];
        const bool ok = sum > 0.0 && sum <= 1.7976931348623157e308; // positive and finite (not NaN)
        const float k = ok ? (float)(1.0 / sum) : 0.0f;
        const float uniform = 1.0f / (float)ncells;
        for (int cell = tid; cell < ncells; cell += nt)
            maps[(size_t)i * ncells + cell] = ok ? cells[cell] * k : uniform;
        __syncthreads(); // partial[0] and cells are reused by the next image
    }
}
