namespace RlMixup.Core.IO;

/// <summary>
/// The entries of a training checkpoint, kept as safetensors tensors of the dtype each value needs
/// to come back exactly: F32 for weights and buffers, F64 for doubles, I64 for counters and indices,
/// U64 for random-generator states. Python reads them with <c>safetensors.torch.load_file</c>.
/// </summary>
public sealed class CheckpointWriter
{
    public List<SafeTensor> Tensors { get; } = [];

    public void F32(string name, int[] shape, ReadOnlySpan<float> values) => Tensors.Add(SafeTensor.FromFloats(name, shape, values));
    public void F64(string name, params double[] values) => Tensors.Add(SafeTensor.FromFloat64(name, [values.Length], values));
    public void I64(string name, params long[] values) => Tensors.Add(SafeTensor.FromInt64(name, [values.Length], values));
    public void I64(string name, long[] shape, ReadOnlySpan<long> values) => Tensors.Add(SafeTensor.FromInt64(name, shape, values));
    public void U64(string name, params ulong[] values) => Tensors.Add(SafeTensor.FromUInt64(name, [values.Length], values));

    /// <summary>Every entry renamed with a prefix (a component's entries inside its owner's file).</summary>
    public void AddAll(string prefix, CheckpointWriter other) => Tensors.AddRange(other.Tensors.Select(t => t with { Name = prefix + t.Name }));
}

/// <summary>Typed, checked access to a read checkpoint; every problem is an <see cref="InvalidDataException"/> naming the file and the entry.</summary>
public sealed class CheckpointReader(IReadOnlyDictionary<string, SafeTensor> tensors, string source, string prefix = "")
{
    public string Source { get; } = source;

    public static CheckpointReader Read(string path) => new(Safetensors.Read(path).Tensors, path);

    /// <summary>The same file, its names seen under <paramref name="inner"/>.</summary>
    public CheckpointReader Under(string inner) => new(tensors, Source, prefix + inner);

    public bool Has(string name) => tensors.ContainsKey(prefix + name);

    public SafeTensor Tensor(string name) =>
        tensors.TryGetValue(prefix + name, out var t) ? t : throw new InvalidDataException($"{Source}: checkpoint has no '{prefix + name}'");

    private T[] Values<T>(string name, int length, Func<SafeTensor, T[]> read)
    {
        var t = Tensor(name);
        T[] v;
        try { v = read(t); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{Source}: {e.Message}"); }
        if (length >= 0 && v.Length != length) throw new InvalidDataException($"{Source}: '{prefix + name}' holds {v.Length} values, expected {length}");
        return v;
    }

    public float[] F32(string name, int length = -1) => Values(name, length, t => t.ToFloats());
    public double F64(string name) => Values(name, 1, t => t.ToFloat64())[0];
    public long I64(string name) => Values(name, 1, t => t.ToInt64())[0];
    public long[] I64s(string name, int length) => Values(name, length, t => t.ToInt64());
    public ulong[] U64s(string name, int length) => Values(name, length, t => t.ToUInt64());

    /// <summary>An I64 counter in [min, max], as an int.</summary>
    public int Int(string name, long min = 0, long max = int.MaxValue)
    {
        long v = I64(name);
        return v >= min && v <= max ? (int)v : throw new InvalidDataException($"{Source}: '{prefix + name}' is {v}, outside {min}..{max}");
    }
}
