using System.Buffers.Binary;
using System.Text;
using NUnit.Framework;
using RlMixup.Engine.Reports;
using SkiaSharp;

namespace RlMixup.Tests;

/// <summary>The run folder's files: metrics.jsonl, config.json and the per-epoch plots.</summary>
public class RunFolderTests
{
    private static string TempDir(string name)
    {
        string dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, "runfolder-" + name);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static EpochMetrics Epoch(int e) => new(
        e, TrainLoss: 2.3 / (1 + 0.1 * e), TestTop1: 100 * (1 - Math.Exp(-0.05 * e)), Lr: 0.004 + 0.001 * e,
        ActionHist: [.. Enumerable.Range(0, 10).Select(a => (long)(100 + 50 * Math.Sin(a + 0.3 * e) + 5 * e * a))],
        RewardMean: 0.01 * e, Ppo: e % 2 == 0 ? new Dictionary<string, double> { ["approx_kl"] = 0.01, ["clip_fraction"] = 0.2 } : null,
        EpochSeconds: 12.5 + e)
    { Extra = e == 3 ? new Dictionary<string, double> { ["test_loss"] = 1.25 } : null };

    private static void AssertSame(EpochMetrics a, EpochMetrics b)
    {
        Assert.That(b.Epoch, Is.EqualTo(a.Epoch));
        Assert.That((b.TrainLoss, b.TestTop1, b.Lr, b.RewardMean, b.EpochSeconds), Is.EqualTo((a.TrainLoss, a.TestTop1, a.Lr, a.RewardMean, a.EpochSeconds)));
        Assert.That(b.ActionHist, Is.EqualTo(a.ActionHist));
        Assert.That(b.Ppo, a.Ppo == null ? Is.Null : Is.EquivalentTo(a.Ppo));
        Assert.That(b.Extra, a.Extra == null ? Is.Null : Is.EquivalentTo(a.Extra));
    }

    [Test]
    public void MetricsRoundTrip()
    {
        string path = Path.Combine(TempDir("metrics"), "metrics.jsonl");
        using (var log = MetricsLog.Open(path))
            for (int e = 1; e <= 4; e++) log.Append(Epoch(e));
        var lines = File.ReadAllLines(path);
        Assert.That(lines, Has.Length.EqualTo(4), "one line per epoch");
        Assert.That(lines[0], Does.StartWith("{\"epoch\":1,\"train_loss\":"));
        Assert.That(lines[0], Does.Contain("\"ppo\":null"));
        Assert.That(lines[1], Does.Contain("\"ppo\":{\"approx_kl\":0.01,"));
        var read = MetricsLog.Read(path);
        Assert.That(read.DroppedTornLine, Is.False);
        Assert.That(read.Epochs, Has.Count.EqualTo(4));
        for (int e = 1; e <= 4; e++) AssertSame(Epoch(e), read.Epochs[e - 1]);

        var nan = Epoch(5) with { TrainLoss = double.NaN };
        Assert.That(nan.ToJson(), Does.Contain("\"train_loss\":null"));
        Assert.That(double.IsNaN(EpochMetrics.FromJson(nan.ToJson()).TrainLoss));
        Assert.That(MetricsLog.Read(Path.Combine(TempDir("none"), "metrics.jsonl")).Epochs, Is.Empty);
    }

    [Test]
    public void TornLastLineIsToleratedAndDroppedOnResume()
    {
        string path = Path.Combine(TempDir("torn"), "metrics.jsonl");
        using (var log = MetricsLog.Open(path))
            for (int e = 1; e <= 3; e++) log.Append(Epoch(e));
        string full = Epoch(4).ToJson();
        File.AppendAllText(path, full[..(full.Length / 2)]); // a write cut short by kill -9
        var read = MetricsLog.Read(path);
        Assert.That(read.DroppedTornLine, Is.True);
        Assert.That(read.Epochs.Select(e => e.Epoch), Is.EqualTo(new[] { 1, 2, 3 }));

        using (var log = MetricsLog.Open(path))
        {
            Assert.That(log.Epochs, Has.Count.EqualTo(3));
            log.Append(Epoch(4));
        }
        read = MetricsLog.Read(path);
        Assert.That(read.DroppedTornLine, Is.False);
        Assert.That(read.Epochs.Select(e => e.Epoch), Is.EqualTo(new[] { 1, 2, 3, 4 }));
        AssertSame(Epoch(4), read.Epochs[3]);

        // Resuming from epoch 2's checkpoint forgets epochs 3 and 4.
        using (var log = MetricsLog.Open(path, keepThroughEpoch: 2)) log.Append(Epoch(3));
        Assert.That(MetricsLog.Read(path).Epochs.Select(e => e.Epoch), Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Has.Length.EqualTo(1), "no temporary file left");

        // Damage before the last line is not a torn write: it is an error naming the line.
        var lines = File.ReadAllLines(path);
        lines[1] = lines[1][..10];
        File.WriteAllLines(path, lines);
        Assert.That(() => MetricsLog.Read(path), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("line 2"));
    }

    [Test]
    public void RunConfigIsWrittenAtomicallyAndReadsBack()
    {
        string path = Path.Combine(TempDir("config"), "config.json");
        File.WriteAllText(path, "old");
        var config = new Dictionary<string, object?>
        {
            ["seed"] = 42, ["device"] = "cpu", ["lr"] = 0.2, ["pct_start"] = 1.0 / 3, ["nesterov"] = true, ["mode"] = DayOfWeek.Monday,
            ["pad"] = null, ["widths"] = new[] { 1, 2 }, ["ppo"] = new Dictionary<string, double> { ["clip_range"] = 0.2 },
            ["versions"] = RunConfig.Environment(), ["bad"] = double.PositiveInfinity,
        };
        RunConfig.Write(path, config);
        var r = RunConfig.Read(path);
        Assert.That(r.GetProperty("seed").GetInt32(), Is.EqualTo(42));
        Assert.That(r.GetProperty("pct_start").GetDouble(), Is.EqualTo(1.0 / 3));
        Assert.That(r.GetProperty("nesterov").GetBoolean(), Is.True);
        Assert.That(r.GetProperty("mode").GetString(), Is.EqualTo("Monday"));
        Assert.That(r.GetProperty("pad").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null));
        Assert.That(r.GetProperty("widths").GetArrayLength(), Is.EqualTo(2));
        Assert.That(r.GetProperty("ppo").GetProperty("clip_range").GetDouble(), Is.EqualTo(0.2));
        Assert.That(r.GetProperty("versions").GetProperty("dotnet").GetString(), Does.StartWith(".NET"));
        Assert.That(r.GetProperty("bad").GetString(), Is.EqualTo("Infinity"));
        Assert.That(r.EnumerateObject().First().Name, Is.EqualTo("seed"), "keys in the order given");
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Has.Length.EqualTo(1), "no temporary file left");
    }

    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static SKBitmap CheckPng(string path, int w, int h, int minColours)
    {
        byte[] png = File.ReadAllBytes(path);
        TestContext.Out.WriteLine($"{path}: {png.Length} bytes, {w}×{h}");
        Assert.That(png.AsSpan(0, 8).ToArray(), Is.EqualTo(PngSignature), "PNG signature");
        Assert.That(Encoding.ASCII.GetString(png, 12, 4), Is.EqualTo("IHDR"));
        Assert.That((BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20))), Is.EqualTo((w, h)), "IHDR size");
        Assert.That(Encoding.ASCII.GetString(png, png.Length - 8, 4), Is.EqualTo("IEND"));
        var bitmap = SKBitmap.Decode(png);
        Assert.That(bitmap, Is.Not.Null, "SkiaSharp decodes the file");
        Assert.That((bitmap.Width, bitmap.Height), Is.EqualTo((w, h)));
        var colours = new HashSet<uint>();
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) colours.Add((uint)bitmap.GetPixel(x, y));
        Assert.That(colours.Count, Is.GreaterThan(minColours), "many distinct colours: drawn, not blank");
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!).Where(f => f.EndsWith(".tmp", StringComparison.Ordinal)), Is.Empty, "no temporary file left");
        return bitmap;
    }

    private static int Count(SKBitmap b, Func<SKColor, bool> pred)
    {
        int n = 0;
        for (int y = 0; y < b.Height; y++) for (int x = 0; x < b.Width; x++) if (pred(b.GetPixel(x, y))) n++;
        return n;
    }

    [Test]
    public void CurvesPlotIsAValidPng()
    {
        string dir = TempDir("curves"), path = Path.Combine(dir, "curves.png");
        var epochs = Enumerable.Range(1, 30).Select(Epoch).ToList();
        TrainingPlots.WriteCurves(path, epochs, 900, 420);
        using var bmp = CheckPng(path, 900, 420, 50);
        Assert.That(Count(bmp, c => c == new SKColor(217, 95, 2)), Is.GreaterThan(100), "the loss curve is drawn");
        Assert.That(Count(bmp, c => c == new SKColor(27, 158, 119)), Is.GreaterThan(100), "the accuracy curve is drawn");
        Assert.That(Count(bmp, c => c.Red < 80 && c.Green < 80 && c.Blue < 80), Is.GreaterThan(1000), "axes, ticks and labels");

        // One epoch and none still give valid images; rewriting replaces the file.
        string small = Path.Combine(dir, "curves_small.png");
        TrainingPlots.WriteCurves(small, epochs.Take(1).ToList(), 900, 420);
        CheckPng(small, 900, 420, 10).Dispose();
        TrainingPlots.WriteCurves(small, [], 400, 300);
        CheckPng(small, 400, 300, 10).Dispose();
    }

    [Test]
    public void ActionHeatmapIsAValidPng()
    {
        string dir = TempDir("heatmap"), path = Path.Combine(dir, "actions.png");
        var epochs = Enumerable.Range(1, 40).Select(Epoch).ToList();
        TrainingPlots.WriteActionHeatmap(path, epochs, 900, 360);
        using var bmp = CheckPng(path, 900, 360, 200);
        // The cells and the colour bar are viridis: its darkest and brightest ends both appear.
        Assert.That(Count(bmp, c => c.Blue > c.Red + 40 && c.Red > 50 && c.Green < 60), Is.GreaterThan(50), "dark purple (low shares)");
        Assert.That(Count(bmp, c => c.Red > 200 && c.Green > 200 && c.Blue < 90), Is.GreaterThan(50), "yellow (the largest share)");
        string empty = Path.Combine(dir, "actions_empty.png");
        TrainingPlots.WriteActionHeatmap(empty, [], 900, 360);
        CheckPng(empty, 900, 360, 10).Dispose();
        Assert.Throws<ArgumentException>(() => TrainingPlots.RenderActionHeatmap([Epoch(1) with { ActionHist = [1, 2] }]));
    }

    [Test]
    public void NiceTicksAreRound()
    {
        Assert.That(TrainingPlots.NiceTicks(0, 1, 5), Is.EqualTo(new[] { 0, 0.2, 0.4, 0.6000000000000001, 0.8, 1 }).Within(1e-12));
        Assert.That(TrainingPlots.NiceTicks(1, 300, 7), Is.EqualTo(new double[] { 50, 100, 150, 200, 250, 300 }));
    }
}
