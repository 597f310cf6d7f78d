using System.Text;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>A compute capability, e.g. 9.0 for an H100/H200.</summary>
public readonly record struct ComputeCapability(int Major, int Minor) : IComparable<ComputeCapability>
{
    public int CompareTo(ComputeCapability other) => (Major, Minor).CompareTo((other.Major, other.Minor));
    public override string ToString() => $"{Major}.{Minor}";
}

/// <summary>What <c>info</c> prints about a device: one record, one line.</summary>
public sealed record CudaDeviceInfo(
    int Ordinal, string Name, ComputeCapability ComputeCapability, int SmCount, long TotalMemoryBytes,
    int MaxSharedMemoryPerBlockOptin, int L2CacheBytes, int ClockRateKHz, int MemoryBusWidthBits,
    int DriverVersion, string DriverPath)
{
    /// <summary>"12.4" from the driver API's 12040.</summary>
    public string DriverVersionText => CudaDevice.FormatVersion(DriverVersion);

    public override string ToString() =>
        $"GPU {Ordinal}: {Name}, compute {ComputeCapability}, {SmCount} SMs, {TotalMemoryBytes / (1024.0 * 1024 * 1024):F1} GiB, " +
        $"{MaxSharedMemoryPerBlockOptin / 1024} KiB shared/block (opt-in), L2 {L2CacheBytes / (1024 * 1024)} MiB, " +
        $"{ClockRateKHz / 1000} MHz, {MemoryBusWidthBits}-bit bus; CUDA driver {DriverVersionText} ({DriverPath})";
}

/// <summary>
/// One CUDA device. <see cref="TryInit"/> is the non-throwing probe (loads libcuda, cuInit, counts
/// devices); <see cref="Get"/> returns a device with its properties read once.
/// </summary>
public sealed class CudaDevice
{
    private static readonly object InitGate = new();
    private static bool _initDone;
    private static string? _initFailure;

    internal CUdevice Handle { get; }
    public int Ordinal { get; }
    public string Name { get; }
    public int SmCount { get; }
    public long TotalMemory { get; }
    public ComputeCapability ComputeCapability { get; }
    /// <summary>cuDriverGetVersion: 1000·major + 10·minor (12040 is 12.4).</summary>
    public static int DriverVersion { get { EnsureInitialized(); return _driverVersion; } }
    private static int _driverVersion;

    private CudaDevice(int ordinal)
    {
        CuDriver.Check(CuDriver.cuDeviceGet(out var dev, ordinal));
        Handle = dev;
        Ordinal = ordinal;
        Name = ReadName(dev);
        SmCount = Attribute(CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        CuDriver.Check(CuDriver.cuDeviceTotalMem(out var total, dev));
        TotalMemory = checked((long)total);
        ComputeCapability = new ComputeCapability(
            Attribute(CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
            Attribute(CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR));
    }

    private static unsafe string ReadName(CUdevice dev)
    {
        const int size = 256;
        byte* buffer = stackalloc byte[size];
        CuDriver.Check(CuDriver.cuDeviceGetName(buffer, size, dev));
        var length = new ReadOnlySpan<byte>(buffer, size).IndexOf((byte)0);
        return Encoding.UTF8.GetString(buffer, length < 0 ? size : length);
    }

    /// <summary>cuDeviceGetAttribute for this device.</summary>
    public int Attribute(CuDeviceAttribute attribute)
    {
        CuDriver.Check(CuDriver.cuDeviceGetAttribute(out var value, attribute, Handle));
        return value;
    }

    /// <summary>The largest dynamic shared memory a block may opt in to (cuFuncSetAttribute).</summary>
    public int MaxSharedMemoryPerBlockOptin => Attribute(CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);

    public CudaDeviceInfo Info() => new(
        Ordinal, Name, ComputeCapability, SmCount, TotalMemory, MaxSharedMemoryPerBlockOptin,
        Attribute(CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE),
        Attribute(CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_CLOCK_RATE),
        Attribute(CuDeviceAttribute.CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH),
        DriverVersion, NativeLibraries.LoadedPath(NativeLibraries.Driver) ?? "?");

    /// <summary>The number of CUDA devices (initialises the driver; throws when it cannot).</summary>
    public static int Count
    {
        get
        {
            EnsureInitialized();
            CuDriver.Check(CuDriver.cuDeviceGetCount(out var count));
            return count;
        }
    }

    /// <summary>Device <paramref name="ordinal"/>; throws <see cref="CudaLibraryNotFoundException"/> or <see cref="CudaException"/> when CUDA is unavailable.</summary>
    public static CudaDevice Get(int ordinal = 0)
    {
        EnsureInitialized();
        var count = Count;
        if (ordinal < 0 || ordinal >= count)
            throw new ArgumentOutOfRangeException(nameof(ordinal), ordinal, $"CUDA device {ordinal} does not exist ({count} device(s))");
        return new CudaDevice(ordinal);
    }

    /// <summary>
    /// Loads the driver and initialises it once per process. Throws what failed:
    /// <see cref="CudaLibraryNotFoundException"/> or <see cref="CudaException"/> (cuInit's status).
    /// </summary>
    internal static void EnsureInitialized()
    {
        lock (InitGate)
        {
            if (_initDone) return;
            NativeLibraries.Require(NativeLibraries.Driver);
            CuDriver.Check(CuDriver.cuInit(0));
            CuDriver.Check(CuDriver.cuDriverGetVersion(out _driverVersion));
            _initDone = true;
        }
    }

    /// <summary>
    /// Whether CUDA is usable here: false with a one-line reason ("no CUDA driver found (tried …)",
    /// "CUDA driver found but no device", …) instead of an exception. Never throws.
    /// </summary>
    public static bool TryInit(out string reason)
    {
        lock (InitGate)
        {
            if (_initFailure != null) { reason = _initFailure; return false; }
            try
            {
                EnsureInitialized();
                CuDriver.Check(CuDriver.cuDeviceGetCount(out var count));
                reason = count > 0 ? "" : "CUDA driver found but no device";
                if (count == 0) _initFailure = reason;
                return count > 0;
            }
            catch (Exception e)
            {
                reason = _initFailure = OneLine(InitFailureReason(e));
                return false;
            }
        }
    }

    internal static string InitFailureReason(Exception e) => e switch
    {
        CudaLibraryNotFoundException nf => $"no CUDA driver found (tried {string.Join(", ", nf.Tried)}; set RLMIXUP_CUDA_LIB to libcuda.so.1)",
        CudaException { Status: nameof(CuResult.CUDA_ERROR_NO_DEVICE) } ce => $"CUDA driver found but no device ({ce.Status})",
        CudaException ce => $"CUDA driver at {NativeLibraries.LoadedPath(NativeLibraries.Driver) ?? "?"} failed: {ce.Message}",
        EntryPointNotFoundException ep => $"the CUDA driver is too old for this engine: {ep.Message}",
        _ => $"CUDA initialisation failed: {e.GetType().Name}: {e.Message}",
    };

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");

    /// <summary>"12.4" from 12040.</summary>
    public static string FormatVersion(int version) => $"{version / 1000}.{version % 1000 / 10}";

    public override string ToString() => $"GPU {Ordinal}: {Name} (compute {ComputeCapability}, {SmCount} SMs)";
}
