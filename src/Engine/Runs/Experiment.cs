using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlMixup.Core;
using RlMixup.Engine.Reports;
using RlMixup.Engine.Training;

namespace RlMixup.Engine.Runs;

/// <summary>One arm of an experiment: a name and the change it makes to the base specification.</summary>
public sealed record ExperimentArm(string Name, string Description, Func<RunSpec, RunSpec> Apply);

/// <summary>
/// A grid of arms (mix-up policies, or the paper's named ablations of RL-Mixup) × seeds on one base
/// specification, run one after another in one folder: OUT/&lt;arm&gt;/seed-&lt;s&gt;/ is an ordinary run
/// folder, seed by seed (every arm of a seed before the next seed). OUT/experiment.json records the grid; running the same grid again skips finished runs,
/// resumes an interrupted one from its checkpoint and starts the rest, while a different grid in the
/// same folder is refused. After every run it rewrites results.csv and results.md (per arm, mean ±
/// sample std over the finished seeds of the final and best test top-1, the final top-5 and test
/// loss), accuracy.png (test top-1 per epoch, the mean with a ±1 std band per arm) and, per rl arm,
/// actions-&lt;arm&gt;.png (its agents' action shares per epoch, summed over seeds).
/// </summary>
public sealed class Experiment(string folder, RunSpec baseSpec, IReadOnlyList<ExperimentArm> arms, IReadOnlyList<ulong> seeds)
{
    public const string GridFile = "experiment.json";

    public string Folder { get; } = folder;
    public RunSpec Base { get; } = baseSpec;
    public IReadOnlyList<ExperimentArm> Arms { get; } = arms;
    public IReadOnlyList<ulong> Seeds { get; } = seeds;

    /// <summary>The policy arms (the CLI's spellings) and the named ablations of RL-Mixup (§5.5 and §5.6).</summary>
    public static IReadOnlyList<ExperimentArm> Ablations { get; } =
    [
        new("random", "§5.5: the saliency masks with uniformly random actions (R-Mix)", s => s with { Mix = s.Mix with { Policy = MixPolicy.Random } }),
        new("agent-lr-1e-8", "§5.5: an agent that barely learns (Adam learning rate 1e-8)",
            s => s with { Mix = s.Mix with { Policy = MixPolicy.Rl }, Agent = s.Agent with { LearningRate = 1e-8 } }),
        new("gamma-0.99", "§5.6: discount 0.99 instead of 1.001", s => s with { Mix = s.Mix with { Policy = MixPolicy.Rl }, Agent = s.Agent with { Gamma = 0.99 } }),
        new("reward-episode-end", "§5.6: the reward only at each episode's (epoch's) end",
            s => s with { Mix = s.Mix with { Policy = MixPolicy.Rl }, Reward = s.Reward with { AtEpisodeEnd = true } }),
        new("reward-raw", "§5.6: the reward r = v instead of eq. 5", s => s with { Mix = s.Mix with { Policy = MixPolicy.Rl }, Reward = s.Reward with { Form = RewardForm.Raw } }),
    ];

    public static ExperimentArm Policy(MixPolicy p) => new(Names.Of(p), $"policy {Names.Of(p)}", s => s with { Mix = s.Mix with { Policy = p } });

    /// <summary>An arm by name: a policy, or an ablation; otherwise one <see cref="CliException"/> line.</summary>
    public static ExperimentArm Arm(string name, string flag) =>
        flag == "--policies"
            ? Policy(Names.Parse<MixPolicy>(name, flag))
            : Ablations.FirstOrDefault(a => a.Name == name)
              ?? throw new CliException($"{flag}: '{name}' is not one of {string.Join(", ", Ablations.Select(a => a.Name))}");

    public string RunPath(ExperimentArm arm, ulong seed) => Path.Combine(Folder, arm.Name, $"seed-{seed.ToString(CultureInfo.InvariantCulture)}");

    public RunSpec Spec(ExperimentArm arm, ulong seed) => arm.Apply(Base) with { Seed = seed };

    /// <summary>
    /// Records the grid in OUT/experiment.json, or checks that the one recorded there is this grid
    /// (the arms, the seeds and every arm's spec, byte for byte; the device and thread count may
    /// change between sessions).
    /// </summary>
    public void Prepare()
    {
        Directory.CreateDirectory(Folder);
        string path = Path.Combine(Folder, GridFile);
        string grid = GridJson();
        if (File.Exists(path))
        {
            if (File.ReadAllText(path) != grid)
                throw new CliException($"{Folder}: holds another experiment ({GridFile} differs: other arms, seeds or settings); use a new --out");
            return;
        }
        MixupFigure.WriteAtomically(path, Encoding.UTF8.GetBytes(grid));
    }

    private string GridJson()
    {
        var o = new JsonObject
        {
            ["arms"] = new JsonArray([.. Arms.Select(a => (JsonNode)JsonValue.Create(a.Name))]),
            ["seeds"] = new JsonArray([.. Seeds.Select(s => (JsonNode)JsonValue.Create(s))]),
            ["runs"] = new JsonObject(Arms.Select(a => KeyValuePair.Create(a.Name,
                (JsonNode?)JsonNode.Parse(RunSpecJson.Serialize(Spec(a, 0) with { Device = new DeviceSpec() }))))),
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>What state a run of the grid is in.</summary>
    public enum RunState { Done, Checkpointed, Fresh }

    public RunState State(ExperimentArm arm, ulong seed)
    {
        // A run whose metrics.jsonl holds every epoch is done, whatever its checkpoint looks like.
        var run = new RunFolder(RunPath(arm, seed));
        if (run.Metrics().Count >= Base.Epochs) return RunState.Done;
        return run.CheckpointEpoch == null ? RunState.Fresh : RunState.Checkpointed;
    }

    /// <summary>Per arm, the finished seeds' metrics (a run counts once all its epochs are in metrics.jsonl).</summary>
    public IReadOnlyList<(ExperimentArm Arm, IReadOnlyList<(ulong Seed, IReadOnlyList<EpochMetrics> Epochs)> Runs)> Finished() =>
        [.. Arms.Select(a => (a, (IReadOnlyList<(ulong, IReadOnlyList<EpochMetrics>)>)[.. Seeds
            .Select(s => (s, new RunFolder(RunPath(a, s)).Metrics()))
            .Where(r => r.Item2.Count >= Base.Epochs)]))];

    /// <summary>Rewrites results.csv, results.md, accuracy.png and the rl arms' action plots from the finished runs.</summary>
    public void WriteResults()
    {
        var finished = Finished();
        var rows = finished.Select(f => Summary.Of(f.Arm.Name, f.Runs.Select(r => r.Epochs).ToList())).ToList();
        var csv = new StringBuilder("arm,seeds,final_top1_mean,final_top1_std,best_top1_mean,best_top1_std,final_top5_mean,final_top5_std,test_loss_mean,test_loss_std\n");
        foreach (var r in rows)
            csv.AppendLine(string.Join(",", [r.Arm, r.Seeds.ToString(CultureInfo.InvariantCulture), .. new[] { r.Final, r.Best, r.Top5, r.Loss }
                .SelectMany(m => new[] { N(m.Mean), N(m.Std) })]));
        MixupFigure.WriteAtomically(Path.Combine(Folder, "results.csv"), Encoding.UTF8.GetBytes(csv.ToString()));

        var md = new StringBuilder();
        md.AppendLine($"# Experiment: {Arms.Count} arms × {Seeds.Count} seeds ({string.Join(", ", Seeds)})\n");
        md.AppendLine($"Base: {Base.Data.Dataset}, width {Base.Model.Width}, {Base.Epochs} epochs, batch {Base.Batch}, lr-max {N(Base.Optim.LrMax)}. " +
            "Mean ± sample std over the finished seeds; test top-1, top-5 and loss at the last epoch, best top-1 over the epochs.\n");
        md.AppendLine("| arm | seeds | final top-1 (%) | best top-1 (%) | final top-5 (%) | test loss |");
        md.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Arm} | {r.Seeds} | {Pct(r.Final)} | {Pct(r.Best)} | {Pct(r.Top5)} | {(r.Seeds == 0 ? "–" : r.Seeds == 1 ? r.Loss.Mean.ToString("F4", CultureInfo.InvariantCulture) : $"{r.Loss.Mean.ToString("F4", CultureInfo.InvariantCulture)} ± {r.Loss.Std.ToString("F4", CultureInfo.InvariantCulture)}")} |");
        md.AppendLine();
        foreach (var a in Arms) md.AppendLine($"- **{a.Name}**: {a.Description}");
        MixupFigure.WriteAtomically(Path.Combine(Folder, "results.md"), Encoding.UTF8.GetBytes(md.ToString()));

        TrainingPlots.WriteBands(Path.Combine(Folder, "accuracy.png"), "test top-1 per epoch (mean ± 1 std over seeds)", "top-1 (%)",
            [.. finished.Where(f => f.Runs.Count > 0).Select(f => (f.Arm.Name, Band(f.Runs.Select(r => r.Epochs).ToList())))]);
        foreach (var (arm, runs) in finished)
            if (runs.Count > 0 && Spec(arm, 0).Mix.Policy == MixPolicy.Rl)
                TrainingPlots.WriteActionHeatmap(Path.Combine(Folder, $"actions-{arm.Name}.png"), SumActions(runs.Select(r => r.Epochs).ToList()));
    }

    private static string N(double v) => double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "";

    /// <summary>"57.08 ± 1.56" in percent; one seed has no spread to show, none is "–".</summary>
    private static string Pct(Moments m) => m.N switch
    {
        0 => "–",
        1 => (100 * m.Mean).ToString("F2", CultureInfo.InvariantCulture),
        _ => $"{(100 * m.Mean).ToString("F2", CultureInfo.InvariantCulture)} ± {(100 * m.Std).ToString("F2", CultureInfo.InvariantCulture)}",
    };

    /// <summary>Mean and std of test top-1 (in %) per epoch over the runs.</summary>
    private static (double[] Epochs, double[] Mean, double[] Std) Band(List<IReadOnlyList<EpochMetrics>> runs)
    {
        int n = runs.Min(r => r.Count);
        var m = Enumerable.Range(0, n).Select(i => Moments.Of(runs.Select(r => 100 * r[i].TestTop1))).ToList();
        return ([.. Enumerable.Range(1, n).Select(e => (double)e)], [.. m.Select(x => x.Mean)], [.. m.Select(x => x.Std)]);
    }

    private static List<EpochMetrics> SumActions(List<IReadOnlyList<EpochMetrics>> runs)
    {
        int n = runs.Min(r => r.Count);
        return [.. Enumerable.Range(0, n).Select(i => runs[0][i] with
        {
            ActionHist = [.. Enumerable.Range(0, runs[0][i].ActionHist.Length).Select(a => runs.Sum(r => r[i].ActionHist.Length > a ? r[i].ActionHist[a] : 0))],
        })];
    }

    /// <summary>Mean and sample standard deviation (n − 1; 0 for one value).</summary>
    public sealed record Moments(int N, double Mean, double Std)
    {
        public static Moments Of(IEnumerable<double> values)
        {
            var v = values.ToList();
            if (v.Count == 0) return new(0, double.NaN, double.NaN);
            double mean = v.Average();
            double std = v.Count > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1)) : 0;
            return new(v.Count, mean, std);
        }
    }

    /// <summary>One arm's row of the results.</summary>
    public sealed record Summary(string Arm, int Seeds, Moments Final, Moments Best, Moments Top5, Moments Loss)
    {
        public static Summary Of(string arm, List<IReadOnlyList<EpochMetrics>> runs) => new(arm, runs.Count,
            Moments.Of(runs.Select(r => r[^1].TestTop1)), Moments.Of(runs.Select(r => r.Max(e => e.TestTop1))),
            Moments.Of(runs.Select(r => Extra(r[^1], "test_top5"))), Moments.Of(runs.Select(r => Extra(r[^1], "test_loss"))));

        private static double Extra(EpochMetrics e, string key) => e.Extra != null && e.Extra.TryGetValue(key, out double v) ? v : double.NaN;
    }
}
