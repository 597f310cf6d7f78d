// mix.cu — the mixing of RL-Mixup's eq. 2–4 and the two baselines (method.md, "Masks and mixing").
// CPU twins: MixupReference.UpsampleNearest + Mix + SoftLabels, InputMixup, CutMix
// (src/Core/Mixup/MixupReference.cs).
//
// Kernels:
//   mask_mix      masks (B,p,p) upsampled by nearest neighbour, m1 = own mask, m2 = partner's own
//                 mask, m_inter = [m1 == m2]; mixed (B,C,H,W), pixel fractions (B,3) and soft
//                 labels (B,K) in one pass
//   input_mixup   mixed = λx + (1−λ)x_π, y' = λy + (1−λ)y_π
//   cutmix        the box [y0,y1)×[x0,x1) comes from the partner; label weight 1 − area/(H·W)
//
// All three: one block per image (grid-stride over images), any block size up to K_MAX_THREADS,
// each output element written once. perm (B) holds the partner π(i) of each image.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) mask_mix(float* mixed,          // (B,C,H,W)
                                    float* mixed_targets,  // (B,K)
                                    float* fractions,      // (B,3) f_inter, f_only1, f_only2
                                    const float* x,        // (B,C,H,W)
                                    const float* targets,  // (B,K) soft targets
                                    const float* masks,    // (B,p,p)
                                    const int* perm,       // (B)
                                    const float* lambda1,  // (n_lambda): 1 (per batch) or B (per image)
                                    int n_lambda, int B, int C, int H, int W, int p, int K) {
    __shared__ int counts[3][K_MAX_THREADS]; // per thread: pixels with m1 == m2, only m1, only m2
    const int tid = threadIdx.x, nt = blockDim.x;
    const int plane = H * W, ncells = p * p;

    for (int i = blockIdx.x; i < B; i += gridDim.x) {
        const int j = perm[i];
        const float l1 = lambda1[n_lambda == 1 ? 0 : i], l2 = 1.0f - l1;
        const float* m1s = masks + (size_t)i * ncells;
        const float* m2s = masks + (size_t)j * ncells;
        int inter = 0, only1 = 0, only2 = 0;
        for (int px = tid; px < plane; px += nt) {
            const int y = px / W, xx = px % W;
            const int cell = (y * p / H) * p + xx * p / W; // nearest: m[⌊y·p/H⌋, ⌊x·p/W⌋]
            const float m1 = m1s[cell], m2 = m2s[cell];
            const bool b1 = m1 != 0.0f, b2 = m2 != 0.0f;
            if (b1 == b2) inter++; else if (b1) only1++; else only2++;
            for (int c = 0; c < C; c++) {
                const size_t o1 = ((size_t)i * C + c) * plane + px, o2 = ((size_t)j * C + c) * plane + px;
                const float x1 = x[o1], x2 = x[o2];
                mixed[o1] = m1 == m2 ? l1 * x1 + l2 * x2 : m1 * x1 + m2 * x2;
            }
        }
        counts[0][tid] = inter; counts[1][tid] = only1; counts[2][tid] = only2;
        __syncthreads();
        int half = 1;
        while (half < nt) half <<= 1;
        for (half >>= 1; half > 0; half >>= 1) {
            if (tid < half && tid + half < nt)
                for (int r = 0; r < 3; r++) counts[r][tid] += counts[r][tid + half];
            __syncthreads();
        }
        const float fi = (float)counts[0][0] / (float)plane, f1 = (float)counts[1][0] / (float)plane,
                    f2 = (float)counts[2][0] / (float)plane;
        if (tid == 0) { fractions[i * 3] = fi; fractions[i * 3 + 1] = f1; fractions[i * 3 + 2] = f2; }
        const float a = fi * l1 + f1, b = fi * l2 + f2; // weights of y_i and y_π(i)
        for (int k = tid; k < K; k += nt)
            mixed_targets[(size_t)i * K + k] = a * targets[(size_t)i * K + k] + b * targets[(size_t)j * K + k];
        __syncthreads(); // counts are reused by the next image
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) input_mixup(float* mixed,          // (B,D), D = C·H·W
                                       float* mixed_targets,  // (B,K)
                                       const float* x,        // (B,D)
                                       const float* targets,  // (B,K)
                                       const int* perm,       // (B)
                                       float lambda, int B, int D, int K) {
    const float mu = 1.0f - lambda;
    for (int i = blockIdx.x; i < B; i += gridDim.x) {
        const int j = perm[i];
        for (int e = threadIdx.x; e < D; e += blockDim.x)
            mixed[(size_t)i * D + e] = lambda * x[(size_t)i * D + e] + mu * x[(size_t)j * D + e];
        for (int k = threadIdx.x; k < K; k += blockDim.x)
            mixed_targets[(size_t)i * K + k] = lambda * targets[(size_t)i * K + k] + mu * targets[(size_t)j * K + k];
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) cutmix(float* mixed,          // (B,C,H,W)
                                  float* mixed_targets,  // (B,K)
                                  const float* x,        // (B,C,H,W)
                                  const float* targets,  // (B,K)
                                  const int* perm,       // (B)
                                  int y0, int x0, int y1, int x1, // the box, half-open, inside H×W
                                  int B, int C, int H, int W, int K) {
    const int plane = H * W, D = C * plane;
    const int area = k_max(0, y1 - y0) * k_max(0, x1 - x0);
    const float lam = 1.0f - (float)area / (float)plane, mu = 1.0f - lam; // lam = the kept fraction
    for (int i = blockIdx.x; i < B; i += gridDim.x) {
        const int j = perm[i];
        for (int e = threadIdx.x; e < D; e += blockDim.x) {
            const int px = e % plane, y = px / W, xx = px % W;
            const bool in_box = y >= y0 && y < y1 && xx >= x0 && xx < x1;
            mixed[(size_t)i * D + e] = x[(size_t)(in_box ? j : i) * D + e];
        }
        for (int k = threadIdx.x; k < K; k += blockDim.x)
            mixed_targets[(size_t)i * K + k] = lam * targets[(size_t)i * K + k] + mu * targets[(size_t)j * K + k];
    }
}
