using System.CommandLine;
using RlMixup.Core;
using RlMixup.Engine.Data;
using RlMixup.Engine.Display;
using RlMixup.Engine.Runs;
using RlMixup.Engine.Training;

namespace RlMixup.Engine.Commands;

/// <summary>The `demo`, `train`, `cifar100`, `cifar10` and `download` commands: parse, then call <see cref="TrainingRun"/>.</summary>
public static class TrainCommands
{
    /// <summary>The demo's data: the embedded synthetic dataset, 5,000 training and 1,000 test images.</summary>
    private static readonly DataSpec DemoData = new() { Dataset = "synthetic", MaxTrainImages = 5000, MaxTestImages = 1000 };

    /// <summary>
    /// The CPU demo: synthetic data, policy rl, reduced so that it finishes in well under 3 minutes
    /// on 2 cores — width 8, 4 epochs of 50 batches, and a narrower agent (conv 32-48-64, features
    /// 128, MLPs 64-64) with 5 PPO epochs per update. Everything else is the paper's.
    /// </summary>
    public static readonly RunSpec CpuDemo = new()
    {
        Epochs = 4, Data = DemoData, Model = new ModelSpec { Width = 8 },
        Agent = new AgentSpec { Conv = [32, 48, 64], Features = 128, PolicyHidden = [64, 64], ValueHidden = [64, 64], NEpochs = 5 },
        Device = new DeviceSpec { Name = "cpu" },
    };

    /// <summary>
    /// The GPU demo: the same synthetic data and policy at the paper's width (64) and agent, 10 epochs
    /// of 50 batches (seconds per epoch on a current GPU).
    /// </summary>
    public static readonly RunSpec CudaDemo = new() { Epochs = 10, Data = DemoData, Device = new DeviceSpec { Name = "cuda" } };

    public static Command Demo()
    {
        var cmd = new Command("demo", "Train RL-Mixup on the embedded synthetic dataset (on a GPU at full width; on the CPU reduced in width, epochs and agent, finishing in a few minutes)");
        var outOpt = OutOption();
        var seedOpt = new Option<ulong>("--seed") { Description = "random seed", DefaultValueFactory = _ => 0 };
        var noLive = NoLiveOption();
        var device = DeviceOption();
        var noTf32 = NoTf32Option();
        foreach (var o in new Option[] { outOpt, seedOpt, device, noTf32, noLive }) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            ulong seed = r.GetValue(seedOpt);
            string requested = r.GetValue(device)!;
            bool tf32 = !r.GetValue(noTf32);
            IBackend backend;
            RunSpec spec;
            string reason = "";
            if (requested != "cpu" && Backends.TryCreateCuda(tf32, out var cuda, out reason))
            {
                (backend, spec) = (cuda!, CudaDemo with { Seed = seed, Device = CudaDemo.Device with { Tf32 = tf32 } });
                Console.WriteLine($"demo: running on {backend.Name} at full width ({spec.Model.Width}, {spec.Epochs} epochs, the paper's agent)");
            }
            else if (requested == "cuda")
                throw new CliException(Backends.CudaUnavailable(reason));
            else
            {
                (backend, spec) = (new Core.Cpu.CpuBackend(), CpuDemo with { Seed = seed });
                Console.WriteLine(requested == "cpu"
                    ? "demo: running on the CPU with a reduced configuration"
                    : $"demo: running on the CPU with a reduced configuration ({reason})");
            }
            using (backend) return Run(backend, spec, r.GetValue(outOpt), r.GetValue(noLive));
        });
        return cmd;
    }

    /// <summary>--device cpu|cuda|auto (auto: CUDA when a device and the libraries are usable, else the CPU).</summary>
    public static Option<string> DeviceOption(string defaultValue = "auto")
    {
        var device = new Option<string>("--device") { Description = "cpu, cuda or auto (CUDA when usable, else the CPU)", DefaultValueFactory = _ => defaultValue };
        device.AcceptOnlyFromAmong(Backends.DeviceNames);
        return device;
    }

    /// <summary>--no-tf32: full float32 GEMMs and convolutions on the GPU (TF32 tensor cores are used by default).</summary>
    public static Option<bool> NoTf32Option() =>
        new("--no-tf32") { Description = "CUDA: keep GEMMs and convolutions in full float32 (no TF32 tensor cores)" };

    public static Command Train() => Build("train", "Train a classifier with a mix-up policy (Algorithm 1 for --policy rl)", fixedDataset: null);

    /// <summary>`cifar100` / `cifar10`: the paper's setup (300 epochs, width 64, policy rl) on that dataset, fetched when missing.</summary>
    public static Command Paper(string dataset) =>
        Build(dataset, $"The paper's setup on {dataset.ToUpperInvariant()} (300 epochs, width 64, policy rl); fetches the dataset when it is missing", dataset);

    public static Command Download()
    {
        var cmd = new Command("download", "Fetch a dataset's official archive, check its MD5 and unpack it into the data folder");
        var which = new Argument<string>("dataset") { Description = "cifar10 or cifar100" };
        which.AcceptOnlyFromAmong("cifar10", "cifar100");
        var dataDir = new Option<string>("--data") { Description = "data folder", DefaultValueFactory = _ => "data" };
        cmd.Arguments.Add(which);
        cmd.Options.Add(dataDir);
        cmd.SetAction(r =>
        {
            Console.WriteLine($"{r.GetValue(which)} is in {Fetch(r.GetValue(which)!, r.GetValue(dataDir)!)}");
            return 0;
        });
        return cmd;
    }

    /// <summary>Downloads a missing CIFAR dataset into <paramref name="dataRoot"/>; returns its folder. RLMIXUP_OFFLINE=1 refuses instead (as HF_HUB_OFFLINE does).</summary>
    public static string Fetch(string dataset, string dataRoot)
    {
        if (Environment.GetEnvironmentVariable("RLMIXUP_OFFLINE") is "1" or "true")
            throw new CliException($"{dataset} is not in {dataRoot} and downloads are off (RLMIXUP_OFFLINE); put the dataset there, or unset RLMIXUP_OFFLINE to fetch it");
        bool created = !Directory.Exists(dataRoot);
        Directory.CreateDirectory(dataRoot);
        try
        {
            var bar = ProgressBar.Console(Console.Out);
            return new Downloader().FetchAsync(DatasetArchive.Find(dataset), dataRoot, bar).GetAwaiter().GetResult();
        }
        catch when (created && !Directory.EnumerateFileSystemEntries(dataRoot).Any())
        {
            Directory.Delete(dataRoot); // a failed download leaves no empty folder behind
            throw;
        }
    }

    /// <summary>Fetches a CIFAR dataset the spec names when its folder is missing.</summary>
    public static void FetchIfMissing(RunSpec spec)
    {
        string name = spec.Data.Dataset, root = spec.Data.Folder;
        if (!Dataset.IsPresent(name, root)) Fetch(name, root);
    }

    private static Command Build(string commandName, string description, string? fixedDataset)
    {
        var cmd = new Command(commandName, description);
        var baseSpec = fixedDataset == null ? new RunSpec() : new RunSpec { Data = new DataSpec { Dataset = fixedDataset } };
        var flags = new RunFlags(baseSpec, fixedDataset == null ? [] : ["data.dataset"]);
        var output = new OutputOptions();
        foreach (var o in flags.Options.Concat(output.Options)) cmd.Options.Add(o);
        GroupedHelp.Register(cmd, flags.Groups);
        cmd.SetAction(r =>
        {
            var spec = flags.Resolve(r, baseSpec);
            if (fixedDataset != null) spec = spec with { Data = spec.Data with { Dataset = fixedDataset } };
            if (spec.InitWeights is string iw && !File.Exists(iw)) throw new CliException($"--init-weights {iw}: no such file");
            var trace = output.Trace(r);
            FetchIfMissing(spec); // as torchvision's download=True: a missing CIFAR is fetched, checked and unpacked

            using var backend = RunFactory.Backend(spec, Console.Out);
            return Run(backend, spec, r.GetValue(output.Out), r.GetValue(output.NoLive), trace, r.GetValue(output.StepStats), !r.GetValue(output.NoTensorBoard));
        });
        return cmd;
    }

    /// <summary>What a training command writes besides the run itself: the folder, the display, the trace and the step statistics.</summary>
    private sealed class OutputOptions
    {
        public Option<string?> Out { get; } = OutOption();
        public Option<bool> NoLive { get; } = NoLiveOption();
        private readonly Option<string?> _trace = new("--trace") { Description = "record the first --trace-steps steps (batches, mix draws, loss; state and gradients at --trace-full steps) into this folder for scripts/replay_torch.py" };
        private readonly Option<int> _traceSteps = new("--trace-steps") { Description = "steps recorded by --trace", DefaultValueFactory = _ => 10 };
        private readonly Option<string> _traceFull = new("--trace-full") { Description = "comma-separated steps at which --trace also records the state, the momentum and every gradient", DefaultValueFactory = _ => "1,10,100,500" };
        public Option<bool> NoTensorBoard { get; } = NoTensorBoardOption();
        public Option<int?> StepStats { get; } = new("--step-stats") { Description = "every N steps, append the gradient norm, per-layer parameter norms, the smallest BN scale and the dead-ReLU fraction to steps.jsonl" };

        public OutputOptions() => StepStats.Validators.Add(v => { if (v.GetValueOrDefault<int?>() is < 1) v.AddError("--step-stats must be at least 1"); });

        public IEnumerable<Option> Options => [Out, NoLive, NoTensorBoard, StepStats, _trace, _traceSteps, _traceFull];

        public StepTrace? Trace(ParseResult r)
        {
            if (r.GetValue(_trace) is not string dir) return null;
            if (r.GetValue(_traceSteps) < 1) throw new CliException($"--trace-steps must be at least 1, got {r.GetValue(_traceSteps)}");
            var full = new List<long>();
            foreach (var part in r.GetValue(_traceFull)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                full.Add(long.TryParse(part, out long k) && k >= 1 ? k : throw new CliException($"--trace-full: '{part}' is not a step number (1 or more)"));
            return new StepTrace(dir, r.GetValue(_traceSteps), full);
        }
    }

    private static Option<string?> OutOption() =>
        new("--out") { Description = "run folder (default runs/<dataset>-<policy>-<timestamp>)" };

    /// <summary>--no-tensorboard: no TensorBoard event file in the run folder.</summary>
    public static Option<bool> NoTensorBoardOption() =>
        new("--no-tensorboard") { Description = "write no TensorBoard event file (events.out.tfevents.*) in the run folder" };

    /// <summary>--no-live: plain progress lines even on an interactive terminal (they are the default when output is redirected).</summary>
    public static Option<bool> NoLiveOption() =>
        new("--no-live") { Description = "print plain progress lines instead of the live panel (automatic when output is redirected)" };

    /// <summary>Trains <paramref name="spec"/> on <paramref name="backend"/> into a new run folder; 0 when done, 130 when stopped.</summary>
    public static int Run(IBackend backend, RunSpec spec, string? outDir, bool plain, StepTrace? trace = null, int? stepStats = null, bool tensorBoard = true)
    {
        var data = RunFactory.Data(spec);
        var folder = RunFolder.CreateWritable(outDir ?? Path.Combine("runs", $"{spec.Data.Dataset}-{Names.Of(spec.Mix.Policy)}-{DateTime.Now:yyyyMMdd-HHmmss}"));
        return RunWatcher.Run(folder.Path, plain, (log, onStep, stop) =>
        {
            var run = new TrainingRun(backend, data, spec, folder.Path, log)
                { Progress = onStep, Stop = stop, Trace = trace, StepStatsEvery = stepStats, TensorBoard = tensorBoard };
            run.Run();
            return run.Interrupted;
        }, cpu: backend is Core.Cpu.CpuBackend);
    }
}
