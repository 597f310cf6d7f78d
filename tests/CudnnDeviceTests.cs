using NUnit.Framework;
using RlMixup.Core.Cuda;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Tests;

/// <summary>
/// Calls into the real cuDNN: skipped (Assert.Ignore) where the library or a GPU is missing. These
/// need no device memory: a handle, descriptors, the algorithm heuristics and workspace sizes.
/// </summary>
public class CudnnDeviceTests
{
    private static CudnnHandle HandleOrIgnore()
    {
        long version;
        try
        {
            version = CudnnHandle.LibraryVersion;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            Assert.Ignore($"cuDNN 9 could not be loaded ({e.GetType().Name}): the cuDNN checks need libcudnn.so.9 and a GPU");
            throw;
        }
        if (version < 90000) Assert.Ignore($"cuDNN {version} is loaded; these bindings are for cuDNN 9");
        try
        {
            return CudnnHandle.Create();
        }
        catch (CudaException e)
        {
            Assert.Ignore($"cuDNN is present but cannot initialise a handle (no usable GPU?): {e.Message}");
            throw;
        }
    }

    [Test]
    public void HandleCreatesAndDisposesTwice()
    {
        var h = HandleOrIgnore();
        h.SetStream(0);
        h.Dispose();
        h.Dispose();
        Assert.Throws<ObjectDisposedException>(() => h.SetStream(0));
    }

    [Test]
    public void EveryDirectionGetsAPlanAndTf32OffMeansFmaMath()
    {
        using var h = HandleOrIgnore();
        using var ws = new GrowingDeviceWorkspace(_ => throw new AssertionException("planning must not allocate"), _ => { });
        using var convs = new CudnnConvolutions(h, ws);
        var shape = new ConvShape(N: 8, C: 64, H: 32, W: 32, K: 128, R: 3, S: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1);
        foreach (var dir in Enum.GetValues<ConvDirection>())
        {
            var (algo, bytes, math) = convs.Choice(new ConvKey(shape, dir, Tf32: false));
            Assert.That(math, Is.EqualTo(CudnnMathType.CUDNN_FMA_MATH), $"{dir}: algo {algo}");
            Assert.That(bytes, Is.LessThanOrEqualTo(convs.Options.MaxWorkspaceBytes));
            convs.Choice(new ConvKey(shape, dir, Tf32: true));
        }
        Assert.That(convs.PlanCount, Is.EqualTo(6));
        convs.Choice(new ConvKey(shape, ConvDirection.Forward, false));
        Assert.That(convs.PlanCount, Is.EqualTo(6), "a known key makes no new plan");
    }

    [Test]
    public void ARejectedDescriptorThrowsNamingTheCallAndCudnnsDescription()
    {
        using var h = HandleOrIgnore();
        var e = Assert.Throws<CudaException>(() => CudnnTensorDescriptor.Nchw(-1, 3, 4, 4).Dispose())!;
        Assert.That(e.Library, Is.EqualTo("cuDNN"));
        Assert.That(e.Call, Does.Contain("cudnnSetTensor4dDescriptor"));
        Assert.That(e.Status, Does.StartWith("CUDNN_STATUS_BAD_PARAM"));
        Assert.That(e.Detail, Is.Not.Empty);
        Assert.That(SoftwareDevice.TakeViolations(), SoftwareDevice.Active ? Has.One.Contains("dimension 0 = -1") : Is.Empty);
    }
}
