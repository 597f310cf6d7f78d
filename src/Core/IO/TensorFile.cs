using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace RlMixup.Core.IO;

/// <summary>One named float32 tensor from an RLMT file: shape and row-major data.</summary>
public sealed record NamedArray(string Name, int[] Shape, float[] Data);

/// <summary>
/// Reader and writer for RLMT tensor files: the golden tensors produced by tests/golden/make_golden.py
/// and the engine's checkpoints.
/// </summary>
/// <remarks>
/// Little-endian layout: ASCII magic "RLMT", int32 version (1), int32 entry count; then per entry
/// int32 name length in bytes, UTF-8 name, int32 rank, int32 dims[rank], and
/// float32 data[product(dims)] in row-major order. A rank-0 entry holds one value.
/// </remarks>
public static class TensorFile
{
    public const int Version = 1;
    private static ReadOnlySpan<byte> Magic => "RLMT"u8;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static IReadOnlyDictionary<string, NamedArray> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes = File.ReadAllBytes(path);
        var cursor = new Cursor(bytes, path);

        if (bytes.Length < Magic.Length || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            throw cursor.Corrupt("missing RLMT magic at offset 0");
        }
        cursor.Skip(Magic.Length, "magic");

        int version = cursor.ReadInt32("version");
        if (version != Version)
        {
            throw cursor.Corrupt($"unsupported version {version} (expected {Version})");
        }
        int count = cursor.ReadInt32("entry count");
        if (count < 0)
        {
            throw cursor.Corrupt($"negative entry count {count}");
        }

        var result = new Dictionary<string, NamedArray>(Math.Min(count, 4096), StringComparer.Ordinal);
        for (int e = 0; e < count; e++)
        {
            string what = $"entry {e}";
            int nameLength = cursor.ReadInt32($"{what} name length");
            if (nameLength <= 0)
            {
                throw cursor.Corrupt($"{what} has invalid name length {nameLength}");
            }
            ReadOnlySpan<byte> nameBytes = cursor.Take(nameLength, $"{what} name");
            string name;
            try
            {
                name = StrictUtf8.GetString(nameBytes);
            }
            catch (DecoderFallbackException ex)
            {
                throw new InvalidDataException($"Tensor file '{path}' is corrupt: {what} name is not valid UTF-8.", ex);
            }
            what = $"entry {e} '{name}'";

            int rank = cursor.ReadInt32($"{what} rank");
            if (rank < 0)
            {
                throw cursor.Corrupt($"{what} has negative rank {rank}");
            }
            var shape = new int[rank];
            long elements = 1;
            for (int d = 0; d < rank; d++)
            {
                int dim = cursor.ReadInt32($"{what} dim {d}");
                if (dim < 0)
                {
                    throw cursor.Corrupt($"{what} has negative dimension {dim}");
                }
                shape[d] = dim;
                elements *= dim;
                if (elements > Array.MaxLength || elements * sizeof(float) > bytes.Length)
                {
                    throw cursor.Truncated($"{what} data ({FormatShape(shape.AsSpan(0, d + 1))} elements)");
                }
            }

            ReadOnlySpan<byte> raw = cursor.Take(checked((int)(elements * sizeof(float))), $"{what} data");
            var data = new float[elements];
            if (BitConverter.IsLittleEndian)
            {
                raw.CopyTo(MemoryMarshal.AsBytes(data.AsSpan()));
            }
            else
            {
                for (int i = 0; i < data.Length; i++)
                {
                    data[i] = BinaryPrimitives.ReadSingleLittleEndian(raw.Slice(i * sizeof(float)));
                }
            }

            if (!result.TryAdd(name, new NamedArray(name, shape, data)))
            {
                throw cursor.Corrupt($"duplicate entry name '{name}'");
            }
        }

        if (cursor.Remaining != 0)
        {
            throw cursor.Corrupt($"{cursor.Remaining} unexpected trailing bytes after {count} entries");
        }
        return result;
    }

    /// <summary>
    /// Writes to a temporary file beside <paramref name="path"/> and then renames it over
    /// <paramref name="path"/>, so that a crash mid-write never leaves a truncated file under that name.
    /// </summary>
    public static void WriteAtomic(string path, IEnumerable<(string Name, int[] Shape, float[] Data)> entries)
    {
        ArgumentNullException.ThrowIfNull(path);
        AtomicFile.Write(path, stream => Write(stream, entries));
    }

    public static void Write(string path, IEnumerable<(string Name, int[] Shape, float[] Data)> entries)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        Write(stream, entries);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>Validates the entries, then writes the RLMT bytes to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, IEnumerable<(string Name, int[] Shape, float[] Data)> entries)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(entries);

        var list = entries.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, shape, data) in list)
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new ArgumentException("Entry names must be non-empty.", nameof(entries));
            }
            if (!seen.Add(name))
            {
                throw new ArgumentException($"Duplicate entry name '{name}'.", nameof(entries));
            }
            ArgumentNullException.ThrowIfNull(shape);
            ArgumentNullException.ThrowIfNull(data);
            long elements = 1;
            foreach (int dim in shape)
            {
                if (dim < 0)
                {
                    throw new ArgumentException($"Entry '{name}' has negative dimension {dim}.", nameof(entries));
                }
                elements *= dim;
            }
            if (elements != data.Length)
            {
                throw new ArgumentException(
                    $"Entry '{name}' has shape {FormatShape(shape)} ({elements} elements) but {data.Length} values.", nameof(entries));
            }
        }

        using var writer = new BinaryWriter(stream, StrictUtf8, leaveOpen: true); // BinaryWriter is always little-endian
        writer.Write(Magic);
        writer.Write(Version);
        writer.Write(list.Count);
        foreach (var (name, shape, data) in list)
        {
            byte[] nameBytes = StrictUtf8.GetBytes(name);
            writer.Write(nameBytes.Length);
            writer.Write(nameBytes);
            writer.Write(shape.Length);
            foreach (int dim in shape)
            {
                writer.Write(dim);
            }
            if (BitConverter.IsLittleEndian)
            {
                writer.Write(MemoryMarshal.AsBytes(data.AsSpan()));
            }
            else
            {
                foreach (float v in data)
                {
                    writer.Write(v);
                }
            }
        }
        writer.Flush();
    }

    private static string FormatShape(ReadOnlySpan<int> shape) => "(" + string.Join(", ", shape.ToArray()) + ")";

    /// <summary>Bounds-checked sequential reader over the file contents.</summary>
    private ref struct Cursor(byte[] bytes, string path)
    {
        private readonly byte[] _bytes = bytes;
        private readonly string _path = path;
        private int _pos;

        public readonly int Remaining => _bytes.Length - _pos;

        public ReadOnlySpan<byte> Take(int count, string what)
        {
            if (count > Remaining)
            {
                throw Truncated(what);
            }
            var span = _bytes.AsSpan(_pos, count);
            _pos += count;
            return span;
        }

        public void Skip(int count, string what) => Take(count, what);

        public int ReadInt32(string what) => BinaryPrimitives.ReadInt32LittleEndian(Take(sizeof(int), what));

        public readonly InvalidDataException Truncated(string what) => new(
            $"Tensor file '{_path}' is truncated: reading {what} at offset {_pos} but the file has only {_bytes.Length} bytes.");

        public readonly InvalidDataException Corrupt(string message) => new(
            $"Tensor file '{_path}' is corrupt: {message} (offset {_pos}).");
    }
}
