using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace RlMixup.Core.Cuda.Native;

// Status → exception for the driver API and cuBLAS (the declarations are in Native/). The status
// name comes from the enum, so it is right even when the library never loaded; the vendor's
// description is added only when the library is already loaded (a check never loads a library).

internal static unsafe partial class CuDriver
{
    internal const string LibraryName = "CUDA driver";

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="r"/> is CUDA_SUCCESS.</summary>
    internal static void Check(CuResult r, [CallerArgumentExpression(nameof(r))] string call = "")
    {
        if (r != CuResult.CUDA_SUCCESS) throw Error(r, call);
    }

    internal static CudaException Error(CuResult r, string call, string? extra = null)
    {
        var detail = Describe(r);
        if (!string.IsNullOrEmpty(extra)) detail = detail.Length == 0 ? extra : $"{detail}; {extra}";
        return new CudaException(LibraryName, call, StatusName(r), detail);
    }

    /// <summary>The header's name of <paramref name="r"/> (CUDA_ERROR_OUT_OF_MEMORY), or "CUresult 1234" for a value this build does not know.</summary>
    internal static string StatusName(CuResult r) => Enum.IsDefined(r) ? r.ToString() : $"CUresult {(int)r}";

    /// <summary>cuGetErrorString's text when the driver is loaded, otherwise "".</summary>
    internal static string Describe(CuResult r)
    {
        if (!NativeLibraries.IsLoaded(NativeLibraries.Driver)) return "";
        try
        {
            return cuGetErrorString(r, out var text) == CuResult.CUDA_SUCCESS && text != null
                ? Marshal.PtrToStringUTF8((nint)text) ?? "" : "";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return "";
        }
    }
}

internal static unsafe partial class Cublas
{
    internal const string LibraryName = "cuBLAS";

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="s"/> is CUBLAS_STATUS_SUCCESS.</summary>
    internal static void Check(CublasStatus s, [CallerArgumentExpression(nameof(s))] string call = "")
    {
        if (s != CublasStatus.CUBLAS_STATUS_SUCCESS)
            throw new CudaException(LibraryName, call, StatusName(s), Describe(s));
    }

    internal static string StatusName(CublasStatus s) => Enum.IsDefined(s) ? s.ToString() : $"cublasStatus_t {(int)s}";

    /// <summary>cublasGetStatusString's text when cuBLAS is loaded, otherwise "".</summary>
    internal static string Describe(CublasStatus s)
    {
        if (!NativeLibraries.IsLoaded(NativeLibraries.Cublas)) return "";
        try
        {
            var text = cublasGetStatusString(s);
            return text == null ? "" : Marshal.PtrToStringUTF8((nint)text) ?? "";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return "";
        }
    }
}
