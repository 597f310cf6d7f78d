// mask.cu — the percentile masks of RL-Mixup's eq. 1 (method.md, "Masks and mixing").
// CPU twin: MixupReference.PercentileMasks and PercentileOfSorted (src/Core/Mixup/MixupReference.cs).
//
// Kernels:
//   percentile_masks   maps (B,cells) + percentiles q (B) → thresholds (B), masks (B,cells) = [s ≥ t_i]
//
// One block per image (grid-stride over images), any block size up to K_MAX_THREADS. The image's
// cells (≤ MASK_MAX_CELLS) are bitonic-sorted in shared memory over the next power of two, padded
// with +inf. The threshold uses the CPU twin's exact float arithmetic (one explicit fma), so the
// thresholds and the masks are bit-identical to it.
#include "common.cuh"

#define MASK_MAX_CELLS 1024

// numpy's linear-interpolation percentile of v[0..n) (ascending), 0 ≤ q ≤ 100, as PercentileOfSorted.
__device__ inline float percentile_of_sorted(const float* v, int n, float q) {
    const float pos = q * (float)(n - 1) / 100.0f;
    const int lo = k_max(0, k_min((int)k_floorf(pos), n - 1)), hi = k_min(lo + 1, n - 1);
    const float frac = pos - (float)lo;
    return k_fmaf(frac, v[hi] - v[lo], v[lo]);
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) percentile_masks(float* masks,       // (B,cells) 0/1
                                            float* thresholds,  // (B)
                                            const float* maps,  // (B,cells)
                                            const float* q,     // (B) percentiles in [0,100]
                                            int B, int cells) {
    __shared__ float v[MASK_MAX_CELLS];
    const int tid = threadIdx.x, nt = blockDim.x;
    int n2 = 1;
    while (n2 < cells) n2 <<= 1;

    for (int i = blockIdx.x; i < B; i += gridDim.x) {
        const float* s = maps + (size_t)i * cells;
        for (int e = tid; e < n2; e += nt) v[e] = e < cells ? s[e] : K_INFF;
        __syncthreads();
        // bitonic sort, ascending; each compare-exchange pair (e, e^j) belongs to the thread owning e < e^j
        for (int k = 2; k <= n2; k <<= 1)
            for (int j = k >> 1; j > 0; j >>= 1) {
                for (int e = tid; e < n2; e += nt) {
                    const int f = e ^ j;
                    if (f > e) {
                        const float a = v[e], b = v[f];
                        const bool up = (e & k) == 0;
                        if (up ? a > b : a < b) { v[e] = b; v[f] = a; }
                    }
                }
                __syncthreads();
            }
        const float t = percentile_of_sorted(v, cells, q[i]);
        if (tid == 0) thresholds[i] = t;
        for (int e = tid; e < cells; e += nt) masks[(size_t)i * cells + e] = s[e] >= t ? 1.0f : 0.0f;
        __syncthreads(); // v is reused by the next image
    }
}
