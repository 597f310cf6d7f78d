using RlMixup.Core.Cuda.Native;
using RlMixup.Core.Mixup;

namespace RlMixup.Core.Cuda;

/// <summary>
/// Bytes in device memory (the uint8 images and labels of a dataset), owned by a
/// <see cref="CudaBackend"/>: uploaded once, read by <see cref="CudaBackend.GatherAugment"/>.
/// </summary>
public sealed class DeviceBytes : IDisposable
{
    private readonly CudaBackend _owner;

    internal DeviceBytes(CudaBackend owner, ulong pointer, long length)
    {
        _owner = owner;
        Pointer = pointer;
        Length = length;
    }

    public long Length { get; }
    internal ulong Pointer { get; private set; }
    internal CudaBackend Owner => _owner;

    public void Dispose()
    {
        if (Pointer == 0) return;
        _owner.Release(Pointer);
        Pointer = 0;
    }
}

// The mix-up ops (src/Kernels/saliency.cu, mask.cu, mix.cu) and the batch gather
// (augment.cu). Host-side arguments (permutations, percentiles, λ, indices, crops) are checked on
// the host, as the CPU twin checks them, then staged to the device for the one launch.
public sealed partial class CudaBackend
{
    public void SaliencyMaps(Tensor maps, Tensor inputGrad)
    {
        Enter();
        int p = OpChecks.SaliencyMaps(maps, inputGrad);
        var g = inputGrad.Shape;
        Launch(KernelCatalog.Entry.SaliencyMaps, KernelCatalog.SaliencyMaps(g.N, g.C, g.H, g.W, p), F(maps), F(inputGrad), g.N, g.C, g.H, g.W, p);
    }

    public void PercentileMasks(Tensor masks, Tensor thresholds, Tensor maps, ReadOnlySpan<float> percentiles)
    {
        Enter();
        OpChecks.PercentileMasks(masks, thresholds, maps, percentiles);
        int b = maps.Shape[0], cells = maps.Shape[1] * maps.Shape[2];
        var geometry = KernelCatalog.PercentileMasks(b, cells);
        ulong q0 = Stage(percentiles);
        try
        {
            Launch(KernelCatalog.Entry.PercentileMasks, geometry, F(masks), F(thresholds), F(maps), KernelArg.F32Ptr(new CUdeviceptr(q0)), b, cells);
        }
        finally { _memory.Free(q0); }
    }

    public void MaskMix(Tensor mixed, Tensor mixedTargets, Tensor fractions, Tensor x, Tensor targets, Tensor masks,
        ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1)
    {
        Enter();
        OpChecks.MaskMix(mixed, mixedTargets, fractions, x, targets, masks, perm, lambda1);
        var s = x.Shape;
        int p = masks.Shape[1], k = targets.Shape[1];
        var geometry = KernelCatalog.MaskMix(s.N, s.C, s.H, s.W, p, k, lambda1.Length);
        ulong permDev = Stage(perm), lambdaDev = Stage(lambda1);
        try
        {
            Launch(KernelCatalog.Entry.MaskMix, geometry, F(mixed), F(mixedTargets), F(fractions), F(x), F(targets), F(masks),
                KernelArg.I32Ptr(new CUdeviceptr(permDev)), KernelArg.F32Ptr(new CUdeviceptr(lambdaDev)), lambda1.Length,
                s.N, s.C, s.H, s.W, p, k);
        }
        finally { _memory.Free(permDev); _memory.Free(lambdaDev); }
    }

    public void InputMixup(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, float lambda)
    {
        Enter();
        OpChecks.InputMixup(mixed, mixedTargets, x, targets, perm);
        int b = x.Shape.N, d = x.Length / b, k = targets.Shape[1];
        var geometry = KernelCatalog.InputMixup(b, d, k);
        ulong permDev = Stage(perm);
        try
        {
            Launch(KernelCatalog.Entry.InputMixup, geometry, F(mixed), F(mixedTargets), F(x), F(targets), KernelArg.I32Ptr(new CUdeviceptr(permDev)),
                lambda, b, d, k);
        }
        finally { _memory.Free(permDev); }
    }

    public void CutMix(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, CutBox box)
    {
        Enter();
        OpChecks.CutMix(mixed, mixedTargets, x, targets, perm, box);
        var s = x.Shape;
        int k = targets.Shape[1];
        var geometry = KernelCatalog.CutMix(s.N, s.C, s.H, s.W, k, box.Y0, box.X0, box.Y1, box.X1);
        ulong permDev = Stage(perm);
        try
        {
            Launch(KernelCatalog.Entry.Cutmix, geometry, F(mixed), F(mixedTargets), F(x), F(targets), KernelArg.I32Ptr(new CUdeviceptr(permDev)),
                box.Y0, box.X0, box.Y1, box.X1, s.N, s.C, s.H, s.W, k);
        }
        finally { _memory.Free(permDev); }
    }

    // ---- the dataset on the device

    /// <summary>Copies <paramref name="data"/> (a dataset's uint8 pixels or labels) to device memory once.</summary>
    public DeviceBytes UploadBytes(ReadOnlySpan<byte> data)
    {
        Enter();
        return new DeviceBytes(this, Stage(data), data.Length);
    }

    /// <summary>
    /// A training or evaluation batch gathered on the device: x (B,3,H,W) from images
    /// (N,3,H,W uint8) at <paramref name="indices"/>, each shifted by (dx, dy) with zero padding in
    /// the raw 0..255 space, mirrored when flip is set, then normalised by (v/255 − mean)/std; and
    /// targets (B,K) one-hot of the labels. <paramref name="augment"/> holds (dx, dy, flip) per image,
    /// flip 0 or 1 (all zeros: no augmentation). Bit-identical to the CPU batch source.
    /// </summary>
    public void GatherAugment(Tensor x, Tensor targets, DeviceBytes images, DeviceBytes labels, ReadOnlySpan<int> indices,
        ReadOnlySpan<int> augment, ReadOnlySpan<float> mean, ReadOnlySpan<float> std)
    {
        Enter();
        const string op = "gather augment";
        if (!ReferenceEquals(images.Owner, this) || !ReferenceEquals(labels.Owner, this))
            throw new ArgumentException($"{op}: the dataset was uploaded by another backend");
        Check.Rank(op, "images", x.Shape, 4);
        Check.Rank(op, "targets", targets.Shape, 2);
        int b = x.Shape.N, h = x.Shape.H, w = x.Shape.W, k = targets.Shape[1];
        if (x.Shape.C != 3) throw new ShapeMismatchException($"{op}: images must have 3 channels, got {x.Shape}");
        Check.Dim(op, "targets", targets.Shape, 0, "images", x.Shape, 0);
        OpChecks.NonEmpty(op, "images", x.Shape);
        OpChecks.NonEmpty(op, "targets", targets.Shape);
        OpChecks.Disjoint(op, "targets", targets, "images", x);
        if (indices.Length != b || augment.Length != 3 * b || mean.Length != 3 || std.Length != 3)
            throw new ArgumentException($"{op}: {indices.Length} indices and {augment.Length} crop values for a batch of {b} (need B and 3·B), {mean.Length} means, {std.Length} stds");
        long imageBytes = 3L * h * w, n = labels.Length;
        if (images.Length != n * imageBytes)
            throw new ArgumentException($"{op}: {images.Length} pixel bytes do not hold {n} images of {imageBytes} bytes");
        for (int i = 0; i < b; i++)
        {
            if ((uint)indices[i] >= (ulong)n) throw new ArgumentOutOfRangeException(nameof(indices), indices[i], $"{op}: image index outside 0..{n - 1}");
            int dx = augment[3 * i], dy = augment[3 * i + 1], flip = augment[3 * i + 2];
            if (dx <= -w || dx >= w || dy <= -h || dy >= h || (flip != 0 && flip != 1))
                throw new ArgumentOutOfRangeException(nameof(augment), $"{op}: image {i}: crop ({dx}, {dy}) or flip {flip} out of range");
        }
        var geometry = KernelCatalog.GatherAugment(b, h, w, k);
        ulong idx = Stage(indices), aug = Stage(augment);
        try
        {
            Launch(KernelCatalog.Entry.GatherAugment, geometry, F(x), F(targets),
                KernelArg.U8Ptr(new CUdeviceptr(images.Pointer)), KernelArg.U8Ptr(new CUdeviceptr(labels.Pointer)),
                KernelArg.I32Ptr(new CUdeviceptr(idx)), KernelArg.I32Ptr(new CUdeviceptr(aug)),
                mean[0], mean[1], mean[2], std[0], std[1], std[2], b, h, w, k);
        }
        finally { _memory.Free(idx); _memory.Free(aug); }
    }
}
