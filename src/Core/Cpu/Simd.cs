using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RlMixup.Core.Cpu;

/// <summary>
/// Vectorised span kernels behind the CPU backend's elementwise, batch-norm and optimiser ops.
/// Vector256 (8 floats) with a scalar tail; where Vector256 is not accelerated the same code runs
/// in software, so results do not depend on the machine beyond summation order.
/// </summary>
internal static class Simd
{
    private static ref float R(Span<float> s) => ref MemoryMarshal.GetReference(s);
    private static ref float R(ReadOnlySpan<float> s) => ref MemoryMarshal.GetReference(s);
    private static Vector256<float> L(ReadOnlySpan<float> s, int i) => Vector256.LoadUnsafe(ref R(s), (nuint)i);
    private static void S(Vector256<float> v, Span<float> s, int i) => v.StoreUnsafe(ref R(s), (nuint)i);
    private static int VecEnd(int n) => n & ~7;

    /// <summary>y = max(x, 0).</summary>
    public static void Relu(Span<float> y, ReadOnlySpan<float> x)
    {
        int n = Len(y, x), i = 0;
        for (; i < VecEnd(n); i += 8) S(Vector256.Max(L(x, i), Vector256<float>.Zero), y, i);
        for (; i < n; i++) y[i] = MathF.Max(x[i], 0f);
    }

    /// <summary>dx = y &gt; 0 ? dy : 0 (branch-free: the mask is data-dependent and unpredictable).</summary>
    public static void ReluBackward(Span<float> dx, ReadOnlySpan<float> y, ReadOnlySpan<float> dy)
    {
        int n = Len(dx, y, dy), i = 0;
        for (; i < VecEnd(n); i += 8)
            S(Vector256.ConditionalSelect(Vector256.GreaterThan(L(y, i), Vector256<float>.Zero), L(dy, i), Vector256<float>.Zero), dx, i);
        for (; i < n; i++) dx[i] = y[i] > 0f ? dy[i] : 0f;
    }

    /// <summary>y = a + b.</summary>
    public static void Add(Span<float> y, ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int n = Len(y, a, b), i = 0;
        for (; i < VecEnd(n); i += 8) S(L(a, i) + L(b, i), y, i);
        for (; i < n; i++) y[i] = a[i] + b[i];
    }

    /// <summary>y += alpha·x.</summary>
    public static void Axpy(Span<float> y, float alpha, ReadOnlySpan<float> x)
    {
        int n = Len(y, x), i = 0;
        var va = Vector256.Create(alpha);
        for (; i < VecEnd(n); i += 8) S(Vector256.FusedMultiplyAdd(va, L(x, i), L(y, i)), y, i);
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd(alpha, x[i], y[i]);
    }

    /// <summary>y = x·scale + shift.</summary>
    public static void ScaleShift(Span<float> y, ReadOnlySpan<float> x, float scale, float shift)
    {
        int n = Len(y, x), i = 0;
        var vs = Vector256.Create(scale); var vb = Vector256.Create(shift);
        for (; i < VecEnd(n); i += 8) S(Vector256.FusedMultiplyAdd(L(x, i), vs, vb), y, i);
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd(x[i], scale, shift);
    }

    /// <summary>y = a·p + (x − center)·q + c (the batch-norm backward formula in affine form).</summary>
    public static void Affine2(Span<float> y, ReadOnlySpan<float> a, float p, ReadOnlySpan<float> x, float center, float q, float c)
    {
        int n = Len(y, a, x), i = 0;
        var vp = Vector256.Create(p); var vq = Vector256.Create(q); var vc = Vector256.Create(c); var vm = Vector256.Create(center);
        for (; i < VecEnd(n); i += 8) S(Vector256.FusedMultiplyAdd(L(a, i), vp, Vector256.FusedMultiplyAdd(L(x, i) - vm, vq, vc)), y, i);
        for (; i < n; i++) y[i] = a[i] * p + ((x[i] - center) * q + c);
    }

    /// <summary>Σ x, with four independent accumulators so the adds pipeline.</summary>
    public static double Sum(ReadOnlySpan<float> x)
    {
        int n = x.Length, i = 0;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (; i + 32 <= n; i += 32) { a0 += L(x, i); a1 += L(x, i + 8); a2 += L(x, i + 16); a3 += L(x, i + 24); }
        for (; i < VecEnd(n); i += 8) a0 += L(x, i);
        double s = Vector256.Sum((a0 + a1) + (a2 + a3));
        for (; i < n; i++) s += x[i];
        return s;
    }

    /// <summary>Σ (x − mean)².</summary>
    public static double SumSquaredDeviation(ReadOnlySpan<float> x, float mean)
    {
        int n = x.Length, i = 0;
        var m = Vector256.Create(mean);
        Vector256<float> a0 = default, a1 = default;
        for (; i + 16 <= n; i += 16)
        {
            var d0 = L(x, i) - m; var d1 = L(x, i + 8) - m;
            a0 = Vector256.FusedMultiplyAdd(d0, d0, a0); a1 = Vector256.FusedMultiplyAdd(d1, d1, a1);
        }
        for (; i < VecEnd(n); i += 8) { var d = L(x, i) - m; a0 = Vector256.FusedMultiplyAdd(d, d, a0); }
        double s = Vector256.Sum(a0 + a1);
        for (; i < n; i++) { double d = x[i] - mean; s += d * d; }
        return s;
    }

    /// <summary>(Σ dy, Σ dy·(x − mean)).</summary>
    public static (double SumDy, double SumDyDev) SumAndDot(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, float mean)
    {
        int n = Len(dy, x), i = 0;
        var m = Vector256.Create(mean);
        Vector256<float> s0 = default, s1 = default, d0 = default, d1 = default;
        for (; i + 16 <= n; i += 16)
        {
            var g0 = L(dy, i); var g1 = L(dy, i + 8);
            s0 += g0; s1 += g1;
            d0 = Vector256.FusedMultiplyAdd(g0, L(x, i) - m, d0); d1 = Vector256.FusedMultiplyAdd(g1, L(x, i + 8) - m, d1);
        }
        for (; i < VecEnd(n); i += 8) { var g = L(dy, i); s0 += g; d0 = Vector256.FusedMultiplyAdd(g, L(x, i) - m, d0); }
        double sum = Vector256.Sum(s0 + s1), dot = Vector256.Sum(d0 + d1);
        for (; i < n; i++) { sum += dy[i]; dot += (double)dy[i] * (x[i] - mean); }
        return (sum, dot);
    }

    /// <summary>PyTorch SGD (dampening 0) on one chunk; see IBackend.SgdStep.</summary>
    public static void Sgd(Span<float> p, ReadOnlySpan<float> g, Span<float> buf, float lr, float momentum, float wd, bool nesterov)
    {
        int n = Len(p, g, buf), i = 0;
        var vlr = Vector256.Create(lr); var vm = Vector256.Create(momentum); var vwd = Vector256.Create(wd);
        for (; i < VecEnd(n); i += 8)
        {
            var pi = L(p, i);
            var gi = Vector256.FusedMultiplyAdd(vwd, pi, L(g, i));
            var bi = Vector256.FusedMultiplyAdd(vm, L(buf, i), gi);
            S(bi, buf, i);
            var step = nesterov ? Vector256.FusedMultiplyAdd(vm, bi, gi) : bi;
            S(pi - vlr * step, p, i);
        }
        for (; i < n; i++)
        {
            float gi = MathF.FusedMultiplyAdd(wd, p[i], g[i]);
            float bi = MathF.FusedMultiplyAdd(momentum, buf[i], gi);
            buf[i] = bi;
            p[i] -= lr * (nesterov ? MathF.FusedMultiplyAdd(momentum, bi, gi) : bi);
        }
    }

    /// <summary>PyTorch Adam on one chunk; see IBackend.AdamStep. stepSize = lr/(1−β1^t), bc2Sqrt = √(1−β2^t).</summary>
    public static void Adam(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v,
        float stepSize, float bc2Sqrt, float beta1, float beta2, float eps, float wd)
    {
        int n = Len(p, g, m), i = 0;
        var vb1 = Vector256.Create(beta1); var vb2 = Vector256.Create(beta2);
        var v1b1 = Vector256.Create(1 - beta1); var v1b2 = Vector256.Create(1 - beta2);
        var vss = Vector256.Create(stepSize); var vbc = Vector256.Create(bc2Sqrt); var veps = Vector256.Create(eps); var vwd = Vector256.Create(wd);
        for (; i < VecEnd(n); i += 8)
        {
            var pi = L(p, i);
            var gi = Vector256.FusedMultiplyAdd(vwd, pi, L(g, i));
            var mi = vb1 * L(m, i) + v1b1 * gi;
            var vi = vb2 * L(v, i) + v1b2 * gi * gi;
            S(mi, m, i); S(vi, v, i);
            S(pi - vss * mi / (Vector256.Sqrt(vi) / vbc + veps), p, i);
        }
        for (; i < n; i++)
        {
            float gi = MathF.FusedMultiplyAdd(wd, p[i], g[i]);
            float mi = beta1 * m[i] + (1 - beta1) * gi;
            float vi = beta2 * v[i] + (1 - beta2) * gi * gi;
            m[i] = mi; v[i] = vi;
            p[i] -= stepSize * mi / (MathF.Sqrt(vi) / bc2Sqrt + eps);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Len(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException("span lengths differ");
        return a.Length;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Len(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c)
    {
        if (a.Length != b.Length || a.Length != c.Length) throw new ArgumentException("span lengths differ");
        return a.Length;
    }
}
