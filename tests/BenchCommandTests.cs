using System.Text.Json;
using NUnit.Framework;
using RlMixup.Core.Cpu;
using RlMixup.Engine;
using RlMixup.Engine.Bench;
using RlMixup.Models;

namespace RlMixup.Tests;

/// <summary>The `bench` command: every phase is timed, the totals add up, the JSON matches the table; bad flags give one line.</summary>
[NonParallelizable]
public class BenchCommandTests
{
    private static readonly ActorCriticSizes TinyAgent = new([4, 4, 4], 8, [8], [8]);

    [Test]
    public void EveryPhaseIsTimedAndTheTotalIncludesTheAmortisedUpdates()
    {
        using var backend = new CpuBackend(1);
        var o = new BenchOptions
        {
            Width = 2, Batch = 10, Classes = 10, Steps = 3, Warmup = 1, EpochImages = 30, PpoRollout = 20, PpoRepeats = 2, AgentSizes = TinyAgent,
        };
        var r = StepBench.Run(backend, o);

        string[] expected = ["data", "saliency", "policy", "mask_mix", "train", "ppo", "reward", "total"];
        Assert.That(r.Phases.Select(p => p.Name), Is.EqualTo(expected));
        foreach (var p in r.Phases)
        {
            Assert.That(p.MedianMs, Is.GreaterThan(0), p.Name);
            Assert.That(p.MinMs, Is.LessThanOrEqualTo(p.MedianMs).And.LessThanOrEqualTo(p.MaxMs), p.Name);
        }
        Assert.That(r.Phases[0].SamplesMs, Has.Length.EqualTo(3), "one sample per timed step");
        Assert.That(r.Phases.First(p => p.Name == "ppo").SamplesMs, Has.Length.EqualTo(2), "one sample per PPO repeat");
        // Each step's total is its measured phases (plus bookkeeping) plus the amortised PPO and reward medians.
        double amortised = r.Phases[5].MedianMs + r.Phases[6].MedianMs;
        double minPhases = Enumerable.Range(0, 5).Sum(k => r.Phases[k].MinMs);
        Assert.That(r.Total.MinMs, Is.GreaterThanOrEqualTo(minPhases + amortised - 1e-9));
        Assert.That(r.ImagesPerSecond, Is.EqualTo(10 / (r.Total.MedianMs / 1000)).Within(1e-9));
        Assert.That(r.EpochFromPhasesSeconds, Is.EqualTo(5000 * r.Total.MedianMs / 1000 + r.TestEvalSeconds).Within(1e-9));

        Assert.That(r.Epoch, Is.Not.Null);
        var e = r.Epoch!;
        Assert.That((e.Images, e.Batches), Is.EqualTo((30, 3)));
        Assert.That(e.Scale, Is.EqualTo(50_000.0 / 30));
        Assert.That(e.Rewards, Is.Zero, "3 batches hold no 50th step");
        Assert.That(e.RewardSeconds, Is.EqualTo(100 * r.Phases[6].MedianMs * 50 / 1000).Within(1e-9), "the epoch's 100 rewards are added");
        Assert.That(e.TotalSeconds, Is.GreaterThan(e.TrainLoopSeconds * e.Scale));
    }

    [Test]
    public void TheCommandPrintsTheTableAndWritesTheJson()
    {
        string dir = CifarFixtures.TempDir();
        try
        {
            string json = Path.Combine(dir, "bench.json");
            var (code, output, err) = Run("bench", "--device", "cpu", "--width", "2", "--batch", "10", "--classes", "10", "--steps", "2",
                "--warmup", "0", "--epoch-images", "0", "--ppo-rollout", "10", "--threads", "1", "--json", json);
            Assert.That(code, Is.Zero, err);
            foreach (var phase in new[] { "data", "saliency", "policy", "mask_mix", "train", "ppo", "reward", "total", "images/s" })
                Assert.That(output, Does.Contain(phase));
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            var root = doc.RootElement;
            Assert.That(root.GetProperty("meta").GetProperty("width").GetInt32(), Is.EqualTo(2));
            Assert.That(root.GetProperty("phases").GetProperty("total").GetProperty("times_ms").GetArrayLength(), Is.EqualTo(2));
            Assert.That(root.GetProperty("epoch").ValueKind, Is.EqualTo(JsonValueKind.Null), "--epoch-images 0 skips the epoch");
            double ips = root.GetProperty("images_per_s").GetDouble();
            double total = root.GetProperty("phases").GetProperty("total").GetProperty("median_ms").GetDouble();
            Assert.That(ips, Is.EqualTo(10 / (total / 1000)).Within(1e-6));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [TestCase("--steps", "0")]
    [TestCase("--width", "-3")]
    [TestCase("--device", "tpu")]
    [TestCase("--epoch-images", "5")]
    [TestCase("--json", "/nonexistent-folder/b.json")]
    public void BadFlagsGiveOneLine(string flag, string value)
    {
        var (code, _, err) = Run("bench", "--width", "2", "--batch", "10", "--classes", "10", "--steps", "1", "--warmup", "0", flag, value);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.Trim().Split('\n')[0], Does.StartWith("error:"));
        Assert.That(err, Does.Not.Contain("   at "));
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (Cli.Run(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }
}
