using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// cuDNN status → <see cref="CudaException"/>: the failing call as written at the check site
/// ([CallerArgumentExpression]), the status's header name and cuDNN's own description.
/// </summary>
public static class CudnnErrors
{
    public const string Library = "cuDNN";

    /// <summary>Throws a <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="status"/> is SUCCESS.</summary>
    internal static void Check(CudnnStatus status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != CudnnStatus.CUDNN_STATUS_SUCCESS) throw ToException(status, call, Describe);
    }

    /// <summary>The exception for a failed call; <paramref name="describe"/> supplies the detail (tests pass a fake).</summary>
    internal static CudaException ToException(CudnnStatus status, string call, Func<CudnnStatus, string> describe) =>
        new(Library, call, StatusName(status), describe(status));

    /// <summary>
    /// The header's name of <paramref name="status"/>; for a code this build does not know (a newer
    /// cuDNN), the number with the name of its category (cuDNN 9 codes are category + specific error).
    /// </summary>
    public static string StatusName(CudnnStatus status)
    {
        if (Enum.IsDefined(status)) return status.ToString();
        var category = (CudnnStatus)((int)status / 1000 * 1000);
        return Enum.IsDefined(category) && category != CudnnStatus.CUDNN_STATUS_SUCCESS
            ? $"cudnnStatus_t {(int)status} ({category} category)"
            : $"cudnnStatus_t {(int)status}";
    }

    /// <summary>cudnnGetErrorString, or "" when the library cannot be called (never throws: it runs while building an exception).</summary>
    internal static unsafe string Describe(CudnnStatus status)
    {
        try
        {
            return Marshal.PtrToStringUTF8((nint)CuDnn.cudnnGetErrorString(status)) ?? "";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return "";
        }
    }
}
