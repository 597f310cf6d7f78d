namespace RlMixup.Core.Cuda.Native;

/// <summary>
/// A failed call into a CUDA library (driver, cuBLAS, cuDNN): names the library, the call's source
/// expression (from [CallerArgumentExpression] at the check site), the status name and the
/// vendor's error string, so a log line says what failed without a debugger.
/// </summary>
public class CudaException(string library, string call, string status, string detail)
    : Exception($"{library}: {call} failed with {status}{(string.IsNullOrEmpty(detail) ? "" : $" ({detail})")}")
{
    /// <summary>"CUDA driver", "cuBLAS" or "cuDNN".</summary>
    public string Library { get; } = library;
    /// <summary>The failing call as written at the check site.</summary>
    public string Call { get; } = call;
    /// <summary>The status enum member's name, e.g. CUDA_ERROR_OUT_OF_MEMORY.</summary>
    public string Status { get; } = status;
    /// <summary>The library's own description of the status.</summary>
    public string Detail { get; } = detail;

    /// <summary>
    /// True for the driver's sticky errors: a kernel fault (illegal or misaligned address, illegal
    /// instruction, hardware stack error, invalid PC or address space, a device-side assert, a
    /// launch that failed or timed out, an uncorrectable ECC error, a contained error). The CUDA
    /// documentation says of them that the context "cannot be used" any more: every later call
    /// returns the same error until the process ends.
    /// </summary>
    public bool LosesContext => Library == "CUDA driver" && StickyStatuses.Contains(Status);

    internal static readonly HashSet<string> StickyStatuses =
    [
        "CUDA_ERROR_ILLEGAL_ADDRESS", "CUDA_ERROR_LAUNCH_TIMEOUT", "CUDA_ERROR_ASSERT", "CUDA_ERROR_HARDWARE_STACK_ERROR",
        "CUDA_ERROR_ILLEGAL_INSTRUCTION", "CUDA_ERROR_MISALIGNED_ADDRESS", "CUDA_ERROR_INVALID_ADDRESS_SPACE", "CUDA_ERROR_INVALID_PC",
        "CUDA_ERROR_LAUNCH_FAILED", "CUDA_ERROR_ECC_UNCORRECTABLE", "CUDA_ERROR_CONTAINED",
    ];
}

/// <summary>No candidate file of a native library could be loaded; the message lists every path tried.</summary>
public sealed class CudaLibraryNotFoundException(string library, IReadOnlyList<string> tried, string hint)
    : Exception($"{library} not found; tried {string.Join(", ", tried)}. {hint}")
{
    public string Library { get; } = library;
    public IReadOnlyList<string> Tried { get; } = tried;
}
