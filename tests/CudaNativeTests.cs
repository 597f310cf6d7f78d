using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NUnit.Framework;
using RlMixup.Core.Cuda;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Tests;

/// <summary>
/// The CUDA binding layer without a GPU: native sizes of the handles, the headers' enum values,
/// status → exception text, the library search order and its error, kernel-argument packing and
/// the row-major → column-major GEMM mapping.
/// </summary>
public class CudaNativeTests
{
    // ---- handle sizes and enum values

    [Test]
    public void HandlesHaveTheNativeSizes()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Unsafe.SizeOf<CUdevice>(), Is.EqualTo(4));
            Assert.That(Marshal.SizeOf<CUdevice>(), Is.EqualTo(4));
            Assert.That(Unsafe.SizeOf<CUdeviceptr>(), Is.EqualTo(8));
            Assert.That(Marshal.SizeOf<CUdeviceptr>(), Is.EqualTo(8));
            foreach (var (name, managed, marshalled) in new (string, int, int)[]
            {
                (nameof(CUcontext), Unsafe.SizeOf<CUcontext>(), Marshal.SizeOf<CUcontext>()),
                (nameof(CUmodule), Unsafe.SizeOf<CUmodule>(), Marshal.SizeOf<CUmodule>()),
                (nameof(CUfunction), Unsafe.SizeOf<CUfunction>(), Marshal.SizeOf<CUfunction>()),
                (nameof(CUstream), Unsafe.SizeOf<CUstream>(), Marshal.SizeOf<CUstream>()),
                (nameof(CUevent), Unsafe.SizeOf<CUevent>(), Marshal.SizeOf<CUevent>()),
                (nameof(CUgraph), Unsafe.SizeOf<CUgraph>(), Marshal.SizeOf<CUgraph>()),
                (nameof(CUgraphExec), Unsafe.SizeOf<CUgraphExec>(), Marshal.SizeOf<CUgraphExec>()),
                (nameof(CublasHandleT), Unsafe.SizeOf<CublasHandleT>(), Marshal.SizeOf<CublasHandleT>()),
            })
            {
                Assert.That(managed, Is.EqualTo(IntPtr.Size), name);
                Assert.That(marshalled, Is.EqualTo(IntPtr.Size), name);
            }
            // Enums cross the boundary as C enums: 4 bytes.
            Assert.That(Unsafe.SizeOf<CuResult>(), Is.EqualTo(4));
            Assert.That(Unsafe.SizeOf<CublasStatus>(), Is.EqualTo(4));
        });
    }

    [Test]
    public void DriverEnumsHaveTheHeaderValues()
    {
        Assert.Multiple(() =>
        {
            Assert.That((int)CuResult.CUDA_SUCCESS, Is.EqualTo(0));
            Assert.That((int)CuResult.CUDA_ERROR_INVALID_VALUE, Is.EqualTo(1));
            Assert.That((int)CuResult.CUDA_ERROR_OUT_OF_MEMORY, Is.EqualTo(2));
            Assert.That((int)CuResult.CUDA_ERROR_NOT_INITIALIZED, Is.EqualTo(3));
            Assert.That((int)CuResult.CUDA_ERROR_DEINITIALIZED, Is.EqualTo(4));
            Assert.That((int)CuResult.CUDA_ERROR_NO_DEVICE, Is.EqualTo(100));
            Assert.That((int)CuResult.CUDA_ERROR_INVALID_DEVICE, Is.EqualTo(101));
            Assert.That((int)CuResult.CUDA_ERROR_INVALID_IMAGE, Is.EqualTo(200));
            Assert.That((int)CuResult.CUDA_ERROR_INVALID_CONTEXT, Is.EqualTo(201));
            Assert.That((int)CuResult.CUDA_ERROR_INVALID_PTX, Is.EqualTo(218));
            Assert.That((int)CuResult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION, Is.EqualTo(222));
            Assert.That((int)CuResult.CUDA_ERROR_INVALID_HANDLE, Is.EqualTo(400));
            Assert.That((int)CuResult.CUDA_ERROR_NOT_FOUND, Is.EqualTo(500));
            Assert.That((int)CuResult.CUDA_ERROR_NOT_READY, Is.EqualTo(600));
            Assert.That((int)CuResult.CUDA_ERROR_ILLEGAL_ADDRESS, Is.EqualTo(700));
            Assert.That((int)CuResult.CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, Is.EqualTo(701));
            Assert.That((int)CuResult.CUDA_ERROR_LAUNCH_FAILED, Is.EqualTo(719));
            Assert.That((int)CuResult.CUDA_ERROR_NOT_SUPPORTED, Is.EqualTo(801));
            Assert.That((int)CuResult.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, Is.EqualTo(900));
            Assert.That((int)CuResult.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, Is.EqualTo(901));
            Assert.That((int)CuResult.CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, Is.EqualTo(908));
            Assert.That((int)CuResult.CUDA_ERROR_CONTAINED, Is.EqualTo(226));
            Assert.That((int)CuResult.CUDA_ERROR_UNKNOWN, Is.EqualTo(999));
            Assert.That((int)CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, Is.EqualTo(16));
            Assert.That((int)CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, Is.EqualTo(75));
            Assert.That((int)CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, Is.EqualTo(76));
            Assert.That((int)CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, Is.EqualTo(97));
            Assert.That((int)CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, Is.EqualTo(38));
            Assert.That((int)CuFunctionAttribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, Is.EqualTo(8));
            Assert.That((int)CuJitOption.CU_JIT_ERROR_LOG_BUFFER, Is.EqualTo(5));
            Assert.That((int)CuJitOption.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, Is.EqualTo(6));
            Assert.That((int)CuJitOption.CU_JIT_INFO_LOG_BUFFER, Is.EqualTo(3));
            Assert.That((int)CuStreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED, Is.EqualTo(2));
        });
    }

    [Test]
    public void CublasEnumsHaveTheHeaderValues()
    {
        Assert.Multiple(() =>
        {
            Assert.That((int)CublasStatus.CUBLAS_STATUS_NOT_INITIALIZED, Is.EqualTo(1));
            Assert.That((int)CublasStatus.CUBLAS_STATUS_ALLOC_FAILED, Is.EqualTo(3));
            Assert.That((int)CublasStatus.CUBLAS_STATUS_INVALID_VALUE, Is.EqualTo(7));
            Assert.That((int)CublasStatus.CUBLAS_STATUS_EXECUTION_FAILED, Is.EqualTo(13));
            Assert.That((int)CublasStatus.CUBLAS_STATUS_NOT_SUPPORTED, Is.EqualTo(15));
            Assert.That((int)CublasOperation.CUBLAS_OP_T, Is.EqualTo(1));
            Assert.That((int)CublasMath.CUBLAS_TF32_TENSOR_OP_MATH, Is.EqualTo(3));
            Assert.That((int)CublasComputeType.CUBLAS_COMPUTE_32F, Is.EqualTo(68));
            Assert.That((int)CublasComputeType.CUBLAS_COMPUTE_32F_FAST_TF32, Is.EqualTo(77));
            Assert.That((int)CudaDataType.CUDA_R_32F, Is.EqualTo(0));
            Assert.That((int)CudaDataType.CUDA_R_16BF, Is.EqualTo(14));
            Assert.That((int)CublasGemmAlgo.CUBLAS_GEMM_DEFAULT, Is.EqualTo(-1));
        });
    }

    [Test]
    public void LogicalLibraryNamesAreFixed()
    {
        Assert.That(NativeLibraries.Driver, Is.EqualTo("rlmixup-cuda"));
        Assert.That(NativeLibraries.Cublas, Is.EqualTo("rlmixup-cublas"));
        Assert.That(NativeLibraries.Cudnn, Is.EqualTo("rlmixup-cudnn"));
    }

    // ---- status → exception

    private static CuResult FakeAlloc(int bytes) => bytes > 0 ? CuResult.CUDA_ERROR_OUT_OF_MEMORY : CuResult.CUDA_SUCCESS;
    private static CublasStatus FakeGemm(int m) => m > 0 ? CublasStatus.CUBLAS_STATUS_INVALID_VALUE : CublasStatus.CUBLAS_STATUS_SUCCESS;

    [Test]
    public void DriverCheckNamesTheCallAndTheStatus()
    {
        Assert.DoesNotThrow(() => CuDriver.Check(FakeAlloc(0)));
        var e = Assert.Throws<CudaException>(() => CuDriver.Check(FakeAlloc(1 << 20)))!;
        Assert.Multiple(() =>
        {
            Assert.That(e.Library, Is.EqualTo("CUDA driver"));
            Assert.That(e.Call, Is.EqualTo("FakeAlloc(1 << 20)"));
            Assert.That(e.Status, Is.EqualTo("CUDA_ERROR_OUT_OF_MEMORY"));
            Assert.That(e.Message, Does.StartWith("CUDA driver: FakeAlloc(1 << 20) failed with CUDA_ERROR_OUT_OF_MEMORY"));
            Assert.That(e.Message, Does.Not.Contain("\n"));
        });
        if (!NativeLibraries.IsLoaded(NativeLibraries.Driver))
            Assert.That(e.Detail, Is.Empty, "without the driver there is no vendor text, and the check must not load it");
    }

    [Test]
    public void CheckNeverLoadsTheLibrary()
    {
        var before = NativeLibraries.IsLoaded(NativeLibraries.Cublas);
        Assert.Throws<CudaException>(() => Cublas.Check(FakeGemm(3)));
        Assert.That(NativeLibraries.IsLoaded(NativeLibraries.Cublas), Is.EqualTo(before));
    }

    [Test]
    public void CublasCheckNamesTheCallAndTheStatus()
    {
        Assert.DoesNotThrow(() => Cublas.Check(FakeGemm(0)));
        var e = Assert.Throws<CudaException>(() => Cublas.Check(FakeGemm(3)))!;
        Assert.That(e.Message, Does.StartWith("cuBLAS: FakeGemm(3) failed with CUBLAS_STATUS_INVALID_VALUE"));
    }

    [Test]
    public void UnknownStatusValuesPrintTheirNumber()
    {
        Assert.That(CuDriver.StatusName((CuResult)12345), Is.EqualTo("CUresult 12345"));
        Assert.That(Cublas.StatusName((CublasStatus)42), Is.EqualTo("cublasStatus_t 42"));
        Assert.That(CuDriver.StatusName(CuResult.CUDA_ERROR_ILLEGAL_ADDRESS), Is.EqualTo("CUDA_ERROR_ILLEGAL_ADDRESS"));
    }

    [Test]
    public void ErrorWithExtraTextKeepsOneLine()
    {
        var e = CuDriver.Error(CuResult.CUDA_ERROR_INVALID_PTX, "cuModuleLoadDataEx(mix)", "JIT log: ptxas error a | ptxas error b");
        Assert.That(e.Message, Does.Contain("cuModuleLoadDataEx(mix) failed with CUDA_ERROR_INVALID_PTX"));
        Assert.That(e.Message, Does.Contain("JIT log: ptxas error a | ptxas error b"));
    }

    [Test]
    public void JitLogIsCutAtTheFilledSizeAndFlattened()
    {
        var buffer = new byte[64];
        var text = "ptxas error   : line 3; bad\nptxas fatal   : failed\n"u8;
        text.CopyTo(buffer);
        buffer[text.Length] = 0;
        buffer[text.Length + 1] = (byte)'X'; // garbage after the terminator
        Assert.That(CudaModule.JitLog(buffer, (nuint)(text.Length + 1)),
            Is.EqualTo("ptxas error   : line 3; bad | ptxas fatal   : failed"));
        Assert.That(CudaModule.JitLog(buffer, 0), Is.Empty);
        Assert.That(CudaModule.JitLog(buffer, 10_000), Is.EqualTo("ptxas error   : line 3; bad | ptxas fatal   : failed"));
    }

    // ---- library search

    private sealed class FakeFs
    {
        public Dictionary<string, string> Vars { get; } = new();
        public HashSet<string> Files { get; } = new();
        public HashSet<string> Dirs { get; } = new();

        public void AddFile(string path)
        {
            Files.Add(path);
            for (var d = Path.GetDirectoryName(path); !string.IsNullOrEmpty(d); d = Path.GetDirectoryName(d)) Dirs.Add(d);
        }

        public NativeLibrarySearch.SearchEnvironment Env(string home = "/home/u") => new(
            v => Vars.TryGetValue(v, out var s) ? s : null,
            Files.Contains,
            Dirs.Contains,
            d => Dirs.Where(x => Path.GetDirectoryName(x) == d).Order(StringComparer.Ordinal).ToList(),
            d => Files.Where(x => Path.GetDirectoryName(x) == d).Order(StringComparer.Ordinal).ToList(),
            home);
    }

    private static List<string> Paths(NativeLibraries.LibrarySpec spec, FakeFs fs) =>
        NativeLibrarySearch.Candidates(spec, fs.Env()).Select(c => c.Path).ToList();

    [Test]
    public void EmptyMachineTriesOnlyTheBareSonames()
    {
        var fs = new FakeFs();
        Assert.That(Paths(NativeLibraries.DriverSpec, fs), Is.EqualTo(new[] { "libcuda.so.1", "libcuda.so" }));
        Assert.That(Paths(NativeLibraries.CublasSpec, fs), Is.EqualTo(new[] { "libcublas.so.13", "libcublas.so.12", "libcublas.so" }));
        Assert.That(Paths(NativeLibraries.CudnnSpec, fs), Is.EqualTo(new[] { "libcudnn.so.9", "libcudnn.so" }));
    }

    [Test]
    public void FileOverrideComesFirstEvenWhenMissing()
    {
        var fs = new FakeFs();
        fs.AddFile("/usr/local/cuda/lib64/libcublas.so.12");
        fs.Vars["RLMIXUP_CUBLAS_LIB"] = "/opt/mine/libcublas.so.12";
        var paths = Paths(NativeLibraries.CublasSpec, fs);
        Assert.That(paths[0], Is.EqualTo("/opt/mine/libcublas.so.12"));
        Assert.That(paths, Does.Contain("/usr/local/cuda/lib64/libcublas.so.12"));
        // The driver's override variable is separate.
        Assert.That(Paths(NativeLibraries.DriverSpec, fs)[0], Is.EqualTo("libcuda.so.1"));
    }

    [Test]
    public void DirectoryOverrideComesBeforeTheSystemLoader()
    {
        var fs = new FakeFs();
        fs.Vars["RLMIXUP_CUDA_LIB"] = "/drv/libcuda.so.1";
        fs.Vars["RLMIXUP_CUDA_LIB_DIR"] = "/libs";
        Assert.That(Paths(NativeLibraries.DriverSpec, fs),
            Is.EqualTo(new[] { "/drv/libcuda.so.1", "/libs/libcuda.so.1", "/libs/libcuda.so", "libcuda.so.1", "libcuda.so" }));
    }

    [Test]
    public void StandardFoldersInOrderThenLdLibraryPathThenConda()
    {
        var fs = new FakeFs();
        fs.AddFile("/ld/one/libcublas.so.12");
        fs.AddFile("/toolkit/lib64/libcublas.so.12");
        fs.AddFile("/usr/lib/x86_64-linux-gnu/libcublas.so.12");
        fs.AddFile("/usr/local/cuda/lib64/libcublas.so.13");
        fs.AddFile("/usr/local/cuda/lib64/libcublas.so.12");
        fs.AddFile("/conda/lib/libcublas.so.12");
        fs.Vars["CUDA_HOME"] = "/toolkit";
        fs.Vars["LD_LIBRARY_PATH"] = "/ld/one::/ld/two/";
        fs.Vars["CONDA_PREFIX"] = "/conda";
        Assert.That(Paths(NativeLibraries.CublasSpec, fs), Is.EqualTo(new[]
        {
            "libcublas.so.13", "libcublas.so.12", "libcublas.so",
            "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.12",
            "/usr/lib/x86_64-linux-gnu/libcublas.so.12",
            "/toolkit/lib64/libcublas.so.12",
            "/ld/one/libcublas.so.12",
            "/conda/lib/libcublas.so.12",
        }));
        // The folders searched include the empty ones, for the error message.
        var folders = NativeLibrarySearch.SearchFolders(NativeLibraries.CublasSpec, fs.Env()).ToList();
        Assert.That(folders, Does.Contain("/ld/two"));
        Assert.That(folders, Does.Contain("/usr/local/cuda/targets/x86_64-linux/lib"));
        Assert.That(folders.IndexOf("/ld/one"), Is.LessThan(folders.IndexOf("/conda/lib")));
    }

    [Test]
    public void WithinAFolderTheNewestSonameComesFirstAndOtherMajorsAreStillTried()
    {
        var fs = new FakeFs();
        foreach (var f in new[] { "libcudnn.so", "libcudnn.so.8", "libcudnn.so.9.1.0", "libcudnn.so.9", "libcudnn.so.9.6.0", "libcudnn_ops.so.9", "libcudnn.so.9.x" })
            fs.AddFile("/usr/lib/x86_64-linux-gnu/" + f);
        Assert.That(Paths(NativeLibraries.CudnnSpec, fs).Skip(2).Select(Path.GetFileName), Is.EqualTo(new[]
        {
            // the accepted major: the soname, then fuller versions newest first; another major
            // (tried, so its version can be named); the development link last
            "libcudnn.so.9", "libcudnn.so.9.6.0", "libcudnn.so.9.1.0", "libcudnn.so.8", "libcudnn.so",
        }));
        fs = new FakeFs();
        foreach (var f in new[] { "libcublas.so.12", "libcublas.so.13", "libcublas.so.11", "libcublasLt.so.13" })
            fs.AddFile("/usr/local/cuda/lib64/" + f);
        Assert.That(Paths(NativeLibraries.CublasSpec, fs).Skip(3).Select(Path.GetFileName),
            Is.EqualTo(new[] { "libcublas.so.13", "libcublas.so.12", "libcublas.so.11" }));
    }

    /// <summary>The layout of the GPU machines: PyTorch's venv with CUDA 13's wheels, python3 on the PATH, VIRTUAL_ENV unset.</summary>
    private static FakeFs Cuda13Venv()
    {
        var fs = new FakeFs();
        const string sp = "/opt/torch/.venv/lib/python3.12/site-packages";
        fs.AddFile("/opt/torch/.venv/bin/python3");
        fs.AddFile("/opt/torch/.venv/pyvenv.cfg");
        fs.AddFile($"{sp}/nvidia/cu13/lib/libcublas.so.13");
        fs.AddFile($"{sp}/nvidia/cu13/lib/libcublasLt.so.13");
        fs.AddFile($"{sp}/nvidia/cu13/lib/libnvrtc.so.13");
        fs.AddFile($"{sp}/nvidia/cudnn/lib/libcudnn.so.9");
        fs.AddFile($"{sp}/nvidia/cudnn/lib/libcudnn_graph.so.9");
        fs.AddFile("/usr/bin/python3");
        fs.Vars["PATH"] = "/opt/torch/.venv/bin:/usr/local/bin:/usr/bin";
        return fs;
    }

    [Test]
    public void ACuda13VenvIsFoundThroughThePythonOnThePathWithoutVirtualEnv()
    {
        var fs = Cuda13Venv();
        Assert.That(NativeLibrarySearch.PythonOnPath(fs.Env()), Is.EqualTo(("/opt/torch/.venv", true)));
        const string sp = "/opt/torch/.venv/lib/python3.12/site-packages";
        Assert.That(Paths(NativeLibraries.CublasSpec, fs).Skip(3), Is.EqualTo(new[] { $"{sp}/nvidia/cu13/lib/libcublas.so.13" }));
        Assert.That(Paths(NativeLibraries.CudnnSpec, fs).Skip(2), Is.EqualTo(new[] { $"{sp}/nvidia/cudnn/lib/libcudnn.so.9" }));
        var folders = NativeLibrarySearch.SearchFolders(NativeLibraries.CublasSpec, fs.Env());
        Assert.That(folders, Does.Contain($"{sp}/nvidia/cublas/lib").And.Contain($"{sp}/nvidia/cu13/lib").And.Contain($"{sp}/nvidia/cu12/lib"));
        // Without the venv's python3 first on the PATH, nothing of it is searched.
        fs.Vars["PATH"] = "/usr/bin";
        Assert.That(Paths(NativeLibraries.CublasSpec, fs).Skip(3), Is.Empty);
        fs.Vars["VIRTUAL_ENV"] = "/opt/torch/.venv";
        Assert.That(Paths(NativeLibraries.CublasSpec, fs).Skip(3), Is.EqualTo(new[] { $"{sp}/nvidia/cu13/lib/libcublas.so.13" }));
    }

    [Test]
    public void SitePackagesInOrderTheNewestPythonFirstAndEachLibraryItsOwnWheel()
    {
        var fs = new FakeFs();
        fs.AddFile("/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublas.so.12");
        fs.AddFile("/usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib/libcublas.so.12");
        fs.AddFile("/venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12");
        fs.AddFile("/conda/lib/python3.12/site-packages/nvidia/cu12/lib/libcublas.so.12");
        fs.AddFile("/usr/lib/python3.9/site-packages/nvidia/cudnn/lib/libcudnn.so.9");
        fs.AddFile("/usr/lib/python3.12/dist-packages/nvidia/cudnn/lib/libcudnn.so.9");
        fs.Vars["VIRTUAL_ENV"] = "/venv";
        fs.Vars["CONDA_PREFIX"] = "/conda";
        Assert.That(Paths(NativeLibraries.CublasSpec, fs).Skip(3), Is.EqualTo(new[]
        {
            "/venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12",
            "/conda/lib/python3.12/site-packages/nvidia/cu12/lib/libcublas.so.12",
            "/usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib/libcublas.so.12",
            "/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublas.so.12",
        }));
        Assert.That(Paths(NativeLibraries.CudnnSpec, fs).Skip(2), Is.EqualTo(new[]
        {
            "/usr/lib/python3.12/dist-packages/nvidia/cudnn/lib/libcudnn.so.9",
            "/usr/lib/python3.9/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
        }));
        // The driver does not ship in wheels: no site-packages folders for it.
        Assert.That(NativeLibrarySearch.SearchFolders(NativeLibraries.DriverSpec, fs.Env())
            .Any(f => f.Contains("-packages/", StringComparison.Ordinal)), Is.False);
    }

    [Test]
    public void NothingLoadsGivesOneLineNamingEveryPathTriedWithTheLoadersReason()
    {
        var notALibrary = Path.Combine(Path.GetTempPath(), $"rlmixup-not-a-library-{Environment.ProcessId}.so");
        File.WriteAllText(notALibrary, "not an ELF file");
        try
        {
            var candidates = new NativeLibrarySearch.Candidate[]
            {
                new("/nonexistent/rlmixup/libcublas.so.12", "/nonexistent/rlmixup"),
                new("librlmixup-no-such-library.so.1", null),
                new(notALibrary, Path.GetDirectoryName(notALibrary)),
            };
            var hint = NativeLibraries.Hint(NativeLibraries.CublasSpec, ["/nonexistent/rlmixup", "/other"]);
            var load = NativeLibraries.LoadFirst(NativeLibraries.CublasSpec, candidates, [], hint, out _);
            Assert.That(load.Loaded, Is.False);
            var e = load.Error!;
            Assert.Multiple(() =>
            {
                Assert.That(e.Message, Does.Not.Contain("\n"));
                Assert.That(e.Message, Does.StartWith("cuBLAS (libcublas) not found; tried "));
                Assert.That(e.Message, Does.Contain("/nonexistent/rlmixup/libcublas.so.12 (missing)"));
                Assert.That(e.Message, Does.Contain("librlmixup-no-such-library.so.1 (cannot open shared object file: No such file or directory)"),
                    "a bare name keeps the loader's reason");
                Assert.That(e.Message, Does.Contain(notALibrary + " (file too short)"), "an existing file that fails to load says why, in the loader's words");
                Assert.That(e.Message, Does.Not.Contain("consider using a tool like strace"), "the runtime's advice is cut");
                Assert.That(e.Message, Does.Contain("Searched folders: /nonexistent/rlmixup, /other."));
                Assert.That(e.Message, Does.Contain("RLMIXUP_CUBLAS_LIB"));
                Assert.That(e.Message, Does.Contain("RLMIXUP_CUDA_LIB_DIR"));
                Assert.That(e.Tried, Has.Count.EqualTo(3));
            });
        }
        finally
        {
            File.Delete(notALibrary);
        }
    }

    [Test]
    public void OverridesPointingAtNothingAreAllNamedInTheError()
    {
        // The real search order for the driver, with both override variables pointing at files that
        // do not exist. The stem is replaced by one no machine has, so that the test answers the
        // same on a machine with a GPU.
        var fs = new FakeFs();
        fs.Vars["RLMIXUP_CUDA_LIB"] = "/nonexistent/override/libcuda.so.1";
        fs.Vars["RLMIXUP_CUDA_LIB_DIR"] = "/nonexistent/dir";
        var spec = NativeLibraries.DriverSpec with { Stem = "librlmixup-absent-cuda" };
        var env = fs.Env();
        var folders = NativeLibrarySearch.SearchFolders(spec, env);
        var load = NativeLibraries.LoadFirst(spec, NativeLibrarySearch.Candidates(spec, env), folders, NativeLibraries.Hint(spec, folders), out _);
        var e = load.Error!;
        Assert.Multiple(() =>
        {
            Assert.That(e.Tried, Is.EqualTo(new[]
            {
                "/nonexistent/override/libcuda.so.1 (missing)",
                "/nonexistent/dir/librlmixup-absent-cuda.so.1 (missing)",
                "/nonexistent/dir/librlmixup-absent-cuda.so (missing)",
                "librlmixup-absent-cuda.so.1 (cannot open shared object file: No such file or directory)",
                "librlmixup-absent-cuda.so (cannot open shared object file: No such file or directory)",
            }));
            Assert.That(e.Message, Does.StartWith("CUDA driver (libcuda) not found; tried /nonexistent/override/libcuda.so.1 (missing), "));
            Assert.That(e.Message, Does.Contain("Searched folders: /nonexistent/dir, /usr/local/cuda/lib64"));
            Assert.That(e.Message, Does.Contain("Set RLMIXUP_CUDA_LIB to the library file or RLMIXUP_CUDA_LIB_DIR to its folder."));
            Assert.That(e.Message, Does.Not.Contain("\n"));
        });
    }

    [Test]
    public void LoadFirstReturnsTheFirstFileThatLoads()
    {
        // libc is on every Linux machine; the loader's answer must be the candidate itself. The
        // version probe is left out: libc has no cuDriverGetVersion.
        var libc = new[] { "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6" }.FirstOrDefault(File.Exists);
        if (libc == null) Assert.Ignore("no libc.so.6 in the usual folders");
        var load = NativeLibraries.LoadFirst(NativeLibraries.DriverSpec with { Version = null },
            [new("/nonexistent/libcuda.so.1", "/nonexistent"), new(libc!, Path.GetDirectoryName(libc))], [], "hint", out var handle);
        Assert.That(handle, Is.Not.EqualTo(IntPtr.Zero));
        Assert.That(load.Path, Is.EqualTo(libc));
        // With the probe, libc is refused by name: it is not the library it stands for.
        load = NativeLibraries.LoadFirst(NativeLibraries.DriverSpec, [new(libc!, Path.GetDirectoryName(libc))], [], "hint", out _);
        Assert.That(load.Error!.Tried.Single(), Is.EqualTo($"{libc} (exports no cuDriverGetVersion: not the library it is named after)"));
    }

    [Test]
    public void UnknownLogicalNameIsRejected()
    {
        Assert.Throws<ArgumentException>(() => NativeLibraries.Require("libcuda.so.1"));
        Assert.That(NativeLibraries.LoadedPath("nothing"), Is.Null);
    }

    [Test]
    public void TryInitNeverThrowsAndGivesOneLine()
    {
        bool ok = false;
        string reason = "unset";
        Assert.DoesNotThrow(() => ok = CudaDevice.TryInit(out reason));
        if (ok)
        {
            Assert.That(reason, Is.Empty);
            return;
        }
        Assert.That(reason, Is.Not.Empty);
        Assert.That(reason, Does.Not.Contain("\n"));
        if (!NativeLibraries.TryRequire(NativeLibraries.Driver, out _))
            Assert.That(reason, Does.StartWith("no CUDA driver found (tried libcuda.so.1, libcuda.so"));
        // A second call answers the same without searching again.
        Assert.That(CudaDevice.TryInit(out var again), Is.False);
        Assert.That(again, Is.EqualTo(reason));
    }

    [Test]
    public void InitFailureReasonsAreSpecific()
    {
        Assert.That(CudaDevice.InitFailureReason(new CudaException("CUDA driver", "cuInit(0)", "CUDA_ERROR_NO_DEVICE", "")),
            Is.EqualTo("CUDA driver found but no device (CUDA_ERROR_NO_DEVICE)"));
        Assert.That(CudaDevice.InitFailureReason(new CudaLibraryNotFoundException("CUDA driver (libcuda)", ["libcuda.so.1", "/x/libcuda.so"], "h")),
            Does.StartWith("no CUDA driver found (tried libcuda.so.1, /x/libcuda.so"));
        Assert.That(CudaDevice.FormatVersion(12040), Is.EqualTo("12.4"));
        Assert.That(CudaDevice.FormatVersion(13000), Is.EqualTo("13.0"));
    }

    // ---- kernel arguments

    [StructLayout(LayoutKind.Sequential)]
    private struct Triple { public int A, B, C; }

    [Test]
    public unsafe void KernelArgsPackEachValueAtItsNaturalAlignment()
    {
        var args = new KernelArgs()
            .Add(7)
            .Add(new CUdeviceptr(0xDEAD_BEEF_0000_1000))
            .Add(2.5f)
            .Add(new Triple { A = 1, B = -2, C = 3 })
            .Add(-1.25)
            .Add((byte)9);
        Assert.That(args.Count, Is.EqualTo(6));
        var offsets = Enumerable.Range(0, args.Count).Select(args.OffsetOf).ToArray();
        Assert.That(offsets, Is.EqualTo(new[] { 0, 8, 16, 24, 40, 48 }));
        Assert.That(args.Data.Length, Is.EqualTo(49));
        var seen = args.WithPointers(p =>
        {
            Assert.That(*(int*)p[0], Is.EqualTo(7));
            Assert.That(*(ulong*)p[1], Is.EqualTo(0xDEAD_BEEF_0000_1000UL));
            Assert.That(*(float*)p[2], Is.EqualTo(2.5f));
            var t = *(Triple*)p[3];
            Assert.That((t.A, t.B, t.C), Is.EqualTo((1, -2, 3)));
            Assert.That(*(double*)p[4], Is.EqualTo(-1.25));
            Assert.That(*(byte*)p[5], Is.EqualTo((byte)9));
            return (nint)p[5] - (nint)p[0];
        });
        Assert.That(seen, Is.EqualTo((nint)48));
        // Packed as C lays out a struct: each value at its own alignment, no wider.
        var tight = new KernelArgs().Add(1).Add(2f).Add((short)3).Add(4L).Add(5);
        Assert.That(Enumerable.Range(0, tight.Count).Select(tight.OffsetOf), Is.EqualTo(new[] { 0, 4, 8, 16, 24 }));
    }

    [Test]
    public unsafe void KernelArgsGrowAndClear()
    {
        var args = new KernelArgs();
        for (var i = 0; i < 100; i++) args.Add((long)i * 3);
        var sum = args.WithPointers(p =>
        {
            long s = 0;
            for (var i = 0; i < 100; i++) s += *(long*)p[i];
            return s;
        });
        Assert.That(sum, Is.EqualTo(3L * 99 * 100 / 2));
        args.Clear();
        Assert.That(args.Count, Is.Zero);
        Assert.That(args.WithPointers(p => p == null), Is.True, "no arguments → a null kernelParams");
        args.Add(5);
        Assert.That(args.OffsetOf(0), Is.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => args.OffsetOf(1));
    }

    [Test]
    public void LaunchConfigurationIsValidatedBeforeTheDriver()
    {
        Assert.DoesNotThrow(() => CudaFunction.ValidateLaunch(new Dim3(10, 2), 256, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaFunction.ValidateLaunch(0, 256, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaFunction.ValidateLaunch(1, new Dim3(32, 0), 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaFunction.ValidateLaunch(1, new Dim3(64, 32), 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaFunction.ValidateLaunch(1, 32, -1));
        Assert.That(((Dim3)7).Volume, Is.EqualTo(7UL));
    }

    // ---- row-major GEMM through the column-major call

    /// <summary>cuBLAS's sgemm semantics on host arrays (column-major, leading dimensions), as the reference of the mapping.</summary>
    private static void ColumnMajorSgemm(CublasOperation ta, CublasOperation tb, int m, int n, int k,
        float alpha, float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc)
    {
        for (var j = 0; j < n; j++)
            for (var i = 0; i < m; i++)
            {
                double s = 0;
                for (var p = 0; p < k; p++)
                {
                    var av = ta == CublasOperation.CUBLAS_OP_N ? a[i + p * lda] : a[p + i * lda];
                    var bv = tb == CublasOperation.CUBLAS_OP_N ? b[p + j * ldb] : b[j + p * ldb];
                    s += (double)av * bv;
                }
                c[i + j * ldc] = (float)(alpha * s + beta * c[i + j * ldc]);
            }
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void RowMajorGemmMapsToTheSwappedColumnMajorCall(bool transA, bool transB)
    {
        const int m = 3, n = 5, k = 4;
        var rng = new Random(7);
        // Row-major storage with padded row strides.
        int aRows = transA ? k : m, aCols = transA ? m : k, lda = aCols + 2;
        int bRows = transB ? n : k, bCols = transB ? k : n, ldb = bCols + 1;
        const int ldc = n + 3;
        var a = Enumerable.Range(0, aRows * lda).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var b = Enumerable.Range(0, bRows * ldb).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var c = Enumerable.Range(0, m * ldc).Select(_ => (float)rng.NextDouble()).ToArray();
        const float alpha = 1.5f, beta = 0.25f;

        var expected = (float[])c.Clone();
        for (var i = 0; i < m; i++)
            for (var j = 0; j < n; j++)
            {
                double s = 0;
                for (var p = 0; p < k; p++)
                    s += (double)(transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                expected[i * ldc + j] = (float)(alpha * s + beta * c[i * ldc + j]);
            }

        var g = ColumnMajorGemm.FromRowMajor(transA, transB, m, n, k, lda, ldb, ldc);
        var actual = (float[])c.Clone();
        ColumnMajorSgemm(g.TransFirst, g.TransSecond, g.M, g.N, g.K, alpha, b, g.LdFirst, a, g.LdSecond, beta, actual, g.Ldc);
        Assert.That(actual, Is.EqualTo(expected).Within(1e-6f));
    }

    [Test]
    public void RowMajorGemmRejectsShortRowStrides()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ColumnMajorGemm.FromRowMajor(false, false, 3, 5, 4, lda: 3, ldb: 5, ldc: 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => ColumnMajorGemm.FromRowMajor(true, false, 3, 5, 4, lda: 2, ldb: 5, ldc: 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => ColumnMajorGemm.FromRowMajor(false, true, 3, 5, 4, lda: 4, ldb: 3, ldc: 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => ColumnMajorGemm.FromRowMajor(false, false, 3, 5, 4, lda: 4, ldb: 5, ldc: 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => ColumnMajorGemm.FromRowMajor(false, false, -1, 5, 4, 4, 5, 5));
        Assert.DoesNotThrow(() => ColumnMajorGemm.FromRowMajor(false, false, 0, 0, 0, 1, 1, 1));
    }
}
