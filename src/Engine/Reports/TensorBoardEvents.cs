using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace RlMixup.Engine.Reports;

/// <summary>
/// TensorBoard's event file, written without TensorFlow: TFRecord framing (the length as a little-
/// endian uint64, the masked CRC32C of those 8 bytes, the data, the masked CRC32C of the data)
/// around <c>Event</c> protocol buffers, hand-encoded for the fields a scalar needs: wall_time (1,
/// double), step (2, int64), file_version (3, string, the first record: "brain.Event:2") and summary
/// (5), whose values (1, repeated) hold a tag (1, string) and a simple_value (2, float). The file is
/// events.out.tfevents.&lt;unix seconds&gt;.&lt;host&gt; in the run folder; TensorBoard, and W&amp;B's
/// <c>wandb sync --sync-tensorboard</c>, read it. A resumed run adds a new file beside the old ones.
/// </summary>
public sealed class TensorBoardWriter : IDisposable
{
    private readonly FileStream _file;
    private readonly BufferedStream _out;

    public TensorBoardWriter(string folder, DateTime? now = null)
    {
        var utc = (now ?? DateTime.UtcNow).ToUniversalTime();
        long seconds = new DateTimeOffset(utc).ToUnixTimeSeconds();
        string host = string.Concat(Environment.MachineName.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
        string name = $"events.out.tfevents.{seconds}.{host}";
        for (int k = 1; File.Exists(System.IO.Path.Combine(folder, name)); k++) name = $"events.out.tfevents.{seconds}.{host}.{k}";
        Path = System.IO.Path.Combine(folder, name);
        _file = new FileStream(Path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        _out = new BufferedStream(_file, 1 << 16);
        Record(EventProto.FileVersion(WallTime(utc)));
        Flush();
    }

    public string Path { get; }

    /// <summary>One Event at <paramref name="step"/> holding a scalar per tag (non-finite values are written as they are).</summary>
    public void Scalars(long step, IEnumerable<(string Tag, double Value)> values) =>
        Record(EventProto.Scalars(WallTime(DateTime.UtcNow), step, values));

    public void Scalar(long step, string tag, double value) => Scalars(step, [(tag, value)]);

    /// <summary>Writes what is buffered through to the file (every epoch, and on disposal).</summary>
    public void Flush()
    {
        _out.Flush();
        _file.Flush();
    }

    public void Dispose()
    {
        try { Flush(); }
        finally { _out.Dispose(); }
    }

    private static double WallTime(DateTime utc) => (utc - DateTime.UnixEpoch).TotalSeconds;

    private void Record(byte[] data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], TfRecord.MaskedCrc32C(header[..8]));
        _out.Write(header);
        _out.Write(data);
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, TfRecord.MaskedCrc32C(data));
        _out.Write(footer);
    }
}

/// <summary>TFRecord's checksum: CRC32C (Castagnoli), masked as ((crc >> 15) | (crc << 17)) + 0xa282ead8.</summary>
public static class TfRecord
{
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    public static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = Crc32C(data);
        return unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);
    }
}

/// <summary>The protocol-buffer wire encoding of the two Event forms the writer needs.</summary>
public static class EventProto
{
    public static byte[] FileVersion(double wallTime)
    {
        var w = new MemoryStream();
        Fixed64(w, 1, BitConverter.DoubleToUInt64Bits(wallTime));
        Bytes(w, 3, Encoding.UTF8.GetBytes("brain.Event:2"));
        return w.ToArray();
    }

    public static byte[] Scalars(double wallTime, long step, IEnumerable<(string Tag, double Value)> values)
    {
        var summary = new MemoryStream();
        Span<byte> f = stackalloc byte[4];
        foreach (var (tag, value) in values)
        {
            var v = new MemoryStream();
            Bytes(v, 1, Encoding.UTF8.GetBytes(tag));
            Key(v, 2, 5);
            BinaryPrimitives.WriteSingleLittleEndian(f, (float)value);
            v.Write(f);
            Bytes(summary, 1, v.ToArray());
        }
        var w = new MemoryStream();
        Fixed64(w, 1, BitConverter.DoubleToUInt64Bits(wallTime));
        Key(w, 2, 0);
        Varint(w, (ulong)step);
        Bytes(w, 5, summary.ToArray());
        return w.ToArray();
    }

    private static void Key(Stream s, int field, int wireType) => Varint(s, (ulong)((field << 3) | wireType));

    private static void Varint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    private static void Fixed64(Stream s, int field, ulong v)
    {
        Key(s, field, 1);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        s.Write(b);
    }

    private static void Bytes(Stream s, int field, byte[] data)
    {
        Key(s, field, 2);
        Varint(s, (ulong)data.Length);
        s.Write(data);
    }
}
