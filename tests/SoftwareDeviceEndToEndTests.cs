using System.Text.Json;
using NUnit.Framework;
using RlMixup.Core.IO;
using RlMixup.Engine;

namespace RlMixup.Tests;

/// <summary>
/// The engine's commands end to end on the CUDA backend, run on the software device in every CI
/// run: the self-test (every row must pass, with and without TF32), a short training run whose
/// metrics and weights must match the same run on the CPU, eval, bench and info.
/// </summary>
[NonParallelizable]
public class SoftwareDeviceEndToEndTests
{
    private string _dir = "";

    [SetUp]
    public void Folder()
    {
        SoftwareDevice.RequireOrIgnore();
        _dir = Path.Combine(Path.GetTempPath(), "rlmixup-swdev-e2e-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void Clean()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (RlMixup.Engine.Cli.Run(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    [TestCase(true)]
    [TestCase(false)]
    public void EverySelftestRowPasses(bool tf32)
    {
        string json = Path.Combine(_dir, "selftest.json");
        var (code, output, err) = Cli([.. new[] { "selftest", "--device", "cuda", "--json", json }, .. tf32 ? Array.Empty<string>() : ["--no-tf32"]]);
        TestContext.Out.WriteLine(output);
        Assert.That(code, Is.EqualTo(0), output + err);
        Assert.That(output, Does.Contain("software device (CPU simulation)").And.Match(@"selftest: all \d+ checks passed"));
        Assert.That(File.Exists(json));
    }

    private static readonly string[] Run = ["--dataset", "synthetic", "--policy", "rl", "--width", "4", "--batch", "20", "--epochs", "1",
        "--max-train-images", "100", "--max-test-images", "40", "--seed", "5", "--no-live"];

    [Test]
    public void ATrainingRunMatchesTheSameRunOnTheCpu()
    {
        string gpu = Path.Combine(_dir, "cuda"), cpu = Path.Combine(_dir, "cpu");
        var (code, _, err) = Cli([.. new[] { "train", "--device", "cuda", "--no-tf32", "--out", gpu }, .. Run]);
        Assert.That(code, Is.EqualTo(0), err);
        (code, _, err) = Cli([.. new[] { "train", "--device", "cpu", "--out", cpu }, .. Run]);
        Assert.That(code, Is.EqualTo(0), err);

        using var g = JsonDocument.Parse(File.ReadAllLines(Path.Combine(gpu, "metrics.jsonl")).Single());
        using var c = JsonDocument.Parse(File.ReadAllLines(Path.Combine(cpu, "metrics.jsonl")).Single());
        double lossG = g.RootElement.GetProperty("train_loss").GetDouble(), lossC = c.RootElement.GetProperty("train_loss").GetDouble();
        // NetworkFp32's bound on a whole step; five steps of a run compound a little more.
        Assert.That(Math.Abs(lossG - lossC) / lossC, Is.LessThan(2e-3), $"train loss {lossG} on the device, {lossC} on the CPU");
        Assert.That(g.RootElement.GetProperty("action_hist").ToString(), Is.EqualTo(c.RootElement.GetProperty("action_hist").ToString()),
            "the agent saw the same maps and drew the same actions");
        double top1G = g.RootElement.GetProperty("test_top1").GetDouble(), top1C = c.RootElement.GetProperty("test_top1").GetDouble();
        Assert.That(Math.Abs(top1G - top1C), Is.LessThanOrEqualTo(1.0 / 40 + 1e-9), "at most one of 40 test images flips (a near tie)");

        var wg = Safetensors.Read(Path.Combine(gpu, "model.safetensors")).Tensors;
        var wc = Safetensors.Read(Path.Combine(cpu, "model.safetensors")).Tensors;
        double d2 = 0, n2 = 0;
        foreach (var (name, t) in wc.Where(t => t.Value.Dtype == "F32"))
        {
            float[] a = wg[name].ToFloats(), b = t.ToFloats();
            for (int i = 0; i < b.Length; i++) { d2 += (a[i] - (double)b[i]) * (a[i] - b[i]); n2 += (double)b[i] * b[i]; }
        }
        Assert.That(Math.Sqrt(d2 / n2), Is.LessThan(2e-3), "the trained weights, normwise");
    }

    [Test]
    public void EvalMatchesTheCpu()
    {
        string run = Path.Combine(_dir, "run");
        var (code, _, err) = Cli([.. new[] { "train", "--device", "cpu", "--out", run }, .. Run]);
        Assert.That(code, Is.EqualTo(0), err);
        string jg = Path.Combine(_dir, "g.json"), jc = Path.Combine(_dir, "c.json");
        (code, var output, err) = Cli("eval", "--checkpoint", run, "--device", "cuda", "--no-tf32", "--json", jg);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("device cuda:0 (RL-Mixup software device (CPU simulation))"));
        (code, _, err) = Cli("eval", "--checkpoint", run, "--device", "cpu", "--json", jc);
        Assert.That(code, Is.EqualTo(0), err);
        using var g = JsonDocument.Parse(File.ReadAllText(jg));
        using var c = JsonDocument.Parse(File.ReadAllText(jc));
        Assert.That(g.RootElement.GetProperty("images").GetInt32(), Is.EqualTo(40));
        Assert.That(g.RootElement.GetProperty("cross_entropy").GetDouble(), Is.EqualTo(c.RootElement.GetProperty("cross_entropy").GetDouble()).Within(1e-4).Percent);
        Assert.That(g.RootElement.GetProperty("top1").GetDouble(), Is.EqualTo(c.RootElement.GetProperty("top1").GetDouble()).Within(1.0 / 40 + 1e-9));
    }

    [Test]
    public void BenchRunsAStep()
    {
        var (code, output, err) = Cli("bench", "--device", "cuda", "--steps", "1", "--warmup", "0", "--width", "4", "--batch", "20", "--classes", "10",
            "--ppo-rollout", "4", "--ppo-repeats", "1", "--epoch-images", "0");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("RL-Mixup step on cuda:0 (RL-Mixup software device (CPU simulation))"));
        foreach (var phase in new[] { "data", "saliency", "policy", "mask_mix", "train", "ppo", "reward", "total" })
            Assert.That(output, Does.Match($@"\n{phase}\s+\d"), phase);
    }

    [Test]
    public void InfoSaysItIsNotAGpu()
    {
        var (code, output, _) = Cli("info");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(output, Does.Contain("backend cuda available: cuda:0 (RL-Mixup software device (CPU simulation))"));
        Assert.That(output, Does.Contain("SOFTWARE DEVICE (CPU simulation, not a GPU)"));
    }
}
