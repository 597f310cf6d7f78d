namespace RlMixup.Core.Cpu;

/// <summary>
/// Single-precision GEMM on the host, row-major: C (m×n) = alpha·op(A)·op(B) + beta·C.
/// op(A) is (m×k): A is stored (m×k) with row stride lda, or (k×m) when transA.
/// op(B) is (k×n): B is stored (k×n) with row stride ldb, or (n×k) when transB.
/// PLACEHOLDER: naive loops; the blocked AVX2 version replaces this.
/// </summary>
public static unsafe class Gemm
{
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads = 1)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++)
                    s += (transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                c[i * ldc + j] = beta == 0 ? alpha * s : alpha * s + beta * c[i * ldc + j];
            }
    }
}
