using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cuda;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Tests;

/// <summary>
/// The software device answers cuDNN's algorithm queries the way real cuDNN does (rows that say
/// NOT_SUPPORTED, non-deterministic rows, one row per algorithm and math type whatever the
/// descriptor says, workspace sizes that differ, more rows than the *_ALGO_COUNT enumerant), and the
/// engine chooses correctly among them: a deterministic SUCCESS row, run with FMA math when TF32 is
/// off. The choice is checked through the plans the backend made, which keep every row listed.
/// </summary>
[NonParallelizable]
public class CudnnAnswersTests
{
    // A 3×3 unit-stride convolution (the heuristics list WINOGRAD first, which the device lacks) and a 1×1 stride-2 one.
    private static readonly ConvShape ThreeByThree = new(N: 4, C: 8, H: 10, W: 10, K: 12, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1);
    private static readonly ConvShape Shortcut = new(N: 4, C: 8, H: 10, W: 10, K: 12, R: 1, S: 1, StrideH: 2, StrideW: 2, PadH: 0, PadW: 0);

    private static IReadOnlyList<ConvPlanInfo> Plans(bool tf32, ConvShape shape)
    {
        using var backend = new CudaBackend(tf32);
        var spec = new Conv2dSpec(shape.StrideH, shape.PadH);
        using var x = backend.Allocate(new Shape(shape.N, shape.C, shape.H, shape.W));
        using var w = backend.Allocate(new Shape(shape.K, shape.C, shape.R, shape.S));
        using var y = backend.Allocate(new Shape(shape.N, shape.K, shape.OutH, shape.OutW));
        backend.Conv2dForward(y, x, w, spec);
        backend.Conv2dBackwardData(x, y, w, spec);
        backend.Conv2dBackwardFilter(w, x, y, spec);
        backend.Synchronize();
        return backend.ConvolutionPlans;
    }

    [TestCase(false)]
    [TestCase(true)]
    public void TheRowsAreCudnnsAndThePicksAreDeterministicAndOfTheRightMath(bool tf32)
    {
        SoftwareDevice.RequireOrIgnore();
        foreach (var shape in new[] { ThreeByThree, Shortcut })
        {
            var plans = Plans(tf32, shape);
            Assert.That(plans, Has.Count.EqualTo(3));
            foreach (var p in plans)
            {
                string where = $"{p.Geometry} {p.Key.Direction} TF32 {tf32}";
                int enumerants = p.Key.Direction switch
                {
                    ConvDirection.Forward => (int)CudnnConvolutionFwdAlgo.CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                    ConvDirection.BackwardData => (int)CudnnConvolutionBwdDataAlgo.CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                    _ => (int)CudnnConvolutionBwdFilterAlgo.CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                };
                var rows = p.Rows;
                Assert.Multiple(() =>
                {
                    Assert.That(rows, Has.Count.GreaterThan(enumerants), $"{where}: rows per algorithm and math type, the buffer sized by MaxCount");
                    Assert.That(rows.Any(r => r.Status == CudnnStatus.CUDNN_STATUS_NOT_SUPPORTED), where);
                    Assert.That(rows.Select(r => r.MathType).Distinct(), Is.EquivalentTo(new[] { CudnnMathType.CUDNN_TENSOR_OP_MATH, CudnnMathType.CUDNN_DEFAULT_MATH }),
                        $"{where}: no row has the descriptor's math type ({ConvAlgoSelection.MathTypeFor(tf32)}) when that is FMA");
                    Assert.That(rows.Where(r => r.Status == CudnnStatus.CUDNN_STATUS_SUCCESS).Select(r => r.WorkspaceBytes).Distinct().Count(), Is.GreaterThan(1), where);
                    if (p.Key.Direction != ConvDirection.Forward)
                        Assert.That(rows.First(r => r.Status == CudnnStatus.CUDNN_STATUS_SUCCESS).Determinism, Is.EqualTo(CudnnDeterminism.CUDNN_NON_DETERMINISTIC),
                            $"{where}: the fastest row uses atomics");
                    if (p.Key.Direction != ConvDirection.BackwardFilter && shape == ThreeByThree)
                        Assert.That(rows[0].Status, Is.EqualTo(CudnnStatus.CUDNN_STATUS_NOT_SUPPORTED), $"{where}: WINOGRAD first");

                    var chosen = rows.First(r => r.Algo == p.Algo && r.Status == CudnnStatus.CUDNN_STATUS_SUCCESS
                        && r.Determinism == CudnnDeterminism.CUDNN_DETERMINISTIC && (tf32 || r.MathType != CudnnMathType.CUDNN_TENSOR_OP_MATH));
                    // Forward with TF32 on, a 1×1 convolution's first row is fine; every other first row must be read past.
                    if (!tf32 || p.Key.Direction != ConvDirection.Forward || shape == ThreeByThree)
                        Assert.That(rows.ToList().IndexOf(chosen), Is.GreaterThan(0), $"{where}: the first row is not usable here");
                    Assert.That(p.MathType, Is.EqualTo(tf32 ? CudnnMathType.CUDNN_TENSOR_OP_MATH : CudnnMathType.CUDNN_FMA_MATH), where);
                });
            }
        }
    }

    [Test]
    public void TheAtomicAlgorithmIsNotDeterministicAsCudnnDocumentsIt()
    {
        // BWD_FILTER_ALGO_0 run twice on the same inputs: the partial sums land in another order.
        SoftwareDevice.RequireOrIgnore();
        using var context = CudaContext.RetainPrimary(CudaDevice.Get(0));
        using var stream = CudaStream.Create(context);
        using var handle = CudnnHandle.Create(context);
        handle.SetStream(stream.Handle.Handle);
        var buffers = new List<DeviceBuffer<float>>();
        nint Allocate(ulong bytes) { var b = new DeviceBuffer<float>(context, (long)(bytes / 4) + 1); buffers.Add(b); return (nint)b.Pointer.Value; }
        using var ws = new GrowingDeviceWorkspace(Allocate, _ => { });
        using var convs = new CudnnConvolutions(handle, ws, new ConvAlgoOptions(Deterministic: false)) { AllowTf32 = false };
        var s = new ConvShape(N: 16, C: 4, H: 6, W: 6, K: 5, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1);
        var rng = new Rng(3);
        float[] Random(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1))];
        using var x = new DeviceBuffer<float>(context, s.N * s.C * s.H * s.W);
        using var dy = new DeviceBuffer<float>(context, s.N * s.K * s.OutH * s.OutW);
        using var dw = new DeviceBuffer<float>(context, s.K * s.C * s.R * s.S);
        x.CopyFrom(Random((int)x.Length), stream);
        dy.CopyFrom(Random((int)dy.Length), stream);
        float[] Run()
        {
            dw.CopyFrom(new float[dw.Length], stream);
            convs.BackwardFilter((nint)dw.Pointer.Value, (nint)x.Pointer.Value, (nint)dy.Pointer.Value, s);
            stream.Synchronize();
            return dw.ToArray(stream);
        }
        var (a, b) = (Run(), Run());
        Assert.That(convs.Choice(new ConvKey(s, ConvDirection.BackwardFilter, false)).Algo, Is.EqualTo(0), "determinism not required: the fastest row, ALGO_0");
        Assert.That(a.Zip(b).Count(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second)), Is.GreaterThan(0));
        Assert.That(a.Zip(b).Max(p => Math.Abs(p.First - p.Second)), Is.LessThan(1e-5), "the same sums up to float rounding");
        foreach (var buffer in buffers) buffer.Dispose();
    }
}
