using RlMixup.Engine.Reports;
using RlMixup.Engine.Training;

namespace RlMixup.Engine.Runs;

/// <summary>
/// A run's folder and the files it owns: config.json (the <see cref="RunSpec"/>, see
/// <see cref="RunSpecJson"/>), metrics.jsonl (one object per epoch), the trainer's state (the
/// checkpoint a resume starts from), model.safetensors (the classifier, PyTorch names) and
/// model_best.safetensors (the classifier of the best test top-1 so far).
/// </summary>
public sealed class RunFolder(string path)
{
    public const string ConfigFile = "config.json", MetricsFile = "metrics.jsonl", ModelFile = "model.safetensors", BestModelFile = "model_best.safetensors";

    public string Path { get; } = path;
    public string ConfigPath => System.IO.Path.Combine(Path, ConfigFile);
    public string MetricsPath => System.IO.Path.Combine(Path, MetricsFile);
    public string ModelPath => System.IO.Path.Combine(Path, ModelFile);
    /// <summary>The classifier of the epoch with the best test top-1 so far (the first such epoch on a tie).</summary>
    public string BestModelPath => System.IO.Path.Combine(Path, BestModelFile);
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

/// <summary>
/// One writer per run folder: an exclusive OS lock on FOLDER/.lock (flock on Linux and macOS, a
/// share-none open on Windows), held while the run writes and released by the OS when the process
/// ends, kill -9 included, so no stale lock is ever left to clean up. The holder writes its process
/// id and command line to FOLDER/.lock.owner so that a refused second writer can name it.
/// </summary>
public sealed class RunLock : IDisposable
{
    public const string LockFile = ".lock", OwnerFile = ".lock.owner";
    private readonly FileStream _stream;

    private RunLock(FileStream stream) => _stream = stream;

    /// <summary>Takes the folder's lock, or throws one <see cref="CliException"/> line naming the process that holds it.</summary>
    public static RunLock Acquire(string folder)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, LockFile);
        try
        {
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            try
            {
                string owner = $"{Environment.ProcessId} {string.Join(" ", Environment.GetCommandLineArgs().Skip(1))}".Trim();
                File.WriteAllText(Path.Combine(folder, OwnerFile), owner + "\n");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            return new RunLock(stream);
        }
        catch (IOException)
        {
            throw new CliException($"{folder} is in use by {Holder(folder)}; a run folder has one writer at a time (wait for it to end, or stop it)");
        }
    }

    /// <summary>"process N (its command line)" from the owner file, or "another process" when it cannot be read.</summary>
    private static string Holder(string folder)
    {
        try
        {
            string text = File.ReadAllText(Path.Combine(folder, OwnerFile)).Trim();
            int space = text.IndexOf(' ');
            string pid = space < 0 ? text : text[..space], rest = space < 0 ? "" : text[(space + 1)..];
            if (pid.Length > 0 && pid.All(char.IsAsciiDigit))
                return rest.Length > 0 ? $"process {pid} (rlmixup {rest})" : $"process {pid}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return "another process";
    }

    public void Dispose() => _stream.Dispose();
}
