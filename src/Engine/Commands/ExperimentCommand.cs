using System.CommandLine;
using System.Globalization;
using RlMixup.Engine.Runs;

namespace RlMixup.Engine.Commands;

/// <summary>`experiment`: a grid of policies or named ablations × seeds on one base configuration (see <see cref="Experiment"/>).</summary>
public static class ExperimentCommand
{
    public static Command Create()
    {
        var cmd = new Command("experiment", "Run policies or the paper's ablations × seeds on one base configuration, one after another, resumable; writes results.csv, results.md and accuracy.png");
        var policies = new Option<string?>("--policies") { Description = $"comma-separated policies: {string.Join(", ", Names.All<Training.MixPolicy>())}" };
        var ablations = new Option<string?>("--ablations")
        {
            Description = $"comma-separated ablations of RL-Mixup: {string.Join(", ", Experiment.Ablations.Select(a => a.Name))} (§5.5, §5.6)",
        };
        var seeds = new Option<string>("--seeds") { Description = "comma-separated seeds", DefaultValueFactory = _ => "0,1,2" };
        var outOpt = new Option<string>("--out") { Description = "the experiment folder (run it again to resume the grid)", Required = true };
        var noLive = TrainCommands.NoLiveOption();
        var flags = new RunFlags(new RunSpec(), "seed");
        foreach (var o in flags.Options.Concat([policies, ablations, seeds, outOpt, noLive])) cmd.Options.Add(o);
        GroupedHelp.Register(cmd, [.. flags.Groups, (policies, "Grid"), (ablations, "Grid"), (seeds, "Grid")]);
        cmd.SetAction(r =>
        {
            var arms = new List<ExperimentArm>();
            foreach (var (option, flag) in new[] { (policies, "--policies"), (ablations, "--ablations") })
                foreach (var name in Split(r.GetValue(option)))
                    arms.Add(Experiment.Arm(name, flag));
            if (arms.Count == 0) throw new CliException("experiment: name at least one arm with --policies or --ablations");
            var dup = arms.GroupBy(a => a.Name).FirstOrDefault(g => g.Count() > 1);
            if (dup != null) throw new CliException($"experiment: the arm '{dup.Key}' is named twice");
            var seedList = Split(r.GetValue(seeds)).Select(s => ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong v) ? v
                : throw new CliException($"--seeds: '{s}' is not a seed (a non-negative integer)")).ToList();
            if (seedList.Count == 0 || seedList.Distinct().Count() != seedList.Count) throw new CliException("--seeds: give one or more distinct seeds");
            var exp = new Experiment(r.GetValue(outOpt)!, flags.Resolve(r, new RunSpec()), arms, seedList);
            return Run(exp, r.GetValue(noLive), Console.Out);
        });
        return cmd;
    }

    private static IEnumerable<string> Split(string? list) => (list ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Runs the grid: 0 when every run is done, 130 when a signal stopped it (run it again to go on).</summary>
    public static int Run(Experiment exp, bool plain, TextWriter log)
    {
        foreach (var arm in exp.Arms)
            foreach (ulong seed in exp.Seeds)
                exp.Spec(arm, seed).Validated($"experiment arm {arm.Name}");
        using var writer = RunLock.Acquire(exp.Folder);
        exp.Prepare();
        int total = exp.Arms.Count * exp.Seeds.Count, k = 0;
        // Seed by seed, every arm within a seed: a grid stopped part-way leaves comparable arms.
        foreach (ulong seed in exp.Seeds)
            foreach (var arm in exp.Arms)
            {
                k++;
                string path = exp.RunPath(arm, seed);
                var state = exp.State(arm, seed);
                log.WriteLine($"experiment run {k}/{total}: {arm.Name}, seed {seed}: " +
                    state switch { Experiment.RunState.Done => "done, skipped", Experiment.RunState.Checkpointed => "resuming", _ => "starting" });
                if (state == Experiment.RunState.Done) continue;
                int code;
                if (state == Experiment.RunState.Checkpointed) code = ResumeCommand.Resume(path, plain);
                else
                {
                    // A run stopped before its first epoch's checkpoint kept nothing worth resuming: start it afresh.
                    if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
                    var spec = exp.Spec(arm, seed);
                    using var backend = RunFactory.Backend(spec, log);
                    code = TrainCommands.Run(backend, spec, path, plain);
                }
                exp.WriteResults();
                if (code != 0)
                {
                    log.WriteLine($"experiment stopped in run {k}/{total} ({arm.Name}, seed {seed}); run the same command again to go on");
                    return code;
                }
            }
        exp.WriteResults();
        log.WriteLine($"experiment done: {total} runs; results in {Path.Combine(Path.GetFullPath(exp.Folder), "results.md")}");
        return 0;
    }
}
