// One fixture for every op of IBackend, split by op family into OpGradientTests.{Conv,Norm,Dense,Loss}.cs,
// so that each op is found under the same name as in IBackend.
//
// Method: the engine (float32) is compared with RefOps (float64). Forward outputs directly; data and
// parameter gradients against central finite differences of the float64 reference, with a fixed random
// upstream gradient dy = r (L = Σ r ⊙ f(x)). Inputs are drawn in float32, so both sides see exactly the
// same numbers and the only error left is the engine's float32 rounding, bounded in Tol.
//
// Contract checks folded in: data gradients OVERWRITE (dx is pre-filled with NaN, which any "+=" or
// "beta·dx" would propagate) and parameter gradients ACCUMULATE (pre-filled with known values, then
// the backward runs twice and must give prefill + 2·grad).
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Tests.Reference;
using static RlMixup.Tests.Reference.FiniteDiff;

namespace RlMixup.Tests;

[TestFixture(1)]
[TestFixture(2)]
[TestFixture(3)]
public partial class OpGradientTests(int threads)
{
    private IBackend _b = null!;

    // Every 3x3 stride-1 pad-1 convolution takes the Winograd path here, however few its channels.
    [OneTimeSetUp] public void Setup() => _b = new CpuBackend(threads) { WinogradMinChannels = 0 };
    [OneTimeTearDown] public void TearDown() => _b.Dispose();

    private Tensor T(float[] data, params int[] dims)
    {
        var t = _b.Allocate(new Shape(dims));
        t.CopyFrom(data);
        return t;
    }

    private Tensor Nan(params int[] dims) => T(Data.Filled(new Shape(dims).Size, float.NaN), dims);

    /// <summary>A seed that depends only on the text (string.GetHashCode is randomised per process).</summary>
    private static int Seed(string s)
    {
        uint h = 2166136261;
        foreach (char ch in s) h = (h ^ ch) * 16777619;
        return (int)(h & 0x7fffffff);
    }

    private static double MaxAbs(double[] a) => a.Length == 0 ? 0 : a.Max(Math.Abs);
    private static double MaxAbs(float[] a) => a.Length == 0 ? 0 : a.Max(v => Math.Abs((double)v));
    private static double[] Abs(double[] a) => a.Select(Math.Abs).ToArray();

    /// <summary>prefill + times·grad, the value an accumulating gradient must hold after `times` backward calls.</summary>
    private static double[] Accumulated(float[] prefill, double[] grad, int times)
    {
        var e = new double[grad.Length];
        for (int i = 0; i < e.Length; i++) e[i] = prefill[i] + times * grad[i];
        return e;
    }
}
