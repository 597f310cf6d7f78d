using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace RlMixup.Core.IO;

/// <summary>One tensor of a safetensors file: its dtype name ("F32", "I64", …), shape and raw little-endian bytes.</summary>
public sealed record SafeTensor(string Name, string Dtype, long[] Shape, byte[] Data)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    public static SafeTensor FromFloats(string name, int[] shape, ReadOnlySpan<float> values)
    {
        var data = new byte[values.Length * sizeof(float)];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), values[i]);
        return new SafeTensor(name, "F32", [.. shape.Select(d => (long)d)], data);
    }

    public static SafeTensor FromInt64(string name, long[] shape, ReadOnlySpan<long> values)
    {
        var data = new byte[values.Length * sizeof(long)];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(i * 8), values[i]);
        return new SafeTensor(name, "I64", shape, data);
    }

    public static SafeTensor FromFloat64(string name, long[] shape, ReadOnlySpan<double> values)
    {
        var data = new byte[values.Length * sizeof(double)];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(i * 8), values[i]);
        return new SafeTensor(name, "F64", shape, data);
    }

    public static SafeTensor FromUInt64(string name, long[] shape, ReadOnlySpan<ulong> values)
    {
        var data = new byte[values.Length * sizeof(ulong)];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(i * 8), values[i]);
        return new SafeTensor(name, "U64", shape, data);
    }

    public double[] ToFloat64()
    {
        if (Dtype != "F64") throw new InvalidDataException($"tensor '{Name}' is {Dtype}, not F64");
        var v = new double[Data.Length / 8];
        for (int i = 0; i < v.Length; i++) v[i] = BinaryPrimitives.ReadDoubleLittleEndian(Data.AsSpan(i * 8));
        return v;
    }

    public ulong[] ToUInt64()
    {
        if (Dtype != "U64") throw new InvalidDataException($"tensor '{Name}' is {Dtype}, not U64");
        var v = new ulong[Data.Length / 8];
        for (int i = 0; i < v.Length; i++) v[i] = BinaryPrimitives.ReadUInt64LittleEndian(Data.AsSpan(i * 8));
        return v;
    }

    public float[] ToFloats()
    {
        if (Dtype != "F32") throw new InvalidDataException($"tensor '{Name}' is {Dtype}, not F32");
        var v = new float[Data.Length / 4];
        if (BitConverter.IsLittleEndian) Data.AsSpan().CopyTo(MemoryMarshal.AsBytes(v.AsSpan()));
        else for (int i = 0; i < v.Length; i++) v[i] = BinaryPrimitives.ReadSingleLittleEndian(Data.AsSpan(i * 4));
        return v;
    }

    public long[] ToInt64()
    {
        if (Dtype != "I64") throw new InvalidDataException($"tensor '{Name}' is {Dtype}, not I64");
        var v = new long[Data.Length / 8];
        for (int i = 0; i < v.Length; i++) v[i] = BinaryPrimitives.ReadInt64LittleEndian(Data.AsSpan(i * 8));
        return v;
    }
}

/// <summary>The tensors and the string metadata of a safetensors file.</summary>
public sealed record SafetensorsFile(IReadOnlyDictionary<string, SafeTensor> Tensors, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// Reader and writer of the safetensors format (huggingface/safetensors): an unsigned 64-bit
/// little-endian header length N, N bytes of UTF-8 JSON
/// <c>{"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..}</c>
/// padded with spaces to a multiple of 8, then the data section; offsets are relative to the data
/// section, and the tensors cover it contiguously with no gap or overlap.
/// </summary>
/// <remarks>
/// The writer orders the data as the reference writer does: by dtype size, largest first, then by
/// name (ordinal); the header lists <c>__metadata__</c> first and then the tensors in data order.
/// </remarks>
public static class Safetensors
{
    /// <summary>The reference implementation's bound on the header size.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, int> DtypeSizes = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E5M2"] = 1, ["F8_E4M3"] = 1, ["I16"] = 2, ["U16"] = 2,
        ["F16"] = 2, ["BF16"] = 2, ["I32"] = 4, ["U32"] = 4, ["F32"] = 4, ["F64"] = 8, ["I64"] = 8, ["U64"] = 8,
    };

    /// <summary>Bytes per element of a dtype, or throws for a name the format does not define.</summary>
    public static int DtypeSize(string dtype) =>
        DtypeSizes.TryGetValue(dtype, out int s) ? s : throw new ArgumentException($"unknown safetensors dtype '{dtype}'");

    /// <summary>The file as bytes.</summary>
    public static byte[] Serialize(IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in list)
        {
            if (string.IsNullOrEmpty(t.Name) || t.Name == "__metadata__") throw new ArgumentException($"invalid tensor name '{t.Name}'");
            if (!names.Add(t.Name)) throw new ArgumentException($"duplicate tensor name '{t.Name}'");
            if (t.Shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{t.Name}' has a negative dimension");
            long expect = t.ElementCount * DtypeSize(t.Dtype);
            if (expect != t.Data.Length)
                throw new ArgumentException($"tensor '{t.Name}': shape [{string.Join(", ", t.Shape)}] of {t.Dtype} needs {expect} bytes, got {t.Data.Length}");
        }
        list.Sort((a, b) =>
        {
            int c = DtypeSize(b.Dtype).CompareTo(DtypeSize(a.Dtype));
            return c != 0 ? c : string.CompareOrdinal(a.Name, b.Name);
        });

        using var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in list)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.Dtype);
                w.WriteStartArray("shape");
                foreach (long d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset += t.Data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int n = (int)header.Length, padded = (n + 7) / 8 * 8;
        long dataBytes = list.Sum(t => (long)t.Data.Length);
        var bytes = new byte[checked(8 + padded + dataBytes)];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)padded);
        header.GetBuffer().AsSpan(0, n).CopyTo(bytes.AsSpan(8));
        bytes.AsSpan(8 + n, padded - n).Fill((byte)' ');
        long pos = 8 + padded;
        foreach (var t in list) { t.Data.CopyTo(bytes, pos); pos += t.Data.Length; }
        return bytes;
    }

    /// <summary>
    /// Writes the file to a temporary sibling, flushes it to disk and renames it over
    /// <paramref name="path"/>: a crash never leaves a partial file under that name.
    /// </summary>
    public static void WriteAtomic(string path, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        AtomicFile.Write(path, Serialize(tensors, metadata));
    }

    public static SafetensorsFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses and validates a whole file; every defect is an <see cref="InvalidDataException"/> naming it.</summary>
    public static SafetensorsFile Parse(byte[] bytes, string source = "<bytes>")
    {
        InvalidDataException Bad(string why) => new($"safetensors file '{source}' is invalid: {why}");
        if (bytes.Length < 8) throw Bad($"it has {bytes.Length} bytes, fewer than the 8 of the header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (n > MaxHeaderBytes) throw Bad($"header length {n} exceeds the limit of {MaxHeaderBytes} bytes");
        if ((long)n > bytes.Length - 8) throw Bad($"header length {n} runs past the end of the file ({bytes.Length} bytes): truncated?");
        var headerBytes = bytes.AsSpan(8, (int)n);
        if (n == 0 || headerBytes[0] != (byte)'{') throw Bad("the header does not start with '{'");
        long dataStart = 8 + (long)n, dataLength = bytes.Length - dataStart;

        JsonDocument doc;
        try { doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n), new JsonDocumentOptions { AllowTrailingCommas = false }); }
        catch (JsonException ex) { throw new InvalidDataException($"safetensors file '{source}' is invalid: the header is not valid JSON ({ex.Message})", ex); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad("the header is not a JSON object");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<(string Name, string Dtype, long[] Shape, long Begin, long End)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw Bad($"duplicate key '{prop.Name}' in the header");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ is not an object");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw Bad($"metadata '{m.Name}' is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(prop, Bad));
            }

            entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            long expected = 0;
            var tensors = new Dictionary<string, SafeTensor>(StringComparer.Ordinal);
            foreach (var (name, dtype, shape, begin, end) in entries)
            {
                if (begin != expected)
                    throw Bad(begin < expected
                        ? $"tensor '{name}' [{begin}, {end}) overlaps the previous tensor (which ends at {expected})"
                        : $"a gap in the data section: tensor '{name}' starts at {begin}, the previous one ends at {expected}");
                if (end > dataLength)
                    throw Bad($"tensor '{name}' [{begin}, {end}) runs past the data section ({dataLength} bytes): truncated?");
                long elements = 1;
                foreach (long d in shape) elements = checked(elements * d);
                long size = checked(elements * DtypeSizes[dtype]);
                if (size != end - begin)
                    throw Bad($"tensor '{name}': shape [{string.Join(", ", shape)}] of {dtype} is {size} bytes but its offsets span {end - begin}");
                tensors.Add(name, new SafeTensor(name, dtype, shape, bytes.AsSpan((int)(dataStart + begin), (int)size).ToArray()));
                expected = end;
            }
            if (expected != dataLength)
                throw Bad($"the tensors cover {expected} bytes of a data section of {dataLength}: trailing bytes");
            return new SafetensorsFile(tensors, metadata);
        }
    }

    private static (string, string, long[], long, long) ParseEntry(JsonProperty prop, Func<string, InvalidDataException> bad)
    {
        string name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw bad($"entry '{name}' is not an object");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw bad($"tensor '{name}' has no dtype string");
        string dtype = dt.GetString()!;
        if (!DtypeSizes.ContainsKey(dtype)) throw bad($"tensor '{name}' has unknown dtype '{dtype}'");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw bad($"tensor '{name}' has no shape array");
        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw bad($"tensor '{name}' has an invalid dimension {d.GetRawText()}");
            shape[i++] = dim;
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw bad($"tensor '{name}' has no [begin, end] data_offsets");
        long begin = -1, end = -1;
        if (!off[0].TryGetInt64(out begin) || !off[1].TryGetInt64(out end) || begin < 0 || end < begin)
            throw bad($"tensor '{name}' has invalid data_offsets {off.GetRawText()}");
        foreach (var p in v.EnumerateObject())
            if (p.Name is not ("dtype" or "shape" or "data_offsets")) throw bad($"tensor '{name}' has an unknown field '{p.Name}'");
        return (name, dtype, shape, begin, end);
    }
}
