using System.Runtime.InteropServices;

namespace RlMixup.Core.Cuda.Native;

// cuDNN 9 legacy-API types, checked against NVIDIA's headers of cuDNN 9.6.0 (cudnn_graph.h,
// cudnn_ops.h, cudnn_cnn.h; the numbers below are the headers'). Every enum is a C enum, i.e. a
// 32-bit int. Handles and descriptors are one-field structs so that a tensor descriptor cannot be
// passed where a filter descriptor is expected.

/// <summary>cudnnHandle_t (struct cudnnContext*), cudnn_graph.h.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct CudnnHandleT(nint Handle) { public bool IsNull => Handle == 0; }

/// <summary>cudnnTensorDescriptor_t (struct cudnnTensorStruct*), cudnn_ops.h.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct CudnnTensorDescriptorT(nint Handle) { public bool IsNull => Handle == 0; }

/// <summary>cudnnFilterDescriptor_t (struct cudnnFilterStruct*), cudnn_ops.h.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct CudnnFilterDescriptorT(nint Handle) { public bool IsNull => Handle == 0; }

/// <summary>cudnnConvolutionDescriptor_t (struct cudnnConvolutionStruct*), cudnn_cnn.h.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct CudnnConvolutionDescriptorT(nint Handle) { public bool IsNull => Handle == 0; }

/// <summary>
/// cudnnStatus_t (cudnn_graph.h, cuDNN 9.6). Member names are the header's. cuDNN 9 numbers the
/// codes by category: the thousands give the category (1000 uncategorised, 2000 BAD_PARAM,
/// 3000 NOT_SUPPORTED, 4000 INTERNAL_ERROR, 5000 EXECUTION_FAILED), the rest the specific error.
/// The header's deprecated aliases that share a value with a current member (ALLOC_FAILED = 4003,
/// ARCH_MISMATCH = 3007, MAPPING_ERROR = 4006, RUNTIME_PREREQUISITE_MISSING = 3008,
/// VERSION_MISMATCH = 1002) are left out so that each value has one name; INVALID_VALUE (2001)
/// has no other name and is kept.
/// </summary>
public enum CudnnStatus
{
    CUDNN_STATUS_SUCCESS = 0,

    CUDNN_STATUS_NOT_INITIALIZED = 1001,
    CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH = 1002,
    CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH = 1003,
    CUDNN_STATUS_DEPRECATED = 1004,
    CUDNN_STATUS_LICENSE_ERROR = 1005,
    CUDNN_STATUS_RUNTIME_IN_PROGRESS = 1006,
    CUDNN_STATUS_RUNTIME_FP_OVERFLOW = 1007,
    CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED = 1008,

    CUDNN_STATUS_BAD_PARAM = 2000,
    /// <summary>Deprecated in cuDNN 9 (use BAD_PARAM); still returned by some legacy calls.</summary>
    CUDNN_STATUS_INVALID_VALUE = 2001,
    CUDNN_STATUS_BAD_PARAM_NULL_POINTER = 2002,
    CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER = 2003,
    CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED = 2004,
    CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND = 2005,
    CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT = 2006,
    CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH = 2007,
    CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH = 2008,
    CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES = 2009,
    CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE = 2010,
    CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH = 2011,
    CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE = 2012,

    CUDNN_STATUS_NOT_SUPPORTED = 3000,
    CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN = 3001,
    CUDNN_STATUS_NOT_SUPPORTED_SHAPE = 3002,
    CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE = 3003,
    CUDNN_STATUS_NOT_SUPPORTED_LAYOUT = 3004,
    CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER = 3005,
    CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART = 3006,
    CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH = 3007,
    CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING = 3008,
    CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE = 3009,
    CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT = 3010,
    CUDNN_STATUS_NOT_SUPPORTED_PADDING = 3011,
    CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM = 3012,
    CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API = 3013,

    CUDNN_STATUS_INTERNAL_ERROR = 4000,
    CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED = 4001,
    CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE = 4002,
    CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED = 4003,
    CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED = 4004,
    CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM = 4005,
    CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED = 4006,

    CUDNN_STATUS_EXECUTION_FAILED = 5000,
    CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER = 5001,
    CUDNN_STATUS_EXECUTION_FAILED_CUBLAS = 5002,
    CUDNN_STATUS_EXECUTION_FAILED_CUDART = 5003,
    CUDNN_STATUS_EXECUTION_FAILED_CURAND = 5004,
}

/// <summary>cudnnDataType_t (cudnn_graph.h), the members the engine can meet.</summary>
public enum CudnnDataType
{
    CUDNN_DATA_FLOAT = 0,
    CUDNN_DATA_DOUBLE = 1,
    CUDNN_DATA_HALF = 2,
    CUDNN_DATA_INT8 = 3,
    CUDNN_DATA_INT32 = 4,
    CUDNN_DATA_UINT8 = 6,
    CUDNN_DATA_BFLOAT16 = 9,
    CUDNN_DATA_INT64 = 10,
}

/// <summary>cudnnTensorFormat_t (cudnn_graph.h).</summary>
public enum CudnnTensorFormat
{
    /// <summary>Row major: w stride 1, h stride W.</summary>
    CUDNN_TENSOR_NCHW = 0,
    CUDNN_TENSOR_NHWC = 1,
    CUDNN_TENSOR_NCHW_VECT_C = 2,
}

/// <summary>cudnnMathType_t (cudnn_graph.h).</summary>
public enum CudnnMathType
{
    /// <summary>On Ampere and later this permits TF32 for float convolutions.</summary>
    CUDNN_DEFAULT_MATH = 0,
    CUDNN_TENSOR_OP_MATH = 1,
    /// <summary>Tensor cores with down-conversion: also converts float32 inputs to fp16 (never used: see ConvAlgoSelection).</summary>
    CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
    /// <summary>FMA kernels only: strict float32, no tensor cores.</summary>
    CUDNN_FMA_MATH = 3,
}

/// <summary>cudnnConvolutionMode_t (cudnn_graph.h).</summary>
public enum CudnnConvolutionMode
{
    /// <summary>True convolution (the filter is flipped).</summary>
    CUDNN_CONVOLUTION = 0,
    /// <summary>What deep-learning frameworks call convolution (no flip).</summary>
    CUDNN_CROSS_CORRELATION = 1,
}

/// <summary>cudnnDeterminism_t (cudnn_ops.h).</summary>
public enum CudnnDeterminism
{
    CUDNN_NON_DETERMINISTIC = 0,
    CUDNN_DETERMINISTIC = 1,
}

/// <summary>cudnnBatchNormMode_t (cudnn_ops.h).</summary>
public enum CudnnBatchNormMode
{
    /// <summary>One statistic per (C,H,W) element, normalised over N.</summary>
    CUDNN_BATCHNORM_PER_ACTIVATION = 0,
    /// <summary>One statistic per channel, normalised over (N,H,W); parameters are 1×C×1×1.</summary>
    CUDNN_BATCHNORM_SPATIAL = 1,
    CUDNN_BATCHNORM_SPATIAL_PERSISTENT = 2,
}

/// <summary>cudnnConvolutionFwdAlgo_t (cudnn_ops.h in cuDNN 9, with the two below).</summary>
public enum CudnnConvolutionFwdAlgo
{
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM = 0,
    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1,
    CUDNN_CONVOLUTION_FWD_ALGO_GEMM = 2,
    CUDNN_CONVOLUTION_FWD_ALGO_DIRECT = 3,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT = 4,
    CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING = 5,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD = 6,
    CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED = 7,
    CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8,
}

/// <summary>cudnnConvolutionBwdDataAlgo_t.</summary>
public enum CudnnConvolutionBwdDataAlgo
{
    /// <summary>Non-deterministic.</summary>
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 = 0,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 = 1,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT = 2,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING = 3,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD = 4,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED = 5,
    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT = 6,
}

/// <summary>cudnnConvolutionBwdFilterAlgo_t.</summary>
public enum CudnnConvolutionBwdFilterAlgo
{
    /// <summary>Non-deterministic (atomics).</summary>
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 = 0,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 = 1,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT = 2,
    /// <summary>Non-deterministic.</summary>
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3 = 3,
    /// <summary>Not implemented.</summary>
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD = 4,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED = 5,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING = 6,
    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT = 7,
}

// The three perf structs of cudnn_cnn.h have one layout (x86-64: 48 bytes):
//   0 algo (enum, 4)  4 status (4)  8 time (float, ms)  12 padding  16 memory (size_t, 8)
//   24 determinism (4)  28 mathType (4)  32 reserved[3] (12)  44 padding to 8-byte alignment.

/// <summary>cudnnConvolutionFwdAlgoPerf_t (cudnn_cnn.h): one result of the heuristics or of Find.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct CudnnConvolutionFwdAlgoPerf
{
    public CudnnConvolutionFwdAlgo Algo;
    public CudnnStatus Status;
    /// <summary>Milliseconds (Find); −1 from the heuristics.</summary>
    public float Time;
    /// <summary>Workspace bytes (size_t).</summary>
    public nuint Memory;
    public CudnnDeterminism Determinism;
    public CudnnMathType MathType;
    public fixed int Reserved[3];
}

/// <summary>cudnnConvolutionBwdDataAlgoPerf_t (cudnn_cnn.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct CudnnConvolutionBwdDataAlgoPerf
{
    public CudnnConvolutionBwdDataAlgo Algo;
    public CudnnStatus Status;
    public float Time;
    public nuint Memory;
    public CudnnDeterminism Determinism;
    public CudnnMathType MathType;
    public fixed int Reserved[3];
}

/// <summary>cudnnConvolutionBwdFilterAlgoPerf_t (cudnn_cnn.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct CudnnConvolutionBwdFilterAlgoPerf
{
    public CudnnConvolutionBwdFilterAlgo Algo;
    public CudnnStatus Status;
    public float Time;
    public nuint Memory;
    public CudnnDeterminism Determinism;
    public CudnnMathType MathType;
    public fixed int Reserved[3];
}
