using RlMixup.Engine.Reports;
using RlMixup.Engine.Training;

namespace RlMixup.Engine.Runs;

/// <summary>
/// A run's folder and the files it owns: config.json (the <see cref="RunSpec"/>, see
/// <see cref="RunSpecJson"/>), metrics.jsonl (one object per epoch), the trainer's state (the
/// checkpoint a resume starts from) and model.safetensors (the classifier, PyTorch names).
/// </summary>
public sealed class RunFolder(string path)
{
    public const string ConfigFile = "config.json", MetricsFile = "metrics.jsonl", ModelFile = "model.safetensors";

    public string Path { get; } = path;
    public string ConfigPath => System.IO.Path.Combine(Path, ConfigFile);
    public string MetricsPath => System.IO.Path.Combine(Path, MetricsFile);
    public string ModelPath => System.IO.Path.Combine(Path, ModelFile);
    public string StatePath => System.IO.Path.Combine(Path, Trainer.StateFile);

    /// <summary>Epochs the checkpoint closed (the last finished epoch), or null when there is no checkpoint.</summary>
    public int? CheckpointEpoch => Directory.Exists(Path) ? Trainer.StateEpoch(Path) : null;

    /// <summary>The run's specification; a missing folder or config.json, or a bad one, is one <see cref="CliException"/> line.</summary>
    public RunSpec ReadSpec(string command)
    {
        if (!Directory.Exists(Path)) throw new CliException($"{command} {Path}: no such run folder");
        if (!File.Exists(ConfigPath)) throw new CliException($"{command} {Path}: no {ConfigFile}, not a run folder");
        return RunSpecJson.Read(ConfigPath);
    }

    /// <summary>The epochs metrics.jsonl holds (none when it is missing).</summary>
    public IReadOnlyList<EpochMetrics> Metrics() => MetricsLog.Read(MetricsPath).Epochs;

    /// <summary>Creates the folder (and its parents) and proves it writable; otherwise one <see cref="CliException"/> line.</summary>
    public static RunFolder CreateWritable(string path)
    {
        try
        {
            Directory.CreateDirectory(path);
            string probe = System.IO.Path.Combine(path, ".write-test");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--out {path}: cannot write there ({e.Message})");
        }
        return new RunFolder(path);
    }
}
