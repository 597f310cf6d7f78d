using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.IO;
using RlMixup.Models;
using RlMixup.Tests.Reference;

namespace RlMixup.Tests;

public class SafetensorsTests
{
    private static string TempDir(string name)
    {
        string dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, "safetensors-" + name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static SafeTensor[] Sample() =>
    [
        SafeTensor.FromFloats("b.weight", [2, 3], [1f, -2f, 3.5f, float.Epsilon, -0f, 1e30f]),
        SafeTensor.FromFloats("a", [], [42f]),
        SafeTensor.FromFloats("empty", [0, 4], []),
        SafeTensor.FromInt64("bn.num_batches_tracked", [], [1234567890123L]),
        SafeTensor.FromFloats("c", [5], [1f, 2f, 3f, 4f, 5f]),
    ];

    [Test]
    public void RoundTrip()
    {
        string path = Path.Combine(TempDir("roundtrip"), "t.safetensors");
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["epoch"] = "7", ["ünïcode"] = "✓" };
        Safetensors.WriteAtomic(path, Sample(), meta);
        var file = Safetensors.Read(path);
        Assert.That(file.Metadata, Is.EquivalentTo(meta));
        Assert.That(file.Tensors.Keys, Is.EquivalentTo(Sample().Select(t => t.Name)));
        foreach (var t in Sample())
        {
            var r = file.Tensors[t.Name];
            Assert.That(r.Dtype, Is.EqualTo(t.Dtype), t.Name);
            Assert.That(r.Shape, Is.EqualTo(t.Shape), t.Name);
            Assert.That(r.Data, Is.EqualTo(t.Data), t.Name);
        }
        Assert.That(file.Tensors["bn.num_batches_tracked"].ToInt64(), Is.EqualTo(new[] { 1234567890123L }));
        Assert.That(file.Tensors["b.weight"].ToFloats()[3], Is.EqualTo(float.Epsilon));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Has.Length.EqualTo(1), "no temporary file left");
    }

    [Test]
    public void HeaderFollowsTheSpec()
    {
        byte[] bytes = Safetensors.Serialize(Sample(), new Dictionary<string, string> { ["k"] = "v" });
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.That(n % 8, Is.EqualTo(0UL), "header length is a multiple of 8");
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.That(header[0], Is.EqualTo('{'));
        string trimmed = header.TrimEnd(' ');
        Assert.That(trimmed[^1], Is.EqualTo('}'), "padding is spaces only");
        Assert.That(header.Length - trimmed.Length, Is.LessThan(8));
        using var doc = JsonDocument.Parse(trimmed);
        var props = doc.RootElement.EnumerateObject().ToList();
        Assert.That(props[0].Name, Is.EqualTo("__metadata__"));
        Assert.That(props[0].Value.GetProperty("k").GetString(), Is.EqualTo("v"));
        long dataLength = bytes.Length - 8 - (long)n, expect = 0;
        var order = new List<string>();
        foreach (var p in props.Skip(1))
        {
            var off = p.Value.GetProperty("data_offsets");
            Assert.That(off[0].GetInt64(), Is.EqualTo(expect), $"{p.Name} starts where the previous ends");
            expect = off[1].GetInt64();
            long elements = p.Value.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64());
            int size = p.Value.GetProperty("dtype").GetString() == "I64" ? 8 : 4;
            Assert.That(expect - off[0].GetInt64(), Is.EqualTo(elements * size), p.Name);
            order.Add(p.Name);
        }
        Assert.That(expect, Is.EqualTo(dataLength), "the tensors cover the data section exactly");
        Assert.That(order, Is.EqualTo(new[] { "bn.num_batches_tracked", "a", "b.weight", "c", "empty" }), "largest dtype first, then by name");
    }

    [Test]
    public void DamagedFilesGiveClearErrors()
    {
        byte[] good = Safetensors.Serialize(Sample());
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(good);
        string header = Encoding.UTF8.GetString(good, 8, (int)n);

        void Expect(byte[] bytes, string fragment) =>
            Assert.That(() => Safetensors.Parse(bytes, "x.safetensors"), Throws.InstanceOf<InvalidDataException>().With.Message.Contains(fragment));
        byte[] WithHeader(string h, byte[]? data = null)
        {
            var hb = Encoding.UTF8.GetBytes(h);
            var d = data ?? good.AsSpan(8 + (int)n).ToArray();
            var b = new byte[8 + hb.Length + d.Length];
            BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)hb.Length);
            hb.CopyTo(b, 8);
            d.CopyTo(b, 8 + hb.Length);
            return b;
        }

        Expect(good[..5], "fewer than the 8");
        Expect(good[..(8 + (int)n - 3)], "runs past the end of the file");
        Expect(good[..^4], "truncated?");
        Expect([.. good, 0, 0, 0, 0], "trailing bytes");
        var huge = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(huge, ulong.MaxValue);
        Expect(huge, "exceeds the limit");
        Expect(WithHeader("[1, 2]   "), "does not start with '{'");
        Expect(WithHeader("{\"a\": "), "not valid JSON");
        Expect(WithHeader(header.Replace("\"F32\"", "\"F33\"")), "unknown dtype 'F33'");
        Expect(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]), "overlaps");
        Expect(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", new byte[16]), "gap");
        Expect(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]), "is 12 bytes but its offsets span 8");
        Expect(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", new byte[8]), "invalid dimension");
        Expect(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", new byte[8]), "invalid data_offsets");
        Expect(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]), "duplicate key");
        Expect(WithHeader("{\"__metadata__\":{\"k\":1}}", []), "is not a string");
        Assert.Throws<ArgumentException>(() => Safetensors.Serialize([new SafeTensor("x", "F32", [3], new byte[8])]));
    }

    private static (ParameterStore Store, PreActResNet18 Model) RandomModel(int seed)
    {
        var store = new ParameterStore();
        var model = new PreActResNet18(store, width: 4, classes: 10);
        store.Materialize(new CpuBackend(2), new Rng((ulong)seed));
        var rng = new Rng((ulong)seed + 100);
        foreach (var t in store.Buffers) // non-trivial running statistics, so eval mode depends on them
        {
            bool variance = t.Name.EndsWith("running_var", StringComparison.Ordinal);
            t.Value.CopyFrom(Enumerable.Range(0, t.Shape.Size).Select(_ => variance ? (float)rng.Uniform(0.5, 2) : (float)rng.Uniform(-0.3, 0.3)).ToArray());
        }
        return (store, model);
    }

    [Test]
    public void ModelCheckpointRoundTripsAndCarriesNumBatchesTracked()
    {
        string dir = TempDir("model");
        var (a, _) = RandomModel(1);
        var (b, _) = RandomModel(2);
        ModelSafetensors.Write(Path.Combine(dir, "m.safetensors"), a, numBatchesTracked: 50, new Dictionary<string, string> { ["epoch"] = "3" });
        var meta = ModelSafetensors.Load(Path.Combine(dir, "m.safetensors"), b);
        Assert.That(meta["epoch"], Is.EqualTo("3"));
        Assert.That(b.Values!.ToArray(), Is.EqualTo(a.Values!.ToArray()));
        Assert.That(b.BufferValues!.ToArray(), Is.EqualTo(a.BufferValues!.ToArray()));

        var file = Safetensors.Read(Path.Combine(dir, "m.safetensors"));
        var tracked = file.Tensors.Values.Where(t => t.Name.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).ToList();
        Assert.That(tracked, Has.Count.EqualTo(a.Buffers.Count() / 2), "one per batch norm");
        Assert.That(tracked.All(t => t.Dtype == "I64" && t.Shape.Length == 0 && t.ToInt64()[0] == 50));
        Assert.That(file.Tensors["layer2.0.shortcut.0.weight"].Shape, Is.EqualTo(new long[] { 8, 4, 1, 1 }), "OIHW");

        ModelSafetensors.Write(Path.Combine(dir, "plain.safetensors"), a, numBatchesTracked: null);
        Assert.That(Safetensors.Read(Path.Combine(dir, "plain.safetensors")).Tensors.Keys.Any(k => k.EndsWith("num_batches_tracked", StringComparison.Ordinal)), Is.False);

        var other = new ParameterStore();
        _ = new PreActResNet18(other, width: 8, classes: 10);
        other.Materialize(new CpuBackend(1), new Rng(0));
        Assert.That(() => ModelSafetensors.Load(Path.Combine(dir, "m.safetensors"), other),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("the model needs F32"));
    }

    /// <summary>PyTorch's PreActResNet18 (bench/reference) loads our checkpoint with strict load_state_dict and computes our logits.</summary>
    [Test]
    public void PyTorchLoadsTheCheckpoint()
    {
        string root = PythonTorch.RepoRootOrIgnore();
        PythonTorch.RequireOrIgnore();

        string dir = TempDir("torch");
        var (store, model) = RandomModel(7);
        var rng = new Rng(9);
        var xData = Enumerable.Range(0, 2 * 3 * 32 * 32).Select(_ => (float)rng.Normal()).ToArray();
        var x = store.Values!.Backend.Allocate(new Shape(2, 3, 32, 32));
        x.CopyFrom(xData);
        float[] ours = model.Forward(x, Mode.Eval).ToArray();

        string modelPath = Path.Combine(dir, "model.safetensors"), inputPath = Path.Combine(dir, "x.safetensors"), outPath = Path.Combine(dir, "logits.safetensors");
        ModelSafetensors.Write(modelPath, store, numBatchesTracked: 1);
        Safetensors.WriteAtomic(inputPath, [SafeTensor.FromFloats("x", [2, 3, 32, 32], xData)]);
        var (code, output) = PythonTorch.Run([Path.Combine(root, "tests", "python", "load_safetensors.py"), modelPath, inputPath, outPath, "4", "10"], root);
        Assert.That(code, Is.EqualTo(0), "the PyTorch loader failed:\n" + output);
        var logits = Safetensors.Read(outPath).Tensors["logits"];
        Assert.That(logits.Shape, Is.EqualTo(new long[] { 2, 10 }));
        FiniteDiff.Validate("logits", ours, FiniteDiff.ToDouble(logits.ToFloats()), 2e-5, 1e-4);
    }
}
