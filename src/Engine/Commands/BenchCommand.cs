using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Reports;

using RlMixup.Engine.Bench;

namespace RlMixup.Engine.Commands;

/// <summary>
/// `bench`: the median time of each phase of one RL-Mixup step, images/s and a CIFAR-shaped epoch,
/// printed as a table and optionally written as JSON (the layout bench/reference/torch_rlmixup.py
/// writes too, so that bench/compare_torch.sh can print ratios from one invocation).
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Time each phase of an RL-Mixup step and a CIFAR-shaped epoch (median ms, images/s)");
        var device = new Option<string>("--device") { Description = "cpu, cuda or auto", DefaultValueFactory = _ => "auto" };
        device.AcceptOnlyFromAmong("cpu", "cuda", "auto");
        var width = Positive("--width", "PreActResNet18 width (the paper: 64)", 64);
        var batch = Positive("--batch", "batch size", 100);
        var classes = Positive("--classes", "classes (CIFAR-100: 100)", 100);
        var steps = Positive("--steps", "timed steps (the table reports medians)", 10);
        var warmup = new Option<int>("--warmup") { Description = "untimed steps first", DefaultValueFactory = _ => 2 };
        warmup.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--warmup cannot be negative"); });
        var epochImages = new Option<int?>("--epoch-images")
        {
            Description = "training images of the timed epoch, scaled to CIFAR's 50,000 (default: 50000 on a GPU, 1000 on the CPU; 0 skips the epoch)",
        };
        epochImages.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 0) r.AddError("--epoch-images cannot be negative"); });
        var rollout = Positive("--ppo-rollout", "observations in the timed PPO rollout (one update epoch over it)", 100);
        var repeats = new Option<int?>("--ppo-repeats") { Description = "PPO rollouts timed (default: 5 on a GPU, 1 on the CPU)" };
        repeats.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1) r.AddError("--ppo-repeats must be at least 1"); });
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)" };
        threads.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1) r.AddError("--threads must be at least 1"); });
        var noTf32 = TrainCommands.NoTf32Option();
        var seed = new Option<ulong>("--seed") { Description = "random seed", DefaultValueFactory = _ => 0 };
        var json = new Option<string?>("--json") { Description = "also write the table as JSON to this file (atomically)" };
        foreach (var o in new Option[] { device, width, batch, classes, steps, warmup, epochImages, rollout, repeats, threads, noTf32, seed, json })
            cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            using var backend = CreateBackend(r.GetValue(device)!, !r.GetValue(noTf32), r.GetValue(threads));
            bool cpu = backend is CpuBackend;
            var options = new BenchOptions
            {
                Width = r.GetValue(width), Batch = r.GetValue(batch), Classes = r.GetValue(classes),
                Steps = r.GetValue(steps), Warmup = r.GetValue(warmup),
                EpochImages = r.GetValue(epochImages) ?? (cpu ? 1_000 : BenchResult.CifarTrainImages),
                PpoRollout = r.GetValue(rollout), PpoRepeats = r.GetValue(repeats) ?? (cpu ? 1 : 5), Seed = r.GetValue(seed),
            };
            if (options.Classes > 256) throw new CliException($"--classes {options.Classes}: at most 256");
            if (options.EpochImages is > 0 and var n && n < options.Batch)
                throw new CliException($"--epoch-images {n}: at least one batch of {options.Batch}, or 0 to skip the epoch");
            string? jsonPath = r.GetValue(json);
            if (jsonPath != null) CheckWritable(jsonPath);
            var result = StepBench.Run(backend, options, Console.Out);
            foreach (var line in Table(result, Describe(backend))) Console.WriteLine(line);
            if (jsonPath != null)
            {
                RunConfig.Write(jsonPath, ToJson(result, Describe(backend)));
                Console.WriteLine($"results written to {jsonPath}");
            }
            return 0;
        });
        return cmd;
    }

    private static Option<int> Positive(string name, string description, int value)
    {
        var o = new Option<int>(name) { Description = description, DefaultValueFactory = _ => value };
        o.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError($"{name} must be at least 1"); });
        return o;
    }

    private static IBackend CreateBackend(string device, bool tf32, int? threads) =>
        device == "cpu" ? new CpuBackend(threads) : Backends.Create(device, tf32, Console.Out);

    private static string Describe(IBackend backend) => backend is CpuBackend cpu
        ? $"cpu, {cpu.Threads} thread(s), {RuntimeInformation.ProcessArchitecture}, .NET {Environment.Version}"
        : backend.Name;

    private static void CheckWritable(string path)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir)) throw new CliException($"--json {path}: the folder {dir} does not exist");
    }

    /// <summary>The printed table: one row per phase, then images/s and the epoch.</summary>
    public static IEnumerable<string> Table(BenchResult r, string device)
    {
        var o = r.Options;
        var inv = CultureInfo.InvariantCulture;
        yield return $"RL-Mixup step on {device}";
        yield return string.Create(inv, $"PreActResNet18 width {o.Width} ({r.ClassifierParams:N0} params), {o.Classes} classes, batch {o.Batch}; agent {r.AgentParams:N0} params; median of {o.Steps} steps after {o.Warmup} warmup");
        yield return $"{"phase",-10} {"median ms",10} {"min ms",10} {"max ms",10} {"share",7}  what";
        foreach (var p in r.Phases)
        {
            string share = p.Name == "total" ? "" : string.Create(inv, $"{100 * p.MedianMs / r.Total.MedianMs,6:F1}%");
            yield return string.Create(inv, $"{p.Name,-10} {p.MedianMs,10:F2} {p.MinMs,10:F2} {p.MaxMs,10:F2} {share,7}  {p.Note}");
        }
        yield return string.Create(inv, $"images/s   {r.ImagesPerSecond,10:F1}  (batch / total median)");
        yield return string.Create(inv, $"epoch      {r.EpochFromPhasesSeconds,10:F1} s  estimated from the medians: 500 steps + top-1 on 10,000 test images ({r.TestEvalSeconds:F1} s)");
        if (r.Epoch is { } e)
            yield return string.Create(inv,
                $"epoch      {e.TotalSeconds,10:F1} s  measured: {e.Batches} trainer batches in {e.TrainLoopSeconds:F2} s × {e.Scale:G4}, + PPO {e.PpoSeconds:F1} s + rewards not in the sample {e.RewardSeconds:F1} s + test {e.TestEvalSeconds:F1} s");
    }

    public static Dictionary<string, object?> ToJson(BenchResult r, string device)
    {
        var o = r.Options;
        var phases = new Dictionary<string, object?>();
        foreach (var p in r.Phases)
            phases[p.Name] = new Dictionary<string, object?>
            {
                ["median_ms"] = p.MedianMs, ["min_ms"] = p.MinMs, ["max_ms"] = p.MaxMs, ["times_ms"] = p.SamplesMs, ["note"] = p.Note,
            };
        return new Dictionary<string, object?>
        {
            ["meta"] = new Dictionary<string, object?>
            {
                ["engine"] = "rlmixup", ["device"] = device, ["width"] = o.Width, ["batch"] = o.Batch, ["classes"] = o.Classes,
                ["steps"] = o.Steps, ["warmup"] = o.Warmup, ["params"] = r.ClassifierParams, ["agent_params"] = r.AgentParams,
                ["ppo_rollout"] = o.PpoRollout, ["ppo_repeats"] = o.PpoRepeats, ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            },
            ["phases"] = phases,
            ["images_per_s"] = r.ImagesPerSecond,
            ["epoch_from_phases_s"] = r.EpochFromPhasesSeconds,
            ["epoch"] = r.Epoch is not { } e ? null : new Dictionary<string, object?>
            {
                ["images"] = e.Images, ["batches"] = e.Batches, ["train_loop_s"] = e.TrainLoopSeconds, ["rewards"] = e.Rewards, ["scale"] = e.Scale,
                ["ppo_s"] = e.PpoSeconds, ["missing_rewards_s"] = e.RewardSeconds, ["test_eval_s"] = e.TestEvalSeconds, ["total_s"] = e.TotalSeconds,
            },
        };
    }
}
