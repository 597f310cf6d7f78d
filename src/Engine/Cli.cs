using System.CommandLine;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Commands;

namespace RlMixup.Engine;

/// <summary>The command line. Every command has --help; bad input ends with one error line and exit code 2.</summary>
public static class Cli
{
    public static int Run(string[] args)
    {
        var root = new RootCommand("RL-Mixup: learning mix-up policies with reinforcement learning (CPU and CUDA training engine)");
        root.Subcommands.Add(InfoCommand());
        root.Subcommands.Add(TrainCommands.Demo());
        root.Subcommands.Add(TrainCommands.Train());
        root.Subcommands.Add(TrainCommands.Paper("cifar100"));
        root.Subcommands.Add(TrainCommands.Paper("cifar10"));
        root.Subcommands.Add(TrainCommands.Download());
        root.Subcommands.Add(ResumeCommand.Create());
        root.Subcommands.Add(ExperimentCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(VisualizeCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(SelfTestCommand.Create());
        Runs.GroupedHelp.Install(root);
        try
        {
            var parse = root.Parse(args);
            // --help shows the help even when the rest of the line is incomplete (a required option missing).
            if (parse.Errors.Count > 0 && parse.Action is not (Runs.GroupedHelp or System.CommandLine.Help.HelpAction))
            {
                foreach (var e in parse.Errors) Console.Error.WriteLine($"error: {OneLine(e)}");
                Console.Error.WriteLine("Run with --help for usage.");
                return 2;
            }
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is CliException or Data.DataFormatException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>A parse error on one line, naming the option it concerns.</summary>
    private static string OneLine(System.CommandLine.Parsing.ParseError e)
    {
        string message = string.Join(" ", e.Message.Split((char[])['\r', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()));
        return e.SymbolResult is System.CommandLine.Parsing.OptionResult o && !message.Contains(o.Option.Name, StringComparison.Ordinal)
            ? $"{o.Option.Name}: {message}" : message;
    }

    private static Command InfoCommand()
    {
        var cmd = new Command("info", "Print the version, the CUDA libraries and device found, the available backends and the CPU features in use");
        var verbose = new Option<bool>("--verbose", "-v") { Description = "also check every symbol the engine binds against the library loaded, and list each library's companions" };
        var bindings = new Option<string?>("--bindings") { Description = "write the engine's CUDA library search plan on this machine and the symbols it binds as JSON to this file ('-': stdout), without loading anything, and exit" };
        cmd.Options.Add(verbose);
        cmd.Options.Add(bindings);
        cmd.SetAction(r =>
        {
            if (r.GetValue(bindings) is { } file)
            {
                Commands.CudaBindingsFile.Write(file);
                return 0;
            }
            foreach (var line in InfoLines(r.GetValue(verbose))) Console.WriteLine(line);
            return 0;
        });
        return cmd;
    }

    public static IEnumerable<string> InfoLines(bool verbose = false)
    {
        var version = typeof(Cli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        yield return $"rlmixup {version.Split('+')[0]}";
        yield return $"runtime      .NET {Environment.Version} on {RuntimeInformation.OSDescription} ({RuntimeInformation.ProcessArchitecture})";
        var cpu = new CpuBackend();
        yield return $"backend cpu  available: {cpu.Threads} threads";
        foreach (var line in RlMixup.Core.Cuda.CudaProbe.Lines(verbose)) yield return line;
        if (Backends.TryCreateCuda(tf32: true, out var cuda, out string reason))
        {
            using (cuda)
            {
                yield return $"backend cuda available: {cuda!.Name}";
                if (cuda is RlMixup.Core.Cuda.CudaBackend device)
                    foreach (var line in device.Describe()) yield return line;
            }
        }
        else yield return $"backend cuda not available: {reason}";
        var modules = RlMixup.Core.Cuda.PtxModules.Names;
        yield return $"kernels      {RlMixup.Core.Cuda.KernelCatalog.All.Count} CUDA kernels in {modules.Count} embedded PTX modules ({string.Join(", ", modules)})";
        var features = new List<string>();
        if (Avx2.IsSupported) features.Add("AVX2");
        if (Fma.IsSupported) features.Add("FMA");
        if (Avx512F.IsSupported) features.Add("AVX-512F");
        if (AdvSimd.IsSupported) features.Add("NEON");
        yield return $"cpu features {(features.Count > 0 ? string.Join(" ", features) : "none")}; Vector256 accelerated: {Vector256.IsHardwareAccelerated}, Vector512: {Vector512.IsHardwareAccelerated}";
        yield return $"gemm path    " + RlMixup.Core.Cpu.Gemm.Isa switch
        {
            RlMixup.Core.Cpu.GemmIsa.Avx512 => "AVX-512 8×32 micro-kernel (6×16 AVX2 for narrow products; the same bits either way)",
            RlMixup.Core.Cpu.GemmIsa.Avx2 => "AVX2+FMA 6×16 micro-kernel",
            _ => "scalar fallback",
        };
    }
}
