using System.Text.Json;
using RlMixup.Core;
using RlMixup.Core.IO;
using RlMixup.Engine.Data;
using RlMixup.Models;
using RlMixup.Engine.Runs;

namespace RlMixup.Engine;

/// <summary>
/// A trained classifier on disk, for `eval` and `visualize`: a model.safetensors file (or a run folder
/// holding one) whose PreActResNet18 width and class count are read from the tensor shapes
/// (conv1.weight is (w, 3, 3, 3), linear.weight (K, 8w); a "bn.weight" entry means the variant with
/// the final BN-ReLU), and the run's config.json when one sits beside the model. Every problem is a
/// <see cref="CliException"/> naming the file.
/// </summary>
public sealed class RunCheckpoint
{
    private RunCheckpoint(string modelPath, RunSpec? config, ParameterStore store, PreActResNet18 model, IReadOnlyDictionary<string, string> metadata)
    {
        ModelPath = modelPath;
        Config = config;
        Store = store;
        Model = model;
        Metadata = metadata;
    }

    public string ModelPath { get; }
    /// <summary>The folder holding the model (the run folder when the model is a run's).</summary>
    public string Folder => Path.GetDirectoryName(Path.GetFullPath(ModelPath))!;
    /// <summary>The run's specification (config.json beside the model), or null when there is none.</summary>
    public RunSpec? Config { get; }
    public ParameterStore Store { get; }
    public PreActResNet18 Model { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Loads the classifier of <paramref name="path"/> (a model.safetensors or a folder holding one) onto <paramref name="backend"/>.</summary>
    public static RunCheckpoint Open(string path, IBackend backend)
    {
        string modelPath = path;
        if (Directory.Exists(path))
        {
            modelPath = Path.Combine(path, RunFolder.ModelFile);
            if (!File.Exists(modelPath)) throw new CliException($"--checkpoint {path}: the folder holds no model.safetensors");
        }
        else if (!File.Exists(path)) throw new CliException($"--checkpoint {path}: no such file or folder");

        SafetensorsFile file;
        try { file = Safetensors.Read(modelPath); }
        catch (Exception e) when (e is InvalidDataException or JsonException or IOException or ArgumentException or FormatException or OverflowException)
        {
            throw new CliException($"--checkpoint {modelPath}: not a safetensors model ({e.Message})");
        }
        var (width, classes, finalBn) = Architecture(file, modelPath);
        var store = new ParameterStore();
        var model = new PreActResNet18(store, width, classes, finalBnRelu: finalBn);
        store.Materialize(backend, new Rng(0));
        IReadOnlyDictionary<string, string> metadata;
        try { metadata = ModelSafetensors.Load(modelPath, store); }
        catch (InvalidDataException e)
        {
            throw new CliException($"--checkpoint {modelPath}: not a PreActResNet18 checkpoint ({e.Message})");
        }

        string configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, RunFolder.ConfigFile);
        var config = File.Exists(configPath) ? RunSpecJson.Read(configPath) : null;
        return new RunCheckpoint(modelPath, config, store, model, metadata);
    }

    /// <summary>Width, class count and final-BN variant from the tensor shapes.</summary>
    private static (int Width, int Classes, bool FinalBn) Architecture(SafetensorsFile file, string path)
    {
        string Not(string why) => $"--checkpoint {path}: not a PreActResNet18 checkpoint ({why})";
        long[] Shape(string name) => file.Tensors.TryGetValue(name, out var t) ? t.Shape : throw new CliException(Not($"no tensor '{name}'"));
        var stem = Shape("conv1.weight");
        if (stem.Length != 4 || stem[0] < 1 || stem[0] > 1 << 16 || stem[1] != 3 || stem[2] != 3 || stem[3] != 3)
            throw new CliException(Not($"conv1.weight is [{string.Join(", ", stem)}], expected [width, 3, 3, 3]"));
        int width = (int)stem[0];
        var linear = Shape("linear.weight");
        if (linear.Length != 2 || linear[1] != 8L * width || linear[0] < 1 || linear[0] > 1 << 20)
            throw new CliException(Not($"linear.weight is [{string.Join(", ", linear)}], expected [classes, {8 * width}] for width {width}"));
        return (width, (int)linear[0], file.Tensors.ContainsKey("bn.weight"));
    }

    /// <summary>An integer config.json records about the run (its "recorded" object: steps_per_epoch, ppo_n_steps, …), or null.</summary>
    public long? Recorded(string key) => RunSpecJson.ReadRecorded(Path.Combine(Folder, RunFolder.ConfigFile), key);

    /// <summary>
    /// The dataset to evaluate on: <paramref name="name"/> (default: the run's, else synthetic) read from
    /// <paramref name="dataRoot"/> (default: the run's data folder when the dataset is the run's, else
    /// "data"), with the first <paramref name="maxTest"/> test images (default: as many as the run used when
    /// the dataset is the run's). Synthetic data is regenerated from the run's data seed and class count
    /// (else seed 0, 10 classes). Only the test split is read; the training split is left empty.
    /// </summary>
    public Dataset LoadTestData(string? name, string? dataRoot, int? maxTest) => LoadTestData(this, name, dataRoot, maxTest);

    public static Dataset LoadTestData(RunCheckpoint? run, string? name, string? dataRoot, int? maxTest)
    {
        var spec = run?.Config;
        name ??= spec?.Data.Dataset ?? "synthetic";
        if (!Dataset.Names.Contains(name)) throw new CliException($"--dataset {name}: expected one of {string.Join(", ", Dataset.Names)}");
        bool same = spec?.Data.Dataset == name;
        int? test = maxTest ?? (same ? spec!.Data.MaxTestImages : null);
        if (name == "synthetic")
            return SyntheticData.Generate(train: 0, test: test ?? 2_000, seed: same ? spec!.Data.SyntheticSeed ?? spec.Seed : 0);
        string root = dataRoot ?? (same ? spec!.Data.Folder : null) ?? "data";
        return Dataset.Load(name, root, maxTrain: 0, maxTest: test);
    }
}
