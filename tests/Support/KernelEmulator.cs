using RlMixup.Core.Cuda;

namespace RlMixup.Tests;

/// <summary>
/// Runs single kernels of src/Kernels on the software device (tests/SoftwareDevice) with a chosen
/// block and grid size, from and to host arrays: the embedded PTX is loaded with cuModuleLoadDataEx,
/// the arguments are packed and checked by <see cref="KernelLaunch"/> against the catalog, and the
/// device runs the host build of the same .cu source. The block size is checked by the catalog's
/// geometry rule for the kernel; grid ≤ 0 takes the rule's grid, any other value replaces it (to
/// exercise grid-stride loops). Each call synchronises and fails on any violation the device saw.
/// </summary>
public sealed class KernelEmulator : IDisposable
{
    static readonly Lazy<KernelEmulator> s_instance = new(() => new KernelEmulator());
    /// <summary>The one instance (a context, a stream and the kernel modules on the software device).</summary>
    public static KernelEmulator Instance
    {
        get
        {
            SoftwareDevice.RequireOrIgnore();
            return s_instance.Value;
        }
    }

    readonly CudaContext _context;
    readonly CudaStream _stream;
    readonly Dictionary<string, CudaModule> _modules = [];
    readonly Dictionary<string, CudaFunction> _functions = [];
    readonly Lock _gate = new();

    KernelEmulator()
    {
        _context = CudaContext.RetainPrimary(CudaDevice.Get(0));
        _stream = CudaStream.Create(_context);
        foreach (var k in KernelCatalog.All)
        {
            if (!_modules.TryGetValue(k.Module, out var m)) _modules[k.Module] = m = CudaModule.LoadEmbedded(_context, k.Module);
            _functions[k.Entry] = m.GetFunction(k.Entry);
        }
    }

    /// <summary>One argument of a launch: a host array copied to the device (and back when it is an output), or a scalar.</summary>
    abstract record Arg;
    sealed record Buf(Array Host, bool Output) : Arg;
    sealed record Scalar(KernelArg Value) : Arg;

    static Buf In(Array a) => new(a, false);
    static Buf Out(Array a) => new(a, true);
    static Scalar S(KernelArg v) => new(v);

    void Run(KernelInfo kernel, LaunchGeometry rule, int grid, params Arg[] args)
    {
        lock (_gate)
        {
            _context.MakeCurrent();
            var buffers = new List<IDisposable>();
            try
            {
                var packed = new KernelArg[args.Length];
                for (int i = 0; i < args.Length; i++)
                    packed[i] = args[i] switch
                    {
                        Scalar s => s.Value,
                        Buf b => Upload(b.Host, kernel.Parameters[i].Kind, buffers),
                        _ => throw new InvalidOperationException(),
                    };
                var kernelArgs = KernelLaunch.Pack(kernel, packed);
                _functions[kernel.Entry].Launch(grid > 0 ? grid : rule.GridX, rule.BlockX, rule.DynamicSharedBytes, _stream, kernelArgs);
                _stream.Synchronize();
                for (int i = 0; i < args.Length; i++)
                    if (args[i] is Buf { Output: true } b) Download(b.Host, buffers[IndexOfBuffer(args, i)]);
            }
            finally
            {
                foreach (var b in buffers) b.Dispose();
            }
            var violations = SoftwareDevice.TakeViolations(reset: true);
            if (violations.Length > 0) throw new InvalidOperationException($"{kernel.Entry}: the software device reported: {string.Join("; ", violations)}");
        }
    }

    static int IndexOfBuffer(Arg[] args, int i) => args.Take(i).Count(a => a is Buf);

    KernelArg Upload(Array host, KernelParamKind kind, List<IDisposable> buffers)
    {
        switch (host)
        {
            case float[] f:
            {
                var d = new DeviceBuffer<float>(_context, Math.Max(1, f.Length));
                buffers.Add(d);
                if (f.Length > 0) d.CopyFrom(f, _stream);
                return KernelArg.F32Ptr(d.Pointer);
            }
            case int[] n:
            {
                var d = new DeviceBuffer<int>(_context, Math.Max(1, n.Length));
                buffers.Add(d);
                if (n.Length > 0) d.CopyFrom(n, _stream);
                return KernelArg.I32Ptr(d.Pointer);
            }
            case byte[] u:
            {
                var d = new DeviceBuffer<byte>(_context, Math.Max(1, u.Length));
                buffers.Add(d);
                if (u.Length > 0) d.CopyFrom(u, _stream);
                return KernelArg.U8Ptr(d.Pointer);
            }
            default:
                throw new ArgumentException($"no device buffer for a {host.GetType().Name} ({kind})");
        }
    }

    void Download(Array host, IDisposable buffer)
    {
        switch (host)
        {
            case float[] f: ((DeviceBuffer<float>)buffer).CopyTo(f, _stream); break;
            case int[] n: ((DeviceBuffer<int>)buffer).CopyTo(n, _stream); break;
            default: throw new ArgumentException($"no download into a {host.GetType().Name}");
        }
        _stream.Synchronize();
    }

    public void Dispose()
    {
        foreach (var m in _modules.Values) m.Dispose();
        _stream.Dispose();
        _context.Dispose();
    }

    static long Len(float[] y, params float[][] others)
    {
        foreach (var o in others)
            if (o.Length != y.Length) throw new ArgumentException($"elementwise: lengths {y.Length} and {o.Length} differ");
        return y.Length;
    }


    // ---- saliency.cu, mask.cu, mix.cu

    public void SaliencyMaps(float[] maps, float[] grad, int b, int c, int h, int w, int p, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.SaliencyMaps, KernelCatalog.SaliencyMaps(b, c, h, w, p, block), grid, Out(maps), In(grad), S(b), S(c), S(h), S(w), S(p));

    public void PercentileMasks(float[] masks, float[] thresholds, float[] maps, float[] q, int b, int cells, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.PercentileMasks, KernelCatalog.PercentileMasks(b, cells, block), grid, Out(masks), Out(thresholds), In(maps), In(q), S(b), S(cells));

    public void MaskMix(float[] mixed, float[] mixedTargets, float[] fractions, float[] x, float[] targets, float[] masks,
        int[] perm, float[] lambda1, int b, int c, int h, int w, int p, int k, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.MaskMix, KernelCatalog.MaskMix(b, c, h, w, p, k, lambda1.Length, block), grid,
            Out(mixed), Out(mixedTargets), Out(fractions), In(x), In(targets), In(masks), In(perm), In(lambda1),
            S(lambda1.Length), S(b), S(c), S(h), S(w), S(p), S(k));

    public void InputMixup(float[] mixed, float[] mixedTargets, float[] x, float[] targets, int[] perm, float lambda,
        int b, int d, int k, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.InputMixup, KernelCatalog.InputMixup(b, d, k, block), grid,
            Out(mixed), Out(mixedTargets), In(x), In(targets), In(perm), S(lambda), S(b), S(d), S(k));

    public void CutMix(float[] mixed, float[] mixedTargets, float[] x, float[] targets, int[] perm, int y0, int x0, int y1, int x1,
        int b, int c, int h, int w, int k, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.Cutmix, KernelCatalog.CutMix(b, c, h, w, k, y0, x0, y1, x1, block), grid,
            Out(mixed), Out(mixedTargets), In(x), In(targets), In(perm), S(y0), S(x0), S(y1), S(x1), S(b), S(c), S(h), S(w), S(k));

    // ---- elementwise.cu (n = the length of the output; the inputs must be as long)

    public void Fill(float[] y, float value, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.Fill, KernelCatalog.Fill(y.Length, block), grid, Out(y), S(value), S((long)y.Length));

    public void Add(float[] y, float[] a, float[] b, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.Add, KernelCatalog.Add(Len(y, a, b), block), grid, Out(y), In(a), In(b), S((long)y.Length));

    public void Axpy(float[] y, float alpha, float[] x, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.Axpy, KernelCatalog.Axpy(Len(y, x), block), grid, Out(y), S(alpha), In(x), S((long)y.Length));

    public void Scale(float[] y, float alpha, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.Scale, KernelCatalog.Scale(y.Length, block), grid, Out(y), S(alpha), S((long)y.Length));

    public void ReluForward(float[] y, float[] x, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.ReluForward, KernelCatalog.ReluForward(Len(y, x), block), grid, Out(y), In(x), S((long)y.Length));

    public void ReluBackward(float[] dx, float[] y, float[] dy, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.ReluBackward, KernelCatalog.ReluBackward(Len(dx, y, dy), block), grid, Out(dx), In(y), In(dy), S((long)dx.Length));

    public void TanhForward(float[] y, float[] x, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.TanhForward, KernelCatalog.TanhForward(Len(y, x), block), grid, Out(y), In(x), S((long)y.Length));

    public void TanhBackward(float[] dx, float[] y, float[] dy, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.TanhBackward, KernelCatalog.TanhBackward(Len(dx, y, dy), block), grid, Out(dx), In(y), In(dy), S((long)dx.Length));

    // ---- bias.cu, pool.cu

    public void AddChannelBias(float[] y, float[] bias, int n, int c, int hw, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.AddChannelBias, KernelCatalog.AddChannelBias(n, c, hw, block), grid, Out(y), In(bias), S(n), S(c), S(hw));

    public void ChannelBiasBackward(float[] dbias, float[] dy, int n, int c, int hw, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.ChannelBiasBackward, KernelCatalog.ChannelBiasBackward(n, c, hw, block), grid, Out(dbias), In(dy), S(n), S(c), S(hw));

    public void AddRowBias(float[] y, float[] b, int n, int outs, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.AddRowBias, KernelCatalog.AddRowBias(n, outs, block), grid, Out(y), In(b), S(n), S(outs));

    public void RowBiasBackward(float[] db, float[] dy, int n, int outs, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.RowBiasBackward, KernelCatalog.RowBiasBackward(n, outs, block), grid, Out(db), In(dy), S(n), S(outs));

    public void GlobalAvgPoolForward(float[] y, float[] x, int rows, int hw, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.GlobalAvgPoolForward, KernelCatalog.GlobalAvgPoolForward(rows, hw, block), grid, Out(y), In(x), S(rows), S(hw));

    public void GlobalAvgPoolBackward(float[] dx, float[] dy, int rows, int hw, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.GlobalAvgPoolBackward, KernelCatalog.GlobalAvgPoolBackward(rows, hw, block), grid, Out(dx), In(dy), S(rows), S(hw));

    // ---- loss.cu

    public void LogSoftmaxForward(float[] logp, float[] z, int rows, int k, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.LogSoftmaxForward, KernelCatalog.LogSoftmaxForward(rows, k, block), grid, Out(logp), In(z), S(rows), S(k));

    public void LogSoftmaxBackward(float[] dz, float[] logp, float[] dlogp, int rows, int k, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.LogSoftmaxBackward, KernelCatalog.LogSoftmaxBackward(rows, k, block), grid, Out(dz), In(logp), In(dlogp), S(rows), S(k));

    public void SoftCrossEntropyForward(float[] losses, float[] logp, float[] targets, int rows, int k, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.SoftCrossEntropyForward, KernelCatalog.SoftCrossEntropyForward(rows, k, block), grid,
            Out(losses), In(logp), In(targets), S(rows), S(k));

    public void SoftCrossEntropyBackward(float[] dz, float[] logp, float[] targets, int rows, int k, float scale, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.SoftCrossEntropyBackward, KernelCatalog.SoftCrossEntropyBackward(rows, k, block), grid,
            Out(dz), In(logp), In(targets), S(rows), S(k), S(scale));

    public void ArgmaxRows(int[] pred, float[] z, int rows, int k, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.ArgmaxRows, KernelCatalog.ArgmaxRows(rows, k, block), grid, Out(pred), In(z), S(rows), S(k));

    public int CountCorrect(int[] pred, byte[] labels, int block)
    {
        if (pred.Length != labels.Length) throw new ArgumentException("count_correct: pred and labels differ in length");
        var count = new[] { -1 };
        Run(KernelCatalog.Entry.CountCorrect, KernelCatalog.CountCorrect(pred.Length, block), 0, Out(count), In(pred), In(labels), S(pred.Length));
        return count[0];
    }

    // ---- optim.cu

    public void SgdStep(float[] param, float[] grad, float[] buf, float lr, float momentum, float weightDecay, bool nesterov, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.SgdStep, KernelCatalog.SgdStep(Len(param, grad, buf), block), grid,
            Out(param), In(grad), Out(buf), S((long)param.Length), S(lr), S(momentum), S(weightDecay), S(nesterov ? 1 : 0));

    /// <summary>adam_step as the backend launches it: the bias corrections of step t computed by <see cref="KernelCatalog.AdamScalars"/>.</summary>
    public void AdamStep(float[] param, float[] grad, float[] m, float[] v, int step, float lr, float beta1, float beta2, float eps, float weightDecay,
        int block, int grid = 0)
    {
        var (stepSize, bc2Sqrt) = KernelCatalog.AdamScalars(step, lr, beta1, beta2);
        Run(KernelCatalog.Entry.AdamStep, KernelCatalog.AdamStep(Len(param, grad, m, v), block, step), grid,
            Out(param), In(grad), Out(m), Out(v), S((long)param.Length), S(stepSize), S(bc2Sqrt), S(beta1), S(beta2), S(eps), S(weightDecay));
    }

    /// <summary>adam_step with the bias corrections passed in.</summary>
    public void AdamStepScaled(float[] param, float[] grad, float[] m, float[] v, float stepSize, float bc2Sqrt, float beta1, float beta2, float eps,
        float weightDecay, int block, int grid = 0) =>
        Run(KernelCatalog.Entry.AdamStep, KernelCatalog.AdamStep(Len(param, grad, m, v), block), grid,
            Out(param), In(grad), Out(m), Out(v), S((long)param.Length), S(stepSize), S(bc2Sqrt), S(beta1), S(beta2), S(eps), S(weightDecay));

    // ---- augment.cu (aug: (B,3) = dx, dy, flip per image; mean and std: 3 each)

    public void GatherAugment(float[] x, float[] targets, byte[] images, byte[] labels, int[] indices, int[] aug, float[] mean, float[] std,
        int h, int w, int k, int block, int grid = 0)
    {
        if (aug.Length != indices.Length * 3 || mean.Length != 3 || std.Length != 3) throw new ArgumentException("gather_augment: aug must be (B,3), mean and std 3 each");
        int b = indices.Length;
        Run(KernelCatalog.Entry.GatherAugment, KernelCatalog.GatherAugment(b, h, w, k, block), grid,
            Out(x), Out(targets), In(images), In(labels), In(indices), In(aug), S(mean[0]), S(mean[1]), S(mean[2]), S(std[0]), S(std[1]), S(std[2]),
            S(b), S(h), S(w), S(k));
    }
}
