using System.Diagnostics;
using System.Text.Json;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Models;

namespace RlMixup.Bench;

/// <summary>
/// Stopwatch timings of the PreActResNet18 training step, phase for phase the twin of
/// bench/reference/torch_step.py, so that bench/compare_torch.sh can print ratios from one run:
///   step      forward (train) + soft-target cross-entropy + backward + SGD-Nesterov step
///   forward   forward only, train mode
///   saliency  forward (train) + loss + backward for ∂loss/∂input only, no weight gradients
/// Usage: dotnet run -c Release --project bench -- step [--width 16] [--batch 100] [--classes 100]
///        [--steps 10] [--warmup 3] [--threads N] [--json FILE]
/// </summary>
public static class StepTimer
{
    public static int Run(string[] args)
    {
        int width = 16, batch = 100, classes = 100, steps = 10, warmup = 3, threads = Environment.ProcessorCount;
        string? json = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--width": width = int.Parse(Next()); break;
                case "--batch": batch = int.Parse(Next()); break;
                case "--classes": classes = int.Parse(Next()); break;
                case "--steps": steps = int.Parse(Next()); break;
                case "--warmup": warmup = int.Parse(Next()); break;
                case "--threads": threads = int.Parse(Next()); break;
                case "--json": json = Next(); break;
                default: Console.Error.WriteLine($"error: unknown option {args[i]}"); return 2;
            }
        }

        var b = new CpuBackend(threads);
        var store = new ParameterStore();
        var model = new PreActResNet18(store, width, classes);
        store.Materialize(b, new Rng(0));
        var sgd = new Sgd(store, 0.1f, 0.9f, 1e-4f, nesterov: true);
        var rng = new Rng(1);
        var x = b.Allocate(new Shape(batch, 3, 32, 32));
        x.CopyFrom(Enumerable.Range(0, x.Length).Select(_ => (float)rng.Normal()).ToArray());
        var targets = b.Allocate(new Shape(batch, classes));
        targets.CopyFrom(SoftTargets(rng, batch, classes));
        var loss = new SoftTargetLoss();

        var phases = new Dictionary<string, Action>
        {
            ["step"] = () =>
            {
                store.ZeroGrad();
                loss.Forward(model.Forward(x, Mode.Train), targets);
                model.Backward(loss.Backward());
                sgd.Step();
            },
            ["forward"] = () => model.Forward(x, Mode.Train),
            ["saliency"] = () =>
            {
                loss.Forward(model.Forward(x, Mode.Train), targets);
                model.Backward(loss.Backward(), weightGrads: false, inputGrad: true);
            },
        };

        Console.WriteLine($"RL-Mixup engine, CPU backend, {threads} thread(s), .NET {Environment.Version}");
        Console.WriteLine($"PreActResNet18 width {width}, {classes} classes, {store.ParameterCount} params; batch {batch}, {steps} steps (median) after {warmup} warmup");
        Console.WriteLine($"{"phase",-10} {"median ms",12} {"min ms",12} {"max ms",12} {"images/s",12}");
        var results = new Dictionary<string, object>();
        foreach (var (name, body) in phases)
        {
            for (int i = 0; i < warmup; i++) body();
            var ms = new double[steps];
            for (int i = 0; i < steps; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                body();
                ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            }
            var sorted = ms.Order().ToArray();
            double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : 0.5 * (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]);
            Console.WriteLine($"{name,-10} {median,12:F1} {sorted[0],12:F1} {sorted[^1],12:F1} {batch / (median / 1000),12:F1}");
            results[name] = new Dictionary<string, object>
            {
                ["median_ms"] = median, ["min_ms"] = sorted[0], ["max_ms"] = sorted[^1],
                ["images_per_s"] = batch / (median / 1000), ["times_ms"] = ms,
            };
        }
        if (json != null)
        {
            var doc = new Dictionary<string, object>
            {
                ["meta"] = new Dictionary<string, object> { ["engine"] = "rlmixup-cpu", ["threads"] = threads, ["width"] = width, ["batch"] = batch, ["classes"] = classes, ["params"] = store.ParameterCount, ["steps"] = steps, ["warmup"] = warmup },
                ["phases"] = results,
            };
            File.WriteAllText(json, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }
        return 0;
    }

    private static float[] SoftTargets(Rng rng, int n, int k)
    {
        var t = new float[n * k];
        for (int i = 0; i < n; i++)
        {
            double sum = 0;
            for (int j = 0; j < k; j++) sum += t[i * k + j] = (float)Math.Exp(rng.Normal());
            for (int j = 0; j < k; j++) t[i * k + j] /= (float)sum;
        }
        return t;
    }
}
