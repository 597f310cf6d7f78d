using System.Runtime.InteropServices;
using NUnit.Framework;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Tests;

/// <summary>
/// The bindings and the software device, held to NVIDIA's ABI (../shared/cuda-abi: facts from the
/// CUDA 12.6.3 and cuDNN 9.6.0 headers) rather than to our memory of it: every [LibraryImport]
/// (entry point, parameter count, each parameter's kind, size and name, the return size), every
/// native enum's values, the struct layouts, and every function the software device exports. Wrong
/// declarations written here on purpose must be caught, so the checks cannot pass vacuously.
/// </summary>
public class CudaAbiTests
{
    static readonly Type[] Bindings = [typeof(CuDriver), typeof(Cublas), typeof(CuDnn)];

    static readonly Type[] NativeEnums = typeof(CuResult).Assembly.GetTypes()
        .Where(t => t.IsEnum && t.Namespace == typeof(CuResult).Namespace).OrderBy(t => t.Name).ToArray();

    /// <summary>Constants the engine names that the 12.6 headers do not have, and why.</summary>
    static readonly HashSet<string> NotInHeaders =
    [
        "CUDA_ERROR_CONTAINED", // cuda.h 12.8 (a newer driver may return it; named so that it prints)
    ];

    /// <summary>The C struct each C# mirror stands for; every blittable struct of the bindings but the one-field handles is here.</summary>
    static readonly Dictionary<Type, string> Structs = new()
    {
        [typeof(CudnnConvolutionFwdAlgoPerf)] = "cudnnConvolutionFwdAlgoPerf_t",
        [typeof(CudnnConvolutionBwdDataAlgoPerf)] = "cudnnConvolutionBwdDataAlgoPerf_t",
        [typeof(CudnnConvolutionBwdFilterAlgoPerf)] = "cudnnConvolutionBwdFilterAlgoPerf_t",
    };

    [TestCaseSource(nameof(Bindings))]
    public void EveryLibraryImportMatchesTheHeaders(Type binding)
    {
        var abi = CudaAbi.LoadOrIgnore();
        Assert.That(CudaAbi.Imports(binding).Count(), Is.GreaterThan(5));
        Assert.That(abi.CheckImports(binding), Is.Empty);
    }

    [TestCaseSource(nameof(NativeEnums))]
    public void EveryNativeEnumValueMatchesTheHeaders(Type e)
    {
        var abi = CudaAbi.LoadOrIgnore();
        Assert.That(abi.CheckEnum(e, NotInHeaders), Is.Empty);
    }

    [Test]
    public void EveryStructLayoutMatchesTheHeaders()
    {
        var abi = CudaAbi.LoadOrIgnore();
        var mirrors = typeof(CuResult).Assembly.GetTypes()
            .Where(t => t.IsValueType && !t.IsEnum && !t.IsNested && t.Namespace == typeof(CuResult).Namespace && t.IsLayoutSequential
                && t.GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic).Length > 1)
            .ToList();
        Assert.That(mirrors, Is.EquivalentTo(Structs.Keys), "every multi-field struct of the bindings has its C struct named here");
        foreach (var (t, c) in Structs) Assert.That(abi.CheckStruct(t, c), Is.Empty, t.Name);
    }

    [Test]
    public void TheSoftwareDeviceExportsExactlyWhatTheBindingsImportWithTheHeadersSignatures()
    {
        var abi = CudaAbi.LoadOrIgnore();
        SoftwareDevice.RequireOrIgnore();
        var exports = SoftwareDevice.Exports();
        Assert.That(abi.CheckExports(exports), Is.Empty);
        var exported = exports.Select(l => l.Split('|')[0]).ToHashSet();
        var imported = Bindings.SelectMany(b => CudaAbi.Imports(b).Select(i => i.EntryPoint)).ToHashSet();
        // The loader's version probes are looked up by name, not bound; the marker is the device's own.
        imported.UnionWith(NativeLibraries.SymbolsLookedUp.Where(s => s != NativeLibraries.SoftwareDeviceSymbol));
        Assert.That(imported.Except(exported), Is.Empty, "imported by the backend but not implemented by the software device");
        Assert.That(exported.Except(imported), Is.Empty, "implemented by the software device but not used by the backend");
    }

    [Test]
    public void TheGeneratedBindingListIsEveryLibraryImport()
    {
        var reflected = Bindings.SelectMany(b => CudaAbi.Imports(b).Select(i => (Library: LibraryOf(b), i.EntryPoint))).ToHashSet();
        Assert.That(NativeBindings.All.Select(b => (b.Library, b.EntryPoint)).ToHashSet(), Is.EquivalentTo(reflected));
        Assert.That(NativeBindings.All, Has.Length.EqualTo(reflected.Count), "no symbol twice");
    }

    private static string LibraryOf(Type binding) =>
        binding == typeof(CuDriver) ? NativeLibraries.Driver : binding == typeof(Cublas) ? NativeLibraries.Cublas : NativeLibraries.Cudnn;

    [Test]
    public void TheVersionProbesMatchTheHeaders()
    {
        // The loader calls these through function pointers of its own (NativeLibraries.Read*Version):
        // int(int*), int(enum, int*), size_t(void).
        var abi = CudaAbi.LoadOrIgnore();
        Assert.That(abi.Signature("cuDriverGetVersion"), Is.EqualTo("returns:4|pointer:8"));
        Assert.That(abi.Signature("cublasGetProperty"), Is.EqualTo("returns:4|enum:4|pointer:8"));
        Assert.That(abi.Signature("cudnnGetVersion"), Is.EqualTo("returns:8"));
        Assert.That(NativeLibraries.SymbolsLookedUp, Is.EquivalentTo(new[] { "cuDriverGetVersion", "cublasGetProperty", "cudnnGetVersion", "rlmixupSoftwareDevice" }));
    }

    // ---- the checks catch wrong declarations

#pragma warning disable SYSLIB1054 // DllImport, not LibraryImport: these are inspected, never called
    /// <summary>Deliberately wrong: never called, only inspected.</summary>
    static unsafe class Wrong
    {
        // size_t bytesize declared as int
        [DllImport("none", EntryPoint = "cuMemAlloc_v2")]
        internal static extern CuResult cuMemAlloc(out CUdeviceptr dptr, int bytesize);

        // the device and host arguments swapped
        [DllImport("none", EntryPoint = "cuMemcpyHtoDAsync_v2")]
        internal static extern CuResult cuMemcpyHtoDAsync(void* srcHost, CUdeviceptr dstDevice, nuint byteCount, CUstream hStream);

        // two int parameters swapped (same kinds and sizes: caught by the names)
        [DllImport("none", EntryPoint = "cudnnSetConvolution2dDescriptor")]
        internal static extern CudnnStatus cudnnSetConvolution2dDescriptor(CudnnConvolutionDescriptorT convDesc, int pad_w, int pad_h,
            int u, int v, int dilation_h, int dilation_w, CudnnConvolutionMode mode, CudnnDataType computeType);

        // a parameter missing
        [DllImport("none", EntryPoint = "cublasSetStream_v2")]
        internal static extern CublasStatus cublasSetStream(CublasHandleT handle);

        // a symbol that does not exist (cuMemAlloc without the _v2 the 12.x header maps it to is fine; this is not)
        [DllImport("none", EntryPoint = "cuMemAllocate")]
        internal static extern CuResult cuMemAllocate(out CUdeviceptr dptr, nuint bytesize);
    }
#pragma warning restore SYSLIB1054

    enum WrongMathType
    {
        CUDNN_DEFAULT_MATH = 0,
        CUDNN_TENSOR_OP_MATH = 1,
        CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 3, // the header's is 2
        CUDNN_FMA_MATH = 3,
    }

    [StructLayout(LayoutKind.Sequential)]
    struct WrongPerf
    {
        public CudnnConvolutionFwdAlgo Algo;
        public CudnnStatus Status;
        public float Time;
        public uint Memory; // size_t declared as 32 bits: every later field moves
        public CudnnDeterminism Determinism;
        public CudnnMathType MathType;
        public int Reserved0, Reserved1, Reserved2;
    }

    [Test]
    public void WrongDeclarationsAreCaught()
    {
        var abi = CudaAbi.LoadOrIgnore();
        var problems = abi.CheckImports(typeof(Wrong));
        Assert.That(problems, Has.Some.Contains("cuMemAlloc").And.Contains("'bytesize' is integer of 4 bytes"));
        Assert.That(problems, Has.Some.Contains("cuMemcpyHtoDAsync").And.Contains("parameter 0 'srcHost' is pointer"));
        Assert.That(problems, Has.Some.Contains("cudnnSetConvolution2dDescriptor").And.Contains("named 'pad_w', the header's is 'pad_h'"));
        Assert.That(problems, Has.Some.Contains("cublasSetStream").And.Contains("1 parameters, the header has 2"));
        Assert.That(problems, Has.Some.Contains("no function 'cuMemAllocate'"));
        // the swapped pairs are reported once per parameter
        Assert.That(problems, Has.Count.EqualTo(7), string.Join("\n", problems));

        Assert.That(abi.CheckEnum(typeof(WrongMathType)), Is.EqualTo(new[] { "WrongMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 3, the header's is 2" }));
        var layout = abi.CheckStruct(typeof(WrongPerf), "cudnnConvolutionFwdAlgoPerf_t");
        Assert.That(layout, Has.Some.Contains("Memory at offset 12, cudnnConvolutionFwdAlgoPerf_t.memory is at 16"));
        Assert.That(layout, Has.Some.Contains("WrongPerf.Reserved0: cudnnConvolutionFwdAlgoPerf_t has no such field"));

        var exports = abi.CheckExports(["cuMemAlloc_v2|enum:4|pointer:8|integer:4", "cuMemsetD32Async|enum:4|integer:8|integer:4|integer:8", "cuFoo|enum:4"]);
        Assert.That(exports, Has.Some.Contains("cuMemAlloc_v2: parameter 1 is integer of 4 bytes"));
        Assert.That(exports, Has.Some.Contains("cuMemsetD32Async: 3 parameters, the header has 4"));
        Assert.That(exports, Has.Some.Contains("exports 'cuFoo'"));
    }
}
