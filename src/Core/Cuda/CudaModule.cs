using System.Text;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>Grid or block dimensions of a launch.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public static implicit operator Dim3(int x) => new(checked((uint)x));
    public ulong Volume => (ulong)X * Y * Z;
    public override string ToString() => $"({X}, {Y}, {Z})";
}

/// <summary>
/// A loaded CUDA module: PTX JIT-compiled by the driver for the current device
/// (cuModuleLoadDataEx). A compile failure throws <see cref="CudaException"/> whose message carries
/// the JIT's error log on one line.
/// </summary>
public sealed class CudaModule : IDisposable
{
    private const int LogBytes = 16 * 1024;

    private readonly CUcontext _context;
    private readonly CUmodule _handle;
    private int _released;

    /// <summary>The module's name in messages (the embedded module's name, or "ptx").</summary>
    public string Name { get; }

    /// <summary>The JIT's informational log (register and spill counts with verbose JIT), possibly empty.</summary>
    public string InfoLog { get; }

    internal CUmodule Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _released) != 0, this);
            return _handle;
        }
    }

    private CudaModule(CUcontext context, CUmodule handle, string name, string infoLog)
    {
        _context = context;
        _handle = handle;
        Name = name;
        InfoLog = infoLog;
    }

    /// <summary>Loads the embedded PTX module <paramref name="name"/> (see <see cref="PtxModules"/>).</summary>
    public static CudaModule LoadEmbedded(CudaContext context, string name) => Load(context, PtxModules.Load(name), name);

    /// <summary>JIT-compiles <paramref name="ptx"/> in <paramref name="context"/>.</summary>
    public static unsafe CudaModule Load(CudaContext context, string ptx, string name = "ptx")
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(ptx);
        context.MakeCurrent();
        // NUL-terminated UTF-8: the driver reads PTX as a C string.
        var image = new byte[Encoding.UTF8.GetByteCount(ptx) + 1];
        Encoding.UTF8.GetBytes(ptx, image);
        var errorLog = new byte[LogBytes];
        var infoLog = new byte[LogBytes];
        var options = stackalloc CuJitOption[]
        {
            CuJitOption.CU_JIT_ERROR_LOG_BUFFER, CuJitOption.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
            CuJitOption.CU_JIT_INFO_LOG_BUFFER, CuJitOption.CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
        };
        fixed (byte* img = image, err = errorLog, info = infoLog)
        {
            // Each option value is pointer-sized: a buffer address, or a size cast to a pointer,
            // which the driver overwrites with the number of bytes it wrote.
            var values = stackalloc void*[] { err, (void*)(nuint)LogBytes, info, (void*)(nuint)LogBytes };
            var r = CuDriver.cuModuleLoadDataEx(out var module, img, 4, options, values);
            var errorText = JitLog(errorLog, (nuint)values[1]);
            var infoText = JitLog(infoLog, (nuint)values[3]);
            if (r != CuResult.CUDA_SUCCESS)
                throw CuDriver.Error(r, $"cuModuleLoadDataEx({name})",
                    errorText.Length > 0 ? $"JIT log: {errorText}" : "the JIT wrote no error log");
            return new CudaModule(context.Handle, module, name, infoText);
        }
    }

    /// <summary>
    /// The text of a JIT log buffer of which the driver reports <paramref name="filled"/> bytes
    /// used (terminator included), on one line: line breaks become " | ".
    /// </summary>
    internal static string JitLog(ReadOnlySpan<byte> buffer, nuint filled)
    {
        var n = (int)Math.Min((ulong)buffer.Length, (ulong)filled);
        var text = buffer[..n];
        var nul = text.IndexOf((byte)0);
        if (nul >= 0) text = text[..nul];
        var lines = Encoding.UTF8.GetString(text).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return string.Join(" | ", lines);
    }

    /// <summary>The kernel <paramref name="name"/> (its extern "C" name).</summary>
    public unsafe CudaFunction GetFunction(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var bytes = new byte[Encoding.UTF8.GetByteCount(name) + 1];
        Encoding.UTF8.GetBytes(name, bytes);
        CUfunction f;
        fixed (byte* p = bytes)
        {
            var r = CuDriver.cuModuleGetFunction(out f, Handle, p);
            if (r != CuResult.CUDA_SUCCESS) throw CuDriver.Error(r, $"cuModuleGetFunction({Name}, {name})");
        }
        return new CudaFunction(f, name, this);
    }

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~CudaModule() => Release();

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        try
        {
            CudaContext.BindQuietly(_context);
            CuDriver.cuModuleUnload(_handle);
        }
        catch (Exception)
        {
            // Release paths (Dispose and finalizers) never throw.
        }
    }
}

/// <summary>A kernel of a loaded module. Valid while the module is not disposed.</summary>
public sealed class CudaFunction
{
    private readonly CUfunction _handle;
    private readonly CudaModule? _module;

    public string Name { get; }

    internal CudaFunction(CUfunction handle, string name, CudaModule? module)
    {
        _handle = handle;
        Name = name;
        _module = module;
    }

    private CUfunction Handle
    {
        get
        {
            // Touching the module's handle throws ObjectDisposedException once it is unloaded.
            if (_module != null) _ = _module.Handle;
            return _handle;
        }
    }

    /// <summary>
    /// Queues the kernel on <paramref name="stream"/> with <paramref name="args"/> (in parameter
    /// order) and <paramref name="sharedBytes"/> of dynamic shared memory. Launch errors that the
    /// driver detects at once (bad configuration, too many resources) throw here; faults inside
    /// the kernel surface at the next synchronisation.
    /// </summary>
    public unsafe void Launch(Dim3 grid, Dim3 block, int sharedBytes, CudaStream stream, KernelArgs args)
    {
        ValidateLaunch(grid, block, sharedBytes);
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(args);
        var f = Handle;
        var s = stream.Handle;
        var r = args.WithPointers(p => CuDriver.cuLaunchKernel(f, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z,
            (uint)sharedBytes, s, p, null));
        if (r != CuResult.CUDA_SUCCESS)
            throw CuDriver.Error(r, $"cuLaunchKernel({Name}, grid {grid}, block {block}, {sharedBytes} B shared)");
    }

    internal static void ValidateLaunch(Dim3 grid, Dim3 block, int sharedBytes)
    {
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0)
            throw new ArgumentOutOfRangeException(nameof(grid), grid, "every grid dimension must be at least 1");
        if (block.X == 0 || block.Y == 0 || block.Z == 0)
            throw new ArgumentOutOfRangeException(nameof(block), block, "every block dimension must be at least 1");
        if (block.Volume > 1024)
            throw new ArgumentOutOfRangeException(nameof(block), block, $"a block has at most 1024 threads, not {block.Volume}");
        ArgumentOutOfRangeException.ThrowIfNegative(sharedBytes);
    }

    /// <summary>Lets launches use up to <paramref name="bytes"/> of dynamic shared memory (needed above 48 KiB).</summary>
    public void SetMaxDynamicSharedMemory(int bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        CuDriver.Check(CuDriver.cuFuncSetAttribute(Handle, CuFunctionAttribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes));
    }

    /// <summary>cuFuncGetAttribute (registers, static shared memory, max threads per block, ...).</summary>
    public int Attribute(CuFunctionAttribute attribute)
    {
        CuDriver.Check(CuDriver.cuFuncGetAttribute(out var value, attribute, Handle));
        return value;
    }

    public override string ToString() => Name;
}
