using System.Buffers.Binary;
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Data;
using RlMixup.Engine.Reports;
using RlMixup.Models;
using SkiaSharp;

namespace RlMixup.Tests;

public class MixupFigureTests
{
    private const int Scale = 4;

    /// <summary>4 real CIFAR-10 images; the saliency comes from a freshly initialised PreActResNet18's input gradient.</summary>
    [Test]
    public void CifarFigureIsAValidPng()
    {
        string dir = SharedData.Cifar10SubsetOrIgnore();
        var set = CifarBinary.ReadCifar10Train(dir, limit: 4);
        var names = File.ReadAllLines(Path.Combine(dir, "batches.meta.txt")).Where(s => s.Length > 0).ToArray();
        int[] indices = [0, 1, 2, 3];
        float[] grad = InputGradient(set, indices);
        var data = MixupFigurePipeline.Run(set, indices, names, grad, MixupFigurePipeline.PercentilesOfActions([2, 5, 7, 9]), 0.5f, new Rng(3)); // seed 3: λ1 ≈ 0.36, so the blend is visible
        CheckFigure(data, rows: 4, "mixup_figure_cifar10.png");
    }

    /// <summary>Synthetic images (runs everywhere): saliency from a gradient with one bright blob per image.</summary>
    [Test]
    public void SyntheticFigureIsAValidPng()
    {
        const int b = 6;
        var set = SyntheticSet(b);
        int[] indices = [.. Enumerable.Range(0, b)];
        var data = MixupFigurePipeline.Run(set, indices, ClassNames, BlobGradient(b), MixupFigurePipeline.PercentilesOfActions([0, 3, 5, 7, 9, 4]), 0.5f, new Rng(3)); // λ1 ≈ 0.58
        CheckFigure(data, rows: 5, "mixup_figure_synthetic.png");
    }

    [Test]
    public void PipelineFollowsTheMethod()
    {
        const int b = 4;
        var set = SyntheticSet(b);
        var data = MixupFigurePipeline.Run(set, [0, 1, 2, 3], ClassNames, BlobGradient(b), [0, 0, 0, 0], 1f, new Rng(5));
        // q = 0 keeps every cell, so eq. 3 is plain input mixup and y' = λ1 y + λ2 y_π.
        Assert.That(data.Masks, Is.All.EqualTo(1f));
        Assert.That(data.Lambda1, Has.Length.EqualTo(1));
        float l1 = data.Lambda1[0];
        for (int i = 0; i < b; i++)
        {
            var y = data.MixedTargets.AsSpan(i * 10, 10);
            Assert.That(y.ToArray().Sum(), Is.EqualTo(1f).Within(1e-5f));
            int j = data.Perm[i];
            float expectOwn = set.Labels[i] == set.Labels[j] ? 1 : l1;
            Assert.That(y[set.Labels[i]], Is.EqualTo(expectOwn).Within(1e-5f));
        }
        var maps = data.Maps.AsSpan(0, 256).ToArray();
        Assert.That(maps.Sum(), Is.EqualTo(1f).Within(1e-4f));
    }

    [Test]
    public void WriteReplacesAtomicallyAndRejectsBadRows()
    {
        var set = SyntheticSet(2);
        var data = MixupFigurePipeline.Run(set, [0, 1], ClassNames, BlobGradient(2), [50, 50], 0.5f, new Rng(1));
        string dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, "mixup-figure-atomic");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        string path = Path.Combine(dir, "fig.png");
        Directory.CreateDirectory(dir);
        File.WriteAllText(path, "old");
        MixupFigure.Write(path, data, rows: 2, scale: 2);
        Assert.That(File.ReadAllBytes(path).AsSpan(0, 8).ToArray(), Is.EqualTo(PngSignature));
        Assert.That(Directory.GetFiles(dir), Has.Length.EqualTo(1), "no temporary file is left beside the figure");
        Assert.Throws<ArgumentOutOfRangeException>(() => MixupFigure.Write(path, data, rows: 3));
        Assert.Throws<ArgumentException>(() => MixupFigure.Write(path, data with { Perm = [0, 2] }, rows: 1));
    }

    [Test]
    public void ViridisRunsFromDarkPurpleToYellow()
    {
        Assert.That(Colormap.Viridis(0), Is.EqualTo(((byte)68, (byte)1, (byte)84)));
        Assert.That(Colormap.Viridis(1), Is.EqualTo(((byte)253, (byte)231, (byte)37)));
        Assert.That(Colormap.Viridis(float.NaN), Is.EqualTo(Colormap.Viridis(0)));
        double Luma((byte R, byte G, byte B) c) => 0.299 * c.R + 0.587 * c.G + 0.114 * c.B;
        for (int i = 1; i <= 100; i++) Assert.That(Luma(Colormap.Viridis(i / 100f)), Is.GreaterThan(Luma(Colormap.Viridis((i - 1) / 100f)) - 0.5));
    }

    // ---- helpers

    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly string[] ClassNames = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    private static void CheckFigure(MixupFigureData data, int rows, string name)
    {
        string path = Path.Combine(TestContext.CurrentContext.WorkDirectory, name);
        var layout = MixupFigure.Write(path, data, rows, Scale);
        // Layout: 5 panels of 32·4 = 128 px with 8 px margins and gaps; a header and one row of panel + captions per sample.
        int expectW = 2 * 8 + 5 * 128 + 4 * 8, expectH = MixupFigureLayout.HeaderHeight + rows * (128 + MixupFigureLayout.CaptionHeight) + 8;
        Assert.That((layout.Width, layout.Height), Is.EqualTo((expectW, expectH)));

        byte[] png = File.ReadAllBytes(path);
        TestContext.Out.WriteLine($"{path}: {png.Length} bytes, {expectW}×{expectH}");
        Assert.That(png.AsSpan(0, 8).ToArray(), Is.EqualTo(PngSignature), "PNG signature");
        Assert.That(BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(8)), Is.EqualTo(13), "IHDR length");
        Assert.That(System.Text.Encoding.ASCII.GetString(png, 12, 4), Is.EqualTo("IHDR"));
        Assert.That(BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), Is.EqualTo(expectW), "IHDR width");
        Assert.That(BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)), Is.EqualTo(expectH), "IHDR height");
        Assert.That(System.Text.Encoding.ASCII.GetString(png, png.Length - 8, 4), Is.EqualTo("IEND"), "the file ends with IEND");
        // Five 128×128 panels per row of image content: well above 10 KB once compressed, far below the raw RGBA size.
        Assert.That(png.Length, Is.InRange(10_000, expectW * expectH * 4));

        using var bitmap = SKBitmap.Decode(png);
        Assert.That(bitmap, Is.Not.Null, "SkiaSharp decodes the file");
        Assert.That((bitmap.Width, bitmap.Height), Is.EqualTo((expectW, expectH)));
        var colours = new HashSet<uint>();
        int white = 0;
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                colours.Add((uint)c);
                if (c == SKColors.White) white++;
            }
        Assert.That(colours.Count, Is.GreaterThan(500), "many distinct colours");
        Assert.That(white, Is.LessThan(bitmap.Width * bitmap.Height * 6 / 10), "mostly panels, not blank");
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < MixupFigureLayout.Panels; c++)
                Assert.That(DistinctIn(bitmap, layout.Panel(r, c)), Is.GreaterThan(1), $"panel {c} of row {r} is not flat");
        // Panel 4: only the three region colours, shaded; its hue set is one of them at every pixel.
        var region = layout.Panel(0, 3);
        var centre = bitmap.GetPixel((int)region.MidX, (int)region.MidY);
        Assert.That(new[] { MixupFigure.BlendColor, MixupFigure.FromX1Color, MixupFigure.FromX2Color }.Any(k => SameHue(k, centre)), $"region colour {centre}");
    }

    private static int DistinctIn(SKBitmap bitmap, SKRect r)
    {
        var set = new HashSet<uint>();
        for (int y = (int)r.Top; y < (int)r.Bottom; y++)
            for (int x = (int)r.Left; x < (int)r.Right; x++) set.Add((uint)bitmap.GetPixel(x, y));
        return set.Count;
    }

    private static bool SameHue(SKColor a, SKColor b)
    {
        a.ToHsv(out float ha, out _, out _);
        b.ToHsv(out float hb, out _, out _);
        return Math.Abs(ha - hb) < 3;
    }

    /// <summary>Colourful synthetic images: a diagonal gradient with a disc whose colour and place vary by image.</summary>
    private static ImageSet SyntheticSet(int n)
    {
        var px = new byte[n * ImageSet.ImageBytes];
        var labels = new byte[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = (byte)(i * 3 % 10);
            int cy = 8 + 5 * i % 16, cx = 24 - 3 * i % 16;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                    {
                        bool disc = (y - cy) * (y - cy) + (x - cx) * (x - cx) < 49;
                        int v = disc ? (c == i % 3 ? 230 : 40) : (x * 4 * (c + 1) + y * 3 * (3 - c) + 40 * i) % 256;
                        px[(i * 3 + c) * 1024 + y * 32 + x] = (byte)v;
                    }
        }
        return new ImageSet(px, labels, 10);
    }

    /// <summary>An input gradient with a Gaussian blob per image (plus small noise), so the masks differ between images.</summary>
    private static float[] BlobGradient(int n)
    {
        var rng = new Rng(9);
        var g = new float[n * 3 * 1024];
        for (int i = 0; i < n; i++)
        {
            double cy = 6 + 19.0 * (i % 3) / 2, cx = 6 + 19.0 * (i / 3 % 2);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                        g[(i * 3 + c) * 1024 + y * 32 + x] = (float)(Math.Exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / 40.0) + 0.05 * rng.Normal());
        }
        return g;
    }

    /// <summary>∂loss/∂x of a width-16 PreActResNet18 (fresh weights, training-mode BN) on the images' one-hot labels.</summary>
    private static float[] InputGradient(ImageSet set, int[] indices)
    {
        var cpu = new CpuBackend();
        var store = new ParameterStore();
        var model = new PreActResNet18(store, width: 16, classes: set.Classes);
        store.Materialize(cpu, new Rng(0));
        using var x = cpu.Allocate(new Shape(indices.Length, 3, 32, 32));
        Normalisation.ToFloat(set, indices, x.Span);
        using var t = cpu.Allocate(new Shape(indices.Length, set.Classes));
        var oneHot = new float[t.Length];
        for (int i = 0; i < indices.Length; i++) oneHot[i * set.Classes + set.Labels[indices[i]]] = 1;
        t.CopyFrom(oneHot);
        var loss = new SoftTargetLoss();
        loss.Forward(model.Forward(x, Mode.Train), t);
        var dx = model.Backward(loss.Backward(), weightGrads: false, inputGrad: true) ?? throw new InvalidOperationException("no input gradient");
        return dx.ToArray();
    }
}
