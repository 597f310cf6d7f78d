using System.CommandLine;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.IO;
using RlMixup.Engine.Data;
using RlMixup.Engine.Reports;
using RlMixup.Engine.Training;
using RlMixup.Models;
using RlMixup.Ppo;
using RlMixup.Engine.Runs;

namespace RlMixup.Engine.Commands;

/// <summary>
/// `visualize`: the Appendix B figure (<see cref="MixupFigure"/>) for N test images. The input
/// gradient is the real saliency pass of a classifier — freshly initialised, or a run's — with
/// training-mode BN and frozen statistics; the actions are the run's PPO agent's when the run used the
/// rl policy, otherwise uniform draws from the seeded Rng.
/// </summary>
public static class VisualizeCommand
{
    public const int MaxSamples = 64;

    public static Command Create()
    {
        var cmd = new Command("visualize", "Draw the paper's Appendix B mix-up figure (image, saliency, kept cells, mix regions, mixed image) for N samples");
        var samples = new Option<int>("--samples") { Description = $"number of samples (rows), 1..{MaxSamples}", DefaultValueFactory = _ => 8 };
        var dataset = new Option<string?>("--dataset") { Description = "cifar100, cifar10 or synthetic (default: the checkpoint's run's; else synthetic)" };
        dataset.AcceptOnlyFromAmong([.. Dataset.Names]);
        var dataDir = new Option<string?>("--data") { Description = "folder holding the dataset (default: the run's data folder; else data)" };
        var outOpt = new Option<string>("--out") { Description = "the PNG to write", DefaultValueFactory = _ => "mixup.png" };
        var checkpoint = new Option<string?>("--checkpoint")
        {
            Description = "a run folder: its model.safetensors is the classifier, and for an rl run the agent in state.safetensors picks the actions",
        };
        var width = new Option<int>("--width") { Description = "width of the freshly initialised classifier (without --checkpoint)", DefaultValueFactory = _ => 64 };
        width.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--width must be at least 1"); });
        var seed = new Option<ulong>("--seed") { Description = "random seed: initialisation, the choice of images, uniform actions, partners and λ", DefaultValueFactory = _ => 0 };
        var device = TrainCommands.DeviceOption();
        var noTf32 = TrainCommands.NoTf32Option();
        foreach (var o in new Option[] { samples, dataset, dataDir, outOpt, checkpoint, width, seed, device, noTf32 }) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            using var backend = Backends.Create(r.GetValue(device)!, !r.GetValue(noTf32), Console.Out);
            return Run(backend, r.GetValue(samples), r.GetValue(dataset), r.GetValue(dataDir), r.GetValue(outOpt)!, r.GetValue(checkpoint),
                r.GetValue(width), r.GetValue(seed), Console.Out);
        });
        return cmd;
    }

    public static int Run(IBackend backend, int samples, string? datasetName, string? dataRoot, string outPath, string? checkpointPath, int width, ulong seed, TextWriter log)
    {
        if (samples < 1 || samples > MaxSamples) throw new CliException($"--samples must be in 1..{MaxSamples}, got {samples}");
        var rng = new Rng(seed);
        var run = checkpointPath == null ? null : RunCheckpoint.Open(checkpointPath, backend);
        var data = RunCheckpoint.LoadTestData(run, datasetName, dataRoot, maxTest: null);

        // The classifier.
        PreActResNet18 model;
        if (run != null)
        {
            model = run.Model;
            if (data.Classes != model.Classes)
                throw new CliException($"--checkpoint {run.ModelPath}: the model has {model.Classes} classes, {data.Name} has {data.Classes}");
            string epoch = run.Metadata.TryGetValue("epoch", out var e) ? $", epoch {e}" : "";
            log.WriteLine($"classifier: {run.ModelPath} (PreActResNet18, width {model.Width}, {model.Classes} classes{epoch})");
        }
        else
        {
            model = new PreActResNet18(new ParameterStore(), width, data.Classes);
            model.Store.Materialize(backend, rng);
            log.WriteLine($"classifier: freshly initialised PreActResNet18 (width {width}, {data.Classes} classes, seed {seed})");
        }

        // The actions' source: the run's agent for an rl run, else uniform draws.
        var config = run?.Config;
        var mix = config?.Mix ?? new MixSpec();
        int patches = mix.Patches, actions = mix.Actions;
        float alpha = (float)mix.Alpha;
        using var agent = config != null && config.Mix.Policy == MixPolicy.Rl ? LoadAgent(run!, config, backend, log) : null;
        int batch = agent?.ActionDims ?? samples;
        if (samples > batch)
            throw new CliException($"--samples {samples}: the run's agent acts on batches of {batch} images; ask for at most {batch}");
        if (batch > data.Test.Count)
            throw new CliException($"--samples {samples}: {data.Name}'s test split has only {data.Test.Count} images, {batch} are needed");
        if (agent == null)
            log.WriteLine($"actions: drawn uniformly from the seeded Rng (seed {seed}){(run == null ? ", no trained agent" : $", the run's policy is {(config == null ? "unknown" : Names.Of(config.Mix.Policy))}")}");

        // A batch of test images chosen by the seed, and the saliency pass on it.
        int[] indices = rng.Permutation(data.Test.Count)[..batch];
        float[] inputGrad = SaliencyPass(backend, model, data.Test, indices);
        int[] chosen;
        if (agent != null)
        {
            using var grad = backend.Allocate(new Shape(batch, ImageSet.Channels, ImageSet.Height, ImageSet.Width));
            using var maps = backend.Allocate(new Shape(batch, patches, patches));
            grad.CopyFrom(inputGrad);
            backend.SaliencyMaps(maps, grad);
            chosen = agent.Predict(maps, deterministic: false);
        }
        else chosen = [.. Enumerable.Range(0, batch).Select(_ => rng.NextInt(actions))];
        float[] percentiles = [.. chosen.Select(mix.Percentile)];

        var figure = MixupFigurePipeline.Run(data.Test, indices, data.ClassNames, inputGrad, percentiles, alpha, rng, patches);
        MixupFigureLayout layout;
        try { layout = MixupFigure.Write(outPath, figure, samples); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--out {outPath}: cannot write there ({ex.Message})");
        }
        log.WriteLine($"wrote {outPath}: {samples} samples of {data.Name} ({layout.Width}×{layout.Height} pixels)");
        return 0;
    }

    /// <summary>
    /// ∂loss/∂x of the clean batch (normalised, one-hot targets) as the trainer's saliency pass takes it:
    /// training-mode BN on the batch's statistics, running statistics left alone, no weight gradient.
    /// </summary>
    public static float[] SaliencyPass(IBackend backend, PreActResNet18 model, ImageSet set, int[] indices)
    {
        int n = indices.Length;
        using var x = backend.Allocate(new Shape(n, ImageSet.Channels, ImageSet.Height, ImageSet.Width));
        using var y = backend.Allocate(new Shape(n, set.Classes));
        new CpuBatchSource(backend, set).Fill(x, y, indices, []);
        var loss = new SoftTargetLoss();
        loss.Forward(model.Forward(x, Mode.TrainFrozenStats), y);
        return model.Backward(loss.Backward(), weightGrads: false, inputGrad: true)!.ToArray();
    }

    /// <summary>The run's PPO agent from state.safetensors, or null (with a note) when the run has none.</summary>
    private static PpoAgent? LoadAgent(RunCheckpoint run, RunSpec config, IBackend backend, TextWriter log)
    {
        string statePath = Path.Combine(run.Folder, Trainer.StateFile);
        if (!File.Exists(statePath))
        {
            log.WriteLine($"the rl run has no {Trainer.StateFile}: no trained agent to ask");
            return null;
        }
        var agent = RunFactory.Agent(backend, config, (int)(run.Recorded("steps_per_epoch") ?? 1));
        try
        {
            var file = CheckpointReader.Read(statePath);
            agent.LoadCheckpoint(file.Under("agent/"));
            int epoch = file.Int("checkpoint.epoch");
            log.WriteLine($"actions: sampled by the run's PPO agent ({statePath}, epoch {epoch})");
        }
        catch (Exception e) when (e is InvalidDataException or KeyNotFoundException or IOException or ArgumentException or FormatException or System.Text.Json.JsonException)
        {
            agent.Dispose();
            throw new CliException($"{statePath}: cannot restore the agent ({e.Message})");
        }
        return agent;
    }
}
