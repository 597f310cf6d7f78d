namespace RlMixup.Core.Cpu;

// Convolution as im2col + GEMM over GROUPS of images, groups spread over the threads.
// For a group of G images with weight W (O, C·kH·kW) and P = Ho·Wo output pixels per image:
//   col  (C·kH·kW, G·P) = im2col of the G images side by side
//   Y    (O, G·P)       = W · col,         then scattered into y[n] (O, P)    (forward)
//   dcol (C·kH·kW, G·P) = Wᵀ · dY,         dY gathered from dy; col2im per image (backward-data)
//   dW  += dY · colᵀ                       per-thread partial sums               (backward-filter)
// Why groups: deep layers have few pixels (P = 16 at 4×4) and big weights (W is 9 MB at width 64);
// one image per GEMM would stream W once per image for a 16-column product. G is chosen so that a
// GEMM has about TargetColumns columns and each thread gets whole groups. With P ≥ TargetColumns
// (the 32×32 layers) G = 1 and y/dy are used in place, with no scatter or gather.
// im2col and col2im themselves, through phase planes for strided convolutions: CpuBackend.Im2Col.cs.
public sealed partial class CpuBackend
{
    private const int TargetColumns = 512;

    [ThreadStatic] private static float[]? t_col, t_mat;

    private static float[] Scratch(ref float[]? slot, int size)
    {
        if (slot == null || slot.Length < size) slot = new float[size];
        return slot;
    }

    /// <summary>Geometry of one convolution call, shared by forward and both backward passes.</summary>
    private readonly record struct ConvPlan(int N, int C, int H, int W, int O, int KH, int KW, int OH, int OW, Conv2dSpec Spec, int Group, int Threads)
    {
        /// <summary>
        /// Threads each group's GEMM may use: the threads left over when there are fewer groups than
        /// threads. A single image (the agent acting on one observation) then still uses every core,
        /// through the GEMM's own split, where one group per thread would leave all but one idle.
        /// </summary>
        public int GemmThreads => Math.Max(1, Threads / Groups);
        public int Ckk => C * KH * KW;
        public int P => OH * OW;
        public int InImage => C * H * W;
        public int OutImage => O * P;
        public int Groups => (N + Group - 1) / Group;
        public bool Pointwise => KH == 1 && KW == 1 && Spec.StrideH == 1 && Spec.StrideW == 1 && Spec.PadH == 0 && Spec.PadW == 0;
        public (int First, int Count) Images(int group) => (group * Group, Math.Min(Group, N - group * Group));
    }

    private ConvPlan Plan(Shape x, Shape w, Shape y, Conv2dSpec spec)
    {
        int p = y.H * y.W;
        // Enough groups per thread that each GEMM has ~TargetColumns columns, then as few images per group as that allows.
        int groupsPerThread = Math.Max(1, (int)Math.Ceiling((double)x.N * p / ((double)Threads * TargetColumns)));
        int groups = Math.Min(x.N, Threads * groupsPerThread);
        int g = (x.N + groups - 1) / groups;
        return new ConvPlan(x.N, x.C, x.H, x.W, w.N, w.H, w.W, y.H, y.W, spec, g, Threads);
    }

    public unsafe void Conv2dForward(Tensor y, Tensor x, Tensor w, Conv2dSpec spec)
    {
        var yShape = OpChecks.Conv2d("conv2d", "output", y, x.Shape, w.Shape, spec);
        Host(y); Host(x); Host(w);
        var pl = Plan(x.Shape, w.Shape, yShape, spec);
        float[] xa = Arr(x), wa = Arr(w), ya = Arr(y);
        int xo = x.Offset, wo = w.Offset, yo = y.Offset;
        if (UseWinograd(pl))
        {
            fixed (float* pw = &wa[wo], py = &ya[yo], px = &xa[xo]) WinogradForward(px, pw, py, pl);
            return;
        }
        if (UseWinogradValid(pl))
        {
            var same = SamePadded(pl);
            float* ys = ValidScratch(same);
            fixed (float* pw = &wa[wo], py = &ya[yo], px = &xa[xo])
            {
                WinogradForward(px, pw, ys, same);
                CropInterior(ys, py, pl);
            }
            return;
        }
        Chunks(pl.Groups, 1, (s, e, _) =>
        {
            int cols = pl.Group * pl.P;
            float[] col = Scratch(ref t_col, pl.Ckk * cols), mat = Scratch(ref t_mat, pl.O * cols), phase = PhaseScratch(pl);
            fixed (float* pw = &wa[wo], pcol = col, pmat = mat, pph = phase, py = &ya[yo], px = &xa[xo])
                for (int grp = s; grp < e; grp++)
                {
                    var (first, count) = pl.Images(grp);
                    int ld = count * pl.P;
                    float* b = GroupColumns(px, pl, first, count, pcol, pph);
                    float* c = count == 1 ? py + first * pl.OutImage : pmat;
                    Cpu.Gemm.Sgemm(false, false, pl.O, ld, pl.Ckk, 1f, pw, pl.Ckk, b, ld, 0f, c, ld, pl.GemmThreads);
                    if (count > 1) ScatterImages(pmat, py + first * pl.OutImage, count, pl.O, pl.P);
                }
        });
    }

    public unsafe void Conv2dBackwardData(Tensor dx, Tensor dy, Tensor w, Conv2dSpec spec)
    {
        var yShape = OpChecks.Conv2d("conv2d backward-data", "dy", dy, dx.Shape, w.Shape, spec);
        Host(dx); Host(dy); Host(w);
        var pl = Plan(dx.Shape, w.Shape, yShape, spec);
        float[] dxa = Arr(dx), wa = Arr(w), dya = Arr(dy);
        int dxo = dx.Offset, wo = w.Offset, dyo = dy.Offset;
        if (UseWinograd(pl))
        {
            fixed (float* pw = &wa[wo], pdy = &dya[dyo], pdx = &dxa[dxo]) WinogradBackwardData(pdy, pw, pdx, pl);
            return;
        }
        if (UseWinogradValid(pl))
        {
            fixed (float* pw = &wa[wo], pdy = &dya[dyo], pdx = &dxa[dxo]) WinogradBackwardData(EmbedInterior(pdy, pl), pw, pdx, SamePadded(pl));
            return;
        }
        Chunks(pl.Groups, 1, (s, e, _) =>
        {
            int cols = pl.Group * pl.P;
            float[] col = Scratch(ref t_col, pl.Ckk * cols), mat = Scratch(ref t_mat, pl.O * cols), phase = PhaseScratch(pl);
            fixed (float* pw = &wa[wo], pcol = col, pmat = mat, pph = phase, pdy = &dya[dyo], pdx = &dxa[dxo])
                for (int grp = s; grp < e; grp++)
                {
                    var (first, count) = pl.Images(grp);
                    int ld = count * pl.P;
                    float* b = GroupOutputs(pdy, pl, first, count, pmat);
                    if (count == 1 && pl.Pointwise)
                    {
                        Cpu.Gemm.Sgemm(true, false, pl.Ckk, ld, pl.O, 1f, pw, pl.Ckk, b, ld, 0f, pdx + first * pl.InImage, ld, pl.GemmThreads);
                        continue;
                    }
                    Cpu.Gemm.Sgemm(true, false, pl.Ckk, ld, pl.O, 1f, pw, pl.Ckk, b, ld, 0f, pcol, ld, pl.GemmThreads);
                    for (int i = 0; i < count; i++)
                        Col2Im(pcol + i * pl.P, ld, pl, pdx + (first + i) * pl.InImage, pph);
                }
        });
    }

    public unsafe void Conv2dBackwardFilter(Tensor dw, Tensor x, Tensor dy, Conv2dSpec spec)
    {
        var yShape = OpChecks.Conv2d("conv2d backward-filter", "dy", dy, x.Shape, dw.Shape, spec);
        Host(dw); Host(x); Host(dy);
        var pl = Plan(x.Shape, dw.Shape, yShape, spec);
        float[] xa = Arr(x), dya = Arr(dy), dwa = Arr(dw);
        int xo = x.Offset, dyo = dy.Offset, dwo = dw.Offset;
        if (UseDirectFilterGrad(pl))
        {
            fixed (float* px = &xa[xo], pdy = &dya[dyo], pdw = &dwa[dwo]) DirectBackwardFilter(px, pdy, pdw, pl);
            return;
        }
        if (UseWinograd(pl) && (WinogradFilterGrad ?? true))
        {
            fixed (float* px = &xa[xo], pdy = &dya[dyo], pdw = &dwa[dwo]) WinogradBackwardFilter(px, pdy, pdw, pl);
            return;
        }
        if (UseWinogradValid(pl) && (WinogradFilterGrad ?? true))
        {
            fixed (float* px = &xa[xo], pdy = &dya[dyo], pdw = &dwa[dwo]) WinogradBackwardFilter(px, EmbedInterior(pdy, pl), pdw, SamePadded(pl));
            return;
        }
        int workers = Math.Min(Threads, pl.Groups);
        // Two orientations of the same sum over groups:
        //   dW  (O, C·kH·kW)  += dY · colᵀ   packs (transposes) all of col as the GEMM's B;
        //   dWᵀ (C·kH·kW, O)  += col · dYᵀ   reads col in place and packs only dY, but each worker's
        //                                     partial must be transposed into dw at the end.
        // Packing cost ~ C·kH·kW·N·P floats against O·N·P plus the final transpose of O·C·kH·kW per
        // worker (strided and cache-unfriendly: weighed ×16, measured). Wide maps (layers 1–2) favour
        // the second orientation, deep layers with big weights the first.
        long columns = (long)pl.N * pl.P;
        bool transposed = FilterGradTransposed ?? columns * (pl.Ckk - pl.O) > 16L * workers * pl.O * pl.Ckk;
        // Worker 0 accumulates straight into dw unless transposed; the others into partial sums.
        var partials = FilterPartials(transposed ? workers : workers - 1, pl.O * pl.Ckk);
        Chunks(pl.Groups, 1, (s, e, worker) =>
        {
            int cols = pl.Group * pl.P;
            float[] col = Scratch(ref t_col, pl.Ckk * cols), mat = Scratch(ref t_mat, pl.O * cols), phase = PhaseScratch(pl);
            bool direct = !transposed && worker == 0;
            float[] target = direct ? dwa : partials[transposed ? worker : worker - 1];
            fixed (float* pt = &target[direct ? dwo : 0], pcol = col, pmat = mat, pph = phase, pdy = &dya[dyo], px = &xa[xo])
                for (int grp = s; grp < e; grp++)
                {
                    var (first, count) = pl.Images(grp);
                    int ld = count * pl.P;
                    float* dyGroup = GroupOutputs(pdy, pl, first, count, pmat);
                    float* colGroup = GroupColumns(px, pl, first, count, pcol, pph);
                    if (transposed) Cpu.Gemm.Sgemm(false, true, pl.Ckk, pl.O, ld, 1f, colGroup, ld, dyGroup, ld, 1f, pt, pl.O, pl.GemmThreads);
                    else Cpu.Gemm.Sgemm(false, true, pl.O, pl.Ckk, ld, 1f, dyGroup, ld, colGroup, ld, 1f, pt, pl.Ckk, pl.GemmThreads);
                }
        });
        var dws = dwa.AsSpan(dwo, pl.O * pl.Ckk);
        if (!transposed)
        {
            foreach (var p in partials) Simd.Axpy(dws, 1f, p.AsSpan(0, dws.Length));
            return;
        }
        // dw (O, C·kH·kW) += Σ_workers partialᵀ, in 32×32 tiles so that reads and writes stay in cache.
        const int tile = 32;
        for (int k0 = 0; k0 < pl.Ckk; k0 += tile)
            for (int o0 = 0; o0 < pl.O; o0 += tile)
                foreach (var p in partials)
                    for (int k = k0; k < Math.Min(k0 + tile, pl.Ckk); k++)
                        for (int o = o0; o < Math.Min(o0 + tile, pl.O); o++)
                            dws[o * pl.Ckk + k] += p[k * pl.O + o];
    }

    /// <summary>Tests and benchmarks force (true) or forbid (false) Winograd for backward-filter; null follows <see cref="UseWinograd"/>.</summary>
    internal bool? WinogradFilterGrad { get; set; }

    /// <summary>Tests force one backward-filter orientation; null chooses by the packing-cost rule.</summary>
    internal bool? FilterGradTransposed { get; set; }

    private float[][] _filterPartials = [];

    /// <summary>Zeroed per-worker partial sums for backward-filter, kept between calls (up to 9 MB each at width 64).</summary>
    private float[][] FilterPartials(int count, int size)
    {
        if (_filterPartials.Length < count || (count > 0 && _filterPartials[0].Length < size))
            _filterPartials = [.. Enumerable.Range(0, Math.Max(count, _filterPartials.Length)).Select(_ => new float[Math.Max(size, _filterPartials.Length > 0 ? _filterPartials[0].Length : 0)])];
        var result = new float[count][];
        for (int i = 0; i < count; i++)
        {
            result[i] = _filterPartials[i];
            Array.Clear(result[i], 0, size);
        }
        return result;
    }

    /// <summary>
    /// The im2col matrix (C·kH·kW, count·P) of images [first, first+count) of x, built in col; a
    /// single image under a pointwise kernel is its own matrix and is used in place.
    /// </summary>
    private static unsafe float* GroupColumns(float* x, in ConvPlan pl, int first, int count, float* col, float* phases)
    {
        if (count == 1 && pl.Pointwise) return x + first * pl.InImage;
        int ld = count * pl.P;
        for (int i = 0; i < count; i++) Im2Col(x + (first + i) * pl.InImage, pl, col + i * pl.P, ld, phases);
        return col;
    }

    /// <summary>The output-side matrix (O, count·P) of images [first, first+count) of y: in place for one image, else gathered into mat.</summary>
    private static unsafe float* GroupOutputs(float* y, in ConvPlan pl, int first, int count, float* mat)
    {
        if (count == 1) return y + first * pl.OutImage;
        GatherImages(y + first * pl.OutImage, mat, count, pl.O, pl.P);
        return mat;
    }

    /// <summary>mat (O, G·P) → images (G, O, P): the GEMM's column blocks back to NCHW.</summary>
    private static unsafe void ScatterImages(float* mat, float* images, int count, int o, int p)
    {
        int ld = count * p;
        for (int i = 0; i < count; i++)
            for (int r = 0; r < o; r++)
                new ReadOnlySpan<float>(mat + r * ld + i * p, p).CopyTo(new Span<float>(images + (i * o + r) * p, p));
    }

    /// <summary>images (G, O, P) → mat (O, G·P).</summary>
    private static unsafe void GatherImages(float* images, float* mat, int count, int o, int p)
    {
        int ld = count * p;
        for (int i = 0; i < count; i++)
            for (int r = 0; r < o; r++)
                new ReadOnlySpan<float>(images + (i * o + r) * p, p).CopyTo(new Span<float>(mat + r * ld + i * p, p));
    }

    /// <summary>⌈a/b⌉ for b &gt; 0 and any sign of a.</summary>
    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -((-a) / b);
}
