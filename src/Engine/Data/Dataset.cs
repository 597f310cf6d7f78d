namespace RlMixup.Engine.Data;

/// <summary>
/// A classification dataset held as uint8 on the host: a training set, a test set and the class
/// names in label order. <see cref="Source"/> says where it came from (a folder, or the generator).
/// </summary>
public sealed record Dataset(string Name, ImageSet Train, ImageSet Test, IReadOnlyList<string> ClassNames, string Source)
{
    public int Classes => ClassNames.Count;

    /// <summary>One line for logs: name, record counts, classes and source.</summary>
    public string Describe() => $"{Name}: {Train.Count} training and {Test.Count} test images, {Classes} classes ({Source})";

    /// <summary>The dataset names <see cref="Load"/> accepts.</summary>
    public static readonly IReadOnlyList<string> Names = ["cifar10", "cifar100", "synthetic"];

    /// <summary>
    /// Loads a dataset by name. cifar10/cifar100 are read from <paramref name="dataRoot"/>: either the
    /// folder holding the binary files itself, or the data folder that holds the extracted official
    /// archive (<c>cifar-10-batches-bin/</c>, <c>cifar-100-binary/</c>), or torchvision's Python
    /// version (<c>cifar-10-batches-py/</c>, <c>cifar-100-python/</c>, see <see cref="CifarPickle"/>) when
    /// the binary one is absent. synthetic is generated from
    /// <paramref name="seed"/> (<see cref="SyntheticData"/>; 10,000 training and 2,000 test images
    /// unless limited). <paramref name="maxTrain"/>/<paramref name="maxTest"/> keep the first records.
    /// </summary>
    public static Dataset Load(string name, string dataRoot, int? maxTrain = null, int? maxTest = null, ulong seed = 0) =>
        name.ToLowerInvariant() switch
        {
            "cifar10" => !Directory.Exists(Cifar10Folder(dataRoot)) && CifarPickle.FindCifar10(dataRoot) is string py
                ? CifarPickle.LoadCifar10(py, maxTrain, maxTest) : LoadCifar10(Cifar10Folder(dataRoot), maxTrain, maxTest),
            "cifar100" => !Directory.Exists(Cifar100Folder(dataRoot)) && CifarPickle.FindCifar100(dataRoot) is string py
                ? CifarPickle.LoadCifar100(py, maxTrain, maxTest) : LoadCifar100(Cifar100Folder(dataRoot), maxTrain, maxTest),
            "synthetic" => SyntheticData.Generate(maxTrain ?? 10_000, maxTest ?? 2_000, seed: seed),
            _ => throw new DataFormatException($"unknown dataset '{name}' (expected one of {string.Join(", ", Names)})"),
        };

    /// <summary>Whether <paramref name="dataRoot"/> holds the dataset, in the binary or in the Python (torchvision) version.</summary>
    public static bool IsPresent(string name, string dataRoot) => name switch
    {
        "cifar10" => Directory.Exists(Cifar10Folder(dataRoot)) || CifarPickle.FindCifar10(dataRoot) != null,
        "cifar100" => Directory.Exists(Cifar100Folder(dataRoot)) || CifarPickle.FindCifar100(dataRoot) != null,
        _ => true,
    };

    /// <summary>The folder holding the CIFAR-10 binary files under <paramref name="dataRoot"/>.</summary>
    public static string Cifar10Folder(string dataRoot) =>
        File.Exists(Path.Combine(dataRoot, "data_batch_1.bin")) ? dataRoot : Path.Combine(dataRoot, DatasetArchive.Cifar10.Folder);

    /// <summary>The folder holding the CIFAR-100 binary files under <paramref name="dataRoot"/>.</summary>
    public static string Cifar100Folder(string dataRoot) =>
        File.Exists(Path.Combine(dataRoot, "train.bin")) ? dataRoot : Path.Combine(dataRoot, DatasetArchive.Cifar100.Folder);

    /// <summary>CIFAR-10 binary: data_batch_1..5.bin, test_batch.bin, batches.meta.txt in <paramref name="folder"/>.</summary>
    public static Dataset LoadCifar10(string folder, int? maxTrain = null, int? maxTest = null)
    {
        RequireFolder(folder, "cifar10");
        var names = CifarBinary.ReadClassNames(Path.Combine(folder, "batches.meta.txt"), 10);
        return new Dataset("cifar10", CifarBinary.ReadCifar10Train(folder, maxTrain), CifarBinary.ReadCifar10Test(folder, maxTest),
            names, Path.GetFullPath(folder));
    }

    /// <summary>CIFAR-100 binary: train.bin, test.bin (2 label bytes, fine label used), fine_label_names.txt.</summary>
    public static Dataset LoadCifar100(string folder, int? maxTrain = null, int? maxTest = null)
    {
        RequireFolder(folder, "cifar100");
        var names = CifarBinary.ReadClassNames(Path.Combine(folder, "fine_label_names.txt"), 100);
        return new Dataset("cifar100", CifarBinary.ReadCifar100Train(folder, maxTrain), CifarBinary.ReadCifar100Test(folder, maxTest),
            names, Path.GetFullPath(folder));
    }

    private static void RequireFolder(string folder, string name)
    {
        if (!Directory.Exists(folder))
            throw new DataFormatException($"{folder}: folder not found (fetch it with `rlmixup download {name}`; `demo` needs no data)");
    }
}

/// <summary>Splits that keep part of the training set aside.</summary>
public static class Split
{
    /// <summary>
    /// Holds out <paramref name="count"/> training images chosen uniformly at random by
    /// <paramref name="seed"/> (method.md: the reward's held-out set may be N training images instead
    /// of the test set). Both parts keep the original order; together they are the original set.
    /// </summary>
    public static (ImageSet Train, ImageSet HeldOut) HoldOut(ImageSet train, int count, ulong seed)
    {
        if (count < 0 || count >= train.Count)
            throw new ArgumentOutOfRangeException(nameof(count), $"hold-out of {count} images from a training set of {train.Count}");
        var perm = new Core.Rng(seed).Permutation(train.Count);
        var held = perm.AsSpan(0, count).ToArray();
        var kept = perm.AsSpan(count).ToArray();
        Array.Sort(held);
        Array.Sort(kept);
        return (train.Subset(kept), train.Subset(held));
    }
}
