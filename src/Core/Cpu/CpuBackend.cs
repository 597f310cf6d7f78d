using System.Runtime.CompilerServices;

namespace RlMixup.Core.Cpu;

/// <summary>
/// The CPU backend: the reference twin of every GPU op, and fast enough to train on.
/// Memory is managed float arrays. Work is split over <see cref="Threads"/> threads; convolutions
/// parallelise over images and run a single-threaded GEMM per image.
/// This file: memory, elementwise, dense and optimiser ops. Convolution, batch norm and the loss
/// live in the other CpuBackend.*.cs files.
/// One instance runs one op at a time (each op parallelises internally); give concurrent callers
/// their own instances.
/// </summary>
public sealed partial class CpuBackend : IBackend
{
    public CpuBackend(int? threads = null)
    {
        Threads = Math.Max(1, threads ?? Environment.ProcessorCount);
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = Threads };
    }

    public string Name => "cpu";
    public int Threads { get; }
    private readonly ParallelOptions _parallel;

    public void Dispose() { }

    // ---- memory

    public Tensor Allocate(Shape shape) => new(new CpuBuffer(this, new float[shape.Size]), 0, shape, ownsBuffer: true);

    public void Upload(Tensor dst, ReadOnlySpan<float> src) => src.CopyTo(Host(dst));
    public void Download(Tensor src, Span<float> dst) => Host(src).CopyTo(dst);
    public void Fill(Tensor t, float value) => Host(t).Fill(value);

    public void Copy(Tensor dst, Tensor src)
    {
        OpChecks.Copy(dst, src);
        Host(src).CopyTo(Host(dst));
    }

    /// <summary>Host span of a tensor that must belong to this backend.</summary>
    private Span<float> Host(Tensor t)
    {
        if (t.Buffer is not CpuBuffer b || !ReferenceEquals(b.Owner, this))
            throw new ArgumentException($"tensor of shape {t.Shape} belongs to backend '{t.Backend.Name}', not to this CPU backend");
        return b.Data.AsSpan(t.Offset, t.Length);
    }

    /// <summary>Pins the tensor's array; the caller keeps the handle alive while using the pointer.</summary>
    private static unsafe float* Ptr(Tensor t, out System.Runtime.InteropServices.GCHandle pin)
    {
        var arr = ((CpuBuffer)t.Buffer).Data;
        pin = System.Runtime.InteropServices.GCHandle.Alloc(arr, System.Runtime.InteropServices.GCHandleType.Pinned);
        return (float*)pin.AddrOfPinnedObject() + t.Offset;
    }

    /// <summary>
    /// Runs body(start, end, worker) over [0, count) split into at most Threads contiguous chunks.
    /// Small problems (count &lt; minPerChunk·2) run on the calling thread.
    /// </summary>
    private void Chunks(int count, int minPerChunk, Action<int, int, int> body)
    {
        int workers = Math.Min(Threads, Math.Max(1, count / Math.Max(1, minPerChunk)));
        if (workers <= 1) { body(0, count, 0); return; }
        Parallel.For(0, workers, _parallel, w =>
        {
            int start = (int)((long)count * w / workers), end = (int)((long)count * (w + 1) / workers);
            body(start, end, w);
        });
    }

    private const int ElementwiseChunk = 1 << 15;

    // ---- elementwise

    public void Add(Tensor y, Tensor a, Tensor b)
    {
        OpChecks.Add(y, a, b);
        Chunks(y.Length, ElementwiseChunk, (s, e, _) => Simd.Add(Slice(y, s, e), Slice(a, s, e), Slice(b, s, e)));
    }

    public void Axpy(Tensor y, float alpha, Tensor x)
    {
        OpChecks.Axpy(y, x);
        Chunks(y.Length, ElementwiseChunk, (s, e, _) => Simd.Axpy(Slice(y, s, e), alpha, Slice(x, s, e)));
    }

    public void Scale(Tensor y, float alpha)
    {
        Chunks(y.Length, ElementwiseChunk, (s, e, _) => { var v = Slice(y, s, e); Simd.ScaleShift(v, v, alpha, 0f); });
    }

    public void ReluForward(Tensor y, Tensor x)
    {
        OpChecks.Unary("relu", y, x);
        Chunks(y.Length, ElementwiseChunk, (s, e, _) => Simd.Relu(Slice(y, s, e), Slice(x, s, e)));
    }

    public void ReluBackward(Tensor dx, Tensor y, Tensor dy)
    {
        OpChecks.UnaryBackward("relu backward", dx, y, dy);
        Chunks(y.Length, ElementwiseChunk, (s, e, _) => Simd.ReluBackward(Slice(dx, s, e), Slice(y, s, e), Slice(dy, s, e)));
    }

    /// <summary>Elements [start, end) of a tensor of this backend.</summary>
    private Span<float> Slice(Tensor t, int start, int end) => Host(t).Slice(start, end - start);

    public void TanhForward(Tensor y, Tensor x)
    {
        OpChecks.Unary("tanh", y, x);
        var ys = Host(y); var xs = Host(x);
        for (int i = 0; i < ys.Length; i++) ys[i] = MathF.Tanh(xs[i]);
    }

    public void TanhBackward(Tensor dx, Tensor y, Tensor dy)
    {
        OpChecks.UnaryBackward("tanh backward", dx, y, dy);
        var d = Host(dx); var ys = Host(y); var g = Host(dy);
        for (int i = 0; i < d.Length; i++) d[i] = g[i] * (1f - ys[i] * ys[i]);
    }

    private static float[] Arr(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    // ---- dense

    public unsafe void Gemm(Tensor c, Tensor a, bool transA, Tensor b, bool transB, float alpha = 1f, float beta = 0f)
    {
        var (m, n, k) = OpChecks.Gemm(c, a, transA, b, transB);
        Host(a); Host(b); Host(c);
        float* pa = Ptr(a, out var ha), pb = Ptr(b, out var hb), pc = Ptr(c, out var hc);
        try { Cpu.Gemm.Sgemm(transA, transB, m, n, k, alpha, pa, a.Shape[1], pb, b.Shape[1], beta, pc, n, Threads); }
        finally { ha.Free(); hb.Free(); hc.Free(); }
    }

    public unsafe void LinearForward(Tensor y, Tensor x, Tensor w, Tensor? b)
    {
        var (n, fout) = OpChecks.Linear(y, x, w, b);
        Gemm(y, x, false, w, true);
        if (b != null)
        {
            var ys = Host(y); var bs = Host(b);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < fout; j++) ys[i * fout + j] += bs[j];
        }
    }

    public void LinearBackward(Tensor? dx, Tensor? dw, Tensor? db, Tensor dy, Tensor x, Tensor w)
    {
        var (n, fout) = OpChecks.LinearBackward(dx, dw, db, dy, x, w);
        if (dx != null) Gemm(dx, dy, false, w, false);
        if (dw != null) Gemm(dw, dy, true, x, false, 1f, 1f);
        if (db != null)
        {
            var dbs = Host(db); var dys = Host(dy);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < fout; j++) dbs[j] += dys[i * fout + j];
        }
    }

    // ---- per-channel bias (convolution bias)

    public void AddChannelBias(Tensor y, Tensor bias)
    {
        OpChecks.ChannelBias(y, bias);
        int c = y.Shape.C, hw = y.Shape.H * y.Shape.W;
        Host(y); Host(bias);
        Chunks(y.Shape.N * c, Math.Max(1, ElementwiseChunk / Math.Max(1, hw)), (s, e, _) =>
        {
            var ys = Host(y); var bv = Host(bias);
            for (int r = s; r < e; r++) { var row = ys.Slice(r * hw, hw); Simd.ScaleShift(row, row, 1f, bv[r % c]); }
        });
    }

    public void ChannelBiasBackward(Tensor dbias, Tensor dy)
    {
        OpChecks.ChannelBiasBackward(dbias, dy);
        int n = dy.Shape.N, c = dy.Shape.C, hw = dy.Shape.H * dy.Shape.W;
        var ds = Host(dbias); var g = Host(dy);
        // Sums in double in a fixed order (image by image) so the result does not depend on threading.
        for (int ch = 0; ch < c; ch++)
        {
            double s = 0;
            for (int i = 0; i < n; i++) s += Simd.Sum(g.Slice((i * c + ch) * hw, hw));
            ds[ch] += (float)s;
        }
    }

    // ---- pooling

    public void GlobalAvgPoolForward(Tensor y, Tensor x)
    {
        OpChecks.GlobalAvgPool(y, x);
        int hw = x.Shape.H * x.Shape.W;
        var ys = Host(y); var xs = Host(x);
        for (int r = 0; r < ys.Length; r++)
        {
            float s = 0;
            var row = xs.Slice(r * hw, hw);
            for (int i = 0; i < hw; i++) s += row[i];
            ys[r] = s / hw;
        }
    }

    public void GlobalAvgPoolBackward(Tensor dx, Tensor dy)
    {
        OpChecks.GlobalAvgPoolBackward(dx, dy);
        int hw = dx.Shape.H * dx.Shape.W;
        var dxs = Host(dx); var dys = Host(dy);
        for (int r = 0; r < dys.Length; r++) dxs.Slice(r * hw, hw).Fill(dys[r] / hw);
    }

    // ---- optimisers

    public void SgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lr, float momentum, float weightDecay, bool nesterov)
    {
        OpChecks.Sgd(param, grad, momentumBuffer);
        Host(param); Host(grad); Host(momentumBuffer);
        Chunks(param.Length, ElementwiseChunk, (s, e, _) =>
            Simd.Sgd(Slice(param, s, e), Slice(grad, s, e), Slice(momentumBuffer, s, e), lr, momentum, weightDecay, nesterov));
    }

    public void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, int step, float lr, float beta1, float beta2, float eps, float weightDecay)
    {
        OpChecks.Adam(param, grad, m, v, step);
        // Bias corrections in double, as PyTorch computes them in Python floats.
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        float stepSize = (float)(lr / bc1), bc2Sqrt = (float)Math.Sqrt(bc2);
        Host(param); Host(grad); Host(m); Host(v);
        Chunks(param.Length, ElementwiseChunk, (s, e, _) =>
            Simd.Adam(Slice(param, s, e), Slice(grad, s, e), Slice(m, s, e), Slice(v, s, e), stepSize, bc2Sqrt, beta1, beta2, eps, weightDecay));
    }
}
