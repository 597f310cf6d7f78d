using System.Globalization;
using SkiaSharp;

namespace RlMixup.Engine.Reports;

/// <summary>
/// Where everything sits in the figure: a header row of panel titles, then one row per sample of
/// five H·S × W·S panels (S: the integer upscale factor), each with a caption of up to three lines
/// under it.
/// </summary>
public readonly record struct MixupFigureLayout(int Rows, int ImageHeight, int ImageWidth, int Scale)
{
    public const int Panels = 5, Margin = 8, Gap = 8, LineHeight = 14, HeaderHeight = 2 * LineHeight + 12, CaptionHeight = 3 * LineHeight + 6;

    public int PanelWidth => ImageWidth * Scale;
    public int PanelHeight => ImageHeight * Scale;
    public int Width => 2 * Margin + Panels * PanelWidth + (Panels - 1) * Gap;
    public int Height => HeaderHeight + Rows * (PanelHeight + CaptionHeight) + Margin;

    public int PanelLeft(int col) => Margin + col * (PanelWidth + Gap);
    public int PanelTop(int row) => HeaderHeight + row * (PanelHeight + CaptionHeight);
    public SKRect Panel(int row, int col) => SKRect.Create(PanelLeft(col), PanelTop(row), PanelWidth, PanelHeight);
}

/// <summary>
/// The figure of the paper's Appendix B, one row per sample, five panels: (1) the original image;
/// (2) its p×p saliency as a viridis heat map; (3) the cells kept by the threshold, s ≥ t, in colour
/// over a dimmed image; (4) where eq. 3 blends (m1 == m2) and where it copies from x1 or from x2;
/// (5) the mixed image, captioned with the top-3 classes of its soft label.
/// </summary>
public static class MixupFigure
{
    // Region colours of panel 4 (ColorBrewer Dark2, distinguishable under the common colour-vision deficiencies).
    public static readonly SKColor BlendColor = new(117, 112, 179), FromX1Color = new(217, 95, 2), FromX2Color = new(27, 158, 119);

    private static readonly string[] Titles = ["original x1", "saliency s", "kept cells s ≥ t", "mix regions", "mixed x′ and y′"];

    /// <summary>
    /// Renders the first <paramref name="rows"/> samples of <paramref name="data"/> with panels upscaled
    /// <paramref name="scale"/>× (nearest) and writes a PNG to <paramref name="path"/> atomically: the
    /// bytes go to a temporary file in the same folder, which then replaces the target, so a reader
    /// never sees a half-written figure. Returns the layout used.
    /// </summary>
    public static MixupFigureLayout Write(string path, MixupFigureData data, int rows, int scale = 4)
    {
        byte[] png = Render(data, rows, scale, out var layout);
        WriteAtomically(path, png);
        return layout;
    }

    /// <summary>The figure as PNG bytes.</summary>
    public static byte[] Render(MixupFigureData data, int rows, int scale, out MixupFigureLayout layout)
    {
        data.Validate();
        if (rows < 1 || rows > data.Batch) throw new ArgumentOutOfRangeException(nameof(rows), $"rows must be in 1..{data.Batch}, got {rows}");
        if (scale < 1 || scale > 64) throw new ArgumentOutOfRangeException(nameof(scale), $"scale must be in 1..64, got {scale}");
        layout = new MixupFigureLayout(rows, data.Height, data.Width, scale);

        using var bitmap = new SKBitmap(new SKImageInfo(layout.Width, layout.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        using (var text = new Text())
        {
            canvas.Clear(SKColors.White);
            DrawHeader(canvas, text, layout, data.Cells);
            for (int r = 0; r < rows; r++) DrawRow(canvas, text, layout, data, r);
        }
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException("mixup figure: the PNG encoder returned nothing");
        return encoded.ToArray();
    }

    /// <summary>Writes bytes to a sibling temporary file, then moves it over <paramref name="path"/>.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> bytes) => RlMixup.Core.IO.AtomicFile.Write(path, bytes);

    private static void DrawHeader(SKCanvas canvas, Text text, MixupFigureLayout l, int p)
    {
        for (int c = 0; c < MixupFigureLayout.Panels; c++)
            text.Draw(canvas, c == 1 ? $"{Titles[c]} ({p}×{p})" : Titles[c], l.PanelLeft(c), MixupFigureLayout.LineHeight, l.PanelWidth, bold: true);
        float y2 = 2 * MixupFigureLayout.LineHeight + 2;
        // Panel 2: a colour bar, low to high.
        var bar = new byte[64 * 4];
        for (int i = 0; i < 64; i++) Put(bar, i, Colormap.Viridis(i / 63f));
        float barLeft = l.PanelLeft(1), barWidth = Math.Min(l.PanelWidth - 28, 96);
        DrawPixels(canvas, bar, 64, 1, SKRect.Create(barLeft + 22, y2 - 9, Math.Max(1, barWidth - 22), 9));
        text.Draw(canvas, "low", barLeft, y2, 22);
        text.Draw(canvas, "high", barLeft + barWidth + 3, y2, l.PanelWidth - barWidth - 3);
        // Panel 4: the legend of the three regions.
        (SKColor Color, string Label)[] legend = [(BlendColor, "blend"), (FromX1Color, "x1"), (FromX2Color, "x2")];
        float x = l.PanelLeft(3);
        using var swatch = new SKPaint { IsAntialias = false };
        foreach (var (color, label) in legend)
        {
            swatch.Color = color;
            canvas.DrawRect(SKRect.Create(x, y2 - 9, 9, 9), swatch);
            float w = text.Draw(canvas, label, x + 12, y2, l.PanelLeft(4) - x - 12);
            x += 12 + w + 8;
        }
    }

    private static void DrawRow(SKCanvas canvas, Text text, MixupFigureLayout l, MixupFigureData d, int i)
    {
        int h = d.Height, w = d.Width, p = d.Cells, j = d.Perm[i];
        var maps = d.Maps.AsSpan(i * p * p, p * p);
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (float v in maps) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }

        DrawPixels(canvas, Rgb(d.Originals, i, h, w), w, h, l.Panel(i, 0));
        DrawPixels(canvas, Heat(maps, lo, hi), p, p, l.Panel(i, 1));
        DrawPixels(canvas, Kept(d, i), w, h, l.Panel(i, 2));
        var (regions, inter, only1, only2) = Regions(d, i);
        DrawPixels(canvas, regions, w, h, l.Panel(i, 3));
        DrawPixels(canvas, Rgb(d.Mixed, i, h, w), w, h, l.Panel(i, 4));

        int kept = 0;
        foreach (float m in d.Masks.AsSpan(i * p * p, p * p)) if (m != 0) kept++;
        float l1 = d.Lambda1[d.Lambda1.Length == 1 ? 0 : i];
        string label = d.Labels is { } labels ? $" {Name(d, labels[i])}" : "";
        string q = d.Percentiles is { } qs ? $"q = {F(qs[i], "0.#")}" : "threshold";
        int plane = h * w;
        Caption(canvas, text, l, i, 0, [$"#{i}{label}", $"partner #{j}"]);
        Caption(canvas, text, l, i, 1, [$"min {F(lo, "0.0000")}", $"max {F(hi, "0.0000")}"]);
        Caption(canvas, text, l, i, 2, [q, $"{kept}/{p * p} cells kept"]);
        Caption(canvas, text, l, i, 3, [$"blend {Pct(inter, plane)}", $"x1 {Pct(only1, plane)}  x2 {Pct(only2, plane)}", $"λ1 = {F(l1, "0.00")}"]);
        Caption(canvas, text, l, i, 4, [.. TopClasses(d.MixedTargets.AsSpan(i * d.Classes, d.Classes), 3).Select(c => $"{Name(d, c.Class)} {F(c.Weight, "0.00")}")]);
    }

    private static void Caption(SKCanvas canvas, Text text, MixupFigureLayout l, int row, int col, string[] lines)
    {
        float top = l.PanelTop(row) + l.PanelHeight + 2;
        for (int k = 0; k < lines.Length && k < 3; k++)
            text.Draw(canvas, lines[k], l.PanelLeft(col), top + (k + 1) * MixupFigureLayout.LineHeight, l.PanelWidth);
    }

    /// <summary>The <paramref name="n"/> largest entries of a soft label, heaviest first (ties: lower class first).</summary>
    public static (int Class, float Weight)[] TopClasses(ReadOnlySpan<float> y, int n)
    {
        var all = new (int Class, float Weight)[y.Length];
        for (int c = 0; c < y.Length; c++) all[c] = (c, y[c]);
        Array.Sort(all, (a, b) => a.Weight != b.Weight ? b.Weight.CompareTo(a.Weight) : a.Class.CompareTo(b.Class));
        return all[..Math.Min(n, all.Length)];
    }

    // ---- panel pixels, RGBA at the source resolution

    private static byte[] Rgb(byte[] chw, int i, int h, int w)
    {
        int plane = h * w, at = i * 3 * plane;
        var px = new byte[plane * 4];
        for (int k = 0; k < plane; k++) Put(px, k, (chw[at + k], chw[at + plane + k], chw[at + 2 * plane + k]));
        return px;
    }

    private static byte[] Heat(ReadOnlySpan<float> maps, float lo, float hi)
    {
        var px = new byte[maps.Length * 4];
        float range = hi - lo;
        for (int k = 0; k < maps.Length; k++) Put(px, k, Colormap.Viridis(range > 0 ? (maps[k] - lo) / range : 0.5f));
        return px;
    }

    /// <summary>Cells with m = 1 in full colour; the rest as a dimmed grey, so the kept region stands out.</summary>
    private static byte[] Kept(MixupFigureData d, int i)
    {
        int h = d.Height, w = d.Width, plane = h * w, at = i * 3 * plane;
        var px = new byte[plane * 4];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int k = y * w + x;
                byte r = d.Originals[at + k], g = d.Originals[at + plane + k], b = d.Originals[at + 2 * plane + k];
                if (CellMask(d, i, y, x)) Put(px, k, (r, g, b));
                else { byte grey = (byte)(0.3f * (0.299f * r + 0.587f * g + 0.114f * b)); Put(px, k, (grey, grey, grey)); }
            }
        return px;
    }

    /// <summary>Eq. 3's regions: blended where m1 == m2, copied from x1 where only m1, from x2 where only m2.
    /// The region colour is shaded by the mixed image's luminance so the content stays readable.</summary>
    private static (byte[] Pixels, int Inter, int Only1, int Only2) Regions(MixupFigureData d, int i)
    {
        int h = d.Height, w = d.Width, plane = h * w, at = i * 3 * plane, j = d.Perm[i];
        int inter = 0, only1 = 0, only2 = 0;
        var px = new byte[plane * 4];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int k = y * w + x;
                bool m1 = CellMask(d, i, y, x), m2 = CellMask(d, j, y, x);
                SKColor c = m1 == m2 ? BlendColor : m1 ? FromX1Color : FromX2Color;
                if (m1 == m2) inter++; else if (m1) only1++; else only2++;
                float luma = (0.299f * d.Mixed[at + k] + 0.587f * d.Mixed[at + plane + k] + 0.114f * d.Mixed[at + 2 * plane + k]) / 255f;
                float shade = 0.65f + 0.35f * luma;
                Put(px, k, ((byte)(c.Red * shade), (byte)(c.Green * shade), (byte)(c.Blue * shade)));
            }
        return (px, inter, only1, only2);
    }

    /// <summary>The nearest-neighbour upsampled mask of image i at pixel (y, x), as MixupReference.UpsampleNearest.</summary>
    private static bool CellMask(MixupFigureData d, int i, int y, int x) =>
        d.Masks[(i * d.Cells + y * d.Cells / d.Height) * d.Cells + x * d.Cells / d.Width] != 0;

    private static void Put(byte[] px, int k, (byte R, byte G, byte B) c)
    {
        px[4 * k] = c.R; px[4 * k + 1] = c.G; px[4 * k + 2] = c.B; px[4 * k + 3] = 255;
    }

    /// <summary>Draws RGBA pixels (w×h) into dest, scaled by nearest neighbour (no smoothing of the cells).</summary>
    private static void DrawPixels(SKCanvas canvas, byte[] rgba, int w, int h, SKRect dest)
    {
        using var image = SKImage.FromPixelCopy(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque), rgba)
            ?? throw new InvalidOperationException($"mixup figure: could not wrap a {w}×{h} panel");
        canvas.DrawImage(image, dest, new SKSamplingOptions(SKFilterMode.Nearest, SKMipmapMode.None));
    }

    private static string Name(MixupFigureData d, int c) => (uint)c < (uint)d.Classes ? d.ClassNames[c] : $"class {c}";
    private static string F(float v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
    private static string Pct(int n, int total) => (100f * n / total).ToString("0", CultureInfo.InvariantCulture) + "%";

    /// <summary>The caption font: DejaVu Sans where installed, else the platform default.</summary>
    private sealed class Text : IDisposable
    {
        private readonly SKTypeface _regular, _bold;
        private readonly SKFont _font, _boldFont;
        private readonly SKPaint _paint = new() { Color = new SKColor(32, 32, 32), IsAntialias = true };

        public Text()
        {
            _regular = SKFontManager.Default.MatchFamily("DejaVu Sans") ?? SKTypeface.Default;
            _bold = SKFontManager.Default.MatchFamily("DejaVu Sans", SKFontStyle.Bold) ?? _regular;
            _font = new SKFont(_regular, 11);
            _boldFont = new SKFont(_bold, 11);
        }

        /// <summary>Draws one line with its baseline at y, clipped to [x, x + maxWidth); returns its width.</summary>
        public float Draw(SKCanvas canvas, string s, float x, float y, float maxWidth, bool bold = false)
        {
            var font = bold ? _boldFont : _font;
            canvas.Save();
            canvas.ClipRect(SKRect.Create(x, y - MixupFigureLayout.LineHeight, Math.Max(0, maxWidth), MixupFigureLayout.LineHeight + 4));
            canvas.DrawText(s, x, y, SKTextAlign.Left, font, _paint);
            canvas.Restore();
            return font.MeasureText(s);
        }

        public void Dispose()
        {
            // The typefaces may be the process-wide default: left to the font manager, not disposed.
            _font.Dispose(); _boldFont.Dispose(); _paint.Dispose();
        }
    }
}
