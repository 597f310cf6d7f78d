using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NUnit.Framework;
using RlMixup.Core.Cuda.Native;

[assembly: RlMixup.Tests.NoSoftwareDeviceViolations]

namespace RlMixup.Tests;

/// <summary>
/// The software device (tests/SoftwareDevice): a CPU implementation of the CUDA driver API, cuBLAS
/// and cuDNN subset the backend calls, built beside the tests (swdev/). The test assembly points the
/// CUDA backend at it before anything loads a CUDA library, so every CUDA test runs on it in-process,
/// unless RLMIXUP_CUDA_LIB_DIR is already set (a GPU machine, or another folder on purpose). The
/// backend's caching allocator is switched to exact-size allocations there (RLMIXUP_CUDA_NO_CACHING).
/// </summary>
public static class SoftwareDevice
{
    /// <summary>The folder holding libswdev.so and the library names linked to it.</summary>
    public static string Folder { get; } = Path.Combine(AppContext.BaseDirectory, "swdev");

    public static bool Built => File.Exists(Path.Combine(Folder, "libswdev.so"));

    /// <summary>True when the CUDA backend of this process resolves to the software device.</summary>
    public static bool Active { get; private set; }

    [ModuleInitializer]
    internal static void PointTheBackendAtIt()
    {
        if (!Built || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(NativeLibraries.DirVariable))) return;
        Environment.SetEnvironmentVariable(NativeLibraries.DirVariable, Folder);
        // Exact-size allocations: an overrun leaves its allocation, where the device sees it.
        Environment.SetEnvironmentVariable(RlMixup.Core.Cuda.CudaBackend.NoCachingVariable, "1");
        Active = true;
    }

    /// <summary>Assert.Ignore unless the software device is what this process uses as its GPU.</summary>
    public static void RequireOrIgnore()
    {
        if (!Active) Assert.Ignore(Built ? $"{NativeLibraries.DirVariable} is set elsewhere: the CUDA tests use that device" : $"the software device is not built ({Folder})");
    }

    private static nint Handle => NativeLibrary.Load(Path.Combine(Folder, "libswdev.so"));

    /// <summary>
    /// The violations the device recorded since the last call (one per line), and forgets them;
    /// <paramref name="reset"/> also clears a sticky fault. Empty when the software device is not in use.
    /// </summary>
    public static unsafe string[] TakeViolations(bool reset = false)
    {
        if (!Active || !NativeLibraries.IsLoaded(NativeLibraries.Driver)) return [];
        var take = (delegate* unmanaged<byte*, int, int, int>)NativeLibrary.GetExport(Handle, "rlmixupSoftwareDeviceViolations");
        var buf = new byte[1 << 16];
        int n;
        fixed (byte* p = buf) n = take(p, buf.Length, reset ? 1 : 0);
        if (n == 0) return [];
        string text = System.Text.Encoding.UTF8.GetString(buf, 0, Array.IndexOf(buf, (byte)0) is var z and >= 0 ? z : buf.Length);
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Every exported API function as "name|return kind:size|param kind:size|...".</summary>
    public static unsafe string[] Exports()
    {
        var f = (delegate* unmanaged<byte*>)NativeLibrary.GetExport(Handle, "rlmixupSoftwareDeviceExports");
        return Marshal.PtrToStringUTF8((nint)f())!.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}

/// <summary>
/// After every test: a violation the software device reported and the test did not take (a test
/// that provokes one on purpose takes it with <see cref="SoftwareDevice.TakeViolations"/>) fails the
/// test that caused it, and the device's sticky fault is cleared for the next.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class NoSoftwareDeviceViolationsAttribute : Attribute, ITestAction
{
    public ActionTargets Targets => ActionTargets.Test;

    public void BeforeTest(NUnit.Framework.Interfaces.ITest test) { }

    public void AfterTest(NUnit.Framework.Interfaces.ITest test)
    {
        var v = SoftwareDevice.TakeViolations(reset: true);
        if (v.Length > 0) Assert.Fail($"the software device reported {v.Length} violation(s): {string.Join("; ", v.Take(5))}");
    }
}
