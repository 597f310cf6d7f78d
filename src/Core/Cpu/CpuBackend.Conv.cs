namespace RlMixup.Core.Cpu;

// Convolution as im2col + GEMM, one image at a time, images spread over the threads.
// For image n with input x[n] (C,H,W), weight W (O, C·kH·kW) and output y[n] (O, Ho·Wo):
//   col  (C·kH·kW, Ho·Wo) = im2col(x[n])
//   y[n] = W · col                               (forward)
//   dcol = Wᵀ · dy[n];  dx[n] = col2im(dcol)     (backward-data)
//   dW  += dy[n] · colᵀ                          (backward-filter, per-thread partial sums)
// A 1×1 kernel with stride 1 and no padding skips im2col: col is x[n] itself.
public sealed partial class CpuBackend
{
    [ThreadStatic] private static float[]? t_col;

    private static float[] ColBuffer(int size)
    {
        var b = t_col;
        if (b == null || b.Length < size) t_col = b = new float[size];
        return b;
    }

    private static bool IsPointwise(Shape w, Conv2dSpec s) =>
        w.H == 1 && w.W == 1 && s.StrideH == 1 && s.StrideW == 1 && s.PadH == 0 && s.PadW == 0;

    public unsafe void Conv2dForward(Tensor y, Tensor x, Tensor w, Conv2dSpec spec)
    {
        var yShape = spec.OutputShape(x.Shape, w.Shape);
        Check.Same("conv2d", "output", y.Shape, yShape);
        Host(y); Host(x); Host(w);
        int n = x.Shape.N, c = x.Shape.C, h = x.Shape.H, wd = x.Shape.W, o = w.Shape.N;
        int kh = w.Shape.H, kw = w.Shape.W, oh = yShape.H, ow = yShape.W;
        int ckk = c * kh * kw, ohw = oh * ow, inImage = c * h * wd, outImage = o * ohw;
        bool pointwise = IsPointwise(w.Shape, spec);
        float[] xa = Arr(x), wa = Arr(w), ya = Arr(y);
        int xo = x.Offset, wo = w.Offset, yo = y.Offset;
        Chunks(n, 1, (s, e, _) =>
        {
            float[] col = pointwise ? xa : ColBuffer(ckk * ohw);
            fixed (float* pw = &wa[wo], pcol0 = col, py0 = ya, px0 = xa)
                for (int i = s; i < e; i++)
                {
                    float* pcol = pcol0;
                    if (pointwise) pcol = px0 + xo + i * inImage;
                    else Im2Col(px0 + xo + i * inImage, c, h, wd, kh, kw, spec, oh, ow, pcol);
                    Cpu.Gemm.Sgemm(false, false, o, ohw, ckk, 1f, pw, ckk, pcol, ohw, 0f, py0 + yo + i * outImage, ohw, 1);
                }
        });
    }

    public unsafe void Conv2dBackwardData(Tensor dx, Tensor dy, Tensor w, Conv2dSpec spec)
    {
        var yShape = spec.OutputShape(dx.Shape, w.Shape);
        Check.Same("conv2d backward-data", "dy", dy.Shape, yShape);
        Host(dx); Host(dy); Host(w);
        int n = dx.Shape.N, c = dx.Shape.C, h = dx.Shape.H, wd = dx.Shape.W, o = w.Shape.N;
        int kh = w.Shape.H, kw = w.Shape.W, oh = yShape.H, ow = yShape.W;
        int ckk = c * kh * kw, ohw = oh * ow, inImage = c * h * wd, outImage = o * ohw;
        bool pointwise = IsPointwise(w.Shape, spec);
        float[] dxa = Arr(dx), wa = Arr(w), dya = Arr(dy);
        int dxo = dx.Offset, wo = w.Offset, dyo = dy.Offset;
        Chunks(n, 1, (s, e, _) =>
        {
            float[] col = pointwise ? dxa : ColBuffer(ckk * ohw);
            fixed (float* pw = &wa[wo], pcol0 = col, pdy0 = dya, pdx0 = dxa)
                for (int i = s; i < e; i++)
                {
                    float* pdx = pdx0 + dxo + i * inImage;
                    float* pcol = pointwise ? pdx : pcol0;
                    Cpu.Gemm.Sgemm(true, false, ckk, ohw, o, 1f, pw, ckk, pdy0 + dyo + i * outImage, ohw, 0f, pcol, ohw, 1);
                    if (!pointwise) Col2Im(pcol, c, h, wd, kh, kw, spec, oh, ow, pdx);
                }
        });
    }

    public unsafe void Conv2dBackwardFilter(Tensor dw, Tensor x, Tensor dy, Conv2dSpec spec)
    {
        var yShape = spec.OutputShape(x.Shape, dw.Shape);
        Check.Same("conv2d backward-filter", "dy", dy.Shape, yShape);
        Host(dw); Host(x); Host(dy);
        int n = x.Shape.N, c = x.Shape.C, h = x.Shape.H, wd = x.Shape.W, o = dw.Shape.N;
        int kh = dw.Shape.H, kw = dw.Shape.W, oh = yShape.H, ow = yShape.W;
        int ckk = c * kh * kw, ohw = oh * ow, inImage = c * h * wd, outImage = o * ohw;
        bool pointwise = IsPointwise(dw.Shape, spec);
        float[] xa = Arr(x), dya = Arr(dy), dwa = Arr(dw);
        int xo = x.Offset, dyo = dy.Offset, dwo = dw.Offset;
        int workers = Math.Min(Threads, n);
        // Worker 0 accumulates straight into dw; the others into partial sums added at the end.
        var partials = new float[Math.Max(0, workers - 1)][];
        for (int p = 0; p < partials.Length; p++) partials[p] = new float[o * ckk];
        Chunks(n, 1, (s, e, worker) =>
        {
            float[] col = pointwise ? xa : ColBuffer(ckk * ohw);
            float[] target = worker == 0 ? dwa : partials[worker - 1];
            int targetOffset = worker == 0 ? dwo : 0;
            fixed (float* pt = target, pcol0 = col, pdy0 = dya, px0 = xa)
                for (int i = s; i < e; i++)
                {
                    float* pcol = pcol0;
                    if (pointwise) pcol = px0 + xo + i * inImage;
                    else Im2Col(px0 + xo + i * inImage, c, h, wd, kh, kw, spec, oh, ow, pcol);
                    Cpu.Gemm.Sgemm(false, true, o, ckk, ohw, 1f, pdy0 + dyo + i * outImage, ohw, pcol, ohw, 1f, pt + targetOffset, ckk, 1);
                }
        });
        foreach (var p in partials)
            for (int j = 0; j < p.Length; j++) dwa[dwo + j] += p[j];
    }

    /// <summary>col (C·kH·kW, Ho·Wo) from one image x (C,H,W); zero where the window leaves the image.</summary>
    private static unsafe void Im2Col(float* x, int c, int h, int w, int kh, int kw, Conv2dSpec s, int oh, int ow, float* col)
    {
        for (int ch = 0; ch < c; ch++)
            for (int ki = 0; ki < kh; ki++)
                for (int kj = 0; kj < kw; kj++)
                {
                    float* dst = col + ((ch * kh + ki) * kw + kj) * oh * ow;
                    float* src = x + ch * h * w;
                    // Output columns [owLo, owHi) read inside the image along W; the rest are padding.
                    int owLo = Math.Max(0, CeilDiv(s.PadW - kj, s.StrideW));
                    int owHi = Math.Min(ow, CeilDiv(w + s.PadW - kj, s.StrideW));
                    for (int r = 0; r < oh; r++, dst += ow)
                    {
                        int ih = r * s.StrideH - s.PadH + ki;
                        if ((uint)ih >= (uint)h || owLo >= owHi) { new Span<float>(dst, ow).Clear(); continue; }
                        float* row = src + ih * w;
                        for (int q = 0; q < owLo; q++) dst[q] = 0;
                        if (s.StrideW == 1)
                            new ReadOnlySpan<float>(row + owLo - s.PadW + kj, owHi - owLo).CopyTo(new Span<float>(dst + owLo, owHi - owLo));
                        else
                            for (int q = owLo; q < owHi; q++) dst[q] = row[q * s.StrideW - s.PadW + kj];
                        for (int q = owHi; q < ow; q++) dst[q] = 0;
                    }
                }
    }

    /// <summary>dx (C,H,W) = the adjoint of Im2Col applied to dcol; overwrites dx.</summary>
    private static unsafe void Col2Im(float* col, int c, int h, int w, int kh, int kw, Conv2dSpec s, int oh, int ow, float* dx)
    {
        new Span<float>(dx, c * h * w).Clear();
        for (int ch = 0; ch < c; ch++)
            for (int ki = 0; ki < kh; ki++)
                for (int kj = 0; kj < kw; kj++)
                {
                    float* src = col + ((ch * kh + ki) * kw + kj) * oh * ow;
                    float* dst = dx + ch * h * w;
                    int owLo = Math.Max(0, CeilDiv(s.PadW - kj, s.StrideW));
                    int owHi = Math.Min(ow, CeilDiv(w + s.PadW - kj, s.StrideW));
                    for (int r = 0; r < oh; r++, src += ow)
                    {
                        int ih = r * s.StrideH - s.PadH + ki;
                        if ((uint)ih >= (uint)h) continue;
                        float* row = dst + ih * w - s.PadW + kj;
                        for (int q = owLo; q < owHi; q++) row[q * s.StrideW] += src[q];
                    }
                }
    }

    /// <summary>⌈a/b⌉ for b &gt; 0 and any sign of a.</summary>
    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -((-a) / b);
}
