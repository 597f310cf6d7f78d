using System.Diagnostics;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Models;
using RlMixup.Ppo;

namespace RlMixup.Bench;

/// <summary>
/// Stopwatch timing of one PPO update at the paper's size: a rollout of n_steps observations
/// (B, 16, 16) with B = 100 (one Act per step, batch 1), then the update (GAE, n_epochs passes of
/// minibatches of 100 through the actor-critic, forward + backward + Adam). The full update is ~25
/// TFLOP (20 epochs × 10 minibatches × ~125 GFLOP), minutes on a small CPU, so by default one
/// epoch is timed and the 20-epoch figure is extrapolated (epochs cost the same: same minibatches,
/// same shapes); --epochs 20 times the real thing.
/// Usage: dotnet run -c Release --project bench -- ppo [--epochs 1] [--steps 1000] [--batch 100]
///        [--images 100] [--map 16] [--threads N]
/// </summary>
public static class PpoTimer
{
    public static int Run(string[] args)
    {
        int epochs = 1, steps = 1000, batch = 100, images = 100, map = 16, threads = Environment.ProcessorCount;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--epochs": epochs = int.Parse(Next()); break;
                case "--steps": steps = int.Parse(Next()); break;
                case "--batch": batch = int.Parse(Next()); break;
                case "--images": images = int.Parse(Next()); break;
                case "--map": map = int.Parse(Next()); break;
                case "--threads": threads = int.Parse(Next()); break;
                default: Console.Error.WriteLine($"error: unknown option {args[i]}"); return 2;
            }
        }

        using var b = new CpuBackend(threads);
        var config = new PpoConfig { NSteps = steps, BatchSize = batch, NEpochs = epochs, Seed = 1 };
        var shape = new Shape(images, map, map);
        long t0 = Stopwatch.GetTimestamp();
        using var agent = new PpoAgent(b, config, shape, images, 10);
        double buildS = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        var sizes = agent.Network.Sizes;
        double fwd = ForwardFlops(images, map, sizes, images * 10);
        Console.WriteLine($"RL-Mixup engine, CPU backend, {threads} thread(s), .NET {Environment.Version}");
        Console.WriteLine($"PPO at the paper's size: observation ({images},{map},{map}), {agent.Store.ParameterCount} params, " +
                          $"n_steps {steps}, batch {batch}, {epochs} epoch(s) timed; agent built (orthogonal init) in {buildS:F1} s");

        var rng = new Rng(2);
        var obs = b.Allocate(new Shape(images, map, map));
        var host = new float[obs.Length];
        t0 = Stopwatch.GetTimestamp();
        for (int t = 0; t < steps; t++)
        {
            for (int i = 0; i < host.Length; i++) host[i] = (float)rng.NextDouble() / (map * map);
            obs.CopyFrom(host);
            agent.Act(obs);
            agent.Observe(t % 50 == 49 ? (float)rng.Normal() : 0f, done: t == steps - 1);
        }
        double rolloutS = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        Console.WriteLine($"rollout   {steps} × Act (batch 1)             {rolloutS,9:F2} s   {steps * fwd / rolloutS / 1e9,7:F1} GFLOP/s");

        var s = agent.Update(null);
        int minibatches = (steps + batch - 1) / batch;
        double flops = epochs * (double)steps * 3 * fwd; // backward ≈ 2 × forward
        Console.WriteLine($"update    {epochs} epoch(s), {s.GradientSteps} minibatches      {s.UpdateSeconds,9:F2} s   {flops / s.UpdateSeconds / 1e9,7:F1} GFLOP/s (≈{flops / 1e12:F2} TFLOP)");
        if (epochs != 20)
            Console.WriteLine($"update    20 epochs, {20 * minibatches} minibatches (EXTRAPOLATED ×{20.0 / epochs:G3} from the timed epochs) {s.UpdateSeconds * 20 / epochs,9:F1} s");
        Console.WriteLine($"stats     pgLoss {s.PolicyLoss:G4}  vLoss {s.ValueLoss:G4}  entropyLoss {s.EntropyLoss:G6}  approxKl {s.ApproxKl:G3}  clipFraction {s.ClipFraction:G3}");
        return 0;
    }

    /// <summary>Multiply-adds ×2 of one observation's forward: the three valid 3×3 convs, then the dense layers.</summary>
    private static double ForwardFlops(int c, int map, ActorCriticSizes sizes, int logits)
    {
        double f = 0;
        int h = map;
        foreach (int o in sizes.ConvChannels)
        {
            h -= 2;
            f += 2.0 * h * h * o * c * 9;
            c = o;
        }
        f += 2.0 * c * sizes.Features;
        int inF = sizes.Features;
        foreach (int w in sizes.PolicyHidden) { f += 2.0 * inF * w; inF = w; }
        f += 2.0 * inF * logits;
        inF = sizes.Features;
        foreach (int w in sizes.ValueHidden) { f += 2.0 * inF * w; inF = w; }
        return f + 2.0 * inF;
    }
}
