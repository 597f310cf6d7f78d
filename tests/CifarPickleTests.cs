using System.Text;
using NUnit.Framework;
using RlMixup.Engine.Data;

namespace RlMixup.Tests;

/// <summary>
/// torchvision's CIFAR files (the Python pickles): written by Python with numpy from the binary subset
/// (tests/make_cifar_pickles.py), read by the engine and compared with the binary reader image for
/// image; a Python-2-style pickle built by hand; and bad files, each one clear line.
/// </summary>
[NonParallelizable]
public class CifarPickleTests
{
    private static string TempDir() => Path.Combine(Path.GetTempPath(), "rlmixup-pickle-" + Guid.NewGuid().ToString("N"));

    private static void AssertSame(ImageSet a, ImageSet b)
    {
        Assert.That(a.Count, Is.EqualTo(b.Count));
        Assert.That(a.Labels.ToArray(), Is.EqualTo(b.Labels.ToArray()));
        Assert.That(a.Pixels.ToArray().SequenceEqual(b.Pixels.ToArray()), Is.True, "pixels");
    }

    [TestCase(2)]
    [TestCase(4)]
    public void TorchvisionsPicklesReadAsTheBinaryFiles(int protocol)
    {
        string subset = SharedData.Cifar10SubsetOrIgnore();
        if (!File.Exists(PythonTorch.Python)) Assert.Ignore($"{PythonTorch.Python} not found");
        string root = PythonTorch.RepoRootOrIgnore(), dir = TempDir();
        try
        {
            var (code, output) = PythonTorch.Run([Path.Combine(root, "tests", "make_cifar_pickles.py"), subset, dir, protocol.ToString()], root);
            if (code != 0 && output.Contains("No module named 'numpy'")) Assert.Ignore("numpy is not installed for " + PythonTorch.Python);
            Assert.That(code, Is.EqualTo(0), output);

            var fromPickles = Dataset.Load("cifar10", dir, maxTrain: 2500);
            var fromBinary = Dataset.Load("cifar10", subset, maxTrain: 2500);
            Assert.That(fromPickles.Source, Does.EndWith(CifarPickle.Cifar10Folder));
            AssertSame(fromPickles.Train, fromBinary.Train);
            AssertSame(fromPickles.Test, fromBinary.Test);
            Assert.That(fromPickles.ClassNames, Is.EqualTo(fromBinary.ClassNames));
            Assert.That(Dataset.IsPresent("cifar10", dir), Is.True);

            var c100 = CifarPickle.LoadCifar100(Path.Combine(dir, CifarPickle.Cifar100Folder), maxTrain: null, maxTest: 50);
            var c100Binary = Dataset.LoadCifar100(Path.Combine(dir, "cifar-100-binary"), maxTrain: null, maxTest: 50);
            AssertSame(c100.Train, c100Binary.Train);
            AssertSame(c100.Test, c100Binary.Test);
            Assert.That(c100.ClassNames, Is.EqualTo(c100Binary.ClassNames));

            // A truncated batch file is one clear line.
            string batch = Path.Combine(dir, CifarPickle.Cifar10Folder, "data_batch_2");
            var bytes = File.ReadAllBytes(batch);
            File.WriteAllBytes(batch, bytes[..(bytes.Length / 2)]);
            var e = Assert.Throws<DataFormatException>(() => Dataset.Load("cifar10", dir))!;
            Assert.That(e.Message, Does.StartWith(batch + ": byte ").And.Contain("truncated").And.Not.Contain("\n"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    /// <summary>A batch of two images as Python 2's cPickle writes it: str keys and the array's data as a binary string.</summary>
    private static byte[] Python2Batch(byte[] pixels, int[] labels)
    {
        var s = new MemoryStream();
        void W(params byte[] b) => s.Write(b);
        void Str(string text) { W((byte)'U', (byte)text.Length); W(Encoding.Latin1.GetBytes(text)); }
        W(0x80, 2, (byte)'}', (byte)'q', 1, (byte)'(');
        Str("data");
        W(Encoding.ASCII.GetBytes("cnumpy.core.multiarray\n_reconstruct\n"));
        W(Encoding.ASCII.GetBytes("cnumpy\nndarray\n"));
        W((byte)'K', 0, 0x85, (byte)'U', 1, (byte)'b', 0x87, (byte)'R');
        W((byte)'(', (byte)'K', 1, (byte)'K', (byte)labels.Length, (byte)'M', 0x00, 0x0C, 0x86);     // version 1, shape (n, 3072)
        W(Encoding.ASCII.GetBytes("cnumpy\ndtype\n"));
        W((byte)'U', 2, (byte)'u', (byte)'1', (byte)'K', 0, (byte)'K', 1, 0x87, (byte)'R');
        W((byte)'(', (byte)'K', 3, (byte)'U', 1, (byte)'|', (byte)'N', (byte)'N', (byte)'N', (byte)'J', 0xff, 0xff, 0xff, 0xff, (byte)'J', 0xff, 0xff, 0xff, 0xff, (byte)'K', 0, (byte)'t', (byte)'b');
        W(0x89, (byte)'T');
        W(BitConverter.GetBytes(pixels.Length));
        W(pixels);
        W((byte)'t', (byte)'b');
        Str("labels");
        W((byte)']', (byte)'(');
        foreach (int l in labels) W((byte)'K', (byte)l);
        W((byte)'e', (byte)'u', (byte)'.');
        return s.ToArray();
    }

    [Test]
    public void APython2StylePickleReads()
    {
        string dir = TempDir();
        try
        {
            Directory.CreateDirectory(dir);
            var pixels = Enumerable.Range(0, 2 * ImageSet.ImageBytes).Select(i => (byte)(i * 7)).ToArray();
            string file = Path.Combine(dir, "data_batch_1");
            File.WriteAllBytes(file, Python2Batch(pixels, [3, 9]));
            var set = CifarPickle.Read([file], "labels", 10);
            Assert.That(set.Labels.ToArray(), Is.EqualTo(new byte[] { 3, 9 }));
            Assert.That(set.Pixels.ToArray(), Is.EqualTo(pixels));
            Assert.That(Assert.Throws<DataFormatException>(() => CifarPickle.Read([file], "labels", 5))!.Message, Is.EqualTo($"{file}: label 1 is 9, outside 0..4"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void APickleThatAsksForAnyOtherGlobalIsRefused()
    {
        var evil = Encoding.Latin1.GetBytes("\u0080\u0002cos\nsystem\nq\u0000X\u0004\u0000\u0000\u0000trueq\u0001\u0085q\u0002Rq\u0003.");
        var e = Assert.Throws<DataFormatException>(() => Pickle.Load(evil, "evil"))!;
        Assert.That(e.Message, Is.EqualTo("evil: byte 13: refuses to load os.system (a CIFAR file holds only numpy arrays and Python values)"));
    }
}
