using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// The raw device allocator under <see cref="CachingAllocator"/>: the CUDA backend's implementation
/// calls cuMemAlloc_v2 / cuMemFree_v2. <see cref="Allocate"/> throws
/// <see cref="DeviceOutOfMemoryException"/> (or a <see cref="CudaException"/> with status
/// CUDA_ERROR_OUT_OF_MEMORY) when the device is full.
/// </summary>
public interface IDeviceAllocator
{
    /// <summary>A device pointer to at least <paramref name="bytes"/> bytes, aligned to 256 bytes.</summary>
    ulong Allocate(long bytes);
    void Free(ulong ptr);
}

/// <summary>The device could not satisfy an allocation, even after the cache was released.</summary>
public sealed class DeviceOutOfMemoryException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>What a <see cref="CachingAllocator"/> has done so far.</summary>
public readonly record struct AllocatorStats(
    long DeviceAllocations, long DeviceFrees, long CacheHits,
    long BytesInUse, long BytesCached, long PeakBytesInUse, long PeakBytesReserved, int BlocksInUse, int BlocksCached)
{
    public override string ToString() =>
        $"in use {Mb(BytesInUse)} in {BlocksInUse} blocks (peak {Mb(PeakBytesInUse)}), cached {Mb(BytesCached)} in {BlocksCached} blocks, " +
        $"peak reserved {Mb(PeakBytesReserved)}; {DeviceAllocations} device allocations, {DeviceFrees} device frees, {CacheHits} cache hits";

    private static string Mb(long bytes) => $"{bytes / (1024.0 * 1024.0):F1} MiB";
}

/// <summary>
/// A caching allocator for device memory (after PyTorch's CUDA caching allocator, much simplified:
/// exact size classes, no block splitting). A freed block goes back to the free list of its size
/// class and the next request of that class reuses it without calling the device. A training step
/// allocates and frees the same sizes every time, so once one step has run, repeating it makes no
/// device call at all (cuMemAlloc and cuMemFree synchronise the device and cost tens of µs).
///
/// Size classes (<see cref="SizeClass"/>): a request of n bytes (n = 0 counts as 1) is rounded up
///   - to a multiple of 512 B when n ≤ 1 MiB (small tensors: biases, BN statistics, losses);
///   - to a multiple of 2 MiB above 1 MiB (activations, weights, workspaces): the driver maps
///     device memory in 2 MiB pages, so this wastes no device memory the driver would not waste.
/// Every class is a multiple of 256 B, and so is every pointer cuMemAlloc returns: blocks keep the
/// 256 B alignment cuBLAS, cuDNN and vectorised kernels want.
///
/// Out of memory: the cache is released (<see cref="Trim"/>) and the request retried once; a second
/// failure throws <see cref="DeviceOutOfMemoryException"/> naming the request and the statistics.
/// Thread-safe (one lock): buffers may be released from any thread.
///
/// With <c>caching: false</c> (RLMIXUP_CUDA_NO_CACHING=1 for the backend, as PyTorch's
/// PYTORCH_NO_CUDA_MEMORY_CACHING) every request is its own exact-size cuMemAlloc and every free a
/// cuMemFree: slow, but a read or write past a tensor's end then leaves its allocation, where the
/// software device (or compute-sanitizer) sees it, instead of landing in a size class's slack.
/// </summary>
public sealed class CachingAllocator(IDeviceAllocator device, bool caching = true)
{
    /// <summary>False: exact-size allocations, freed at once (see the class summary).</summary>
    public bool Caching { get; } = caching;

    public const long Alignment = 256;
    public const long SmallGranule = 512;
    public const long SmallLimit = 1L << 20;
    public const long LargeGranule = 2L << 20;

    private readonly object _lock = new();
    private readonly Dictionary<long, Stack<ulong>> _free = [];
    private readonly Dictionary<ulong, long> _live = [];
    private readonly Dictionary<ulong, long> _cached = [];
    private long _deviceAllocations, _deviceFrees, _cacheHits, _inUse, _cachedBytes, _peakInUse, _peakReserved;

    /// <summary>The size class of a request of <paramref name="bytes"/> bytes (see the class summary).</summary>
    public static long SizeClass(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        long n = Math.Max(1, bytes);
        long granule = n <= SmallLimit ? SmallGranule : LargeGranule;
        return checked((n + granule - 1) / granule * granule);
    }

    /// <summary>A device block of at least <paramref name="bytes"/> bytes, from the cache when one of its class is free.</summary>
    public ulong Allocate(long bytes)
    {
        long size = Caching ? SizeClass(bytes) : Math.Max(1, bytes);
        lock (_lock)
        {
            if (_free.TryGetValue(size, out var list) && list.Count > 0)
            {
                ulong hit = list.Pop();
                _cached.Remove(hit);
                _cachedBytes -= size;
                _cacheHits++;
                return Hand(hit, size);
            }
            ulong ptr;
            try { ptr = device.Allocate(size); }
            catch (Exception e) when (IsOutOfMemory(e))
            {
                var before = StatsLocked();
                TrimLocked();
                try { ptr = device.Allocate(size); }
                catch (Exception again) when (IsOutOfMemory(again))
                {
                    throw new DeviceOutOfMemoryException(
                        $"out of device memory allocating {bytes} bytes (size class {size} bytes), even after releasing the cache; " +
                        $"allocator before the release: {before}", again);
                }
            }
            if (ptr == 0) throw new InvalidOperationException($"the device allocator returned a null pointer for {size} bytes");
            if (ptr % Alignment != 0) throw new InvalidOperationException($"the device allocator returned 0x{ptr:x}, not aligned to {Alignment} bytes");
            if (_live.ContainsKey(ptr) || _cached.ContainsKey(ptr))
                throw new InvalidOperationException($"the device allocator returned 0x{ptr:x}, which is already allocated");
            _deviceAllocations++;
            return Hand(ptr, size);
        }
    }

    /// <summary>Returns a block to its class's free list (no device call).</summary>
    /// <exception cref="InvalidOperationException">The pointer is already free (double free) or was never allocated here.</exception>
    public void Free(ulong ptr)
    {
        lock (_lock)
        {
            if (!_live.Remove(ptr, out long size))
                throw new InvalidOperationException(_cached.ContainsKey(ptr)
                    ? $"double free of device block 0x{ptr:x}: it is already back in the cache"
                    : $"free of device pointer 0x{ptr:x}, which this allocator did not hand out");
            _inUse -= size;
            if (!Caching)
            {
                device.Free(ptr);
                _deviceFrees++;
                return;
            }
            _cached.Add(ptr, size);
            _cachedBytes += size;
            if (!_free.TryGetValue(size, out var list)) _free.Add(size, list = new Stack<ulong>());
            list.Push(ptr);
        }
    }

    /// <summary>Releases every cached (free) block to the device; blocks in use are untouched. Returns the bytes released.</summary>
    public long Trim()
    {
        lock (_lock) return TrimLocked();
    }

    /// <summary>Releases every block, cached and in use: for the backend's teardown, when no tensor may be used again.</summary>
    public void ReleaseAll()
    {
        lock (_lock)
        {
            TrimLocked();
            foreach (var ptr in _live.Keys.ToArray())
            {
                device.Free(ptr);
                _deviceFrees++;
            }
            _live.Clear();
            _inUse = 0;
        }
    }

    public AllocatorStats Stats
    {
        get { lock (_lock) return StatsLocked(); }
    }

    /// <summary>The size of a block in use (its class), or null when the pointer is not in use.</summary>
    public long? BlockSize(ulong ptr)
    {
        lock (_lock) return _live.TryGetValue(ptr, out long s) ? s : null;
    }

    private ulong Hand(ulong ptr, long size)
    {
        _live.Add(ptr, size);
        _inUse += size;
        _peakInUse = Math.Max(_peakInUse, _inUse);
        _peakReserved = Math.Max(_peakReserved, _inUse + _cachedBytes);
        return ptr;
    }

    private long TrimLocked()
    {
        long released = 0;
        foreach (var (ptr, size) in _cached)
        {
            device.Free(ptr);
            _deviceFrees++;
            released += size;
        }
        _cached.Clear();
        _free.Clear();
        _cachedBytes = 0;
        return released;
    }

    private AllocatorStats StatsLocked() => new(_deviceAllocations, _deviceFrees, _cacheHits,
        _inUse, _cachedBytes, _peakInUse, _peakReserved, _live.Count, _cached.Count);

    private static bool IsOutOfMemory(Exception e) =>
        e is DeviceOutOfMemoryException || e is CudaException { Status: "CUDA_ERROR_OUT_OF_MEMORY" };
}
