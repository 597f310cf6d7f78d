using RlMixup.Core.Cuda;
using RlMixup.Core;

namespace RlMixup.Engine.Data;

/// <summary>
/// One image's augmentation: the crop's shift (output pixel (y, x) reads source pixel
/// (y + Dy, x + Dx), zero outside the image; |Dx|, |Dy| ≤ padding) and whether the crop is then
/// flipped horizontally.
/// </summary>
public readonly record struct CropFlip(int Dx, int Dy, bool Flip)
{
    public static readonly CropFlip Identity = new(0, 0, false);
}

/// <summary>
/// Training augmentation (method.md): random crop 32 with zero padding <see cref="Padding"/> (2 by
/// default, 4 as an option), then a horizontal flip with probability 0.5 when <see cref="Flip"/>.
/// The random draws happen here, on the host, from the run's <see cref="Rng"/>; applying them is
/// the batch source's job, so every backend sees the same augmentation for the same seed.
/// </summary>
public sealed record Augmentation(int Padding = 2, bool Flip = true)
{
    /// <summary>method.md's default: padding 2 and flips.</summary>
    public static readonly Augmentation Default = new();

    /// <summary>
    /// Draws one <see cref="CropFlip"/> per image into <paramref name="dst"/>. Per image, in this
    /// order: the crop's top offset oy, then its left offset ox, each uniform in 0..2·Padding of the
    /// padded image (so Dy = oy − Padding, Dx = ox − Padding), then one uniform double, flip when &lt; 0.5.
    /// </summary>
    public void Draw(Rng rng, Span<CropFlip> dst)
    {
        if (Padding < 0 || Padding >= ImageSet.Width) throw new ArgumentOutOfRangeException(nameof(Padding), $"crop padding {Padding}");
        int range = 2 * Padding + 1;
        for (int i = 0; i < dst.Length; i++)
        {
            int oy = rng.NextInt(range), ox = rng.NextInt(range);
            bool flip = Flip && rng.NextDouble() < 0.5;
            dst[i] = new CropFlip(ox - Padding, oy - Padding, flip);
        }
    }
}

/// <summary>
/// The seam between the trainer and where the uint8 dataset lives. A source owns one image set and
/// writes a batch of it, already augmented and normalised, as float NCHW into a tensor of its
/// backend, together with the one-hot targets.
///
/// The CPU implementation, <see cref="CpuBatchSource"/>, keeps the images on the host and uploads
/// each finished batch. A CUDA implementation keeps the uint8 images resident on the GPU, uploads
/// only the indices and <see cref="CropFlip"/> records of a batch, and gathers, crops, flips and
/// normalises in one kernel. Indices and augmentation draws are made by <see cref="DataLoader"/>
/// from the run's Rng on the host in both cases, so the trainer and the random streams stay the
/// same whichever backend runs.
/// </summary>
public interface IBatchSource
{
    IBackend Backend { get; }
    /// <summary>Images in the set.</summary>
    int Count { get; }
    int Classes { get; }
    /// <summary>The label of image <paramref name="index"/> (host-side; for accuracy bookkeeping).</summary>
    int Label(int index);

    /// <summary>
    /// x (n, 3, 32, 32) = normalise(augment(images[indices])), targets (n, K) = one-hot labels, with
    /// n = indices.Length. <paramref name="augment"/> holds one entry per image, or is empty for none.
    /// </summary>
    void Fill(Tensor x, Tensor targets, ReadOnlySpan<int> indices, ReadOnlySpan<CropFlip> augment);
}

/// <summary>The CPU batch source: crops, flips and normalises on the host, then copies into the tensors.</summary>
public sealed class CpuBatchSource(IBackend backend, ImageSet set) : IBatchSource
{
    private float[] _x = [], _y = [];

    public IBackend Backend { get; } = backend;
    public ImageSet Set { get; } = set;
    public int Count => Set.Count;
    public int Classes => Set.Classes;
    public int Label(int index) => Set.Labels[index];

    public void Fill(Tensor x, Tensor targets, ReadOnlySpan<int> indices, ReadOnlySpan<CropFlip> augment)
    {
        int n = indices.Length, k = Classes;
        if (x.Shape != new Shape(n, ImageSet.Channels, ImageSet.Height, ImageSet.Width))
            throw new ShapeMismatchException($"batch source: images tensor {x.Shape} does not hold {n} images of (3, 32, 32)");
        if (targets.Shape != new Shape(n, k))
            throw new ShapeMismatchException($"batch source: targets tensor {targets.Shape} is not ({n}, {k})");
        if (augment.Length != 0 && augment.Length != n)
            throw new ArgumentException($"batch source: {augment.Length} augmentation records for {n} images");
        if (_x.Length < x.Length) _x = new float[x.Length];
        if (_y.Length < targets.Length) _y = new float[targets.Length];
        var xs = _x.AsSpan(0, x.Length);
        var ys = _y.AsSpan(0, targets.Length);
        ys.Clear();
        const int imageFloats = ImageSet.ImageBytes;
        for (int i = 0; i < n; i++)
        {
            int idx = indices[i];
            if ((uint)idx >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"image index {idx} outside 0..{Count - 1}");
            if (augment.Length != 0 && (augment[i].Dx <= -ImageSet.Width || augment[i].Dx >= ImageSet.Width || augment[i].Dy <= -ImageSet.Height || augment[i].Dy >= ImageSet.Height))
                throw new ArgumentOutOfRangeException(nameof(augment), $"batch source: image {i}: crop ({augment[i].Dx}, {augment[i].Dy}) is not smaller than the image");
            var dst = xs.Slice(i * imageFloats, imageFloats);
            if (augment.Length == 0) WriteImage(Set.Image(idx), CropFlip.Identity, dst);
            else WriteImage(Set.Image(idx), augment[i], dst);
            ys[i * k + Set.Labels[idx]] = 1f;
        }
        x.CopyFrom(xs);
        targets.CopyFrom(ys);
    }

    /// <summary>One image: crop-shift with zero fill, optional horizontal flip, normalise (the reference of the augmentation).</summary>
    public static void WriteImage(ReadOnlySpan<byte> src, CropFlip a, Span<float> dst)
    {
        const int h = ImageSet.Height, w = ImageSet.Width, plane = h * w;
        for (int c = 0; c < ImageSet.Channels; c++)
        {
            float scale = 1f / (255f * Normalisation.Std[c]), shift = -Normalisation.Mean[c] / Normalisation.Std[c];
            var s = src.Slice(c * plane, plane);
            var d = dst.Slice(c * plane, plane);
            for (int y = 0; y < h; y++)
            {
                int sy = y + a.Dy;
                var row = d.Slice(y * w, w);
                if ((uint)sy >= h) { row.Fill(shift); continue; } // a zero pixel, normalised
                var srow = s.Slice(sy * w, w);
                for (int x = 0; x < w; x++)
                {
                    int cx = a.Flip ? w - 1 - x : x; // the flip mirrors the cropped image
                    int sx = cx + a.Dx;
                    row[x] = (uint)sx < w ? srow[sx] * scale + shift : shift;
                }
            }
        }
    }
}

/// <summary>
/// One batch of an epoch: its position, the source indices, the filled tensors (views of n images)
/// and the augmentation drawn for each image (empty without augmentation; reused by the next batch).
/// </summary>
public readonly record struct Batch(int Index, int[] Indices, Tensor X, Tensor Targets, ReadOnlyMemory<CropFlip> Augment = default)
{
    public int Size => Indices.Length;
}

/// <summary>
/// Epochs of batches over a source. Training: <c>shuffle</c> draws a Fisher–Yates permutation from
/// the run's Rng at the start of every epoch, the last incomplete batch is dropped (method.md, batch
/// 100) and each image gets an <see cref="Augmentation"/> draw. Test: sequential, nothing dropped
/// (the last batch may be smaller), no augmentation — normalisation only.
/// The yielded tensors are reused from batch to batch: consume a batch before asking for the next.
/// </summary>
public sealed class DataLoader : IDisposable
{
    private readonly Tensor _x, _targets;
    private readonly CropFlip[] _aug;

    public DataLoader(IBatchSource source, int batchSize, bool shuffle, bool dropLast, Augmentation? augmentation)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), $"batch size {batchSize}");
        Source = source; BatchSize = batchSize; Shuffle = shuffle; DropLast = dropLast; Augmentation = augmentation;
        _x = source.Backend.Allocate(new Shape(batchSize, ImageSet.Channels, ImageSet.Height, ImageSet.Width));
        _targets = source.Backend.Allocate(new Shape(batchSize, source.Classes));
        _aug = new CropFlip[batchSize];
    }

    /// <summary>method.md's training loader: shuffled, drop-last, crop (padding 2 unless given) and flip.</summary>
    public static DataLoader Training(IBatchSource source, int batchSize = 100, Augmentation? augmentation = null) =>
        new(source, batchSize, shuffle: true, dropLast: true, augmentation ?? Augmentation.Default);

    /// <summary>The evaluation loader: in order, every image, normalisation only.</summary>
    public static DataLoader Evaluation(IBatchSource source, int batchSize = 100) =>
        new(source, batchSize, shuffle: false, dropLast: false, augmentation: null);

    public IBatchSource Source { get; }
    public int BatchSize { get; }
    public bool Shuffle { get; }
    public bool DropLast { get; }
    public Augmentation? Augmentation { get; }

    public int BatchesPerEpoch => DropLast ? Source.Count / BatchSize : (Source.Count + BatchSize - 1) / BatchSize;

    /// <summary>The batches' index lists for one epoch (draws the permutation when shuffling).</summary>
    public List<int[]> Plan(Rng? rng)
    {
        int[] order;
        if (Shuffle) order = (rng ?? throw new ArgumentNullException(nameof(rng), "a shuffled loader needs the run's Rng")).Permutation(Source.Count);
        else order = [.. Enumerable.Range(0, Source.Count)];
        var batches = new List<int[]>(BatchesPerEpoch);
        for (int b = 0; b < BatchesPerEpoch; b++)
        {
            int start = b * BatchSize, n = Math.Min(BatchSize, Source.Count - start);
            batches.Add(order.AsSpan(start, n).ToArray());
        }
        return batches;
    }

    /// <summary>
    /// One epoch. The permutation is drawn first, then each batch's augmentation just before it is
    /// filled, all from <paramref name="rng"/> (which may be null for an unshuffled, unaugmented loader).
    /// </summary>
    public IEnumerable<Batch> Epoch(Rng? rng)
    {
        var plan = Plan(rng);
        for (int b = 0; b < plan.Count; b++) yield return FillBatch(plan, b, rng);
    }

    /// <summary>
    /// Batch <paramref name="b"/> of an epoch's <paramref name="plan"/>: draws its augmentation from
    /// <paramref name="rng"/> and fills it. Filling the batches of a plan in order is what
    /// <see cref="Epoch"/> does; starting at a later batch continues an epoch stopped after the one before.
    /// </summary>
    public Batch FillBatch(IReadOnlyList<int[]> plan, int b, Rng? rng)
    {
        int[] idx = plan[b];
        int n = idx.Length;
        if (n > BatchSize) throw new ArgumentException($"batch {b} of the plan holds {n} images, the loader's batch is {BatchSize}");
        var x = n == BatchSize ? _x : _x.View(0, new Shape(n, ImageSet.Channels, ImageSet.Height, ImageSet.Width));
        var t = n == BatchSize ? _targets : _targets.View(0, new Shape(n, Source.Classes));
        Span<CropFlip> a = [];
        if (Augmentation is { } augmentation)
        {
            a = _aug.AsSpan(0, n);
            augmentation.Draw(rng ?? throw new ArgumentNullException(nameof(rng), "an augmenting loader needs the run's Rng"), a);
        }
        Source.Fill(x, t, idx, a);
        return new Batch(b, idx, x, t, a.Length == 0 ? default : _aug.AsMemory(0, n));
    }

    public void Dispose()
    {
        _x.Dispose();
        _targets.Dispose();
    }
}

/// <summary>
/// The GPU batch source: the uint8 images and labels are copied to the device once, and each batch
/// is gathered, cropped, flipped and normalised there by one kernel (<see cref="CudaBackend.GatherAugment"/>),
/// from the same host-drawn indices and crops as <see cref="CpuBatchSource"/>, with the same result bit for bit.
/// </summary>
public sealed class CudaBatchSource : IBatchSource, IDisposable
{
    private readonly CudaBackend _backend;
    private readonly DeviceBytes _images, _labels;
    private int[] _aug = [];

    public CudaBatchSource(CudaBackend backend, ImageSet set)
    {
        _backend = backend;
        Set = set;
        _images = backend.UploadBytes(set.Pixels);
        try { _labels = backend.UploadBytes(set.Labels); }
        catch { _images.Dispose(); throw; }
    }

    public IBackend Backend => _backend;
    public ImageSet Set { get; }
    public int Count => Set.Count;
    public int Classes => Set.Classes;
    public int Label(int index) => Set.Labels[index];

    public void Fill(Tensor x, Tensor targets, ReadOnlySpan<int> indices, ReadOnlySpan<CropFlip> augment)
    {
        int n = indices.Length;
        if (augment.Length != 0 && augment.Length != n)
            throw new ArgumentException($"batch source: {augment.Length} augmentation records for {n} images");
        if (targets.Shape != new Shape(n, Classes))
            throw new ShapeMismatchException($"batch source: targets tensor {targets.Shape} is not ({n}, {Classes})");
        if (_aug.Length < 3 * n) _aug = new int[3 * n];
        var aug = _aug.AsSpan(0, 3 * n);
        aug.Clear();
        for (int i = 0; i < augment.Length; i++)
            (aug[3 * i], aug[3 * i + 1], aug[3 * i + 2]) = (augment[i].Dx, augment[i].Dy, augment[i].Flip ? 1 : 0);
        _backend.GatherAugment(x, targets, _images, _labels, indices, aug, Normalisation.Mean, Normalisation.Std);
    }

    public void Dispose()
    {
        _images.Dispose();
        _labels.Dispose();
    }
}

/// <summary>The batch source for a backend: on a GPU the dataset lives on the device, elsewhere on the host.</summary>
public static class BatchSources
{
    public static IBatchSource Create(IBackend backend, ImageSet set) =>
        backend is CudaBackend cuda ? new CudaBatchSource(cuda, set) : new CpuBatchSource(backend, set);
}
