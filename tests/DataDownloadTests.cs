using System.Security.Cryptography;
using NUnit.Framework;
using RlMixup.Engine.Data;

namespace RlMixup.Tests;

/// <summary>
/// The downloader against a local HTTP server serving archives built in memory: a good archive is
/// extracted and readable; truncated, cut-off and wrongly-checksummed ones fail with one clear line
/// and leave nothing behind.
/// </summary>
public class DataDownloadTests
{
    private string _root = null!;
    private LocalHttpServer _server = null!;
    private byte[] _good = null!;

    [SetUp]
    public void Setup()
    {
        _root = CifarFixtures.TempDir();
        _server = new LocalHttpServer();
        _good = CifarFixtures.TarGz("cifar-10-batches-bin", CifarFixtures.Cifar10Files(perFile: 20, test: 10));
    }

    [TearDown]
    public void TearDown()
    {
        _server.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private static string Md5(byte[] bytes) => Convert.ToHexStringLower(MD5.HashData(bytes));
    private static DatasetArchive Cifar10With(string md5) => DatasetArchive.Cifar10 with { Md5 = md5 };
    private Downloader Local() => new() { BaseUrl = _server.BaseUrl };

    private void NothingLeftBehind()
    {
        Assert.That(Directory.EnumerateFileSystemEntries(_root), Is.Empty, "no partial folder, temporary folder or part file");
    }

    private static void OneLine(DataFormatException ex) => Assert.That(ex.Message, Does.Not.Contain("\n"));

    [Test]
    public void PublishedChecksums()
    {
        Assert.That(DatasetArchive.Cifar10.Md5, Is.EqualTo("c32a1d4ab5d03f1284b67883e8d87530"));
        Assert.That(DatasetArchive.Cifar100.Md5, Is.EqualTo("03b5dce01913d631647c71ecec9e9cb8"));
        Assert.That(Downloader.OfficialBaseUrl + DatasetArchive.Find("cifar100").FileName,
            Is.EqualTo("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"));
    }

    [Test]
    public async Task GoodArchiveIsExtractedAndReadable()
    {
        _server.Add("cifar-10-binary.tar.gz", _good);
        var seen = new List<(long Done, long? Total)>();
        string folder = await Local().FetchAsync(Cifar10With(Md5(_good)), _root, (d, t) => seen.Add((d, t)));
        Assert.That(folder, Is.EqualTo(Path.Combine(_root, "cifar-10-batches-bin")));
        var d = Dataset.Load("cifar10", _root);
        Assert.That((d.Train.Count, d.Test.Count, d.Classes), Is.EqualTo((100, 10, 10)));
        Assert.That(Directory.EnumerateFileSystemEntries(_root).Select(Path.GetFileName), Is.EqualTo(new[] { "cifar-10-batches-bin" }),
            "only the dataset folder remains");
        Assert.That(seen[^1], Is.EqualTo(((long)_good.Length, (long?)_good.Length)), "progress ends at the full length");

        int requests = _server.Requests;
        await Local().FetchAsync(Cifar10With(Md5(_good)), _root);
        Assert.That(_server.Requests, Is.EqualTo(requests), "an existing, valid folder is not fetched again");
    }

    [Test]
    public async Task TruncatedArchiveFailsAndLeavesNothing()
    {
        byte[] cut = _good[..(_good.Length / 2)];
        _server.Add("cifar-10-binary.tar.gz", cut);
        var ex = (await Assert.ThrowsAsync<DataFormatException>(() => Local().FetchAsync(Cifar10With(Md5(cut)), _root)))!;
        Assert.That(ex.Message, Does.Contain("damaged or truncated"));
        OneLine(ex);
        NothingLeftBehind();
    }

    [Test]
    public async Task ConnectionCutOffFailsWithWhatToDoByHand()
    {
        _server.Add("cifar-10-binary.tar.gz", _good[..1000], declaredLength: _good.Length);
        var ex = (await Assert.ThrowsAsync<DataFormatException>(() => Local().FetchAsync(Cifar10With(Md5(_good)), _root)))!;
        Assert.That(ex.Message, Does.Contain("could not download"));
        Assert.That(ex.Message, Does.Contain(Path.GetFullPath(_root)).And.Contain("cifar-10-binary.tar.gz").And.Contain("demo"));
        OneLine(ex);
        NothingLeftBehind();
    }

    [Test]
    public async Task WrongChecksumFailsAndLeavesNothing()
    {
        _server.Add("cifar-10-binary.tar.gz", _good);
        var ex = (await Assert.ThrowsAsync<DataFormatException>(() => Local().FetchAsync(DatasetArchive.Cifar10, _root)))!;
        Assert.That(ex.Message, Does.Contain("MD5 " + Md5(_good)).And.Contain(DatasetArchive.Cifar10.Md5));
        OneLine(ex);
        NothingLeftBehind();
    }

    [Test]
    public async Task UnreachableServerFailsWithWhatToDoByHand()
    {
        var ex = (await Assert.ThrowsAsync<DataFormatException>(() => Local().FetchAsync(Cifar10With(Md5(_good)), _root)))!; // 404
        Assert.That(ex.Message, Does.Contain("could not download").And.Contain("404").And.Contain("demo"));
        OneLine(ex);
        NothingLeftBehind();
    }

    [Test]
    public async Task ArchiveDroppedByHandIsVerifiedExtractedAndKept()
    {
        string archive = Path.Combine(_root, "cifar-10-binary.tar.gz");
        File.WriteAllBytes(archive, _good);
        var offline = new Downloader { BaseUrl = "http://127.0.0.1:9/" };
        await offline.FetchAsync(Cifar10With(Md5(_good)), _root);
        Assert.That(Dataset.Load("cifar10", _root).Train.Count, Is.EqualTo(100));
        Assert.That(File.Exists(archive), "the hand-placed archive is kept");
        Assert.That(_server.Requests, Is.Zero);
    }

    [Test]
    public async Task ArchiveDroppedByHandWithWrongChecksumIsNamed()
    {
        string archive = Path.Combine(_root, "cifar-10-binary.tar.gz");
        File.WriteAllBytes(archive, _good[..^10]);
        var ex = (await Assert.ThrowsAsync<DataFormatException>(() => Local().FetchAsync(Cifar10With(Md5(_good)), _root)))!;
        Assert.That(ex.Message, Does.StartWith(archive).And.Contain("MD5"));
        Assert.That(Directory.Exists(Path.Combine(_root, "cifar-10-batches-bin")), Is.False);
    }

    [Test]
    public async Task ArchiveWithBadRecordsIsNotMovedIntoPlace()
    {
        var files = CifarFixtures.Cifar10Files();
        files["test_batch.bin"] = CifarFixtures.Records(1, 3, 12);
        byte[] bad = CifarFixtures.TarGz("cifar-10-batches-bin", files);
        _server.Add("cifar-10-binary.tar.gz", bad);
        var ex = (await Assert.ThrowsAsync<DataFormatException>(() => Local().FetchAsync(Cifar10With(Md5(bad)), _root)))!;
        Assert.That(ex.Message, Does.StartWith("cifar-10-binary.tar.gz: cifar-10-batches-bin/test_batch.bin: record 1 has label 12"));
        NothingLeftBehind();
    }

    [Test]
    public void ProgressBarText()
    {
        Assert.That(ProgressBar.Render(50, 100, width: 10), Does.StartWith("[#####.....]  50.0%"));
        Assert.That(ProgressBar.Render(100, 100, width: 4), Does.StartWith("[####] 100.0%"));
        Assert.That(ProgressBar.Render(3 << 20, null), Does.Contain("3.0 MB"));
        var w = new StringWriter();
        var report = ProgressBar.Console(w, width: 4);
        report(0, 200); report(1, 200); report(200, 200);
        Assert.That(w.ToString(), Is.EqualTo("\r[....]   0.0%  0.0/0.0 MB\r[####] 100.0%  0.0/0.0 MB" + Environment.NewLine));
    }
}
