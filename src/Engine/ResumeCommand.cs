using System.CommandLine;
using System.Text.Json;
using RlMixup.Engine.Data;
using RlMixup.Engine.Display;
using RlMixup.Engine.Reports;
using RlMixup.Engine.Training;
using RlMixup.Models;
using RlMixup.Ppo;

namespace RlMixup.Engine;

/// <summary>
/// `resume RUN_DIR`: rebuilds the run's configuration and dataset from its config.json, restores the
/// last complete checkpoint (state.rlmt: an epoch's end, or the step where Ctrl-C stopped the run),
/// truncates metrics.jsonl to the last finished epoch and trains on to the configured number of epochs.
/// </summary>
public static class ResumeCommand
{
    public static Command Create()
    {
        var cmd = new Command("resume", "Continue an interrupted run from its last checkpoint: an epoch's end, or the step Ctrl-C stopped it after (bit for bit as if never stopped)");
        var folder = new Argument<string>("RUN_DIR") { Description = "the run folder (holds config.json and state.rlmt)" };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or auto (default: the device the run was started on)" };
        device.AcceptOnlyFromAmong(Backends.DeviceNames);
        var noTf32 = TrainCommands.NoTf32Option();
        var noLive = TrainCommands.NoLiveOption();
        cmd.Arguments.Add(folder);
        cmd.Options.Add(device);
        cmd.Options.Add(noTf32);
        cmd.Options.Add(noLive);
        cmd.SetAction(r => Resume(r.GetValue(folder)!, r.GetValue(noLive), r.GetValue(device), r.GetValue(noTf32) ? false : null));
        return cmd;
    }

    /// <summary>
    /// Resumes the run in <paramref name="folder"/> on <paramref name="device"/>, by default the device
    /// recorded in its config.json (a run continues bit for bit only on the kind of device it started on),
    /// with TF32 as recorded there unless <paramref name="tf32"/> says otherwise. Returns 0 when the run
    /// reached its end, 130 when a signal stopped it again.
    /// </summary>
    public static int Resume(string folder, bool plain, string? device = null, bool? tf32 = null)
    {
        var (config, data, dataFolder, dataSeed) = Load(folder);
        var recorded = RunConfig.Read(Path.Combine(folder, "config.json"));
        device ??= Str(recorded, "device") is string d && d.StartsWith("cuda", StringComparison.Ordinal) ? "cuda" : "cpu";
        tf32 ??= !recorded.TryGetProperty("tf32", out var t) || t.ValueKind != JsonValueKind.False;
        using var backend = Backends.Create(device, tf32.Value, Console.Out);
        try
        {
            return RunWatcher.Run(folder, plain, (log, onStep, stop) =>
            {
                var run = new TrainingRun(backend, data, config, folder, log)
                    { DataFolder = dataFolder, DataSeed = dataSeed, Tf32 = tf32.Value, Progress = onStep, Stop = stop };
                run.Resume();
                return run.Interrupted;
            });
        }
        catch (InvalidDataException e)
        {
            throw new CliException($"resume {folder}: {e.Message}");
        }
    }

    /// <summary>The configuration and dataset recorded in folder/config.json; a missing or unreadable run is a <see cref="CliException"/>.</summary>
    public static (TrainConfig Config, Dataset Data, string? DataFolder, ulong DataSeed) Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new CliException($"resume {folder}: no such run folder");
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new CliException($"resume {folder}: no config.json, not a run folder");
        try
        {
            if (Trainer.StateEpoch(folder) == null)
                throw new CliException($"resume {folder}: no checkpoint ({Trainer.StateFile}); the run ended before its first epoch did, start it again");
            var c = RunConfig.Read(configPath);
            var (config, dataFolder, dataSeed) = (ToConfig(c), Str(c, "data_folder"), c.GetProperty("data_seed").GetUInt64());
            string name = Str(c, "dataset") ?? throw new InvalidDataException("config.json names no dataset");
            int train = c.GetProperty("train_images").GetInt32(), test = c.GetProperty("test_images").GetInt32();
            var data = name == "synthetic"
                ? SyntheticData.Generate(train, test, c.GetProperty("classes").GetInt32(), dataSeed)
                : Dataset.Load(name, dataFolder ?? throw new InvalidDataException("config.json records no data folder"), train, test, dataSeed);
            return (config, data, dataFolder, dataSeed);
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or KeyNotFoundException or FormatException or InvalidOperationException or ArgumentException)
        {
            throw new CliException($"resume {folder}: {e.Message}");
        }
    }

    /// <summary>The training configuration recorded in a run's config.json.</summary>
    public static TrainConfig ToConfig(JsonElement c)
    {
        int I(string k) => c.GetProperty(k).GetInt32();
        double D(string k) => c.GetProperty(k).GetDouble();
        bool B(string k) => c.GetProperty(k).GetBoolean();
        int[]? Ints(string k) => c.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.Array ? [.. v.EnumerateArray().Select(x => x.GetInt32())] : null;
        var conv = Ints("agent_conv");
        return new TrainConfig
        {
            Epochs = I("epochs"), BatchSize = I("batch"), Width = I("width"), Seed = c.GetProperty("seed").GetUInt64(),
            Policy = Enum.Parse<MixPolicy>(Str(c, "policy") ?? "", ignoreCase: true),
            Mix = new MixOptions
            {
                Patches = I("patches"), Actions = I("actions"), Alpha = D("alpha"), DirichletPerImage = B("dirichlet_per_image"),
                BaselineAlpha = D("baseline_alpha"), SaliencyUpdatesBnStats = B("saliency_updates_bn_stats"),
            },
            Augmentation = new Augmentation(I("crop_pad"), B("flip")),
            Reward = Str(c, "reward") switch
            {
                null or "accuracy" => RewardKind.Accuracy,
                "grad-sim" => RewardKind.GradSim,
                var other => throw new InvalidDataException($"config.json: unknown reward '{other}'"),
            },
            RewardInterval = I("reward_interval"), RewardSample = D("reward_sample"),
            MaxLr = D("max_lr"), DivFactor = D("div_factor"), FinalDivFactor = D("final_div_factor"), PctStart = D("pct_start"),
            Momentum = (float)D("momentum"), CycleMomentum = B("cycle_momentum"), WeightDecay = (float)D("weight_decay"),
            Ppo = new PpoConfig
            {
                BatchSize = I("ppo_batch_size"), NEpochs = I("ppo_n_epochs"), Gamma = D("ppo_gamma"), GaeLambda = D("ppo_gae_lambda"),
                ClipRange = D("ppo_clip_range"), EntCoef = D("ppo_ent_coef"), VfCoef = D("ppo_vf_coef"), MaxGradNorm = D("ppo_max_grad_norm"),
                LearningRate = D("ppo_learning_rate"),
                TargetKl = c.GetProperty("ppo_target_kl").ValueKind == JsonValueKind.Null ? null : D("ppo_target_kl"),
                NormalizeAdvantage = B("ppo_normalize_advantage"), AdamEps = D("ppo_adam_eps"),
            },
            ValFromTrain = c.TryGetProperty("val_from_train", out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null,
            AgentSizes = conv == null ? null : new ActorCriticSizes(conv, I("agent_features"), Ints("agent_policy_hidden")!, Ints("agent_value_hidden")!),
        };
    }

    private static string? Str(JsonElement c, string key) =>
        c.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
