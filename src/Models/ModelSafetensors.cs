using RlMixup.Core.IO;

namespace RlMixup.Models;

/// <summary>
/// A <see cref="ParameterStore"/> as a safetensors file a PyTorch user can load: every parameter and
/// buffer under its PyTorch state-dict name (conv weights OIHW, linear weights (out, in), as stored),
/// F32, plus one I64 scalar <c>&lt;bn&gt;.num_batches_tracked</c> beside each batch norm's
/// <c>running_mean</c>, so that <c>model.load_state_dict(tensors)</c> works with the default
/// <c>strict=True</c>. The engine does not keep that counter (with momentum 0.1 PyTorch never
/// reads it); the trainer passes the number of training batches run so far, and passing null
/// leaves the entries out, in which case PyTorch needs <c>load_state_dict(tensors, strict=False)</c>.
/// </summary>
/// <remarks>
/// In Python without the safetensors package: read the 8-byte little-endian header length, parse the
/// JSON header, and take each tensor with <c>numpy.frombuffer(data[begin:end], dtype)</c> reshaped to
/// its shape (tests/python/load_safetensors.py does exactly that). With the package:
/// <c>safetensors.torch.load_file(path)</c>.
/// </remarks>
public static class ModelSafetensors
{
    public const string NumBatchesTrackedSuffix = ".num_batches_tracked";

    public static IEnumerable<SafeTensor> ToTensors(ParameterStore store, long? numBatchesTracked = 0)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!store.IsMaterialized) throw new InvalidOperationException("the parameter store is not materialised");
        foreach (var t in store.All)
        {
            yield return SafeTensor.FromFloats(t.Name, t.Shape.Dims.ToArray(), t.Value.ToArray());
            if (numBatchesTracked is long count && t.Kind == TensorKind.Buffer && t.Name.EndsWith(".running_mean", StringComparison.Ordinal))
                yield return SafeTensor.FromInt64(t.Name[..^".running_mean".Length] + NumBatchesTrackedSuffix, [], [count]);
        }
    }

    /// <summary>Writes the store atomically (temporary file, flush, rename).</summary>
    public static void Write(string path, ParameterStore store, long? numBatchesTracked = 0, IReadOnlyDictionary<string, string>? metadata = null) =>
        Safetensors.WriteAtomic(path, ToTensors(store, numBatchesTracked), metadata);

    /// <summary>
    /// Loads every parameter and buffer of <paramref name="store"/> from the file by name. Every store
    /// tensor must be present with its shape as F32; <c>num_batches_tracked</c> entries are ignored and
    /// any other extra entry is an error. Returns the file's metadata.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Load(string path, ParameterStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!store.IsMaterialized) throw new InvalidOperationException("the parameter store is not materialised");
        var file = Safetensors.Read(path);
        foreach (var t in store.All)
        {
            if (!file.Tensors.TryGetValue(t.Name, out var src))
                throw new InvalidDataException($"checkpoint '{path}' has no tensor '{t.Name}'");
            var dims = t.Shape.Dims.ToArray();
            if (src.Dtype != "F32" || !src.Shape.SequenceEqual(dims.Select(d => (long)d)))
                throw new InvalidDataException(
                    $"checkpoint '{path}': '{t.Name}' is {src.Dtype} [{string.Join(", ", src.Shape)}], the model needs F32 [{string.Join(", ", dims)}]");
        }
        foreach (var name in file.Tensors.Keys)
            if (!store.Contains(name) && !name.EndsWith(NumBatchesTrackedSuffix, StringComparison.Ordinal))
                throw new InvalidDataException($"checkpoint '{path}' has a tensor '{name}' the model does not have");
        foreach (var t in store.All) t.Value.CopyFrom(file.Tensors[t.Name].ToFloats());
        return file.Metadata;
    }
}
