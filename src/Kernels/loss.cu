// loss.cu — the classification loss and accuracy. CPU twins: CpuBackend.LogSoftmaxForward/Backward,
// SoftCrossEntropyForward/Backward (src/Core/Cpu/CpuBackend.Norm.cs) and Accuracy.CountCorrect
// (src/Engine/Training/Reward.cs).
//
// Kernels (rows × K, row-major):
//   log_softmax_forward          logp = z − (max + ln Σ e^{z−max})
//   log_softmax_backward         dz = dlogp − e^{logp}·Σ_k dlogp           (overwrites)
//   soft_cross_entropy_forward   losses (rows) = −Σ_k y·logp
//   soft_cross_entropy_backward  dz = scale·(e^{logp}·Σ_k y − y)           (overwrites)
//   argmax_rows                  pred (rows) = the first k of the largest z (as torch.argmax)
//   count_correct                count (1) = #{i : pred[i] == labels[i]}   (overwrites)
//
// The first four: one block per row (grid-stride over rows), any block size up to K_MAX_THREADS;
// the row sums are block tree reductions (k_block_sum), deterministic for a given block size.
// They agree with the twins to rounding: the sums run in another order (and in float where the twin
// uses double), and the device's exponential and logarithm are the fast ones (about 2 ulp).
// argmax_rows: one thread per row, the twin's scan. count_correct: one block, an integer tree: exact.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) log_softmax_forward(float* logp,    // (rows,K)
                                                                                 const float* z, // (rows,K)
                                                                                 int rows, int K) {
    __shared__ float buf[K_MAX_THREADS];
    const int tid = threadIdx.x, nt = blockDim.x;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* zr = z + (size_t)r * K;
        float m = -K_INFF;
        for (int k = tid; k < K; k += nt) m = zr[k] > m ? zr[k] : m;
        m = k_block_max(m, buf);
        float s = 0.0f;
        for (int k = tid; k < K; k += nt) s += k_expf(zr[k] - m);
        s = k_block_sum(s, buf);
        const float lse = m + k_logf(s);
        for (int k = tid; k < K; k += nt) logp[(size_t)r * K + k] = zr[k] - lse;
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) log_softmax_backward(float* dz,          // (rows,K)
                                                                                  const float* logp,  // (rows,K)
                                                                                  const float* dlogp, // (rows,K)
                                                                                  int rows, int K) {
    __shared__ float buf[K_MAX_THREADS];
    const int tid = threadIdx.x, nt = blockDim.x;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const size_t o = (size_t)r * K;
        float s = 0.0f;
        for (int k = tid; k < K; k += nt) s += dlogp[o + k];
        s = k_block_sum(s, buf);
        for (int k = tid; k < K; k += nt) dz[o + k] = dlogp[o + k] - k_expf(logp[o + k]) * s;
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) soft_cross_entropy_forward(float* losses,        // (rows)
                                                                                        const float* logp,    // (rows,K)
                                                                                        const float* targets, // (rows,K)
                                                                                        int rows, int K) {
    __shared__ float buf[K_MAX_THREADS];
    const int tid = threadIdx.x, nt = blockDim.x;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const size_t o = (size_t)r * K;
        float s = 0.0f;
        for (int k = tid; k < K; k += nt) s = k_fmaf(targets[o + k], logp[o + k], s);
        s = k_block_sum(s, buf);
        if (tid == 0) losses[r] = -s;
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) soft_cross_entropy_backward(float* dz,            // (rows,K)
                                                                                         const float* logp,    // (rows,K)
                                                                                         const float* targets, // (rows,K)
                                                                                         int rows, int K, float scale) {
    __shared__ float buf[K_MAX_THREADS];
    const int tid = threadIdx.x, nt = blockDim.x;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const size_t o = (size_t)r * K;
        float s = 0.0f;
        for (int k = tid; k < K; k += nt) s += targets[o + k];
        s = k_block_sum(s, buf);
        for (int k = tid; k < K; k += nt) dz[o + k] = scale * (k_expf(logp[o + k]) * s - targets[o + k]);
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) argmax_rows(int* pred,      // (rows)
                                                                         const float* z, // (rows,K)
                                                                         int rows, int K) {
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += blockDim.x * gridDim.x) {
        const float* zr = z + (size_t)r * K;
        int arg = 0;
        float best = zr[0];
        K_NO_UNROLL
        for (int k = 1; k < K; k++)
            if (zr[k] > best) { best = zr[k]; arg = k; }
        pred[r] = arg;
    }
}

extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) count_correct(int* count,                   // (1)
                                                                           const int* pred,              // (n)
                                                                           const unsigned char* labels,  // (n)
                                                                           int n) {
    __shared__ int buf[K_MAX_THREADS];
    int c = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) c += pred[i] == (int)labels[i] ? 1 : 0;
    c = k_block_sum(c, buf);
    if (threadIdx.x == 0 && blockIdx.x == 0) *count = c;
}
