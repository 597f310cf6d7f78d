using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// What <c>info</c> says about CUDA before any backend exists: one line per library (driver,
/// cuBLAS, cuDNN), each searched and loaded on its own, with the version and the file it loaded or
/// every path it tried and why each failed, so one missing library does not hide the others; the
/// companions each library loaded or could not; the device. Nothing here throws for a missing
/// library or device.
/// </summary>
public static class CudaProbe
{
    private const int Label = 13;

    /// <summary>The library and device lines; <paramref name="verbose"/> adds each library's bound symbols, present or missing.</summary>
    public static IEnumerable<string> Lines(bool verbose)
    {
        foreach (var spec in NativeLibraries.All)
        {
            var load = NativeLibraries.Status(spec.LogicalName);
            string label = load.ShortName.PadRight(Label);
            if (!load.Loaded)
            {
                yield return $"{label}{load.Error!.Message}";
                continue;
            }
            yield return $"{label}{load.Version ?? "version unknown"} ({load.Path})";
            if (load.Companions.Count > 0)
            {
                var failed = load.Companions.Where(c => !c.Loaded).ToList();
                string parts = $"{load.Companions.Count - failed.Count} of {load.Companions.Count} companions loaded";
                yield return $"{(load.ShortName + " parts").PadRight(Label)}{parts}" +
                    (failed.Count == 0 ? "" : $"; failed: {string.Join("; ", failed)}") +
                    (verbose && load.Companions.Any(c => c.Loaded) ? $"; loaded: {string.Join(", ", load.Companions.Where(c => c.Loaded))}" : "");
            }
            if (verbose)
            {
                int bound = NativeBindings.All.Count(b => b.Library == spec.LogicalName);
                var missing = NativeLibraries.MissingSymbols(spec.LogicalName);
                yield return $"{(load.ShortName + " binds").PadRight(Label)}" +
                    (missing.Count == 0 ? $"all {bound} bound symbols exported" : $"{missing.Count} of {bound} bound symbols MISSING: {string.Join(", ", missing)}");
            }
        }
        yield return $"{"device".PadRight(Label)}{DeviceLine()}";
    }

    private static string DeviceLine()
    {
        if (!CudaDevice.TryInit(out string reason)) return $"none: {reason}";
        try
        {
            int count = CudaDevice.Count;
            var d = CudaDevice.Get(0);
            return $"{d.Name}: compute capability {d.ComputeCapability}, {d.SmCount} SMs, {d.TotalMemory / (1L << 20)} MiB" +
                (count > 1 ? $" (device 0 of {count})" : "");
        }
        catch (Exception e) when (e is CudaException or EntryPointNotFoundException)
        {
            return $"unreadable: {e.Message.ReplaceLineEndings(" ")}";
        }
    }
}
