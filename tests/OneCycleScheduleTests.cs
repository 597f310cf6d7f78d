using System.Text.Json;
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Models;

namespace RlMixup.Tests;

/// <summary>The one-cycle schedule against PyTorch 1.13's OneCycleLR (tests/golden/make_schedule_golden.py).</summary>
public class OneCycleScheduleTests
{
    private const double Rtol = 1e-9;

    [Test]
    public void MatchesPyTorchOneCycleLR()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestContext.CurrentContext.TestDirectory, "golden", "schedule_golden.json")));
        int configs = 0;
        foreach (var c in doc.RootElement.GetProperty("configs").EnumerateArray())
        {
            int total = c.GetProperty("total_steps").GetInt32();
            double maxLr = c.GetProperty("max_lr").GetDouble(), div = c.GetProperty("div_factor").GetDouble();
            double finalDiv = c.GetProperty("final_div_factor").GetDouble(), pct = c.GetProperty("pct_start").GetDouble();
            var s = c.TryGetProperty("epochs", out var epochs)
                ? OneCycleSchedule.FromEpochs(epochs.GetInt32(), c.GetProperty("steps_per_epoch").GetInt32(), maxLr, div, finalDiv, pct, cycleMomentum: true)
                : new OneCycleSchedule(total, maxLr, div, finalDiv, pct, cycleMomentum: true,
                    baseMomentum: c.GetProperty("base_momentum").GetDouble(), maxMomentum: c.GetProperty("max_momentum").GetDouble());
            Assert.That(s.TotalSteps, Is.EqualTo(total));
            var lr = c.GetProperty("lr").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            var mom = c.GetProperty("momentum").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.That(lr, Has.Length.EqualTo(total + 1));
            for (int k = 0; k <= total; k++)
            {
                Assert.That(s.LearningRate(k), Is.EqualTo(lr[k]).Within(Rtol * Math.Abs(lr[k])), $"lr, total {total}, step {k}");
                Assert.That(s.Momentum(k), Is.EqualTo(mom[k]).Within(Rtol * Math.Abs(mom[k])), $"momentum, total {total}, step {k}");
            }
            configs++;
        }
        Assert.That(configs, Is.GreaterThanOrEqualTo(5));
    }

    [Test]
    public void MethodDefaultsRunFrom0p004To0p2To0p002WithFixedMomentum()
    {
        var s = OneCycleSchedule.FromEpochs(300, 500);
        Assert.That(s.InitialLr, Is.EqualTo(0.004).Within(1e-15));
        Assert.That(s.MinLr, Is.EqualTo(0.002).Within(1e-15));
        Assert.That(s.LearningRate(0), Is.EqualTo(0.004).Within(1e-12));
        Assert.That(s.LearningRate(100 * 500 - 1), Is.EqualTo(0.2).Within(1e-12), "peak at the end of epoch 100");
        Assert.That(s.LearningRate(300 * 500 - 1), Is.EqualTo(0.002).Within(1e-12), "minimum at the last step");
        Assert.That(s.Momentum(0), Is.EqualTo(0.9));
        Assert.That(s.Momentum(77_777), Is.EqualTo(0.9));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.LearningRate(300 * 500 + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.LearningRate(-1));
        Assert.Throws<InvalidOperationException>(() => new OneCycleSchedule(3).LearningRate(0), "empty warm-up, as in PyTorch");
    }

    [Test]
    public void ApplySetsTheOptimiser()
    {
        var store = new ParameterStore();
        store.Add("w", new Shape(4), Init.Constant(0f));
        store.Materialize(new CpuBackend(1), new Rng(0));
        var sgd = new Sgd(store, lr: 1f);
        var s = new OneCycleSchedule(30, cycleMomentum: true);
        s.Apply(sgd, 5);
        Assert.That(sgd.LearningRate, Is.EqualTo((float)s.LearningRate(5)));
        Assert.That(sgd.Momentum, Is.EqualTo((float)s.Momentum(5)));
    }
}
