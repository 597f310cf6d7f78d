using System.Text.Json.Nodes;
using NUnit.Framework;
using RlMixup.Engine.Reports;

namespace RlMixup.Tests;

/// <summary>
/// TensorBoard's event files, read back by an independent reader written from the public format
/// descriptions (tests/tfevents_reader.py: TFRecord framing, CRC32C, the protobuf wire format).
/// </summary>
[NonParallelizable]
public class TensorBoardTests
{
    [Test]
    public void Crc32CIsCastagnolis()
    {
        Assert.That(TfRecord.Crc32C("123456789"u8), Is.EqualTo(0xE3069283u), "the standard check value");
        Assert.That(TfRecord.Crc32C([]), Is.EqualTo(0u));
    }

    private static string TempDir() => Path.Combine(Path.GetTempPath(), "rlmixup-tb-" + Guid.NewGuid().ToString("N"));

    private static string[] Train(string dir, params string[] extra) =>
    [
        "train", "--dataset", "synthetic", "--max-train-images", "100", "--max-test-images", "40", "--width", "2", "--epochs", "2",
        "--batch", "20", "--agent-conv", "4,4,4", "--agent-features", "8", "--agent-policy-hidden", "4", "--agent-value-hidden", "4",
        "--ppo-epochs", "1", "--ppo-rollout-epochs", "1", "--reward-interval", "2", "--device", "cpu", "--threads", "1", "--no-live", "--out", dir, .. extra,
    ];

    [Test]
    public void ARunWritesStepRewardPpoAndEpochScalarsThatAnIndependentReaderReads()
    {
        if (!File.Exists(PythonTorch.Python)) Assert.Ignore($"{PythonTorch.Python} not found");
        string root = PythonTorch.RepoRootOrIgnore(), dir = TempDir();
        try
        {
            var (code, _, err) = EvalCommandTests.Run(Train(dir));
            Assert.That(code, Is.EqualTo(0), err);
            var files = Directory.GetFiles(dir, "events.out.tfevents.*");
            Assert.That(files, Has.Length.EqualTo(1));
            var (py, output) = PythonTorch.Run([Path.Combine(root, "tests", "tfevents_reader.py"), files[0]], root);
            Assert.That(py, Is.EqualTo(0), output);
            var records = JsonNode.Parse(output)!.AsArray().Select(r => r!.AsObject()).ToList();
            Assert.That((string?)records[0]["file_version"], Is.EqualTo("brain.Event:2"));
            long StepOf(JsonObject r) => (long)r["step"]!;
            List<long> StepsWith(string tag) => [.. records.Skip(1).Where(r => r["values"]!.AsObject().ContainsKey(tag)).Select(StepOf)];
            double Value(long step, string tag) => (double)records.Skip(1).First(r => StepOf(r) == step && r["values"]!.AsObject().ContainsKey(tag))["values"]![tag]!;

            Assert.That(StepsWith("classifier/loss"), Is.EqualTo(Enumerable.Range(1, 10).Select(i => (long)i)), "every step's loss");
            Assert.That(StepsWith("classifier/lr"), Has.Count.EqualTo(10));
            Assert.That(StepsWith("classifier/images_per_s"), Has.Count.EqualTo(10));
            Assert.That(StepsWith("reward/reward"), Is.EqualTo(new long[] { 2, 4, 6, 8, 10 }), "a reward every 2 steps");
            foreach (var tag in new[] { "train/approx_kl", "train/clip_fraction", "train/entropy_loss", "train/explained_variance", "train/loss",
                         "train/policy_gradient_loss", "train/value_loss", "train/n_updates", "train/clip_range", "train/learning_rate" })
                Assert.That(StepsWith(tag), Is.EqualTo(new long[] { 5, 10 }), tag + ": a PPO update after every epoch");
            Assert.That(Value(5, "train/n_updates"), Is.EqualTo(1));
            Assert.That(Value(10, "train/n_updates"), Is.EqualTo(2));

            var metrics = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
            for (int epoch = 1; epoch <= 2; epoch++)
            {
                var m = metrics[epoch - 1];
                long step = 5L * epoch;
                Assert.That(Value(step, "test/top1"), Is.EqualTo((double)(float)(double)m["test_top1"]!));
                Assert.That(Value(step, "test/top5"), Is.EqualTo((double)(float)(double)m["test_top5"]!));
                Assert.That(Value(step, "test/loss"), Is.EqualTo((double)(float)(double)m["test_loss"]!));
                Assert.That(Enumerable.Range(0, 10).Sum(a => Value(step, $"actions/share_{a}")), Is.EqualTo(1).Within(1e-5));
            }
            Assert.That(Value(1, "classifier/lr"), Is.EqualTo(0.004).Within(1e-9));

            // --no-tensorboard writes none.
            string other = TempDir();
            try
            {
                Assert.That(EvalCommandTests.Run(Train(other, "--no-tensorboard")).Code, Is.EqualTo(0));
                Assert.That(Directory.GetFiles(other, "events.out.tfevents.*"), Is.Empty);
            }
            finally { if (Directory.Exists(other)) Directory.Delete(other, true); }
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
