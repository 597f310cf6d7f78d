using System.Text;
using System.Text.Json;

namespace RlMixup.Engine.Reports;

/// <summary>
/// One epoch of a run, one line of <c>metrics.jsonl</c>. <see cref="ActionHist"/> counts how often
/// each of the agent's 10 actions was chosen; <see cref="Ppo"/> holds the PPO update's statistics
/// (SB3's names: policy_gradient_loss, value_loss, entropy_loss, approx_kl, clip_fraction, …) or is
/// null in an epoch without an update; <see cref="Extra"/> carries any further numbers (test loss,
/// train top-1, …) as top-level fields. Non-finite numbers are written as JSON null and read back as NaN.
/// </summary>
public sealed record EpochMetrics(int Epoch, double TrainLoss, double TestTop1, double Lr, long[] ActionHist,
    double RewardMean, IReadOnlyDictionary<string, double>? Ppo, double EpochSeconds)
{
    public IReadOnlyDictionary<string, double>? Extra { get; init; }

    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
        { "epoch", "train_loss", "test_top1", "lr", "action_hist", "reward_mean", "ppo", "epoch_seconds" };

    /// <summary>The JSON object, on one line, without the newline.</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("epoch", Epoch);
            Number(w, "train_loss", TrainLoss);
            Number(w, "test_top1", TestTop1);
            Number(w, "lr", Lr);
            w.WriteStartArray("action_hist");
            foreach (long c in ActionHist) w.WriteNumberValue(c);
            w.WriteEndArray();
            Number(w, "reward_mean", RewardMean);
            if (Ppo == null) w.WriteNull("ppo");
            else
            {
                w.WriteStartObject("ppo");
                foreach (var (k, v) in Ppo) Number(w, k, v);
                w.WriteEndObject();
            }
            Number(w, "epoch_seconds", EpochSeconds);
            if (Extra != null)
                foreach (var (k, v) in Extra)
                {
                    if (Known.Contains(k)) throw new ArgumentException($"extra metric '{k}' clashes with a standard field");
                    Number(w, k, v);
                }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Parses one line; throws <see cref="JsonException"/> or <see cref="KeyNotFoundException"/> when it is not a metrics object.</summary>
    public static EpochMetrics FromJson(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var r = doc.RootElement;
        if (r.ValueKind != JsonValueKind.Object) throw new JsonException("a metrics line must be a JSON object");
        Dictionary<string, double>? ppo = null;
        var ppoEl = r.GetProperty("ppo");
        if (ppoEl.ValueKind == JsonValueKind.Object)
        {
            ppo = [];
            foreach (var p in ppoEl.EnumerateObject()) ppo[p.Name] = Read(p.Value);
        }
        var extra = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var p in r.EnumerateObject())
            if (!Known.Contains(p.Name) && p.Value.ValueKind is JsonValueKind.Number or JsonValueKind.Null) extra[p.Name] = Read(p.Value);
        return new EpochMetrics(r.GetProperty("epoch").GetInt32(), Read(r.GetProperty("train_loss")), Read(r.GetProperty("test_top1")),
            Read(r.GetProperty("lr")), [.. r.GetProperty("action_hist").EnumerateArray().Select(e => e.GetInt64())],
            Read(r.GetProperty("reward_mean")), ppo, Read(r.GetProperty("epoch_seconds")))
        { Extra = extra.Count > 0 ? extra : null };
    }

    private static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v); else w.WriteNull(name);
    }

    private static double Read(JsonElement e) => e.ValueKind == JsonValueKind.Null ? double.NaN : e.GetDouble();
}

/// <summary>What <see cref="MetricsLog.Read"/> found: the complete epochs, and whether a torn last line was dropped.</summary>
public sealed record MetricsReadResult(IReadOnlyList<EpochMetrics> Epochs, bool DroppedTornLine);

/// <summary>
/// The run's <c>metrics.jsonl</c>: one JSON object per epoch, appended and flushed to disk line by
/// line, so killing the process loses at most the epoch being written. A torn last line (a partial
/// write) is tolerated on reading and dropped on reopening; a bad line anywhere else is an error.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    private readonly FileStream _stream;
    private readonly List<EpochMetrics> _epochs;

    private MetricsLog(string path, FileStream stream, List<EpochMetrics> epochs) { Path = path; _stream = stream; _epochs = epochs; }

    public string Path { get; }
    /// <summary>Every epoch in the file, those found on opening and those appended since.</summary>
    public IReadOnlyList<EpochMetrics> Epochs => _epochs;

    /// <summary>Reads a metrics file; a missing file has no epochs.</summary>
    public static MetricsReadResult Read(string path)
    {
        if (!File.Exists(path)) return new([], false);
        string text = File.ReadAllText(path, Encoding.UTF8);
        var lines = text.Split('\n');
        // lines[^1] is what follows the last newline: empty for a file of complete lines.
        var epochs = new List<EpochMetrics>();
        bool torn = false;
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            bool last = i == lines.Length - 1;
            if (line.Length == 0) { if (last) break; continue; }
            try { epochs.Add(EpochMetrics.FromJson(line)); }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                bool lastNonEmpty = lines.Skip(i + 1).All(l => l.Trim().Length == 0);
                if (!lastNonEmpty) throw new InvalidDataException($"metrics file '{path}' line {i + 1} is not a metrics object: {ex.Message}", ex);
                torn = true;
            }
        }
        return new(epochs, torn);
    }

    /// <summary>
    /// Opens <paramref name="path"/> for appending. Existing complete epochs are kept, except those after
    /// <paramref name="keepThroughEpoch"/> when it is given (resuming from that epoch's checkpoint); a torn
    /// last line is dropped. When anything is dropped the file is rewritten atomically first.
    /// </summary>
    public static MetricsLog Open(string path, int? keepThroughEpoch = null)
    {
        string full = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        var found = Read(full);
        var kept = found.Epochs.Where(e => keepThroughEpoch is not int k || e.Epoch <= k).ToList();
        bool rewrite = found.DroppedTornLine || kept.Count != found.Epochs.Count
            || (File.Exists(full) && new FileInfo(full).Length > 0 && !EndsWithNewline(full));
        if (rewrite)
        {
            var sb = new StringBuilder();
            foreach (var e in kept) sb.Append(e.ToJson()).Append('\n');
            MixupFigure.WriteAtomically(full, Encoding.UTF8.GetBytes(sb.ToString()));
        }
        var stream = new FileStream(full, FileMode.Append, FileAccess.Write, FileShare.Read);
        return new MetricsLog(full, stream, kept);
    }

    /// <summary>Appends one epoch as one line and flushes it to disk.</summary>
    public void Append(EpochMetrics m)
    {
        ArgumentNullException.ThrowIfNull(m);
        byte[] line = Encoding.UTF8.GetBytes(m.ToJson() + "\n");
        _stream.Write(line);
        _stream.Flush(flushToDisk: true);
        _epochs.Add(m);
    }

    public void Dispose() => _stream.Dispose();

    private static bool EndsWithNewline(string path)
    {
        using var f = File.OpenRead(path);
        f.Seek(-1, SeekOrigin.End);
        return f.ReadByte() == '\n';
    }
}
