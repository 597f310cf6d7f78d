using System.Runtime.InteropServices;

namespace RlMixup.Core.Cuda.Native;

/// <summary>
/// cuDNN 9 legacy-API declarations (libcudnn.so.9), matched against the headers of cuDNN 9.6.0:
/// cudnn_graph.h (handle, version, errors), cudnn_ops.h (tensor and filter descriptors, batch
/// norm) and cudnn_cnn.h (convolution). Declarations only, blittable signatures, no logic.
/// Device addresses (<c>void*</c> in the headers) are <see cref="nint"/>; alpha and beta are host
/// pointers to float (the scaling type of float tensors); <c>cudaStream_t</c> is the driver's
/// CUstream handle, passed as <see cref="nint"/>. Many of these calls are marked CUDNN_DEPRECATED
/// in cuDNN 9 (the legacy API is kept alongside the graph API) but are present and supported.
/// </summary>
internal static unsafe partial class CuDnn
{
    private const string Lib = NativeLibraries.Cudnn;

    // ---- cudnn_graph.h: library, handle, errors

    /// <summary>CUDNN_VERSION of the loaded library: major·10000 + minor·100 + patch in cuDNN 9 (e.g. 90600).</summary>
    [LibraryImport(Lib)]
    internal static partial nuint cudnnGetVersion();

    /// <summary>A static, NUL-terminated description of <paramref name="status"/>.</summary>
    [LibraryImport(Lib)]
    internal static partial byte* cudnnGetErrorString(CudnnStatus status);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnCreate(out CudnnHandleT handle);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnDestroy(CudnnHandleT handle);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnSetStream(CudnnHandleT handle, nint streamId);

    // ---- cudnn_ops.h: tensor and filter descriptors

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnCreateTensorDescriptor(out CudnnTensorDescriptorT tensorDesc);

    /// <summary>Note the argument order: format before data type (the filter call has them the other way round).</summary>
    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnSetTensor4dDescriptor(CudnnTensorDescriptorT tensorDesc,
        CudnnTensorFormat format, CudnnDataType dataType, int n, int c, int h, int w);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnSetTensorNdDescriptor(CudnnTensorDescriptorT tensorDesc,
        CudnnDataType dataType, int nbDims, int* dimA, int* strideA);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnDestroyTensorDescriptor(CudnnTensorDescriptorT tensorDesc);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnCreateFilterDescriptor(out CudnnFilterDescriptorT filterDesc);

    /// <summary>k output channels, c input channels per group, h×w kernel. Data type before format.</summary>
    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnSetFilter4dDescriptor(CudnnFilterDescriptorT filterDesc,
        CudnnDataType dataType, CudnnTensorFormat format, int k, int c, int h, int w);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnDestroyFilterDescriptor(CudnnFilterDescriptorT filterDesc);

    // ---- cudnn_cnn.h: convolution descriptor

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnCreateConvolutionDescriptor(out CudnnConvolutionDescriptorT convDesc);

    /// <summary>u, v are the vertical and horizontal strides; computeType is the accumulation type.</summary>
    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnSetConvolution2dDescriptor(CudnnConvolutionDescriptorT convDesc,
        int padH, int padW, int u, int v, int dilationH, int dilationW,
        CudnnConvolutionMode mode, CudnnDataType computeType);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnSetConvolutionMathType(CudnnConvolutionDescriptorT convDesc, CudnnMathType mathType);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnSetConvolutionGroupCount(CudnnConvolutionDescriptorT convDesc, int groupCount);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnDestroyConvolutionDescriptor(CudnnConvolutionDescriptorT convDesc);

    // ---- cudnn_cnn.h: algorithm choice. _v7 asks the heuristics (nothing runs); Find times every
    // algorithm on the device, allocating its own buffers. Both fill perfResults best first, with
    // one row per algorithm and math type (so more rows than the *_ALGO_COUNT enumerant): the
    // MaxCount calls say how many a query can return.

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnGetConvolutionForwardAlgorithmMaxCount(CudnnHandleT handle, out int count);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnGetConvolutionBackwardDataAlgorithmMaxCount(CudnnHandleT handle, out int count);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(CudnnHandleT handle, out int count);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnGetConvolutionForwardAlgorithm_v7(CudnnHandleT handle,
        CudnnTensorDescriptorT srcDesc, CudnnFilterDescriptorT filterDesc, CudnnConvolutionDescriptorT convDesc,
        CudnnTensorDescriptorT destDesc, int requestedAlgoCount, out int returnedAlgoCount,
        CudnnConvolutionFwdAlgoPerf* perfResults);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnFindConvolutionForwardAlgorithm(CudnnHandleT handle,
        CudnnTensorDescriptorT xDesc, CudnnFilterDescriptorT wDesc, CudnnConvolutionDescriptorT convDesc,
        CudnnTensorDescriptorT yDesc, int requestedAlgoCount, out int returnedAlgoCount,
        CudnnConvolutionFwdAlgoPerf* perfResults);

    /// <summary>filterDesc = w, diffDesc = dy, gradDesc = dx.</summary>
    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnGetConvolutionBackwardDataAlgorithm_v7(CudnnHandleT handle,
        CudnnFilterDescriptorT filterDesc, CudnnTensorDescriptorT diffDesc, CudnnConvolutionDescriptorT convDesc,
        CudnnTensorDescriptorT gradDesc, int requestedAlgoCount, out int returnedAlgoCount,
        CudnnConvolutionBwdDataAlgoPerf* perfResults);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnFindConvolutionBackwardDataAlgorithm(CudnnHandleT handle,
        CudnnFilterDescriptorT wDesc, CudnnTensorDescriptorT dyDesc, CudnnConvolutionDescriptorT convDesc,
        CudnnTensorDescriptorT dxDesc, int requestedAlgoCount, out int returnedAlgoCount,
        CudnnConvolutionBwdDataAlgoPerf* perfResults);

    /// <summary>srcDesc = x, diffDesc = dy, gradDesc = dw.</summary>
    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnGetConvolutionBackwardFilterAlgorithm_v7(CudnnHandleT handle,
        CudnnTensorDescriptorT srcDesc, CudnnTensorDescriptorT diffDesc, CudnnConvolutionDescriptorT convDesc,
        CudnnFilterDescriptorT gradDesc, int requestedAlgoCount, out int returnedAlgoCount,
        CudnnConvolutionBwdFilterAlgoPerf* perfResults);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnFindConvolutionBackwardFilterAlgorithm(CudnnHandleT handle,
        CudnnTensorDescriptorT xDesc, CudnnTensorDescriptorT dyDesc, CudnnConvolutionDescriptorT convDesc,
        CudnnFilterDescriptorT dwDesc, int requestedAlgoCount, out int returnedAlgoCount,
        CudnnConvolutionBwdFilterAlgoPerf* perfResults);

    // ---- cudnn_cnn.h: workspace sizes

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnGetConvolutionForwardWorkspaceSize(CudnnHandleT handle,
        CudnnTensorDescriptorT xDesc, CudnnFilterDescriptorT wDesc, CudnnConvolutionDescriptorT convDesc,
        CudnnTensorDescriptorT yDesc, CudnnConvolutionFwdAlgo algo, out nuint sizeInBytes);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnGetConvolutionBackwardDataWorkspaceSize(CudnnHandleT handle,
        CudnnFilterDescriptorT wDesc, CudnnTensorDescriptorT dyDesc, CudnnConvolutionDescriptorT convDesc,
        CudnnTensorDescriptorT dxDesc, CudnnConvolutionBwdDataAlgo algo, out nuint sizeInBytes);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnGetConvolutionBackwardFilterWorkspaceSize(CudnnHandleT handle,
        CudnnTensorDescriptorT xDesc, CudnnTensorDescriptorT dyDesc, CudnnConvolutionDescriptorT convDesc,
        CudnnFilterDescriptorT gradDesc, CudnnConvolutionBwdFilterAlgo algo, out nuint sizeInBytes);

    // ---- cudnn_cnn.h: the convolutions, all "out = alpha·op(inputs) + beta·out"

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnConvolutionForward(CudnnHandleT handle,
        float* alpha, CudnnTensorDescriptorT xDesc, nint x, CudnnFilterDescriptorT wDesc, nint w,
        CudnnConvolutionDescriptorT convDesc, CudnnConvolutionFwdAlgo algo, nint workSpace, nuint workSpaceSizeInBytes,
        float* beta, CudnnTensorDescriptorT yDesc, nint y);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnConvolutionBackwardData(CudnnHandleT handle,
        float* alpha, CudnnFilterDescriptorT wDesc, nint w, CudnnTensorDescriptorT dyDesc, nint dy,
        CudnnConvolutionDescriptorT convDesc, CudnnConvolutionBwdDataAlgo algo, nint workSpace, nuint workSpaceSizeInBytes,
        float* beta, CudnnTensorDescriptorT dxDesc, nint dx);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnConvolutionBackwardFilter(CudnnHandleT handle,
        float* alpha, CudnnTensorDescriptorT xDesc, nint x, CudnnTensorDescriptorT dyDesc, nint dy,
        CudnnConvolutionDescriptorT convDesc, CudnnConvolutionBwdFilterAlgo algo, nint workSpace, nuint workSpaceSizeInBytes,
        float* beta, CudnnFilterDescriptorT dwDesc, nint dw);

    // ---- cudnn_ops.h: batch normalisation. bnScaleBiasMeanVarDesc is 1×C×1×1 in SPATIAL mode.

    /// <summary>
    /// running = factor·batch + (1−factor)·running. resultRunningMean and resultRunningVariance may
    /// both be null (no running update). resultSaveInvVariance receives 1/sqrt(var + eps).
    /// </summary>
    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnBatchNormalizationForwardTraining(CudnnHandleT handle,
        CudnnBatchNormMode mode, float* alpha, float* beta,
        CudnnTensorDescriptorT xDesc, nint x, CudnnTensorDescriptorT yDesc, nint y,
        CudnnTensorDescriptorT bnScaleBiasMeanVarDesc, nint bnScale, nint bnBias,
        double exponentialAverageFactor, nint resultRunningMean, nint resultRunningVariance,
        double epsilon, nint resultSaveMean, nint resultSaveInvVariance);

    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnBatchNormalizationForwardInference(CudnnHandleT handle,
        CudnnBatchNormMode mode, float* alpha, float* beta,
        CudnnTensorDescriptorT xDesc, nint x, CudnnTensorDescriptorT yDesc, nint y,
        CudnnTensorDescriptorT bnScaleBiasMeanVarDesc, nint bnScale, nint bnBias,
        nint estimatedMean, nint estimatedVariance, double epsilon);

    /// <summary>
    /// dx = alphaDataDiff·grad + betaDataDiff·dx; dScale, dBias likewise with the param pair.
    /// dBnScaleResult and dBnBiasResult must not be null.
    /// </summary>
    [LibraryImport(Lib)]
    internal static partial CudnnStatus cudnnBatchNormalizationBackward(CudnnHandleT handle,
        CudnnBatchNormMode mode, float* alphaDataDiff, float* betaDataDiff, float* alphaParamDiff, float* betaParamDiff,
        CudnnTensorDescriptorT xDesc, nint x, CudnnTensorDescriptorT dyDesc, nint dy, CudnnTensorDescriptorT dxDesc, nint dx,
        CudnnTensorDescriptorT dBnScaleBiasDesc, nint bnScale, nint dBnScaleResult, nint dBnBiasResult,
        double epsilon, nint savedMean, nint savedInvVariance);
}
