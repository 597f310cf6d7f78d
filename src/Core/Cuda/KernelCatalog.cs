namespace RlMixup.Core.Cuda;

/// <summary>How a kernel parameter is passed: a device pointer, or a scalar by value.</summary>
public enum KernelParamKind
{
    /// <summary>float* (const or not).</summary>
    F32Ptr,
    /// <summary>int*.</summary>
    I32Ptr,
    /// <summary>unsigned char* (uint8 images and labels).</summary>
    U8Ptr,
    F32,
    I32,
    /// <summary>size_t: an element count that may pass 2^31.</summary>
    U64,
}

/// <summary>One kernel parameter, in declaration order.</summary>
public readonly record struct KernelParam(string Name, KernelParamKind Kind)
{
    /// <summary>The PTX type of the parameter: pointers and size_t are .u64, int is .u32, float .f32.</summary>
    public string PtxType => Kind switch
    {
        KernelParamKind.F32 => ".f32",
        KernelParamKind.I32 => ".u32",
        _ => ".u64",
    };
}

/// <summary>One kernel: the PTX module (src/Kernels/&lt;Module&gt;.cu), its extern "C" entry point and its parameters.</summary>
public sealed record KernelInfo(string Module, string Entry, IReadOnlyList<KernelParam> Parameters);

/// <summary>A launch's geometry: grid.x, block.x and the dynamic shared memory (y and z are 1).</summary>
public readonly record struct LaunchGeometry(int GridX, int BlockX, int DynamicSharedBytes);

/// <summary>
/// Every CUDA kernel of src/Kernels, and the launch geometry the GPU backend uses for it.
///
/// <see cref="Entry"/> describes each kernel (module, entry point, parameters in order). It is
/// generated at build time from the kernels' declarations in src/Kernels/*.cu (src/Generators), as
/// are the sources' limits (<see cref="SourceConstants"/>): a signature is written once, in its .cu.
/// The static functions below, one per kernel, are the launch rules: they turn shapes into a
/// <see cref="LaunchGeometry"/>, rejecting what a kernel cannot run with an
/// <see cref="ArgumentException"/> that names it. No kernel uses dynamic shared memory (their
/// buffers are static, sized by <see cref="MaxThreads"/>).
/// Data-dependent preconditions (permutations, indices, percentiles) are the caller's to check on
/// the host (<see cref="OpChecks"/>).
/// </summary>
public static partial class KernelCatalog
{
    /// <summary>K_MAX_THREADS: the largest block any kernel supports (its __launch_bounds__).</summary>
    public const int MaxThreads = SourceConstants.K_MAX_THREADS;
    /// <summary>K_MAX_GRID: the most blocks a grid-stride launch asks for; the loop covers the rest.</summary>
    public const int MaxGrid = SourceConstants.K_MAX_GRID;
    /// <summary>The block size the GPU backend uses unless it has a reason for another.</summary>
    public const int DefaultBlock = 256;


    /// <summary>The kernel with entry point <paramref name="entry"/>.</summary>
    /// <exception cref="ArgumentException">No kernel has that entry point.</exception>
    public static KernelInfo Find(string entry) => All.FirstOrDefault(k => k.Entry == entry)
        ?? throw new ArgumentException($"no CUDA kernel named '{entry}' in the catalog", nameof(entry));

    // ---- shared rules

    static void Block(string op, int block)
    {
        if (block < 1 || block > MaxThreads) throw new ArgumentException($"{op}: block size {block} is outside 1..{MaxThreads}");
    }

    static void Positive(string op, params int[] dims)
    {
        foreach (int d in dims)
            if (d < 1) throw new ArgumentException($"{op}: empty shape ({string.Join(", ", dims)})");
    }

    /// <summary>One item per thread, at most <see cref="MaxGrid"/> blocks (k_grid_for).</summary>
    static int GridFor(long n, int block) => (int)Math.Clamp((n + block - 1) / block, 1, MaxGrid);

    static LaunchGeometry PerItem(long n, int block) => new(GridFor(n, block), block, 0);

    /// <summary>The rule of every grid-stride elementwise kernel: n ≥ 1 items, one per thread.</summary>
    public static LaunchGeometry Elementwise(string op, long n, int block = DefaultBlock)
    {
        if (n < 1) throw new ArgumentException($"{op}: no elements");
        Block(op, block);
        return PerItem(n, block);
    }

    // ---- saliency.cu, mask.cu, mix.cu: one block per image

    /// <summary>SALIENCY_MAX_CELLS, SALIENCY_MAX_BAND and MASK_MAX_CELLS of the sources.</summary>
    public const int SaliencyMaxCells = SourceConstants.SALIENCY_MAX_CELLS, SaliencyMaxBand = SourceConstants.SALIENCY_MAX_BAND,
        MaskMaxCells = SourceConstants.MASK_MAX_CELLS;

    public static LaunchGeometry SaliencyMaps(int b, int c, int h, int w, int p, int block = DefaultBlock)
    {
        const string op = "saliency_maps";
        if (b < 1 || c < 1 || p < 1 || h % p != 0 || w % p != 0) throw new ArgumentException($"{op}: H and W must split into p×p equal cells");
        if (p * p > SaliencyMaxCells) throw new ArgumentException($"{op}: p² exceeds {SaliencyMaxCells}");
        if (h / p * w > SaliencyMaxBand) throw new ArgumentException($"{op}: one row of cells exceeds {SaliencyMaxBand} pixels");
        Block(op, block);
        return new(b, block, 0);
    }

    public static LaunchGeometry PercentileMasks(int b, int cells, int block = DefaultBlock)
    {
        const string op = "percentile_masks";
        if (b < 1 || cells < 1 || cells > MaskMaxCells) throw new ArgumentException($"{op}: cells must be in 1..{MaskMaxCells}");
        Block(op, block);
        return new(b, block, 0);
    }

    public static LaunchGeometry MaskMix(int b, int c, int h, int w, int p, int k, int nLambda, int block = DefaultBlock)
    {
        const string op = "mask_mix";
        Positive(op, b, c, h, w, p, k);
        if (nLambda != 1 && nLambda != b) throw new ArgumentException($"{op}: lambda1 must have 1 or B entries");
        Block(op, block);
        return new(b, block, 0);
    }

    public static LaunchGeometry InputMixup(int b, int d, int k, int block = DefaultBlock)
    {
        const string op = "input_mixup";
        Positive(op, b, d, k);
        Block(op, block);
        return new(b, block, 0);
    }

    public static LaunchGeometry CutMix(int b, int c, int h, int w, int k, int y0, int x0, int y1, int x1, int block = DefaultBlock)
    {
        const string op = "cutmix";
        Positive(op, b, c, h, w, k);
        if (y0 < 0 || x0 < 0 || y1 > h || x1 > w || y1 < y0 || x1 < x0) throw new ArgumentException($"{op}: the box does not fit the image");
        Block(op, block);
        return new(b, block, 0);
    }

    // ---- elementwise.cu: grid-stride over n

    public static LaunchGeometry Fill(long n, int block = DefaultBlock) => Elementwise("fill", n, block);
    public static LaunchGeometry Add(long n, int block = DefaultBlock) => Elementwise("add", n, block);
    public static LaunchGeometry Axpy(long n, int block = DefaultBlock) => Elementwise("axpy", n, block);
    public static LaunchGeometry Scale(long n, int block = DefaultBlock) => Elementwise("scale", n, block);
    public static LaunchGeometry ReluForward(long n, int block = DefaultBlock) => Elementwise("relu_forward", n, block);
    public static LaunchGeometry ReluBackward(long n, int block = DefaultBlock) => Elementwise("relu_backward", n, block);
    public static LaunchGeometry TanhForward(long n, int block = DefaultBlock) => Elementwise("tanh_forward", n, block);
    public static LaunchGeometry TanhBackward(long n, int block = DefaultBlock) => Elementwise("tanh_backward", n, block);

    // ---- bias.cu

    public static LaunchGeometry AddChannelBias(int n, int c, int hw, int block = DefaultBlock)
    {
        Positive("add_channel_bias", n, c, hw);
        Block("add_channel_bias", block);
        return PerItem((long)n * c * hw, block);
    }

    /// <summary>One block per channel (at most <see cref="MaxGrid"/>, the loop covers the rest).</summary>
    public static LaunchGeometry ChannelBiasBackward(int n, int c, int hw, int block = DefaultBlock)
    {
        const string op = "channel_bias_backward";
        Positive(op, n, c, hw);
        if ((long)n * hw > int.MaxValue) throw new ArgumentException($"{op}: N·H·W exceeds 2^31 - 1");
        Block(op, block);
        return new(Math.Min(c, MaxGrid), block, 0);
    }

    public static LaunchGeometry AddRowBias(int n, int outs, int block = DefaultBlock)
    {
        Positive("add_row_bias", n, outs);
        Block("add_row_bias", block);
        return PerItem((long)n * outs, block);
    }

    /// <summary>One thread per column.</summary>
    public static LaunchGeometry RowBiasBackward(int n, int outs, int block = DefaultBlock)
    {
        Positive("row_bias_backward", n, outs);
        Block("row_bias_backward", block);
        return PerItem(outs, block);
    }

    // ---- pool.cu

    /// <summary>One thread per (n, c) plane; rows = N·C.</summary>
    public static LaunchGeometry GlobalAvgPoolForward(int rows, int hw, int block = DefaultBlock)
    {
        Positive("global_avg_pool_forward", rows, hw);
        Block("global_avg_pool_forward", block);
        return PerItem(rows, block);
    }

    public static LaunchGeometry GlobalAvgPoolBackward(int rows, int hw, int block = DefaultBlock)
    {
        Positive("global_avg_pool_backward", rows, hw);
        Block("global_avg_pool_backward", block);
        return PerItem((long)rows * hw, block);
    }

    // ---- loss.cu: one block per row (at most MaxGrid), except argmax_rows and count_correct

    static LaunchGeometry PerRow(string op, int rows, int k, int block)
    {
        Positive(op, rows, k);
        Block(op, block);
        return new(Math.Min(rows, MaxGrid), block, 0);
    }

    public static LaunchGeometry LogSoftmaxForward(int rows, int k, int block = DefaultBlock) => PerRow("log_softmax_forward", rows, k, block);
    public static LaunchGeometry LogSoftmaxBackward(int rows, int k, int block = DefaultBlock) => PerRow("log_softmax_backward", rows, k, block);
    public static LaunchGeometry SoftCrossEntropyForward(int rows, int k, int block = DefaultBlock) => PerRow("soft_cross_entropy_forward", rows, k, block);
    public static LaunchGeometry SoftCrossEntropyBackward(int rows, int k, int block = DefaultBlock) => PerRow("soft_cross_entropy_backward", rows, k, block);

    /// <summary>One thread per row.</summary>
    public static LaunchGeometry ArgmaxRows(int rows, int k, int block = DefaultBlock)
    {
        Positive("argmax_rows", rows, k);
        Block("argmax_rows", block);
        return PerItem(rows, block);
    }

    /// <summary>Always one block: the count is one block reduction.</summary>
    public static LaunchGeometry CountCorrect(int n, int block = DefaultBlock)
    {
        if (n < 1) throw new ArgumentException("count_correct: no rows");
        Block("count_correct", block);
        return new(1, block, 0);
    }

    // ---- optim.cu, augment.cu

    public static LaunchGeometry SgdStep(long n, int block = DefaultBlock)
    {
        if (n < 1) throw new ArgumentException("sgd_step: no parameters");
        Block("sgd_step", block);
        return PerItem(n, block);
    }

    /// <summary>The geometry of adam_step; <paramref name="step"/> (1-based) is checked here as the launcher does.</summary>
    public static LaunchGeometry AdamStep(long n, int block = DefaultBlock, int step = 1)
    {
        if (n < 1) throw new ArgumentException("adam_step: no parameters");
        if (step < 1) throw new ArgumentException("adam_step: step is 1-based");
        Block("adam_step", block);
        return PerItem(n, block);
    }

    /// <summary>
    /// The scalars adam_step takes in place of the step number: step_size = lr/(1 − β1^t) and
    /// bc2_sqrt = sqrt(1 − β2^t), computed in double and rounded to float once, as CpuBackend.AdamStep
    /// and the emulation launcher compute them (t is the 1-based step).
    /// </summary>
    public static (float StepSize, float Bc2Sqrt) AdamScalars(int step, float lr, float beta1, float beta2)
    {
        if (step < 1) throw new ArgumentException("adam_step: step is 1-based");
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        return ((float)(lr / bc1), (float)Math.Sqrt(bc2));
    }

    /// <summary>Grid-stride over the B·3·H·W pixels and then the B·K targets.</summary>
    public static LaunchGeometry GatherAugment(int b, int h, int w, int k, int block = DefaultBlock)
    {
        Positive("gather_augment", b, h, w, k);
        Block("gather_augment", block);
        return PerItem((long)b * 3 * h * w + (long)b * k, block);
    }
}
