using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NUnit.Framework;
using RlMixup.Core.Cuda;
using RlMixup.Core.Cuda.Native;

namespace RlMixup.Tests;

/// <summary>
/// The cuDNN declarations against the cuDNN 9.6 headers: struct layouts, the enum values the engine
/// passes or reads, and the status → exception path. None of this needs the library or a GPU.
/// </summary>
public class CudnnNativeTests
{
    private static IEnumerable<Type> PerfStructs() =>
        [typeof(CudnnConvolutionFwdAlgoPerf), typeof(CudnnConvolutionBwdDataAlgoPerf), typeof(CudnnConvolutionBwdFilterAlgoPerf)];

    [TestCaseSource(nameof(PerfStructs))]
    public void PerfStructsHaveTheHeadersLayout(Type t)
    {
        Assume.That(IntPtr.Size, Is.EqualTo(8), "the offsets below are those of a 64-bit build");
        // algo, status, time (float), 4 bytes of padding, memory (size_t), determinism, mathType, reserved[3], tail padding.
        Assert.That(Marshal.OffsetOf(t, "Algo"), Is.EqualTo((nint)0));
        Assert.That(Marshal.OffsetOf(t, "Status"), Is.EqualTo((nint)4));
        Assert.That(Marshal.OffsetOf(t, "Time"), Is.EqualTo((nint)8));
        Assert.That(Marshal.OffsetOf(t, "Memory"), Is.EqualTo((nint)16));
        Assert.That(Marshal.OffsetOf(t, "Determinism"), Is.EqualTo((nint)24));
        Assert.That(Marshal.OffsetOf(t, "MathType"), Is.EqualTo((nint)28));
        Assert.That(Marshal.OffsetOf(t, "Reserved"), Is.EqualTo((nint)32));
        Assert.That(Marshal.SizeOf(t), Is.EqualTo(48));
    }

    [Test]
    public void ManagedSizeOfPerfStructsEqualsMarshalledSize()
    {
        // Blittable: the stackalloc'ed arrays handed to cuDNN use the managed size as stride.
        Assert.That(Unsafe.SizeOf<CudnnConvolutionFwdAlgoPerf>(), Is.EqualTo(Marshal.SizeOf<CudnnConvolutionFwdAlgoPerf>()));
        Assert.That(Unsafe.SizeOf<CudnnConvolutionBwdDataAlgoPerf>(), Is.EqualTo(Marshal.SizeOf<CudnnConvolutionBwdDataAlgoPerf>()));
        Assert.That(Unsafe.SizeOf<CudnnConvolutionBwdFilterAlgoPerf>(), Is.EqualTo(Marshal.SizeOf<CudnnConvolutionBwdFilterAlgoPerf>()));
    }

    [Test]
    public void HandlesAreOnePointerWide()
    {
        Assert.That(Unsafe.SizeOf<CudnnHandleT>(), Is.EqualTo(IntPtr.Size));
        Assert.That(Unsafe.SizeOf<CudnnTensorDescriptorT>(), Is.EqualTo(IntPtr.Size));
        Assert.That(Unsafe.SizeOf<CudnnFilterDescriptorT>(), Is.EqualTo(IntPtr.Size));
        Assert.That(Unsafe.SizeOf<CudnnConvolutionDescriptorT>(), Is.EqualTo(IntPtr.Size));
    }

    [Test]
    public void EnumValuesMatchTheHeaders()
    {
        // cudnn_graph.h (9.6): the categorised status codes of cuDNN 9.
        Assert.That((int)CudnnStatus.CUDNN_STATUS_SUCCESS, Is.EqualTo(0));
        Assert.That((int)CudnnStatus.CUDNN_STATUS_NOT_INITIALIZED, Is.EqualTo(1001));
        Assert.That((int)CudnnStatus.CUDNN_STATUS_BAD_PARAM, Is.EqualTo(2000));
        Assert.That((int)CudnnStatus.CUDNN_STATUS_BAD_PARAM_NULL_POINTER, Is.EqualTo(2002));
        Assert.That((int)CudnnStatus.CUDNN_STATUS_NOT_SUPPORTED, Is.EqualTo(3000));
        Assert.That((int)CudnnStatus.CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH, Is.EqualTo(3007));
        Assert.That((int)CudnnStatus.CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, Is.EqualTo(4003));
        Assert.That((int)CudnnStatus.CUDNN_STATUS_EXECUTION_FAILED, Is.EqualTo(5000));
        Assert.That((int)CudnnStatus.CUDNN_STATUS_EXECUTION_FAILED_CURAND, Is.EqualTo(5004));
        // One name per value, so that a status prints as exactly one name.
        var values = Enum.GetValues<CudnnStatus>().Select(v => (int)v).ToArray();
        Assert.That(values, Is.Unique);

        Assert.That((int)CudnnDataType.CUDNN_DATA_FLOAT, Is.EqualTo(0));
        Assert.That((int)CudnnTensorFormat.CUDNN_TENSOR_NCHW, Is.EqualTo(0));
        Assert.That((int)CudnnConvolutionMode.CUDNN_CROSS_CORRELATION, Is.EqualTo(1));
        Assert.That((int)CudnnMathType.CUDNN_DEFAULT_MATH, Is.EqualTo(0));
        Assert.That((int)CudnnMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, Is.EqualTo(2));
        Assert.That((int)CudnnMathType.CUDNN_FMA_MATH, Is.EqualTo(3));
        Assert.That((int)CudnnDeterminism.CUDNN_DETERMINISTIC, Is.EqualTo(1));
        Assert.That((int)CudnnBatchNormMode.CUDNN_BATCHNORM_SPATIAL, Is.EqualTo(1));
        // cudnn_ops.h (9.6): the algorithm counts size the perf-result arrays.
        Assert.That((int)CudnnConvolutionFwdAlgo.CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, Is.EqualTo(7));
        Assert.That((int)CudnnConvolutionFwdAlgo.CUDNN_CONVOLUTION_FWD_ALGO_COUNT, Is.EqualTo(8));
        Assert.That((int)CudnnConvolutionBwdDataAlgo.CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, Is.EqualTo(6));
        Assert.That((int)CudnnConvolutionBwdFilterAlgo.CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, Is.EqualTo(6));
        Assert.That((int)CudnnConvolutionBwdFilterAlgo.CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, Is.EqualTo(7));
    }

    [Test]
    public void StatusNamesAreTheHeaderNames()
    {
        Assert.That(CudnnErrors.StatusName(CudnnStatus.CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH),
            Is.EqualTo("CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH"));
        Assert.That(CudnnErrors.StatusName(CudnnStatus.CUDNN_STATUS_NOT_SUPPORTED), Is.EqualTo("CUDNN_STATUS_NOT_SUPPORTED"));
        // A code of a newer cuDNN: the number and its category.
        Assert.That(CudnnErrors.StatusName((CudnnStatus)2099), Is.EqualTo("cudnnStatus_t 2099 (CUDNN_STATUS_BAD_PARAM category)"));
        Assert.That(CudnnErrors.StatusName((CudnnStatus)9001), Is.EqualTo("cudnnStatus_t 9001"));
        Assert.That(CudnnErrors.StatusName((CudnnStatus)7), Is.EqualTo("cudnnStatus_t 7"));
    }

    [Test]
    public void ExceptionNamesLibraryCallStatusAndDetail()
    {
        var e = CudnnErrors.ToException(CudnnStatus.CUDNN_STATUS_NOT_SUPPORTED_SHAPE, "CuDnn.cudnnConvolutionForward(h, …)",
            s => $"described {(int)s}");
        Assert.That(e, Is.InstanceOf<CudaException>());
        Assert.That(e.Library, Is.EqualTo("cuDNN"));
        Assert.That(e.Call, Is.EqualTo("CuDnn.cudnnConvolutionForward(h, …)"));
        Assert.That(e.Status, Is.EqualTo("CUDNN_STATUS_NOT_SUPPORTED_SHAPE"));
        Assert.That(e.Detail, Is.EqualTo("described 3002"));
        Assert.That(e.Message, Is.EqualTo("cuDNN: CuDnn.cudnnConvolutionForward(h, …) failed with CUDNN_STATUS_NOT_SUPPORTED_SHAPE (described 3002)"));
    }

    [Test]
    public void CheckPassesSuccessAndNamesTheFailingExpression()
    {
        Assert.DoesNotThrow(() => CudnnErrors.Check(CudnnStatus.CUDNN_STATUS_SUCCESS));
        // Describe() falls back to "" when the library is absent, and the real string when present.
        var e = Assert.Throws<CudaException>(() => CudnnErrors.Check(Fails(CudnnStatus.CUDNN_STATUS_BAD_PARAM)))!;
        Assert.That(e.Call, Is.EqualTo("Fails(CudnnStatus.CUDNN_STATUS_BAD_PARAM)"));
        Assert.That(e.Status, Is.EqualTo("CUDNN_STATUS_BAD_PARAM"));
    }

    private static CudnnStatus Fails(CudnnStatus s) => s;
}
