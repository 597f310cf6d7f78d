using System.Buffers.Binary;
using System.Text;

namespace RlMixup.Engine.Data;

/// <summary>A numpy array from a pickle: its shape, dtype descriptor ("|u1", "&lt;i8", …), memory order and raw bytes.</summary>
public sealed class PickledArray
{
    public int[] Shape { get; set; } = [];
    public string Dtype { get; set; } = "";
    public bool Fortran { get; set; }
    public byte[] Data { get; set; } = [];
}

/// <summary>
/// A minimal unpickler for exactly what CIFAR's Python files hold (written by Python 2's cPickle, or
/// by Python 3 with numpy): dicts, lists, tuples, strings and bytes, integers, floats, None and
/// booleans, and numpy arrays (numpy's _reconstruct + BUILD, with the dtype's descriptor). Protocols
/// 1 to 4. Any other global is refused: unpickling arbitrary objects runs arbitrary code, and a
/// data file has no business asking for it. Python 2 strings and bytes come back as byte[]; dict
/// keys that are strings or bytes come back as strings (Latin-1), so lookups need no encoding.
/// Every problem is a <see cref="DataFormatException"/> naming the file and the byte.
/// </summary>
public static class Pickle
{
    private sealed record Global(string Module, string Name);
    private sealed class Dtype { public string Descr = ""; }
    private sealed class Mark;
    private static readonly Mark TheMark = new();

    private static readonly HashSet<string> Allowed =
        ["numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype", "_codecs.encode"];

    public static object? Load(byte[] data, string path)
    {
        var stack = new List<object?>();
        var memo = new Dictionary<long, object?>();
        int i = 0;
        string Where() => $"{path}: byte {i}";
        DataFormatException Bad(string why) => new($"{Where()}: {why}");
        ReadOnlySpan<byte> Take(long n)
        {
            if (n < 0 || i + n > data.Length) throw Bad("the pickle is truncated");
            var s = data.AsSpan(i, (int)n);
            i += (int)n;
            return s;
        }
        object? PopAt()
        {
            if (stack.Count == 0) throw Bad("the pickle's stack is empty");
            var v = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return v;
        }
        List<object?> PopToMark()
        {
            int m = stack.FindLastIndex(x => ReferenceEquals(x, TheMark));
            if (m < 0) throw Bad("no mark on the pickle's stack");
            var items = stack.GetRange(m + 1, stack.Count - m - 1);
            stack.RemoveRange(m, stack.Count - m);
            return items;
        }
        object Key(object? k) => k switch { string s => s, byte[] b => Encoding.Latin1.GetString(b), long or int => k, _ => throw Bad($"a dict key of type {k?.GetType().Name ?? "None"}") };

        while (true)
        {
            if (i >= data.Length) throw Bad("the pickle ends without a STOP");
            byte op = data[i++];
            switch (op)
            {
                case 0x80: Take(1); break;                                   // PROTO
                case 0x95: Take(8); break;                                   // FRAME
                case (byte)'.':                                              // STOP
                    if (stack.Count != 1) throw Bad($"STOP with {stack.Count} objects on the stack");
                    return stack[0];
                case (byte)'(': stack.Add(TheMark); break;
                case (byte)'}': stack.Add(new Dictionary<object, object?>()); break;
                case (byte)']': stack.Add(new List<object?>()); break;
                case (byte)')': stack.Add(Array.Empty<object?>()); break;
                case (byte)'t': stack.Add(PopToMark().ToArray()); break;
                case 0x85: { var a = PopAt(); stack.Add(new[] { a }); break; }
                case 0x86: { var b = PopAt(); var a = PopAt(); stack.Add(new[] { a, b }); break; }
                case 0x87: { var c = PopAt(); var b = PopAt(); var a = PopAt(); stack.Add(new[] { a, b, c }); break; }
                case (byte)'q': memo[Take(1)[0]] = Top(); break;             // BINPUT
                case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Top(); break;
                case 0x94: memo[memo.Count] = Top(); break;                  // MEMOIZE
                case (byte)'h': stack.Add(Memo(Take(1)[0])); break;          // BINGET
                case (byte)'j': stack.Add(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                case (byte)'U': stack.Add(Take(Take(1)[0]).ToArray()); break; // SHORT_BINSTRING (Python 2 str)
                case (byte)'T': stack.Add(Take(BinaryPrimitives.ReadInt32LittleEndian(Take(4))).ToArray()); break;
                case (byte)'C': stack.Add(Take(Take(1)[0]).ToArray()); break; // SHORT_BINBYTES
                case (byte)'B': stack.Add(Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))).ToArray()); break;
                case 0x8e: stack.Add(Take((long)BinaryPrimitives.ReadUInt64LittleEndian(Take(8))).ToArray()); break;
                case 0x8c: stack.Add(Encoding.UTF8.GetString(Take(Take(1)[0]))); break; // SHORT_BINUNICODE
                case (byte)'X': stack.Add(Encoding.UTF8.GetString(Take(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))))); break;
                case 0x8d: stack.Add(Encoding.UTF8.GetString(Take((long)BinaryPrimitives.ReadUInt64LittleEndian(Take(8))))); break;
                case (byte)'J': stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case (byte)'K': stack.Add((long)Take(1)[0]); break;
                case (byte)'M': stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                case 0x8a:                                                   // LONG1
                {
                    int n = Take(1)[0];
                    if (n > 8) throw Bad("an integer wider than 64 bits");
                    var bytes = Take(n);
                    long v = 0;
                    for (int k = n - 1; k >= 0; k--) v = (v << 8) | bytes[k];
                    if (n > 0 && n < 8 && (bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
                    stack.Add(v);
                    break;
                }
                case (byte)'N': stack.Add(null); break;
                case 0x88: stack.Add(true); break;
                case 0x89: stack.Add(false); break;
                case (byte)'G': stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                case (byte)'c':                                              // GLOBAL "module\nname\n"
                    stack.Add(CheckGlobal(new Global(Line(), Line())));
                    break;
                case 0x93: { var name = PopAt() as string; var module = PopAt() as string; stack.Add(CheckGlobal(new Global(module ?? "", name ?? ""))); break; }
                case (byte)'R': { var args = PopAt() as object?[] ?? throw Bad("REDUCE without an argument tuple"); var f = PopAt(); stack.Add(Reduce(f, args)); break; }
                case (byte)'b': { var state = PopAt(); Build(Top(), state); break; }
                case (byte)'s': { var v = PopAt(); var k = PopAt(); Dict(Top())[Key(k)] = v; break; }
                case (byte)'u': { var items = PopToMark(); var d = Dict(Top()); for (int k = 0; k + 1 < items.Count; k += 2) d[Key(items[k])] = items[k + 1]; break; }
                case (byte)'a': { var v = PopAt(); List(Top()).Add(v); break; }
                case (byte)'e': { var items = PopToMark(); List(Top()).AddRange(items); break; }
                default: throw Bad($"unsupported pickle opcode 0x{op:x2}");
            }
        }

        object? Top() => stack.Count > 0 ? stack[^1] : throw Bad("the pickle's stack is empty");
        object? Memo(long k) => memo.TryGetValue(k, out var v) ? v : throw Bad($"memo entry {k} is missing");
        Dictionary<object, object?> Dict(object? o) => o as Dictionary<object, object?> ?? throw Bad("SETITEM on something other than a dict");
        List<object?> List(object? o) => o as List<object?> ?? throw Bad("APPEND on something other than a list");
        string Line()
        {
            int end = Array.IndexOf(data, (byte)'\n', i);
            if (end < 0) throw Bad("the pickle is truncated");
            string s = Encoding.ASCII.GetString(data, i, end - i);
            i = end + 1;
            return s;
        }
        Global CheckGlobal(Global g) =>
            Allowed.Contains($"{g.Module}.{g.Name}") ? g : throw Bad($"refuses to load {g.Module}.{g.Name} (a CIFAR file holds only numpy arrays and Python values)");
        object Reduce(object? f, object?[] args)
        {
            string name = f is Global g ? $"{g.Module}.{g.Name}" : "?";
            if (name.EndsWith("._reconstruct", StringComparison.Ordinal)) return new PickledArray();
            if (name == "numpy.dtype" && args.Length >= 1 && args[0] is string or byte[]) return new Dtype { Descr = args[0] is string s ? s : Encoding.Latin1.GetString((byte[])args[0]!) };
            if (name == "_codecs.encode" && args.Length == 2 && args[0] is string text) return Encoding.Latin1.GetBytes(text);
            throw Bad($"cannot call {name} with these arguments");
        }
        void Build(object? target, object? state)
        {
            switch (target)
            {
                case Dtype d when state is object?[] t && t.Length >= 2:
                    string order = t[1] is string o ? o : t[1] is byte[] ob ? Encoding.Latin1.GetString(ob) : "|";
                    d.Descr = (order is "<" or ">" or "|" ? order : "|") + d.Descr;
                    break;
                case PickledArray a when state is object?[] t && t.Length == 5:
                    a.Shape = t[1] is object?[] shape ? [.. shape.Select(x => x is long n && n is >= 0 and <= int.MaxValue ? (int)n : throw Bad("a bad array shape"))] : throw Bad("a bad array shape");
                    a.Dtype = (t[2] as Dtype)?.Descr ?? throw Bad("an array without a dtype");
                    a.Fortran = t[3] is true;
                    a.Data = t[4] as byte[] ?? throw Bad("an array whose data is not raw bytes");
                    break;
                default: throw Bad($"BUILD on {target?.GetType().Name ?? "None"}");
            }
        }
    }
}
