using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.Cuda;

namespace RlMixup.Engine;

/// <summary>
/// Chooses the backend a command runs on: <c>cpu</c>, <c>cuda</c> (an error when no CUDA device or
/// driver is usable) or <c>auto</c> (CUDA when usable, otherwise the CPU, saying why).
/// </summary>
public static class Backends
{
    public static readonly string[] DeviceNames = ["cpu", "cuda", "auto"];

    /// <summary>
    /// The backend for <paramref name="device"/>. <paramref name="tf32"/> lets cuBLAS and cuDNN use
    /// TF32 tensor cores for float32 GEMMs and convolutions (CUDA only). The choice is logged in one line
    /// when <c>auto</c> falls back to the CPU.
    /// </summary>
    /// <exception cref="CliException"><c>cuda</c> was asked for and cannot be created, or the name is unknown.</exception>
    public static IBackend Create(string device, bool tf32, TextWriter log, int? threads = null)
    {
        switch (device)
        {
            case "cpu":
                return new CpuBackend(threads);
            case "cuda":
                if (TryCreateCuda(tf32, out var cuda, out string reason)) return cuda!;
                throw new CliException(CudaUnavailable(reason));
            case "auto":
                if (TryCreateCuda(tf32, out var auto, out string why)) return auto!;
                log.WriteLine($"device: running on the CPU ({why})");
                return new CpuBackend(threads);
            default:
                throw new CliException($"--device {device}: expected cpu, cuda or auto");
        }
    }

    /// <summary>The error of <c>--device cuda</c> when <see cref="TryCreateCuda"/> says no: one line naming what is missing.</summary>
    public static string CudaUnavailable(string reason) => $"--device cuda: the CUDA backend is not available: {reason}; use --device cpu or auto";

    /// <summary>
    /// Creates the CUDA backend when a device, the driver and the libraries are usable; otherwise
    /// false and a one-line reason that names what is missing: the driver, cuBLAS or cuDNN (each
    /// with every path tried), or the device (no exception escapes).
    /// </summary>
    public static bool TryCreateCuda(bool tf32, out IBackend? backend, out string reason)
    {
        try
        {
            backend = CreateCudaBackend(tf32);
            reason = "";
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            backend = null;
            reason = OneLine(e.Message);
            return false;
        }
    }

    // The CUDA backend on device 0 with TF32 allowed or not. It throws when there is none (library
    // not found, no device, driver too old): TryCreateCuda turns the message into the one-line
    // reason that `info`, `--device auto` and `--device cuda` print.
    private static IBackend CreateCudaBackend(bool tf32)
    {
        if (!CudaDevice.TryInit(out string reason)) throw new InvalidOperationException(reason);
        return new CudaBackend(tf32);
    }

    private static string OneLine(string message) =>
        string.Join(" ", message.Split((char[])['\r', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()));
}
