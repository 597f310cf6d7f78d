using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.IO;
using RlMixup.Core.Mixup;
using RlMixup.Engine;
using RlMixup.Models;

namespace RlMixup.Tests;

/// <summary>
/// The step-level differential check against PyTorch, in its short form: the engine trains a few
/// steps of a width-4 PreActResNet18 on real CIFAR-10 images and traces them (--trace), then
/// scripts/replay_torch.py rebuilds every clean batch from the raw images, recomputes every mix,
/// replays the steps from the same weights on the same batches, and redoes each full step in
/// float32 and float64. The trace's own content is checked without Python.
/// </summary>
[NonParallelizable]
public class StepReplayTests
{
    private readonly List<string> _dirs = [];

    [TearDown]
    public void Cleanup()
    {
        foreach (var d in _dirs) if (Directory.Exists(d)) Directory.Delete(d, true);
        _dirs.Clear();
    }

    private string TempDir(string tag)
    {
        string d = Path.Combine(Path.GetTempPath(), $"rlmixup-replay-{tag}-{Guid.NewGuid():N}");
        _dirs.Add(d);
        return d;
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

    /// <summary>A traced run: width 4, batch 20, 200 training images, 6 steps traced, full at 1, 3 and 6.</summary>
    private string Trace(string data, string policy, params string[] extra)
    {
        string run = TempDir("run"), trace = TempDir("trace");
        var (code, _, err) = Cli([.. new[] { "train", "--dataset", "cifar10", "--data", data, "--policy", policy, "--width", "4", "--batch", "20",
            "--epochs", "1", "--max-train-images", "200", "--max-test-images", "40", "--device", "cpu", "--threads", "2", "--seed", "3",
            "--out", run, "--trace", trace, "--trace-steps", "6", "--trace-full", "1,3,6", "--no-live" }, .. extra]);
        Assert.That(code, Is.EqualTo(0), err);
        return trace;
    }

    private static (int Code, string Output) Replay(string trace, string data) =>
        PythonTorch.Run([Path.Combine(PythonTorch.RepoRootOrIgnore(), "scripts", "replay_torch.py"), trace, "--check", "--threads", "2", "--data", data],
            PythonTorch.RepoRootOrIgnore());

    [TestCase("none")]
    [TestCase("input-mixup")]
    [TestCase("cutmix")]
    [TestCase("random")]
    [TestCase("rl")]
    public void PyTorchReplaysTheEnginesStepsToFloatNoise(string policy)
    {
        string data = SharedData.Cifar10SubsetOrIgnore();
        PythonTorch.RequireOrIgnore();
        string trace = Trace(data, policy);
        var (code, output) = Replay(trace, data);
        TestContext.Out.WriteLine(output);
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(output, Does.Contain("PASS"));
    }

    [TestCase("grad", "its gradient is off")]
    [TestCase("mixed", "the mix differs")]
    [TestCase("x", "the clean batch differs")]
    [TestCase("after", "the optimiser step differs")]
    [TestCase("running", "running statistics")]
    public void TheReplayFailsOnAPlantedDefect(string what, string expected)
    {
        string data = SharedData.Cifar10SubsetOrIgnore();
        PythonTorch.RequireOrIgnore();
        string trace = Trace(data, "input-mixup");
        string step = Path.Combine(trace, "step_000003.safetensors");
        var file = Safetensors.Read(step);
        var tensors = file.Tensors.Values.ToDictionary(t => t.Name);
        string name = what switch
        {
            "grad" => "grad.layer3.0.conv2.weight",
            "after" => "after.layer2.1.conv1.weight",
            "running" => "after.layer3.0.bn2.running_var",
            _ => what,
        };
        var v = tensors[name].ToFloats();
        // A 1% error spread over the tensor: far above float noise, far below anything a loss curve shows.
        for (int i = 0; i < v.Length; i += 7) v[i] *= 1.03f;
        tensors[name] = SafeTensor.FromFloats(name, [.. tensors[name].Shape.Select(d => (int)d)], v);
        Safetensors.WriteAtomic(step, tensors.Values, file.Metadata);
        var (code, output) = Replay(trace, data);
        Assert.That(code, Is.EqualTo(1), output);
        Assert.That(output, Does.Contain("FAIL").And.Contain(expected));
    }

    [Test]
    public void TheTraceHoldsTheBatchTheMixAndTheStep()
    {
        string data = SharedData.Cifar10SubsetOrIgnore();
        string trace = Trace(data, "input-mixup");
        Assert.That(Directory.GetFiles(trace, "step_*.safetensors").Select(Path.GetFileName).Order(),
            Is.EqualTo(Enumerable.Range(1, 6).Select(i => $"step_{i:D6}.safetensors")));
        var first = Safetensors.Read(Path.Combine(trace, "step_000001.safetensors"));
        var t = first.Tensors;
        Assert.That(first.Metadata["policy"], Is.EqualTo("input-mixup"));
        Assert.That(first.Metadata["full"], Is.EqualTo("true"));
        Assert.That(double.Parse(first.Metadata["lr"], System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(0.2 / 50).Within(1e-9));

        // The mix is λx + (1 − λ)x[π] of the traced clean batch, exactly as the reference computes it.
        float[] x = t["x"].ToFloats(), y = t["targets"].ToFloats();
        int[] perm = [.. t["partner"].ToInt64().Select(i => (int)i)];
        float lambda = t["lambda"].ToFloats()[0];
        var mixed = new float[x.Length];
        var mixedY = new float[y.Length];
        MixupReference.InputMixup(mixed, mixedY, x, y, perm, lambda, 20, 10);
        Assert.That(t["mixed"].ToFloats(), Is.EqualTo(mixed));
        Assert.That(t["mixed_targets"].ToFloats(), Is.EqualTo(mixedY));
        Assert.That(t["crop"].Shape, Is.EqualTo(new long[] { 20, 3 }));
        Assert.That(t["crop"].ToInt64().Chunk(3).All(c => Math.Abs(c[0]) <= 2 && Math.Abs(c[1]) <= 2 && c[2] is 0 or 1));

        // SGD with the traced lr, momentum and weight decay takes before → after, given the gradient.
        float lr = (float)double.Parse(first.Metadata["lr"], System.Globalization.CultureInfo.InvariantCulture);
        foreach (string name in new[] { "conv1.weight", "layer4.1.bn2.bias", "linear.weight" })
        {
            float[] p = t["before." + name].ToFloats(), g = t["grad." + name].ToFloats(), m = t["momentum_before." + name].ToFloats();
            float[] after = t["after." + name].ToFloats(), mAfter = t["momentum_after." + name].ToFloats();
            Assert.That(m.All(v => v == 0), "no momentum before the first step");
            for (int i = 0; i < p.Length; i++)
            {
                float d = MathF.FusedMultiplyAdd(1e-4f, p[i], g[i]);
                float buf = MathF.FusedMultiplyAdd(0.9f, m[i], d);
                Assert.That(mAfter[i], Is.EqualTo(buf).Within(1e-6f + 1e-5f * Math.Abs(buf)), name);
                Assert.That(after[i], Is.EqualTo(p[i] - lr * (d + 0.9f * buf)).Within(1e-6f), name);
            }
        }
        // One ReLU decision tensor per ReLU of the training forward: two per block, eight blocks.
        Assert.That(t.Keys.Count(k => k.StartsWith("relu.", StringComparison.Ordinal)), Is.EqualTo(16));
        Assert.That(t["relu.0"].Dtype, Is.EqualTo("U8"));
        // Steps between the full ones carry the batch and the mix but no state.
        var second = Safetensors.Read(Path.Combine(trace, "step_000002.safetensors")).Tensors;
        Assert.That(second.ContainsKey("mixed") && !second.ContainsKey("grad.conv1.weight") && !second.ContainsKey("before.conv1.weight"));
    }

    [Test]
    public void InitWeightsStartsTheClassifierFromTheFile()
    {
        string data = SharedData.Cifar10SubsetOrIgnore();
        string dir = TempDir("init");
        Directory.CreateDirectory(dir);
        var store = new ParameterStore();
        _ = new PreActResNet18(store, 4, 10);
        store.Materialize(new CpuBackend(1), new Rng(12345));
        string init = Path.Combine(dir, "init.safetensors");
        ModelSafetensors.Write(init, store);
        string trace = Trace(data, "none", "--init-weights", init);
        var t = Safetensors.Read(Path.Combine(trace, "step_000001.safetensors")).Tensors;
        foreach (var p in store.All)
            Assert.That(t["before." + p.Name].ToFloats(), Is.EqualTo(p.Value.ToArray()), p.Name);
        // The rest of the run's random stream does not depend on the starting weights.
        string plain = Trace(data, "none");
        var u = Safetensors.Read(Path.Combine(plain, "step_000001.safetensors")).Tensors;
        Assert.That(u["indices"].ToInt64(), Is.EqualTo(t["indices"].ToInt64()));
        Assert.That(u["crop"].ToInt64(), Is.EqualTo(t["crop"].ToInt64()));
    }

    [Test]
    public void StepStatsAreWrittenEveryNSteps()
    {
        string run = TempDir("stats");
        var (code, _, err) = Cli("train", "--dataset", "synthetic", "--policy", "input-mixup", "--width", "2", "--batch", "20", "--epochs", "1",
            "--max-train-images", "100", "--max-test-images", "20", "--device", "cpu", "--out", run, "--step-stats", "2", "--no-live");
        Assert.That(code, Is.EqualTo(0), err);
        var lines = File.ReadAllLines(Path.Combine(run, "steps.jsonl"));
        Assert.That(lines, Has.Length.EqualTo(2), "steps 2 and 4 of 5");
        using var doc = System.Text.Json.JsonDocument.Parse(lines[0]);
        var r = doc.RootElement;
        Assert.That(r.GetProperty("step").GetInt32(), Is.EqualTo(2));
        Assert.That(r.GetProperty("grad_norm").GetDouble(), Is.GreaterThan(0));
        Assert.That(r.GetProperty("bn_gamma_min").GetDouble(), Is.GreaterThan(0.9).And.LessThanOrEqualTo(1.01), "γ starts at 1");
        Assert.That(r.GetProperty("dead_relu_fraction").GetDouble(), Is.InRange(0.0, 1.0));
        Assert.That(r.GetProperty("param_norms").GetProperty("layer4.1.conv2").GetDouble(), Is.GreaterThan(0));
    }

    [TestCase("--trace-full 0", "--trace-full")]
    [TestCase("--trace-steps 0 --trace /tmp/x", "--trace-steps must be at least 1")]
    [TestCase("--step-stats 0", "--step-stats must be at least 1")]
    [TestCase("--lr-max -1", "--lr-max -1: must be a positive number")]
    [TestCase("--init-weights /nonexistent.safetensors", "--init-weights /nonexistent.safetensors: no such file")]
    public void BadDiagnosticFlagsGiveOneLine(string flags, string expected)
    {
        var args = new[] { "train", "--dataset", "synthetic", "--device", "cpu" }.Concat(flags.Split(' ')).ToList();
        if (flags.StartsWith("--trace-full", StringComparison.Ordinal)) args.AddRange(["--trace", Path.Combine(TempDir("bad"), "t")]);
        var (code, _, err) = Cli([.. args]);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain(expected));
        Assert.That(err, Does.Not.Contain("   at "));
    }
}
