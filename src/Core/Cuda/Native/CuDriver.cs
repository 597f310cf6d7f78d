using System.Runtime.InteropServices;

namespace RlMixup.Core.Cuda.Native;

/// <summary>
/// CUDA driver API declarations (libcuda), checked against cuda.h and cudaTypedefs.h of CUDA 12.6
/// (CUDA_VERSION 12060): parameter types and order, and the #define that maps each name to its
/// exported symbol. Declarations only: the checks live in CudaCheck.cs, the ownership in the
/// wrappers of src/Core/Cuda. Entry points are
/// the exported symbols the 12.6 header's macros map to (cuMemAlloc → cuMemAlloc_v2, ...); the
/// per-thread-default-stream variants (_ptsz/_ptds) are not used: the engine always passes an
/// explicit stream. size_t is nuint; host pointers are raw pointers; device pointers CUdeviceptr.
/// </summary>
internal static unsafe partial class CuDriver
{
    private const string Lib = NativeLibraries.Driver;

    // ---- initialisation, version, errors
    [LibraryImport(Lib, EntryPoint = "cuInit")]
    internal static partial CuResult cuInit(uint flags);

    [LibraryImport(Lib, EntryPoint = "cuDriverGetVersion")]
    internal static partial CuResult cuDriverGetVersion(out int driverVersion);

    /// <summary>pStr receives a static NUL-terminated string (not to be freed).</summary>
    [LibraryImport(Lib, EntryPoint = "cuGetErrorName")]
    internal static partial CuResult cuGetErrorName(CuResult error, out byte* pStr);

    [LibraryImport(Lib, EntryPoint = "cuGetErrorString")]
    internal static partial CuResult cuGetErrorString(CuResult error, out byte* pStr);

    // ---- devices
    [LibraryImport(Lib, EntryPoint = "cuDeviceGet")]
    internal static partial CuResult cuDeviceGet(out CUdevice device, int ordinal);

    [LibraryImport(Lib, EntryPoint = "cuDeviceGetCount")]
    internal static partial CuResult cuDeviceGetCount(out int count);

    [LibraryImport(Lib, EntryPoint = "cuDeviceGetName")]
    internal static partial CuResult cuDeviceGetName(byte* name, int len, CUdevice dev);

    [LibraryImport(Lib, EntryPoint = "cuDeviceGetAttribute")]
    internal static partial CuResult cuDeviceGetAttribute(out int pi, CuDeviceAttribute attrib, CUdevice dev);

    // cuda.h: #define cuDeviceTotalMem cuDeviceTotalMem_v2
    [LibraryImport(Lib, EntryPoint = "cuDeviceTotalMem_v2")]
    internal static partial CuResult cuDeviceTotalMem(out nuint bytes, CUdevice dev);

    // ---- contexts
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRetain")]
    internal static partial CuResult cuDevicePrimaryCtxRetain(out CUcontext pctx, CUdevice dev);

    // cuda.h: #define cuDevicePrimaryCtxRelease cuDevicePrimaryCtxRelease_v2
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRelease_v2")]
    internal static partial CuResult cuDevicePrimaryCtxRelease(CUdevice dev);

    [LibraryImport(Lib, EntryPoint = "cuCtxSetCurrent")]
    internal static partial CuResult cuCtxSetCurrent(CUcontext ctx);

    [LibraryImport(Lib, EntryPoint = "cuCtxGetCurrent")]
    internal static partial CuResult cuCtxGetCurrent(out CUcontext pctx);

    [LibraryImport(Lib, EntryPoint = "cuCtxSynchronize")]
    internal static partial CuResult cuCtxSynchronize();

    // ---- memory
    // cuda.h: #define cuMemAlloc cuMemAlloc_v2
    [LibraryImport(Lib, EntryPoint = "cuMemAlloc_v2")]
    internal static partial CuResult cuMemAlloc(out CUdeviceptr dptr, nuint bytesize);

    // cuda.h: #define cuMemFree cuMemFree_v2
    [LibraryImport(Lib, EntryPoint = "cuMemFree_v2")]
    internal static partial CuResult cuMemFree(CUdeviceptr dptr);

    /// <summary>Stream-ordered allocation (CUDA 11.2+; needs CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED).</summary>
    [LibraryImport(Lib, EntryPoint = "cuMemAllocAsync")]
    internal static partial CuResult cuMemAllocAsync(out CUdeviceptr dptr, nuint bytesize, CUstream hStream);

    [LibraryImport(Lib, EntryPoint = "cuMemFreeAsync")]
    internal static partial CuResult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream);

    // cuda.h: #define cuMemGetInfo cuMemGetInfo_v2
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")]
    internal static partial CuResult cuMemGetInfo(out nuint free, out nuint total);

    // cuda.h: #define cuMemcpyHtoDAsync __CUDA_API_PTSZ(cuMemcpyHtoDAsync_v2)
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoDAsync_v2")]
    internal static partial CuResult cuMemcpyHtoDAsync(CUdeviceptr dstDevice, void* srcHost, nuint byteCount, CUstream hStream);

    // cuda.h: #define cuMemcpyDtoHAsync __CUDA_API_PTSZ(cuMemcpyDtoHAsync_v2)
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoHAsync_v2")]
    internal static partial CuResult cuMemcpyDtoHAsync(void* dstHost, CUdeviceptr srcDevice, nuint byteCount, CUstream hStream);

    // cuda.h: #define cuMemcpyDtoDAsync __CUDA_API_PTSZ(cuMemcpyDtoDAsync_v2)
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoDAsync_v2")]
    internal static partial CuResult cuMemcpyDtoDAsync(CUdeviceptr dstDevice, CUdeviceptr srcDevice, nuint byteCount, CUstream hStream);

    /// <summary>Sets <paramref name="n"/> 32-bit words (not bytes) to <paramref name="ui"/>. No _v2 variant exists.</summary>
    [LibraryImport(Lib, EntryPoint = "cuMemsetD32Async")]
    internal static partial CuResult cuMemsetD32Async(CUdeviceptr dstDevice, uint ui, nuint n, CUstream hStream);

    /// <summary>Page-locked host memory (no _v2 variant; cuMemAllocHost is the one that has one).</summary>
    [LibraryImport(Lib, EntryPoint = "cuMemHostAlloc")]
    internal static partial CuResult cuMemHostAlloc(out void* pp, nuint bytesize, uint flags);

    [LibraryImport(Lib, EntryPoint = "cuMemFreeHost")]
    internal static partial CuResult cuMemFreeHost(void* p);

    // ---- streams and events
    [LibraryImport(Lib, EntryPoint = "cuStreamCreate")]
    internal static partial CuResult cuStreamCreate(out CUstream phStream, uint flags);

    // cuda.h: #define cuStreamDestroy cuStreamDestroy_v2
    [LibraryImport(Lib, EntryPoint = "cuStreamDestroy_v2")]
    internal static partial CuResult cuStreamDestroy(CUstream hStream);

    [LibraryImport(Lib, EntryPoint = "cuStreamSynchronize")]
    internal static partial CuResult cuStreamSynchronize(CUstream hStream);

    [LibraryImport(Lib, EntryPoint = "cuEventCreate")]
    internal static partial CuResult cuEventCreate(out CUevent phEvent, uint flags);

    [LibraryImport(Lib, EntryPoint = "cuEventRecord")]
    internal static partial CuResult cuEventRecord(CUevent hEvent, CUstream hStream);

    [LibraryImport(Lib, EntryPoint = "cuEventSynchronize")]
    internal static partial CuResult cuEventSynchronize(CUevent hEvent);

    // The original symbol: every driver exports it (CUDA 12.8 added a _v2 that 13.x headers map to).
    [LibraryImport(Lib, EntryPoint = "cuEventElapsedTime")]
    internal static partial CuResult cuEventElapsedTime(out float pMilliseconds, CUevent hStart, CUevent hEnd);

    // cuda.h: #define cuEventDestroy cuEventDestroy_v2
    [LibraryImport(Lib, EntryPoint = "cuEventDestroy_v2")]
    internal static partial CuResult cuEventDestroy(CUevent hEvent);

    // ---- modules and launches
    /// <summary>image: NUL-terminated PTX (or a cubin/fatbin); optionValues: one pointer-sized value per option.</summary>
    [LibraryImport(Lib, EntryPoint = "cuModuleLoadDataEx")]
    internal static partial CuResult cuModuleLoadDataEx(out CUmodule module, void* image, uint numOptions, CuJitOption* options, void** optionValues);

    /// <summary>name: NUL-terminated UTF-8.</summary>
    [LibraryImport(Lib, EntryPoint = "cuModuleGetFunction")]
    internal static partial CuResult cuModuleGetFunction(out CUfunction hfunc, CUmodule hmod, byte* name);

    [LibraryImport(Lib, EntryPoint = "cuModuleUnload")]
    internal static partial CuResult cuModuleUnload(CUmodule hmod);

    /// <summary>kernelParams: one pointer per kernel parameter, each to that parameter's value; extra: null.</summary>
    [LibraryImport(Lib, EntryPoint = "cuLaunchKernel")]
    internal static partial CuResult cuLaunchKernel(CUfunction f,
        uint gridDimX, uint gridDimY, uint gridDimZ, uint blockDimX, uint blockDimY, uint blockDimZ,
        uint sharedMemBytes, CUstream hStream, void** kernelParams, void** extra);

    [LibraryImport(Lib, EntryPoint = "cuFuncSetAttribute")]
    internal static partial CuResult cuFuncSetAttribute(CUfunction hfunc, CuFunctionAttribute attrib, int value);

    [LibraryImport(Lib, EntryPoint = "cuFuncGetAttribute")]
    internal static partial CuResult cuFuncGetAttribute(out int pi, CuFunctionAttribute attrib, CUfunction hfunc);

    // ---- graphs
    // cuda.h: #define cuStreamBeginCapture __CUDA_API_PTSZ(cuStreamBeginCapture_v2)
    [LibraryImport(Lib, EntryPoint = "cuStreamBeginCapture_v2")]
    internal static partial CuResult cuStreamBeginCapture(CUstream hStream, CuStreamCaptureMode mode);

    [LibraryImport(Lib, EntryPoint = "cuStreamEndCapture")]
    internal static partial CuResult cuStreamEndCapture(CUstream hStream, out CUgraph phGraph);

    // cuda.h 12.6: #define cuGraphInstantiate cuGraphInstantiateWithFlags
    [LibraryImport(Lib, EntryPoint = "cuGraphInstantiateWithFlags")]
    internal static partial CuResult cuGraphInstantiateWithFlags(out CUgraphExec phGraphExec, CUgraph hGraph, ulong flags);

    [LibraryImport(Lib, EntryPoint = "cuGraphLaunch")]
    internal static partial CuResult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream);

    [LibraryImport(Lib, EntryPoint = "cuGraphExecDestroy")]
    internal static partial CuResult cuGraphExecDestroy(CUgraphExec hGraphExec);

    [LibraryImport(Lib, EntryPoint = "cuGraphDestroy")]
    internal static partial CuResult cuGraphDestroy(CUgraph hGraph);
}
