using NUnit.Framework;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Data;
using RlMixup.Engine.Reports;
using RlMixup.Engine.Training;
using RlMixup.Models;
using RlMixup.Ppo;
using SkiaSharp;

using RlMixup.Engine.Runs;
using RlMixup.Engine.Commands;

namespace RlMixup.Tests;

/// <summary>`visualize`: the Appendix B figure as a PNG, with a fresh classifier or a run's classifier and agent.</summary>
[NonParallelizable]
public class VisualizeCommandTests
{
    private static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlmixup-viz-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static void AssertFigure(string png, int samples)
    {
        Assert.That(File.Exists(png), png);
        using var bitmap = SKBitmap.Decode(png);
        Assert.That(bitmap, Is.Not.Null, "a PNG that decodes");
        var layout = new MixupFigureLayout(samples, 32, 32, 4);
        Assert.That((bitmap.Width, bitmap.Height), Is.EqualTo((layout.Width, layout.Height)));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(png)!, "*.tmp*"), Is.Empty, "no temporary file left behind");
    }

    [Test]
    public void FreshClassifierWritesTheFigureWithUniformActions()
    {
        string dir = TempDir();
        try
        {
            string png = Path.Combine(dir, "fig.png");
            var (code, output, err) = EvalCommandTests.Run("visualize", "--samples", "3", "--width", "2", "--seed", "4", "--out", png);
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(output, Does.Contain("freshly initialised").And.Contain("drawn uniformly"));
            AssertFigure(png, 3);
            byte[] first = File.ReadAllBytes(png);
            (code, _, err) = EvalCommandTests.Run("visualize", "--samples", "3", "--width", "2", "--seed", "4", "--out", png);
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(File.ReadAllBytes(png), Is.EqualTo(first), "the same seed draws the same figure");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void RlRunCheckpointLetsTheAgentPickTheActions()
    {
        string dir = TempDir();
        try
        {
            string run = Path.Combine(dir, "run");
            var config = new RunSpec
            {
                Epochs = 1, Batch = 20, Model = new ModelSpec { Width = 2 }, Seed = 6, Reward = new RewardSpec { Interval = 5 },
                Data = new DataSpec { Dataset = "synthetic", MaxTrainImages = 100, MaxTestImages = 40 }, Device = new DeviceSpec { Name = "cpu" },
                Agent = new AgentSpec { Minibatch = 10, NEpochs = 2, Conv = [8, 8, 8], Features = 16, PolicyHidden = [8], ValueHidden = [8] },
            };
            using (var b = new CpuBackend(2))
                new TrainingRun(b, SyntheticData.Generate(train: 100, test: 40, classes: 10, seed: 6), config, run, TextWriter.Null).Run();

            string png = Path.Combine(dir, "fig.png");
            var (code, output, err) = EvalCommandTests.Run("visualize", "--checkpoint", run, "--samples", "5", "--out", png);
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(output, Does.Contain("sampled by the run's PPO agent").And.Contain("width 2"));
            Assert.That(output, Does.Not.Contain("uniformly"));
            AssertFigure(png, 5);

            // The agent acts on whole batches of 20: more rows than that cannot come from it.
            (code, _, err) = EvalCommandTests.Run("visualize", "--checkpoint", run, "--samples", "21", "--out", png);
            Assert.That(code, Is.EqualTo(2));
            Assert.That(err, Does.StartWith("error: --samples 21"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void NonRlRunCheckpointDrawsUniformActionsAndSaysSo()
    {
        string dir = TempDir();
        try
        {
            string run = Path.Combine(dir, "run");
            var (code, _, err) = EvalCommandTests.Run("train", "--dataset", "synthetic", "--epochs", "1", "--width", "2", "--batch", "20",
                "--max-train-images", "40", "--max-test-images", "20", "--policy", "cutmix", "--device", "cpu", "--out", run);
            Assert.That(code, Is.EqualTo(0), err);
            string png = Path.Combine(dir, "fig.png");
            (code, string output, err) = EvalCommandTests.Run("visualize", "--checkpoint", run, "--samples", "2", "--out", png);
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(output, Does.Contain("drawn uniformly").And.Contain("policy is cutmix"));
            AssertFigure(png, 2);
        }
        finally { Directory.Delete(dir, true); }
    }

    [TestCase("0")]
    [TestCase("65")]
    [TestCase("-3")]
    public void SamplesOutOfRangeGiveOneLineAndExitCode2(string samples)
    {
        string png = Path.Combine(Path.GetTempPath(), "rlmixup-viz-" + Guid.NewGuid().ToString("N") + ".png");
        var (code, _, err) = EvalCommandTests.Run("visualize", "--samples", samples, "--width", "2", "--out", png);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), err);
        Assert.That(err, Does.StartWith("error: --samples must be in 1..64"));
        Assert.That(File.Exists(png), Is.False, "nothing written");
    }
}
