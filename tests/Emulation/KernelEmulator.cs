using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace RlMixup.Tests;

/// <summary>
/// The CUDA kernels of src/Kernels run on the host: Emulation/emulation.cpp includes the .cu sources
/// in common.cuh's host-emulation mode, is compiled here with g++ into a shared library (cached under
/// the temp folder by a hash of the sources and flags), loaded with NativeLibrary and called through
/// unmanaged function pointers. The sources are copied beside the test assembly by the project file.
/// </summary>
public sealed unsafe class KernelEmulator
{
    const string Compiler = "g++";
    const string Flags = "-std=c++20 -O2 -pthread -shared -fPIC";

    static readonly Lazy<KernelEmulator> s_instance = new(() => new KernelEmulator());
    /// <summary>The one loaded library; building it the first time takes a few seconds.</summary>
    public static KernelEmulator Instance => s_instance.Value;

    /// <summary>Where the library was built or found.</summary>
    public string LibraryPath { get; }

    readonly delegate* unmanaged<float*, float*, int, int, int, int, int, int, int, sbyte*> _saliencyMaps;
    readonly delegate* unmanaged<float*, float*, float*, float*, int, int, int, int, sbyte*> _percentileMasks;
    readonly delegate* unmanaged<float*, float*, float*, float*, float*, float*, int*, float*, int, int, int, int, int, int, int, int, int, sbyte*> _maskMix;
    readonly delegate* unmanaged<float*, float*, float*, float*, int*, float, int, int, int, int, int, sbyte*> _inputMixup;
    readonly delegate* unmanaged<float*, float*, float*, float*, int*, int, int, int, int, int, int, int, int, int, int, int, sbyte*> _cutmix;
    // elementwise.cu
    readonly delegate* unmanaged<float*, float, nuint, int, int, sbyte*> _fill, _scale;
    readonly delegate* unmanaged<float*, float*, float*, nuint, int, int, sbyte*> _add, _reluBackward, _tanhBackward;
    readonly delegate* unmanaged<float*, float, float*, nuint, int, int, sbyte*> _axpy;
    readonly delegate* unmanaged<float*, float*, nuint, int, int, sbyte*> _reluForward, _tanhForward;
    // bias.cu, pool.cu
    readonly delegate* unmanaged<float*, float*, int, int, int, int, int, sbyte*> _addChannelBias, _channelBiasBackward;
    readonly delegate* unmanaged<float*, float*, int, int, int, int, sbyte*> _addRowBias, _rowBiasBackward, _poolForward, _poolBackward;
    // loss.cu
    readonly delegate* unmanaged<float*, float*, int, int, int, int, sbyte*> _logSoftmaxForward;
    readonly delegate* unmanaged<float*, float*, float*, int, int, int, int, sbyte*> _logSoftmaxBackward, _softCrossEntropyForward;
    readonly delegate* unmanaged<float*, float*, float*, int, int, float, int, int, sbyte*> _softCrossEntropyBackward;
    readonly delegate* unmanaged<int*, float*, int, int, int, int, sbyte*> _argmaxRows;
    readonly delegate* unmanaged<int*, int*, byte*, int, int, sbyte*> _countCorrect;
    // optim.cu, augment.cu
    readonly delegate* unmanaged<float*, float*, float*, nuint, float, float, float, int, int, int, sbyte*> _sgdStep;
    readonly delegate* unmanaged<float*, float*, float*, float*, nuint, int, float, float, float, float, float, int, int, sbyte*> _adamStep;
    readonly delegate* unmanaged<float*, float*, float*, float*, nuint, float, float, float, float, float, float, int, int, sbyte*> _adamStepScaled;
    readonly delegate* unmanaged<float*, float*, byte*, byte*, int, int*, int*, float*, float*, int, int, int, int, int, int, sbyte*> _gatherAugment;

    KernelEmulator()
    {
        string baseDir = AppContext.BaseDirectory;
        string kernels = Path.Combine(baseDir, "Kernels");
        string main = Path.Combine(baseDir, "Emulation", "emulation.cpp");
        if (!File.Exists(main) || !Directory.Exists(kernels))
            throw new InvalidOperationException($"kernel emulation: sources not found beside the tests ({main}, {kernels})");
        var sources = Directory.GetFiles(kernels).Where(f => f.EndsWith(".cu") || f.EndsWith(".cuh")).Order(StringComparer.Ordinal).Append(main).ToList();

        // Cache by content: a changed kernel or flag gives a new folder, an unchanged suite reuses the build.
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(Compiler + " " + Flags + "\n"));
        foreach (var f in sources)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(Path.GetFileName(f) + "\n"));
            sha.AppendData(File.ReadAllBytes(f));
        }
        string hash = Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
        string dir = Path.Combine(Path.GetTempPath(), "rlmixup-kernel-emulation", hash);
        LibraryPath = Path.Combine(dir, "libkernelemu.so");
        if (!File.Exists(LibraryPath)) Build(dir, kernels, main);

        nint lib = NativeLibrary.Load(LibraryPath);
        _saliencyMaps = (delegate* unmanaged<float*, float*, int, int, int, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_saliency_maps");
        _percentileMasks = (delegate* unmanaged<float*, float*, float*, float*, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_percentile_masks");
        _maskMix = (delegate* unmanaged<float*, float*, float*, float*, float*, float*, int*, float*, int, int, int, int, int, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_mask_mix");
        _inputMixup = (delegate* unmanaged<float*, float*, float*, float*, int*, float, int, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_input_mixup");
        _cutmix = (delegate* unmanaged<float*, float*, float*, float*, int*, int, int, int, int, int, int, int, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_cutmix");
        _fill = (delegate* unmanaged<float*, float, nuint, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_fill");
        _scale = (delegate* unmanaged<float*, float, nuint, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_scale");
        _add = (delegate* unmanaged<float*, float*, float*, nuint, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_add");
        _reluBackward = (delegate* unmanaged<float*, float*, float*, nuint, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_relu_backward");
        _tanhBackward = (delegate* unmanaged<float*, float*, float*, nuint, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_tanh_backward");
        _axpy = (delegate* unmanaged<float*, float, float*, nuint, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_axpy");
        _reluForward = (delegate* unmanaged<float*, float*, nuint, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_relu_forward");
        _tanhForward = (delegate* unmanaged<float*, float*, nuint, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_tanh_forward");
        _addChannelBias = (delegate* unmanaged<float*, float*, int, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_add_channel_bias");
        _channelBiasBackward = (delegate* unmanaged<float*, float*, int, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_channel_bias_backward");
        _addRowBias = (delegate* unmanaged<float*, float*, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_add_row_bias");
        _rowBiasBackward = (delegate* unmanaged<float*, float*, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_row_bias_backward");
        _poolForward = (delegate* unmanaged<float*, float*, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_global_avg_pool_forward");
        _poolBackward = (delegate* unmanaged<float*, float*, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_global_avg_pool_backward");
        _logSoftmaxForward = (delegate* unmanaged<float*, float*, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_log_softmax_forward");
        _logSoftmaxBackward = (delegate* unmanaged<float*, float*, float*, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_log_softmax_backward");
        _softCrossEntropyForward = (delegate* unmanaged<float*, float*, float*, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_soft_cross_entropy_forward");
        _softCrossEntropyBackward = (delegate* unmanaged<float*, float*, float*, int, int, float, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_soft_cross_entropy_backward");
        _argmaxRows = (delegate* unmanaged<int*, float*, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_argmax_rows");
        _countCorrect = (delegate* unmanaged<int*, int*, byte*, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_count_correct");
        _sgdStep = (delegate* unmanaged<float*, float*, float*, nuint, float, float, float, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_sgd_step");
        _adamStep = (delegate* unmanaged<float*, float*, float*, float*, nuint, int, float, float, float, float, float, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_adam_step");
        _adamStepScaled = (delegate* unmanaged<float*, float*, float*, float*, nuint, float, float, float, float, float, float, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_adam_step_scaled");
        _gatherAugment = (delegate* unmanaged<float*, float*, byte*, byte*, int, int*, int*, float*, float*, int, int, int, int, int, int, sbyte*>)NativeLibrary.GetExport(lib, "emu_gather_augment");
    }

    static void Build(string dir, string kernels, string main)
    {
        Directory.CreateDirectory(dir);
        // Build to a private name, then rename: parallel test runs never load a half-written file.
        string tmp = Path.Combine(dir, $"libkernelemu.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        var psi = new ProcessStartInfo(Compiler) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in Flags.Split(' ')) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("-I" + kernels);
        psi.ArgumentList.Add("-o");
        psi.ArgumentList.Add(tmp);
        psi.ArgumentList.Add(main);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException(
                $"kernel emulation needs {Compiler} (C++20, with <barrier>) on PATH to compile src/Kernels for the host: {e.Message}", e);
        }
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            File.Delete(tmp);
            throw new InvalidOperationException($"kernel emulation: {Compiler} {Flags} {main} failed ({p.ExitCode}):\n{stdout.Result}{stderr.Result}");
        }
        File.Move(tmp, Path.Combine(dir, "libkernelemu.so"), overwrite: true);
    }

    // The emulation keeps the running launch's blockDim, gridDim and barrier in globals: one launch
    // at a time, even if tests run in parallel.
    readonly Lock _gate = new();

    void Check(sbyte* error)
    {
        if (error != null) throw new ArgumentException(new string(error));
    }

    // ---- one method per kernel launcher; grid ≤ 0 lets the launcher choose (one block per image)

    public void SaliencyMaps(float[] maps, float[] grad, int b, int c, int h, int w, int p, int block, int grid = 0)
    {
        fixed (float* pm = maps, pg = grad) lock (_gate) Check(_saliencyMaps(pm, pg, b, c, h, w, p, block, grid));
    }

    public void PercentileMasks(float[] masks, float[] thresholds, float[] maps, float[] q, int b, int cells, int block, int grid = 0)
    {
        fixed (float* pm = masks, pt = thresholds, ps = maps, pq = q) lock (_gate) Check(_percentileMasks(pm, pt, ps, pq, b, cells, block, grid));
    }

    public void MaskMix(float[] mixed, float[] mixedTargets, float[] fractions, float[] x, float[] targets, float[] masks,
        int[] perm, float[] lambda1, int b, int c, int h, int w, int p, int k, int block, int grid = 0)
    {
        fixed (float* pmx = mixed, pmt = mixedTargets, pf = fractions, px = x, pt = targets, pm = masks, pl = lambda1)
        fixed (int* pp = perm)
            lock (_gate) Check(_maskMix(pmx, pmt, pf, px, pt, pm, pp, pl, lambda1.Length, b, c, h, w, p, k, block, grid));
    }

    public void InputMixup(float[] mixed, float[] mixedTargets, float[] x, float[] targets, int[] perm, float lambda,
        int b, int d, int k, int block, int grid = 0)
    {
        fixed (float* pmx = mixed, pmt = mixedTargets, px = x, pt = targets)
        fixed (int* pp = perm)
            lock (_gate) Check(_inputMixup(pmx, pmt, px, pt, pp, lambda, b, d, k, block, grid));
    }

    public void CutMix(float[] mixed, float[] mixedTargets, float[] x, float[] targets, int[] perm, int y0, int x0, int y1, int x1,
        int b, int c, int h, int w, int k, int block, int grid = 0)
    {
        fixed (float* pmx = mixed, pmt = mixedTargets, px = x, pt = targets)
        fixed (int* pp = perm)
            lock (_gate) Check(_cutmix(pmx, pmt, px, pt, pp, y0, x0, y1, x1, b, c, h, w, k, block, grid));
    }

    // ---- elementwise.cu (n = the length of the output; the inputs must be as long)

    static nuint Len(float[] y, params float[][] others)
    {
        foreach (var o in others)
            if (o.Length != y.Length) throw new ArgumentException($"elementwise: lengths {y.Length} and {o.Length} differ");
        return (nuint)y.Length;
    }

    public void Fill(float[] y, float value, int block, int grid = 0)
    {
        fixed (float* py = y) lock (_gate) Check(_fill(py, value, (nuint)y.Length, block, grid));
    }

    public void Add(float[] y, float[] a, float[] b, int block, int grid = 0)
    {
        var n = Len(y, a, b);
        fixed (float* py = y, pa = a, pb = b) lock (_gate) Check(_add(py, pa, pb, n, block, grid));
    }

    public void Axpy(float[] y, float alpha, float[] x, int block, int grid = 0)
    {
        var n = Len(y, x);
        fixed (float* py = y, px = x) lock (_gate) Check(_axpy(py, alpha, px, n, block, grid));
    }

    public void Scale(float[] y, float alpha, int block, int grid = 0)
    {
        fixed (float* py = y) lock (_gate) Check(_scale(py, alpha, (nuint)y.Length, block, grid));
    }

    public void ReluForward(float[] y, float[] x, int block, int grid = 0)
    {
        var n = Len(y, x);
        fixed (float* py = y, px = x) lock (_gate) Check(_reluForward(py, px, n, block, grid));
    }

    public void ReluBackward(float[] dx, float[] y, float[] dy, int block, int grid = 0)
    {
        var n = Len(dx, y, dy);
        fixed (float* pd = dx, py = y, pg = dy) lock (_gate) Check(_reluBackward(pd, py, pg, n, block, grid));
    }

    public void TanhForward(float[] y, float[] x, int block, int grid = 0)
    {
        var n = Len(y, x);
        fixed (float* py = y, px = x) lock (_gate) Check(_tanhForward(py, px, n, block, grid));
    }

    public void TanhBackward(float[] dx, float[] y, float[] dy, int block, int grid = 0)
    {
        var n = Len(dx, y, dy);
        fixed (float* pd = dx, py = y, pg = dy) lock (_gate) Check(_tanhBackward(pd, py, pg, n, block, grid));
    }

    // ---- bias.cu, pool.cu

    public void AddChannelBias(float[] y, float[] bias, int n, int c, int hw, int block, int grid = 0)
    {
        fixed (float* py = y, pb = bias) lock (_gate) Check(_addChannelBias(py, pb, n, c, hw, block, grid));
    }

    public void ChannelBiasBackward(float[] dbias, float[] dy, int n, int c, int hw, int block, int grid = 0)
    {
        fixed (float* pb = dbias, pg = dy) lock (_gate) Check(_channelBiasBackward(pb, pg, n, c, hw, block, grid));
    }

    public void AddRowBias(float[] y, float[] b, int n, int outs, int block, int grid = 0)
    {
        fixed (float* py = y, pb = b) lock (_gate) Check(_addRowBias(py, pb, n, outs, block, grid));
    }

    public void RowBiasBackward(float[] db, float[] dy, int n, int outs, int block, int grid = 0)
    {
        fixed (float* pb = db, pg = dy) lock (_gate) Check(_rowBiasBackward(pb, pg, n, outs, block, grid));
    }

    public void GlobalAvgPoolForward(float[] y, float[] x, int rows, int hw, int block, int grid = 0)
    {
        fixed (float* py = y, px = x) lock (_gate) Check(_poolForward(py, px, rows, hw, block, grid));
    }

    public void GlobalAvgPoolBackward(float[] dx, float[] dy, int rows, int hw, int block, int grid = 0)
    {
        fixed (float* pd = dx, pg = dy) lock (_gate) Check(_poolBackward(pd, pg, rows, hw, block, grid));
    }

    // ---- loss.cu

    public void LogSoftmaxForward(float[] logp, float[] z, int rows, int k, int block, int grid = 0)
    {
        fixed (float* pl = logp, pz = z) lock (_gate) Check(_logSoftmaxForward(pl, pz, rows, k, block, grid));
    }

    public void LogSoftmaxBackward(float[] dz, float[] logp, float[] dlogp, int rows, int k, int block, int grid = 0)
    {
        fixed (float* pd = dz, pl = logp, pg = dlogp) lock (_gate) Check(_logSoftmaxBackward(pd, pl, pg, rows, k, block, grid));
    }

    public void SoftCrossEntropyForward(float[] losses, float[] logp, float[] targets, int rows, int k, int block, int grid = 0)
    {
        fixed (float* po = losses, pl = logp, pt = targets) lock (_gate) Check(_softCrossEntropyForward(po, pl, pt, rows, k, block, grid));
    }

    public void SoftCrossEntropyBackward(float[] dz, float[] logp, float[] targets, int rows, int k, float scale, int block, int grid = 0)
    {
        fixed (float* pd = dz, pl = logp, pt = targets) lock (_gate) Check(_softCrossEntropyBackward(pd, pl, pt, rows, k, scale, block, grid));
    }

    public void ArgmaxRows(int[] pred, float[] z, int rows, int k, int block, int grid = 0)
    {
        fixed (int* pp = pred) fixed (float* pz = z) lock (_gate) Check(_argmaxRows(pp, pz, rows, k, block, grid));
    }

    public int CountCorrect(int[] pred, byte[] labels, int block)
    {
        if (pred.Length != labels.Length) throw new ArgumentException("count_correct: pred and labels differ in length");
        int count = -1;
        fixed (int* pp = pred) fixed (byte* pl = labels) lock (_gate) Check(_countCorrect(&count, pp, pl, pred.Length, block));
        return count;
    }

    // ---- optim.cu

    public void SgdStep(float[] param, float[] grad, float[] buf, float lr, float momentum, float weightDecay, bool nesterov, int block, int grid = 0)
    {
        var n = Len(param, grad, buf);
        fixed (float* pp = param, pg = grad, pb = buf)
            lock (_gate) Check(_sgdStep(pp, pg, pb, n, lr, momentum, weightDecay, nesterov ? 1 : 0, block, grid));
    }

    public void AdamStep(float[] param, float[] grad, float[] m, float[] v, int step, float lr, float beta1, float beta2, float eps, float weightDecay,
        int block, int grid = 0)
    {
        var n = Len(param, grad, m, v);
        fixed (float* pp = param, pg = grad, pm = m, pv = v)
            lock (_gate) Check(_adamStep(pp, pg, pm, pv, n, step, lr, beta1, beta2, eps, weightDecay, block, grid));
    }

    /// <summary>adam_step with the bias corrections passed in, as the GPU backend launches it.</summary>
    public void AdamStepScaled(float[] param, float[] grad, float[] m, float[] v, float stepSize, float bc2Sqrt, float beta1, float beta2, float eps,
        float weightDecay, int block, int grid = 0)
    {
        var n = Len(param, grad, m, v);
        fixed (float* pp = param, pg = grad, pm = m, pv = v)
            lock (_gate) Check(_adamStepScaled(pp, pg, pm, pv, n, stepSize, bc2Sqrt, beta1, beta2, eps, weightDecay, block, grid));
    }

    // ---- augment.cu (aug: (B,3) = dx, dy, flip per image; mean and std: 3 each)

    public void GatherAugment(float[] x, float[] targets, byte[] images, byte[] labels, int[] indices, int[] aug, float[] mean, float[] std,
        int h, int w, int k, int block, int grid = 0)
    {
        if (aug.Length != indices.Length * 3 || mean.Length != 3 || std.Length != 3) throw new ArgumentException("gather_augment: aug must be (B,3), mean and std 3 each");
        fixed (float* px = x, pt = targets, pm = mean, ps = std)
        fixed (byte* pi = images, pl = labels)
        fixed (int* pidx = indices, pa = aug)
            lock (_gate) Check(_gatherAugment(px, pt, pi, pl, labels.Length, pidx, pa, pm, ps, indices.Length, h, w, k, block, grid));
    }
}
