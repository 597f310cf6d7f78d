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
}
