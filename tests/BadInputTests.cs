using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;

namespace RlMixup.Tests;

/// <summary>
/// Tensors that do not fit together must be rejected on entry with a ShapeMismatchException whose
/// message names both offending shapes, printed as Shape prints them ("(2, 3, 4, 5)"), so that the
/// error alone says what was passed.
/// </summary>
public class BadInputTests
{
    private IBackend _b = null!;

    [OneTimeSetUp] public void Setup() => _b = new CpuBackend();
    [OneTimeTearDown] public void TearDown() => _b.Dispose();

    private Tensor A(params int[] dims) => _b.Allocate(new Shape(dims));

    private static void ThrowsNaming(Action op, Tensor first, Tensor second)
    {
        var ex = Assert.Throws<ShapeMismatchException>(() => op())!;
        Assert.That(ex.Message, Does.Contain(first.Shape.ToString()), $"message should name {first.Shape}");
        Assert.That(ex.Message, Does.Contain(second.Shape.ToString()), $"message should name {second.Shape}");
    }

    [Test]
    public void ConvWeightChannelsDifferFromInput()
    {
        var x = A(2, 3, 4, 5);
        var w = A(4, 2, 3, 3); // 2 input channels, x has 3
        var spec = new Conv2dSpec(1, 1);
        ThrowsNaming(() => _b.Conv2dForward(A(2, 4, 4, 5), x, w, spec), x, w);
        ThrowsNaming(() => _b.Conv2dBackwardData(A(2, 3, 4, 5), A(2, 4, 4, 5), w, spec), x, w);
        ThrowsNaming(() => _b.Conv2dBackwardFilter(w, x, A(2, 4, 4, 5), spec), x, w);
    }

    [Test]
    public void BatchNormGammaLengthDiffersFromChannels()
    {
        var x = A(2, 3, 4, 5);
        var gamma = A(4); // 4 channels, x has 3
        Tensor c3() => A(3);
        ThrowsNaming(() => _b.BatchNormForwardTraining(A(2, 3, 4, 5), x, gamma, c3(), c3(), c3(), c3(), c3(), 0.1f, 1e-5f, true), x, gamma);
        ThrowsNaming(() => _b.BatchNormForwardInference(A(2, 3, 4, 5), x, gamma, c3(), c3(), c3(), 1e-5f), x, gamma);
        ThrowsNaming(() => _b.BatchNormBackward(A(2, 3, 4, 5), c3(), c3(), A(2, 3, 4, 5), x, gamma, c3(), c3(), 1e-5f), x, gamma);
    }

    [Test]
    public void LinearInFeaturesDiffer()
    {
        var x = A(2, 5);
        var w = A(3, 4); // 4 in-features, x has 5
        ThrowsNaming(() => _b.LinearForward(A(2, 3), x, w, A(3)), x, w);
        ThrowsNaming(() => _b.LinearBackward(A(2, 5), A(3, 4), A(3), A(2, 3), x, w), x, w);
    }

    [Test]
    public void AddOfDifferentShapes()
    {
        var a = A(2, 3);
        var b = A(3, 2); // same size, different shape: must still be rejected
        ThrowsNaming(() => _b.Add(A(2, 3), a, b), a, b);
        var a4 = A(2, 3, 4, 5);
        var b4 = A(2, 3, 5, 4);
        ThrowsNaming(() => _b.Add(A(2, 3, 4, 5), a4, b4), a4, b4);
    }

    [Test]
    public void GemmInnerDimensionsDiffer()
    {
        var a = A(2, 3);
        var b = A(4, 5); // op(A) is 2x3, op(B) is 4x5
        ThrowsNaming(() => _b.Gemm(A(2, 5), a, false, b, false), a, b);
        var bt = A(5, 4); // transB: op(B) is 4x5
        ThrowsNaming(() => _b.Gemm(A(2, 5), a, false, bt, true), a, bt);
        var at = A(3, 2); // transA: op(A) is 2x3
        ThrowsNaming(() => _b.Gemm(A(2, 5), at, true, b, false), at, b);
    }
}
