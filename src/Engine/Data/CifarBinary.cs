namespace RlMixup.Engine.Data;

/// <summary>Images and labels held as uint8 on the host: images (N, 3, 32, 32) row-major, labels (N).</summary>
public sealed class ImageSet
{
    public const int Channels = 3, Height = 32, Width = 32, ImageBytes = Channels * Height * Width;

    public ImageSet(byte[] pixels, byte[] labels, int classes)
    {
        if (pixels.Length != labels.Length * ImageBytes)
            throw new ArgumentException($"image set: {pixels.Length} pixel bytes do not hold {labels.Length} images of {ImageBytes} bytes");
        if (classes < 1 || classes > 256) throw new ArgumentOutOfRangeException(nameof(classes), classes, "image set: classes must be in 1..256");
        // the batch sources write one-hot rows of K = classes (the GPU's gather_augment cannot check a label on the device)
        int bad = Array.FindIndex(labels, l => l >= classes);
        if (bad >= 0) throw new ArgumentException($"image set: image {bad} has label {labels[bad]}, outside 0..{classes - 1}");
        Pixels = pixels; Labels = labels; Classes = classes;
    }

    public byte[] Pixels { get; }
    public byte[] Labels { get; }
    public int Classes { get; }
    public int Count => Labels.Length;
    public ReadOnlySpan<byte> Image(int i) => Pixels.AsSpan(i * ImageBytes, ImageBytes);

    /// <summary>A new set holding copies of the images at <paramref name="indices"/>, in that order.</summary>
    public ImageSet Subset(ReadOnlySpan<int> indices)
    {
        var px = new byte[indices.Length * ImageBytes];
        var lb = new byte[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            Image(indices[i]).CopyTo(px.AsSpan(i * ImageBytes));
            lb[i] = Labels[indices[i]];
        }
        return new ImageSet(px, lb, Classes);
    }
}

/// <summary>Thrown for unreadable or unobtainable data; the message names the file and the problem in one line.</summary>
public sealed class DataFormatException(string message) : Exception(message);

/// <summary>
/// The CIFAR binary layout: each record is <c>labelBytes</c> label bytes (1 for CIFAR-10; 2 for
/// CIFAR-100, coarse then fine) followed by 1024 red, 1024 green and 1024 blue bytes, row-major 32×32.
/// The label used is the LAST label byte (the fine label for CIFAR-100).
/// </summary>
public static class CifarBinary
{
    /// <summary>
    /// Reads the records of <paramref name="files"/> in order, at most <paramref name="limit"/> of them.
    /// Every file is checked before reading: present, not empty, a whole number of records; every
    /// label read must lie in 0..classes−1. Failures throw <see cref="DataFormatException"/>.
    /// </summary>
    public static ImageSet Read(IReadOnlyList<string> files, int labelBytes, int classes, int? limit = null)
    {
        if (labelBytes < 1) throw new ArgumentOutOfRangeException(nameof(labelBytes));
        int record = labelBytes + ImageSet.ImageBytes;
        var counts = new long[files.Count];
        long total = 0;
        for (int f = 0; f < files.Count; f++)
        {
            var info = new FileInfo(files[f]);
            if (!info.Exists) throw new DataFormatException($"{files[f]}: file not found");
            if (info.Length == 0) throw new DataFormatException($"{files[f]}: file is empty");
            if (info.Length % record != 0)
                throw new DataFormatException($"{files[f]}: size {info.Length} bytes is not a multiple of the {record}-byte record (truncated or not CIFAR binary with {labelBytes} label byte(s))");
            counts[f] = info.Length / record;
            total += counts[f];
        }
        int n = (int)Math.Min(total, limit is int l ? Math.Max(l, 0) : int.MaxValue);
        var pixels = new byte[(long)n * ImageSet.ImageBytes];
        var labels = new byte[n];
        var buf = new byte[record * 256];
        int done = 0;
        for (int f = 0; f < files.Count && done < n; f++)
        {
            using var stream = new FileStream(files[f], FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            int left = (int)Math.Min(counts[f], n - done), index = 0;
            while (left > 0)
            {
                int chunk = Math.Min(left, 256);
                stream.ReadExactly(buf, 0, chunk * record);
                for (int r = 0; r < chunk; r++, index++, done++)
                {
                    byte label = buf[r * record + labelBytes - 1];
                    if (label >= classes)
                        throw new DataFormatException($"{files[f]}: record {index} has label {label}, outside 0..{classes - 1}");
                    labels[done] = label;
                    buf.AsSpan(r * record + labelBytes, ImageSet.ImageBytes).CopyTo(pixels.AsSpan(done * ImageSet.ImageBytes));
                }
                left -= chunk;
            }
        }
        return new ImageSet(pixels, labels, classes);
    }

    /// <summary>CIFAR-10 training files data_batch_1..5.bin in <paramref name="dir"/>.</summary>
    public static ImageSet ReadCifar10Train(string dir, int? limit = null) =>
        Read([.. Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"data_batch_{i}.bin"))], 1, 10, limit);

    public static ImageSet ReadCifar10Test(string dir, int? limit = null) =>
        Read([Path.Combine(dir, "test_batch.bin")], 1, 10, limit);

    /// <summary>CIFAR-100 train.bin in <paramref name="dir"/> (2 label bytes; the fine label is used).</summary>
    public static ImageSet ReadCifar100Train(string dir, int? limit = null) =>
        Read([Path.Combine(dir, "train.bin")], 2, 100, limit);

    public static ImageSet ReadCifar100Test(string dir, int? limit = null) =>
        Read([Path.Combine(dir, "test.bin")], 2, 100, limit);

    /// <summary>
    /// Class names, one non-empty line each, in label order; exactly <paramref name="classes"/> of them.
    /// </summary>
    public static string[] ReadClassNames(string file, int classes)
    {
        if (!File.Exists(file)) throw new DataFormatException($"{file}: file not found");
        var names = File.ReadAllLines(file).Select(s => s.Trim()).Where(s => s.Length > 0).ToArray();
        if (names.Length != classes)
            throw new DataFormatException($"{file}: {names.Length} class names, expected {classes}");
        return names;
    }
}

/// <summary>Per-channel normalisation constants (method.md: CIFAR-100 statistics, used for both datasets).</summary>
public static class Normalisation
{
    public static readonly float[] Mean = [129.3f / 255f, 124.1f / 255f, 112.4f / 255f];
    public static readonly float[] Std = [68.2f / 255f, 65.4f / 255f, 70.4f / 255f];

    /// <summary>The normalised value of raw byte <paramref name="v"/> in channel <paramref name="c"/>: (v/255 − mean)/std.</summary>
    public static float Apply(int c, byte v) => v * (1f / (255f * Std[c])) + (-Mean[c] / Std[c]);

    /// <summary>Writes the images at <paramref name="indices"/> of <paramref name="set"/> as normalised float32 NCHW into dst.</summary>
    public static void ToFloat(ImageSet set, ReadOnlySpan<int> indices, Span<float> dst)
    {
        const int plane = ImageSet.Height * ImageSet.Width;
        for (int n = 0; n < indices.Length; n++)
        {
            var img = set.Image(indices[n]);
            for (int c = 0; c < 3; c++)
            {
                float scale = 1f / (255f * Std[c]), shift = -Mean[c] / Std[c];
                var d = dst.Slice((n * 3 + c) * plane, plane);
                var s = img.Slice(c * plane, plane);
                for (int i = 0; i < plane; i++) d[i] = s[i] * scale + shift;
            }
        }
    }
}
