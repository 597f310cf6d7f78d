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
}

/// <summary>No candidate file of a native library could be loaded; the message lists every path tried.</summary>
public sealed class CudaLibraryNotFoundException(string library, IReadOnlyList<string> tried, string hint)
    : Exception($"{library} not found; tried {string.Join(", ", tried)}. {hint}")
{
    public string Library { get; } = library;
    public IReadOnlyList<string> Tried { get; } = tried;
}
