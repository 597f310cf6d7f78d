namespace RlMixup.Engine.Data;

/// <summary>Images and labels held as uint8 on the host: images (N, 3, 32, 32) row-major, labels (N).</summary>
public sealed class ImageSet(byte[] pixels, byte[] labels, int classes)
{
    public const int Channels = 3, Height = 32, Width = 32, ImageBytes = Channels * Height * Width;
    public byte[] Pixels { get; } = pixels;
    public byte[] Labels { get; } = labels;
    public int Classes { get; } = classes;
    public int Count => Labels.Length;
    public ReadOnlySpan<byte> Image(int i) => Pixels.AsSpan(i * ImageBytes, ImageBytes);
}

/// <summary>Thrown for unreadable data; the message names the file and the problem in one line.</summary>
public sealed class DataFormatException(string message) : Exception(message);

/// <summary>
/// The CIFAR binary layout: each record is <c>labelBytes</c> label bytes (1 for CIFAR-10; 2 for
/// CIFAR-100, coarse then fine) followed by 1024 red, 1024 green and 1024 blue bytes, row-major 32×32.
/// The label used is the LAST label byte (the fine label for CIFAR-100).
/// </summary>
public static class CifarBinary
{
    public static ImageSet Read(IReadOnlyList<string> files, int labelBytes, int classes, int? limit = null)
    {
        int record = labelBytes + ImageSet.ImageBytes;
        var pixels = new List<byte[]>();
        var labels = new List<byte>();
        foreach (var file in files)
        {
            if (!File.Exists(file)) throw new DataFormatException($"{file}: file not found");
            byte[] bytes = File.ReadAllBytes(file);
            if (bytes.Length == 0 || bytes.Length % record != 0)
                throw new DataFormatException($"{file}: size {bytes.Length} bytes is not a positive multiple of the {record}-byte record (truncated or not CIFAR binary)");
            for (int off = 0; off < bytes.Length; off += record)
            {
                if (limit is int l && labels.Count >= l) break;
                byte label = bytes[off + labelBytes - 1];
                if (label >= classes)
                    throw new DataFormatException($"{file}: record {off / record} has label {label}, outside 0..{classes - 1}");
                labels.Add(label);
                pixels.Add(bytes.AsSpan(off + labelBytes, ImageSet.ImageBytes).ToArray());
            }
        }
        var flat = new byte[pixels.Count * ImageSet.ImageBytes];
        for (int i = 0; i < pixels.Count; i++) pixels[i].CopyTo(flat, i * ImageSet.ImageBytes);
        return new ImageSet(flat, [.. labels], classes);
    }

    /// <summary>CIFAR-10 training files data_batch_1..5.bin in <paramref name="dir"/>.</summary>
    public static ImageSet ReadCifar10Train(string dir, int? limit = null) =>
        Read([.. Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"data_batch_{i}.bin"))], 1, 10, limit);

    public static ImageSet ReadCifar10Test(string dir, int? limit = null) =>
        Read([Path.Combine(dir, "test_batch.bin")], 1, 10, limit);
}

/// <summary>Per-channel normalisation constants (method.md: CIFAR-100 statistics, used for both datasets).</summary>
public static class Normalisation
{
    public static readonly float[] Mean = [129.3f / 255f, 124.1f / 255f, 112.4f / 255f];
    public static readonly float[] Std = [68.2f / 255f, 65.4f / 255f, 70.4f / 255f];

    /// <summary>Writes images [start, start+count) of <paramref name="set"/> as normalised float32 NCHW into dst.</summary>
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
