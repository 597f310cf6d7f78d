using System.Text.Json.Nodes;
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.IO;
using RlMixup.Engine;
using RlMixup.Engine.Training;
using RlMixup.Models;

namespace RlMixup.Tests;

/// <summary>`eval`: a trained run's test top-1 is reproduced exactly; bad checkpoints give one line and exit code 2.</summary>
[NonParallelizable]
public class EvalCommandTests
{
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (Cli.Run(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    private static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlmixup-eval-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A PreActResNet18 of the given width and classes, freshly initialised, written as safetensors.</summary>
    private static void WriteModel(string path, int width, int classes)
    {
        using var b = new CpuBackend(1);
        var store = new ParameterStore();
        _ = new PreActResNet18(store, width, classes);
        store.Materialize(b, new Rng(9));
        ModelSafetensors.Write(path, store);
    }

    [Test]
    public void EvalOfARunReproducesTheTrainersTestTop1Exactly()
    {
        string dir = TempDir();
        try
        {
            string run = Path.Combine(dir, "run");
            var (code, _, err) = Run("train", "--dataset", "synthetic", "--epochs", "2", "--width", "4", "--batch", "20", "--seed", "7",
                "--max-train-images", "100", "--max-test-images", "60", "--policy", "random", "--device", "cpu", "--out", run);
            Assert.That(code, Is.EqualTo(0), err);
            var last = JsonNode.Parse(File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))[^1])!;
            double trainerTop1 = (double)last["test_top1"]!;

            string json = Path.Combine(dir, "eval.json");
            (code, string output, err) = Run("eval", "--checkpoint", run, "--json", json);
            Assert.That(code, Is.EqualTo(0), err);
            var result = JsonNode.Parse(File.ReadAllText(json))!;
            Assert.That((double)result["top1"]!, Is.EqualTo(trainerTop1), "the same images, the same weights, the same count");
            Assert.That((int)result["images"]!, Is.EqualTo(60), "the run's test split, from config.json");
            Assert.That((int)result["width"]!, Is.EqualTo(4));
            Assert.That((int)result["classes"]!, Is.EqualTo(10));
            Assert.That((string)result["dataset"]!, Is.EqualTo("synthetic"));
            double top5 = (double)result["top5"]!, ce = (double)result["cross_entropy"]!;
            Assert.That(top5, Is.GreaterThanOrEqualTo(trainerTop1).And.LessThanOrEqualTo(1));
            Assert.That(ce, Is.GreaterThan(0).And.LessThan(20));
            int correct = (int)Math.Round(trainerTop1 * 60);
            Assert.That(output, Does.Contain(FormattableString.Invariant($"top-1 {100 * trainerTop1:F2}% ({correct}/60)")));
            Assert.That(Directory.GetFiles(dir, "*.tmp*"), Is.Empty);

            // The file itself, another batch size and fewer images.
            (code, output, err) = Run("eval", "--checkpoint", Path.Combine(run, "model.safetensors"), "--batch", "7", "--max-test-images", "25");
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(output, Does.Contain("25 images"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void TopFiveAndCrossEntropyMatchAHandComputation()
    {
        float[] row = [0.5f, 2f, 2f, -1f, 0f, 1f, 2f];
        Assert.That(Evaluation.Rank(row, 1), Is.EqualTo(0));
        Assert.That(Evaluation.Rank(row, 2), Is.EqualTo(1), "a tie ranks behind the lower class");
        Assert.That(Evaluation.Rank(row, 6), Is.EqualTo(2));
        Assert.That(Evaluation.Rank(row, 3), Is.EqualTo(6));
        double lse = Math.Log(row.Sum(v => Math.Exp(v)));
        Assert.That(Evaluation.CrossEntropy(row, 3), Is.EqualTo(lse + 1).Within(1e-12));
    }

    [Test]
    public void BadCheckpointsGiveOneLineAndExitCode2()
    {
        string dir = TempDir();
        try
        {
            void Fails(string expected, params string[] args)
            {
                var (code, _, err) = Run(args);
                Assert.That(code, Is.EqualTo(2), err);
                Assert.That(err, Does.StartWith("error: ").And.Contain(expected));
                Assert.That(err.Split('\n').Count(l => l.StartsWith("error: ", StringComparison.Ordinal)), Is.EqualTo(1), err);
                Assert.That(err, Does.Not.Contain("   at "), "no stack trace");
            }
            Fails("no such file or folder", "eval", "--checkpoint", Path.Combine(dir, "missing.safetensors"));
            Fails("holds no model.safetensors", "eval", "--checkpoint", dir);

            string text = Path.Combine(dir, "notes.txt");
            File.WriteAllText(text, "not a model at all, just some text");
            Fails("not a safetensors model", "eval", "--checkpoint", text);

            string other = Path.Combine(dir, "other.safetensors");
            Safetensors.WriteAtomic(other, [SafeTensor.FromFloats("encoder.weight", [2, 2], [1, 2, 3, 4])]);
            Fails("not a PreActResNet18 checkpoint (no tensor 'conv1.weight')", "eval", "--checkpoint", other);

            string seven = Path.Combine(dir, "seven.safetensors");
            WriteModel(seven, width: 2, classes: 7);
            Fails("the model has 7 classes, synthetic has 10", "eval", "--checkpoint", seven, "--dataset", "synthetic");
            Fails("--max-test-images must be at least 1", "eval", "--checkpoint", seven, "--max-test-images", "0");
            Fails("--checkpoint", "eval");

            string ten = Path.Combine(dir, "ten.safetensors");
            WriteModel(ten, width: 2, classes: 10);
            Fails("--json", "eval", "--checkpoint", ten, "--max-test-images", "10", "--json", Path.Combine(text, "r.json"));
        }
        finally { Directory.Delete(dir, true); }
    }
}
