namespace RlMixup.Engine.Data;

/// <summary>
/// CIFAR's Python version, as torchvision.datasets.CIFAR10/100(download=True) leaves it:
/// cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta) and cifar-100-python/ (train,
/// test, meta). Each batch file is a pickled dict: "data", a uint8 numpy array (N, 3072) in the
/// binary version's pixel order, and "labels" (CIFAR-10) or "fine_labels" (CIFAR-100). Read with
/// <see cref="Pickle"/>, with the same one-line errors as the binary reader.
/// </summary>
public static class CifarPickle
{
    public const string Cifar10Folder = "cifar-10-batches-py", Cifar100Folder = "cifar-100-python";

    /// <summary>The folder holding CIFAR-10's Python files under (or at) <paramref name="root"/>, or null.</summary>
    public static string? FindCifar10(string root) =>
        new[] { root, Path.Combine(root, Cifar10Folder) }.FirstOrDefault(d => File.Exists(Path.Combine(d, "data_batch_1")) && File.Exists(Path.Combine(d, "batches.meta")));

    /// <summary>The folder holding CIFAR-100's Python files under (or at) <paramref name="root"/>, or null.</summary>
    public static string? FindCifar100(string root) =>
        new[] { root, Path.Combine(root, Cifar100Folder) }.FirstOrDefault(d => File.Exists(Path.Combine(d, "train")) && File.Exists(Path.Combine(d, "meta")));

    public static Dataset LoadCifar10(string folder, int? maxTrain, int? maxTest)
    {
        var names = Names(Path.Combine(folder, "batches.meta"), "label_names", 10);
        var train = Read([.. Enumerable.Range(1, 5).Select(k => Path.Combine(folder, $"data_batch_{k}"))], "labels", 10, maxTrain);
        var test = Read([Path.Combine(folder, "test_batch")], "labels", 10, maxTest);
        return new Dataset("cifar10", train, test, names, Path.GetFullPath(folder));
    }

    public static Dataset LoadCifar100(string folder, int? maxTrain, int? maxTest)
    {
        var names = Names(Path.Combine(folder, "meta"), "fine_label_names", 100);
        return new Dataset("cifar100", Read([Path.Combine(folder, "train")], "fine_labels", 100, maxTrain),
            Read([Path.Combine(folder, "test")], "fine_labels", 100, maxTest), names, Path.GetFullPath(folder));
    }

    /// <summary>The images of <paramref name="files"/> in order, the first <paramref name="limit"/> of them when given.</summary>
    public static ImageSet Read(IReadOnlyList<string> files, string labelKey, int classes, int? limit = null)
    {
        var pixels = new List<byte[]>();
        var labels = new List<byte>();
        foreach (var file in files)
        {
            if (limit is int l && labels.Count >= l) break;
            var dict = Root(file);
            var data = Get(dict, "data", file) as PickledArray ?? throw new DataFormatException($"{file}: 'data' is not a numpy array");
            if (data.Dtype != "|u1" || data.Shape.Length != 2 || data.Shape[1] != ImageSet.ImageBytes || data.Fortran)
                throw new DataFormatException($"{file}: 'data' is a {data.Dtype} array of shape ({string.Join(", ", data.Shape)}){(data.Fortran ? " in Fortran order" : "")}, expected uint8 (N, {ImageSet.ImageBytes})");
            int n = data.Shape[0];
            if (data.Data.Length != (long)n * ImageSet.ImageBytes)
                throw new DataFormatException($"{file}: 'data' holds {data.Data.Length} bytes for {n} images of {ImageSet.ImageBytes}: the file is truncated or corrupt");
            var list = Get(dict, labelKey, file) as List<object?> ?? throw new DataFormatException($"{file}: '{labelKey}' is not a list");
            if (list.Count != n) throw new DataFormatException($"{file}: {list.Count} labels for {n} images");
            int take = limit is int m ? Math.Min(n, m - labels.Count) : n;
            for (int i = 0; i < take; i++)
                labels.Add(list[i] is long v && v >= 0 && v < classes ? (byte)v : throw new DataFormatException($"{file}: label {i} is {list[i] ?? "None"}, outside 0..{classes - 1}"));
            pixels.Add(data.Data.AsSpan(0, take * ImageSet.ImageBytes).ToArray());
        }
        return new ImageSet([.. pixels.SelectMany(p => p)], [.. labels], classes);
    }

    private static string[] Names(string file, string key, int classes)
    {
        var list = Get(Root(file), key, file) as List<object?> ?? throw new DataFormatException($"{file}: '{key}' is not a list");
        var names = list.Select(x => x switch { string s => s, byte[] b => System.Text.Encoding.Latin1.GetString(b), _ => throw new DataFormatException($"{file}: a class name is not a string") }).ToArray();
        return names.Length == classes ? names : throw new DataFormatException($"{file}: {names.Length} class names, expected {classes}");
    }

    private static Dictionary<object, object?> Root(string file)
    {
        if (!File.Exists(file)) throw new DataFormatException($"{file}: file not found");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new DataFormatException($"{file}: cannot read ({e.Message})"); }
        return Pickle.Load(bytes, file) as Dictionary<object, object?> ?? throw new DataFormatException($"{file}: the pickle does not hold a dict");
    }

    private static object? Get(Dictionary<object, object?> dict, string key, string file) =>
        dict.TryGetValue(key, out var v) ? v : throw new DataFormatException($"{file}: no '{key}' entry");
}
