using NUnit.Framework;
using RlMixup.Core.IO;

namespace RlMixup.Tests;

public class TensorFileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "rlmt-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static string GoldenPath(string file) =>
        Path.Combine(TestContext.CurrentContext.TestDirectory, "golden", file);

    private static (string Name, int[] Shape, float[] Data)[] SampleEntries() =>
    [
        ("w", [2, 3], [1f, -2f, 3.5f, float.Epsilon, float.MaxValue, -0f]),
        ("scalar", [], [42f]),
        ("empty", [0, 4], []),
        ("bn.µ/var", [3], [float.NaN, float.PositiveInfinity, 1e-30f]),
    ];

    private string WriteSample()
    {
        string path = Path.Combine(_dir, "sample.bin");
        TensorFile.Write(path, SampleEntries());
        return path;
    }

    [Test]
    public void WriteThenReadRoundTrips()
    {
        var written = SampleEntries();
        var read = TensorFile.Read(WriteSample());

        Assert.That(read.Keys, Is.EquivalentTo(written.Select(e => e.Name)));
        foreach (var (name, shape, data) in written)
        {
            var entry = read[name];
            Assert.That(entry.Name, Is.EqualTo(name));
            Assert.That(entry.Shape, Is.EqualTo(shape), name);
            // Compare bit patterns so NaN and -0 are checked exactly.
            Assert.That(entry.Data.Select(BitConverter.SingleToInt32Bits),
                Is.EqualTo(data.Select(BitConverter.SingleToInt32Bits)), name);
        }
    }

    [Test]
    public void TruncatedFileThrowsNamingTheFile()
    {
        string path = WriteSample();
        byte[] full = File.ReadAllBytes(path);
        string cut = Path.Combine(_dir, "cut.bin");

        // Every proper prefix of a valid file must be rejected.
        for (int length = 0; length < full.Length; length++)
        {
            File.WriteAllBytes(cut, full.AsSpan(0, length).ToArray());
            var ex = Assert.Throws<InvalidDataException>(() => TensorFile.Read(cut), $"prefix of {length} bytes");
            Assert.That(ex!.Message, Does.Contain(cut), $"prefix of {length} bytes");
        }
    }

    [Test]
    public void CorruptHeaderAndTrailingBytesAreRejected()
    {
        byte[] full = File.ReadAllBytes(WriteSample());
        string bad = Path.Combine(_dir, "bad.bin");

        byte[] magic = (byte[])full.Clone();
        magic[0] = (byte)'X';
        File.WriteAllBytes(bad, magic);
        Assert.That(() => TensorFile.Read(bad),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains(bad).And.Message.Contains("magic"));

        byte[] version = (byte[])full.Clone();
        version[4] = 2;
        File.WriteAllBytes(bad, version);
        Assert.That(() => TensorFile.Read(bad),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains(bad).And.Message.Contains("version"));

        File.WriteAllBytes(bad, [.. full, 0]);
        Assert.That(() => TensorFile.Read(bad),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains(bad).And.Message.Contains("trailing"));
    }

    [Test]
    public void WriteRejectsShapeDataMismatchAndDuplicates()
    {
        string path = Path.Combine(_dir, "x.bin");
        Assert.Throws<ArgumentException>(() => TensorFile.Write(path, [("a", [2, 2], new float[3])]));
        Assert.Throws<ArgumentException>(() => TensorFile.Write(path, [("a", [1], [1f]), ("a", [1], [2f])]));
    }

    [Test]
    public void GoldenClassifierFileHasExpectedEntries()
    {
        var golden = TensorFile.Read(GoldenPath("preactresnet18_w4.bin"));

        void ExpectShape(string name, params int[] shape)
        {
            Assert.That(golden.ContainsKey(name), $"missing '{name}'");
            Assert.That(golden[name].Shape, Is.EqualTo(shape), name);
        }

        ExpectShape("x", 3, 3, 32, 32);
        ExpectShape("dx", 3, 3, 32, 32);
        ExpectShape("targets", 3, 10);
        ExpectShape("logits", 3, 10);
        ExpectShape("eval_logits", 3, 10);
        ExpectShape("loss", 1);
        ExpectShape("init.conv1.weight", 4, 3, 3, 3);
        ExpectShape("grad.layer2.0.shortcut.0.weight", 8, 4, 1, 1);
        ExpectShape("grad.linear.weight", 10, 32);
        ExpectShape("after.layer4.1.bn2.running_var", 32);

        Assert.That(golden.Keys.Count(k => k.StartsWith("init.", StringComparison.Ordinal)), Is.EqualTo(86));
        Assert.That(golden.Keys.Count(k => k.StartsWith("grad.", StringComparison.Ordinal)), Is.EqualTo(54));
        Assert.That(golden.Keys.Count(k => k.StartsWith("after.", StringComparison.Ordinal)), Is.EqualTo(32));

        var targets = golden["targets"].Data;
        for (int i = 0; i < 3; i++)
        {
            Assert.That(targets.Skip(i * 10).Take(10).Sum(), Is.EqualTo(1f).Within(1e-5f));
        }
        Assert.That(golden["loss"].Data[0], Is.GreaterThan(0f));
    }

    [Test]
    public void GoldenOptimizerFileHasExpectedEntries()
    {
        var golden = TensorFile.Read(GoldenPath("optimizers.bin"));

        Assert.That(golden["p0"].Shape, Is.EqualTo(new[] { 37 }));
        for (int k = 1; k <= 5; k++)
        {
            Assert.That(golden[$"grad.{k}"].Shape, Is.EqualTo(new[] { 37 }));
            Assert.That(golden[$"sgd.step{k}"].Shape, Is.EqualTo(new[] { 37 }));
            Assert.That(golden[$"adam.step{k}"].Shape, Is.EqualTo(new[] { 37 }));
        }
        Assert.That(golden["sgd.lr"].Data, Is.EqualTo(new[] { 0.1f }));
        Assert.That(golden["sgd.momentum"].Data, Is.EqualTo(new[] { 0.9f }));
        Assert.That(golden["adam.eps"].Data, Is.EqualTo(new[] { 1e-5f }));
        Assert.That(golden["adam.beta2"].Data, Is.EqualTo(new[] { 0.999f }));
    }
}
