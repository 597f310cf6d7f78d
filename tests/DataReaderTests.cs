using NUnit.Framework;
using RlMixup.Engine.Data;

namespace RlMixup.Tests;

/// <summary>The CIFAR readers: validation errors are one line naming the file; CIFAR-100's fine label; the real subset.</summary>
public class DataReaderTests
{
    private string _dir = null!;

    [SetUp] public void Setup() => _dir = CifarFixtures.TempDir();
    [TearDown] public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static DataFormatException FailsNaming(Action load, string path, string problem)
    {
        var ex = Assert.Throws<DataFormatException>(load)!;
        Assert.That(ex.Message, Does.Contain(path), "the message names the file");
        Assert.That(ex.Message, Does.Contain(problem));
        Assert.That(ex.Message, Does.Not.Contain("\n"), "one line");
        return ex;
    }

    [Test]
    public void Cifar10FolderLoadsWithNamesAndCounts()
    {
        CifarFixtures.WriteAll(_dir, CifarFixtures.Cifar10Files(perFile: 3, test: 4));
        var d = Dataset.LoadCifar10(_dir);
        Assert.That((d.Train.Count, d.Test.Count, d.Classes), Is.EqualTo((15, 4, 10)));
        Assert.That(d.ClassNames[0], Is.EqualTo("airplane"));
        Assert.That(d.ClassNames[9], Is.EqualTo("truck"));
        Assert.That(d.Train.Labels[..3], Is.EqualTo(new byte[] { 1, 2, 3 }), "data_batch_1 first, in record order");
        Assert.That(d.Train.Image(1)[5], Is.EqualTo((byte)(7 + 5)), "pixels follow the label byte");
        Assert.That(d.Describe(), Does.Contain("15 training and 4 test images, 10 classes"));
    }

    [Test]
    public void LimitsKeepTheFirstRecords()
    {
        CifarFixtures.WriteAll(_dir, CifarFixtures.Cifar10Files(perFile: 3, test: 4));
        var d = Dataset.LoadCifar10(_dir, maxTrain: 5, maxTest: 2);
        Assert.That((d.Train.Count, d.Test.Count), Is.EqualTo((5, 2)));
        Assert.That(d.Train.Labels, Is.EqualTo(new byte[] { 1, 2, 3, 2, 3 }), "spans the first two files");
    }

    [Test]
    public void TruncatedFileIsNamed()
    {
        var files = CifarFixtures.Cifar10Files();
        files["data_batch_3.bin"] = files["data_batch_3.bin"][..^100];
        CifarFixtures.WriteAll(_dir, files);
        FailsNaming(() => Dataset.LoadCifar10(_dir), Path.Combine(_dir, "data_batch_3.bin"), "not a multiple of the 3073-byte record");
    }

    [Test]
    public void OutOfRangeLabelIsNamed()
    {
        var files = CifarFixtures.Cifar10Files();
        files["test_batch.bin"] = CifarFixtures.Records(1, 0, 1, 10);
        CifarFixtures.WriteAll(_dir, files);
        FailsNaming(() => Dataset.LoadCifar10(_dir), Path.Combine(_dir, "test_batch.bin"), "record 2 has label 10, outside 0..9");
    }

    [Test]
    public void EmptyFileIsNamed()
    {
        var files = CifarFixtures.Cifar10Files();
        files["data_batch_5.bin"] = [];
        CifarFixtures.WriteAll(_dir, files);
        FailsNaming(() => Dataset.LoadCifar10(_dir), Path.Combine(_dir, "data_batch_5.bin"), "empty");
    }

    [Test]
    public void MissingFileIsNamed()
    {
        var files = CifarFixtures.Cifar10Files();
        files.Remove("test_batch.bin");
        CifarFixtures.WriteAll(_dir, files);
        FailsNaming(() => Dataset.LoadCifar10(_dir), Path.Combine(_dir, "test_batch.bin"), "file not found");
    }

    [Test]
    public void MissingClassNamesFileIsNamed()
    {
        var files = CifarFixtures.Cifar10Files();
        files.Remove("batches.meta.txt");
        CifarFixtures.WriteAll(_dir, files);
        FailsNaming(() => Dataset.LoadCifar10(_dir), Path.Combine(_dir, "batches.meta.txt"), "file not found");
    }

    [Test]
    public void WrongNumberOfClassNamesIsNamed()
    {
        var files = CifarFixtures.Cifar10Files();
        files["batches.meta.txt"] = "a\nb\n"u8.ToArray();
        CifarFixtures.WriteAll(_dir, files);
        FailsNaming(() => Dataset.LoadCifar10(_dir), Path.Combine(_dir, "batches.meta.txt"), "2 class names, expected 10");
    }

    [Test]
    public void MissingFolderIsNamed()
    {
        string missing = Path.Combine(_dir, "nowhere");
        FailsNaming(() => Dataset.LoadCifar10(missing), missing, "folder not found");
        FailsNaming(() => Dataset.Load("cifar100", missing), Path.Combine(missing, "cifar-100-binary"), "folder not found");
    }

    [Test]
    public void Cifar100UsesTheSecondLabelByte()
    {
        CifarFixtures.WriteAll(_dir, CifarFixtures.Cifar100Files([42, 99, 0, 57], [5, 63]));
        var raw = File.ReadAllBytes(Path.Combine(_dir, "train.bin"));
        Assert.That((raw[0], raw[1]), Is.EqualTo(((byte)2, (byte)42)), "fixture: coarse byte, then fine byte");
        var d = Dataset.LoadCifar100(_dir);
        Assert.That((d.Train.Count, d.Test.Count, d.Classes), Is.EqualTo((4, 2, 100)));
        Assert.That(d.Train.Labels, Is.EqualTo(new byte[] { 42, 99, 0, 57 }));
        Assert.That(d.Test.Labels, Is.EqualTo(new byte[] { 5, 63 }));
        Assert.That(d.Train.Image(1)[0], Is.EqualTo((byte)7), "pixels start after both label bytes");
        Assert.That(d.ClassNames[42], Is.EqualTo("class42"));
    }

    [Test]
    public void Cifar100FoundUnderTheArchiveFolder()
    {
        CifarFixtures.WriteAll(Path.Combine(_dir, "cifar-100-binary"), CifarFixtures.Cifar100Files([1, 2], [3]));
        Assert.That(Dataset.Load("cifar100", _dir).Train.Count, Is.EqualTo(2));
    }

    [Test]
    public void Cifar100FineLabelOutOfRangeAndOneByteLayoutAreRejected()
    {
        var files = CifarFixtures.Cifar100Files([1, 100], [3]);
        CifarFixtures.WriteAll(_dir, files);
        FailsNaming(() => Dataset.LoadCifar100(_dir), Path.Combine(_dir, "train.bin"), "record 1 has label 100, outside 0..99");
        File.WriteAllBytes(Path.Combine(_dir, "train.bin"), CifarFixtures.Records(1, 1, 2));
        FailsNaming(() => Dataset.LoadCifar100(_dir), Path.Combine(_dir, "train.bin"), "3074-byte record");
    }

    [Test]
    public void UnknownDatasetNameIsRejected() =>
        Assert.That(Assert.Throws<DataFormatException>(() => Dataset.Load("mnist", _dir))!.Message, Does.Contain("mnist"));

    [Test]
    public void RealCifar10SubsetLoads()
    {
        string dir = SharedData.Cifar10SubsetOrIgnore();
        var d = Dataset.Load("cifar10", dir);
        Assert.That((d.Train.Count, d.Test.Count, d.Classes), Is.EqualTo((5000, 1000, 10)));
        Assert.That(d.ClassNames, Does.Contain("airplane").And.Contain("truck"));
        for (int c = 0; c < 10; c++) Assert.That(d.Train.Labels.Count(l => l == c), Is.EqualTo(500), $"class {c}");
    }

    [Test]
    public void HoldOutIsDeterministicDisjointAndComplete()
    {
        var set = SyntheticData.Images(200, 10, seed: 3);
        var (train, held) = Split.HoldOut(set, 50, seed: 9);
        var (train2, held2) = Split.HoldOut(set, 50, seed: 9);
        var (_, held3) = Split.HoldOut(set, 50, seed: 10);
        Assert.That((train.Count, held.Count), Is.EqualTo((150, 50)));
        Assert.That(held.Pixels, Is.EqualTo(held2.Pixels));
        Assert.That(train.Pixels, Is.EqualTo(train2.Pixels));
        Assert.That(held.Pixels, Is.Not.EqualTo(held3.Pixels), "another seed holds out other images");
        // every original image ends up in exactly one part
        var all = Enumerable.Range(0, set.Count).Select(i => Convert.ToHexString(set.Image(i))).Order().ToArray();
        var parts = Enumerable.Range(0, train.Count).Select(i => Convert.ToHexString(train.Image(i)))
            .Concat(Enumerable.Range(0, held.Count).Select(i => Convert.ToHexString(held.Image(i)))).Order().ToArray();
        Assert.That(parts, Is.EqualTo(all));
    }
}
