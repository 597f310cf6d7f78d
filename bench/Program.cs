using BenchmarkDotNet.Running;

namespace RlMixup.Bench;

public static class Program
{
    /// <summary>
    /// `step ...` runs the Stopwatch step timer (the twin of bench/reference/torch_step.py), `ppo ...`
    /// times one PPO update at the paper's size, `conv ...` times each convolution of the model, `norm ...`
    /// the batch norms, ReLUs and residual adds around them, `gemm ...` single GEMM shapes,
    /// `peak ...` measures this CPU's FMA peak;
    /// anything else goes to BenchmarkDotNet, e.g. `--filter '*Conv*'`.
    /// </summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "step") return StepTimer.Run(args[1..]);
        if (args.Length > 0 && args[0] == "ppo") return PpoTimer.Run(args[1..]);
        if (args.Length > 0 && args[0] == "conv") return ConvTimer.Run(args[1..]);
        if (args.Length > 0 && args[0] == "gemm") return GemmTimer.Run(args[1..]);
        if (args.Length > 0 && args[0] == "norm") return NormTimer.Run(args[1..]);
        if (args.Length > 0 && args[0] == "peak") return PeakTimer.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
