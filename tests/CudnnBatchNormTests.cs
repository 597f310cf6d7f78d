using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cuda;

namespace RlMixup.Tests;

/// <summary>The batch-norm layer's logic that runs without cuDNN: where parameter gradients go, and argument checks.</summary>
public class CudnnBatchNormTests
{
    private sealed class FixedWorkspace(nint address) : IDeviceWorkspace
    {
        public readonly List<ulong> Requests = [];
        public nint Acquire(ulong bytes) { Requests.Add(bytes); return address; }
    }

    [Test]
    public void BatchNormParamGradientsAccumulateAndUnwantedOnesGoToScratch()
    {
        var scratch = new FixedWorkspace(0x5000);
        Assert.That(CudnnBatchNorm.ParamGradTargets(0x100, 0x200, 64, scratch), Is.EqualTo(((nint)0x100, (nint)0x200, 1f)));
        Assert.That(scratch.Requests, Is.Empty, "both wanted: no scratch");

        Assert.That(CudnnBatchNorm.ParamGradTargets(0, 0, 64, scratch), Is.EqualTo(((nint)0x5000, (nint)(0x5000 + 256), 0f)));
        Assert.That(CudnnBatchNorm.ParamGradTargets(0x100, 0, 64, scratch), Is.EqualTo(((nint)0x100, (nint)(0x5000 + 256), 1f)));
        Assert.That(CudnnBatchNorm.ParamGradTargets(0, 0x200, 64, scratch), Is.EqualTo(((nint)0x5000, (nint)0x200, 1f)));
        Assert.That(scratch.Requests, Is.EqualTo(new ulong[] { 512, 512, 512 }), "2·C floats");
    }

    [Test]
    public void BatchNormValidationMatchesTheCpuBackend()
    {
        Assert.DoesNotThrow(() => CudnnBatchNorm.ValidateTraining(new Shape(2, 3, 1, 1), 0.1f, 1e-5f, updateRunning: true));
        Assert.DoesNotThrow(() => CudnnBatchNorm.ValidateTraining(new Shape(1, 3, 1, 1), 0.1f, 1e-5f, updateRunning: false));
        Assert.That(Assert.Throws<ArgumentException>(() => CudnnBatchNorm.ValidateTraining(new Shape(1, 3, 1, 1), 0.1f, 1e-5f, true))!.Message,
            Does.Contain("more than one value per channel"));
        Assert.Throws<ArgumentOutOfRangeException>(() => CudnnBatchNorm.ValidateTraining(new Shape(2, 3, 4, 4), 1.5f, 1e-5f, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => CudnnBatchNorm.ValidateTraining(new Shape(2, 3, 4, 4), 0.1f, -1f, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => CudnnBatchNorm.ValidateTraining(new Shape(2, 3, 4, 4), float.NaN, 1e-5f, true));
        Assert.Throws<ArgumentException>(() => CudnnBatchNorm.ValidateTraining(new Shape(2, 3), 0.1f, 1e-5f, true));
    }
}
