using System.Globalization;
using SkiaSharp;

namespace RlMixup.Engine.Reports;

/// <summary>
/// The run folder's plots, redrawn from the whole metrics history after every epoch and written
/// atomically (a viewer never sees a half-written PNG): <see cref="WriteCurves"/>, train loss and
/// test top-1 against the epoch, and <see cref="WriteActionHeatmap"/>, the share of each of the
/// agent's actions per epoch.
/// </summary>
public static class TrainingPlots
{
    public const int Actions = 10;
    private static readonly SKColor LossColor = new(217, 95, 2), AccuracyColor = new(27, 158, 119), Ink = new(32, 32, 32), Grid = new(225, 225, 225);

    public static void WriteCurves(string path, IReadOnlyList<EpochMetrics> epochs, int width = 900, int height = 420) =>
        MixupFigure.WriteAtomically(path, RenderCurves(epochs, width, height));

    public static void WriteActionHeatmap(string path, IReadOnlyList<EpochMetrics> epochs, int width = 900, int height = 360) =>
        MixupFigure.WriteAtomically(path, RenderActionHeatmap(epochs, width, height));

    /// <summary>Two panels side by side: train loss, and test top-1 in percent, each against the epoch.</summary>
    public static byte[] RenderCurves(IReadOnlyList<EpochMetrics> epochs, int width = 900, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        CheckSize(width, height);
        return Render(width, height, (canvas, ink) =>
        {
            float half = width / 2f;
            var xs = epochs.Select(e => (double)e.Epoch).ToArray();
            Panel(canvas, ink, SKRect.Create(0, 0, half, height), "train loss", "epoch", "loss", xs, [.. epochs.Select(e => e.TrainLoss)], LossColor, fixedRange: null);
            Panel(canvas, ink, SKRect.Create(half, 0, width - half, height), "test top-1", "epoch", "top-1 (%)", xs,
                [.. epochs.Select(e => 100 * e.TestTop1)], AccuracyColor, fixedRange: null);
        });
    }

    /// <summary>
    /// Actions (rows, 0 at the bottom) × epochs (columns), each column the epoch's action counts divided
    /// by their sum; viridis from 0 to the largest share, with a colour bar.
    /// </summary>
    public static byte[] RenderActionHeatmap(IReadOnlyList<EpochMetrics> epochs, int width = 900, int height = 360)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        CheckSize(width, height);
        foreach (var e in epochs)
            if (e.ActionHist.Length != Actions) throw new ArgumentException($"epoch {e.Epoch}: action_hist has {e.ActionHist.Length} counts, expected {Actions}");
        var share = new double[epochs.Count, Actions];
        double max = 0;
        for (int j = 0; j < epochs.Count; j++)
        {
            double sum = epochs[j].ActionHist.Sum(c => (double)c);
            for (int a = 0; a < Actions; a++)
            {
                share[j, a] = sum > 0 ? epochs[j].ActionHist[a] / sum : 0;
                max = Math.Max(max, share[j, a]);
            }
        }
        if (max <= 0) max = 1;
        return Render(width, height, (canvas, ink) =>
        {
            const float left = 56, top = 30, bottom = 44, barWidth = 14, barGap = 16, barLabels = 44;
            var plot = new SKRect(left, top, width - barGap - barWidth - barLabels, height - bottom);
            ink.Title(canvas, "action distribution per epoch (share of the epoch's choices)", left, top - 10);
            using var fill = new SKPaint { IsAntialias = false, Style = SKPaintStyle.Fill };
            int n = epochs.Count;
            float cw = plot.Width / Math.Max(1, n), ch = plot.Height / Actions;
            for (int j = 0; j < n; j++)
                for (int a = 0; a < Actions; a++)
                {
                    var (r, g, b) = Colormap.Viridis((float)(share[j, a] / max));
                    fill.Color = new SKColor(r, g, b);
                    // Cells overlap by a pixel so that no background seam shows between them.
                    canvas.DrawRect(new SKRect(plot.Left + j * cw, plot.Bottom - (a + 1) * ch, plot.Left + (j + 1) * cw + 1, plot.Bottom - a * ch + 1), fill);
                }
            if (n == 0) ink.Text(canvas, "no epochs yet", plot.MidX, plot.MidY, SKTextAlign.Center);
            using var frame = new SKPaint { Color = Ink, Style = SKPaintStyle.Stroke, StrokeWidth = 1, IsAntialias = false };
            canvas.DrawRect(plot, frame);
            for (int a = 0; a < Actions; a++)
            {
                float y = plot.Bottom - (a + 0.5f) * ch;
                canvas.DrawLine(plot.Left - 4, y, plot.Left, y, frame);
                ink.Text(canvas, a.ToString(CultureInfo.InvariantCulture), plot.Left - 7, y + 4, SKTextAlign.Right);
            }
            ink.Text(canvas, "action", 14, plot.MidY, SKTextAlign.Center, rotate: true);
            if (n > 0)
            {
                double lo = epochs[0].Epoch, hi = epochs[^1].Epoch;
                foreach (double t in NiceTicks(lo, hi, 8))
                {
                    int j = epochs.Select((e, i) => (e, i)).FirstOrDefault(p => p.e.Epoch >= t).i;
                    float x = plot.Left + (j + 0.5f) * cw;
                    canvas.DrawLine(x, plot.Bottom, x, plot.Bottom + 4, frame);
                    ink.Text(canvas, epochs[j].Epoch.ToString(CultureInfo.InvariantCulture), x, plot.Bottom + 16, SKTextAlign.Center);
                }
            }
            ink.Text(canvas, "epoch", plot.MidX, height - 8, SKTextAlign.Center);
            // Colour bar: 0 at the bottom to the largest share at the top.
            var bar = new SKRect(plot.Right + barGap, plot.Top, plot.Right + barGap + barWidth, plot.Bottom);
            for (int i = 0; i < 64; i++)
            {
                var (r, g, b) = Colormap.Viridis((i + 0.5f) / 64);
                fill.Color = new SKColor(r, g, b);
                float y0 = bar.Bottom - (i + 1) * bar.Height / 64, y1 = bar.Bottom - i * bar.Height / 64;
                canvas.DrawRect(new SKRect(bar.Left, y0, bar.Right, y1 + 1), fill);
            }
            canvas.DrawRect(bar, frame);
            foreach (double t in NiceTicks(0, max, 5))
            {
                float y = (float)(bar.Bottom - t / max * bar.Height);
                canvas.DrawLine(bar.Right, y, bar.Right + 3, y, frame);
                ink.Text(canvas, Format(t), bar.Right + 5, y + 4, SKTextAlign.Left);
            }
        });
    }

    private static readonly SKColor[] Palette =
        [new(31, 119, 180), new(255, 127, 14), new(44, 160, 44), new(214, 39, 40), new(148, 103, 189), new(140, 86, 75), new(227, 119, 194), new(127, 127, 127), new(188, 189, 34), new(23, 190, 207)];

    /// <summary>Several series against the epoch, each its mean as a line and a ±std band around it, with a legend.</summary>
    public static void WriteBands(string path, string title, string yLabel, IReadOnlyList<(string Name, (double[] X, double[] Mean, double[] Std) Band)> series,
        int width = 900, int height = 480) => MixupFigure.WriteAtomically(path, RenderBands(title, yLabel, series, width, height));

    public static byte[] RenderBands(string title, string yLabel, IReadOnlyList<(string Name, (double[] X, double[] Mean, double[] Std) Band)> series,
        int width = 900, int height = 480)
    {
        CheckSize(width, height);
        return Render(width, height, (canvas, ink) =>
        {
            var plot = new SKRect(64, 30, width - 170, height - 44);
            ink.Title(canvas, title, plot.Left, 20);
            var all = series.SelectMany(s => s.Band.X.Select((x, i) => (x, lo: s.Band.Mean[i] - s.Band.Std[i], hi: s.Band.Mean[i] + s.Band.Std[i])))
                .Where(p => double.IsFinite(p.lo) && double.IsFinite(p.hi)).ToList();
            using var frame = new SKPaint { Color = Ink, Style = SKPaintStyle.Stroke, StrokeWidth = 1, IsAntialias = false };
            canvas.DrawRect(plot, frame);
            if (all.Count == 0) { ink.Text(canvas, "no finished runs yet", plot.MidX, plot.MidY, SKTextAlign.Center); return; }
            double x0 = all.Min(p => p.x), x1 = Math.Max(all.Max(p => p.x), x0 + 1), y0 = all.Min(p => p.lo), y1 = all.Max(p => p.hi);
            if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
            double pad = 0.05 * (y1 - y0);
            y0 -= pad; y1 += pad;
            float X(double x) => (float)(plot.Left + (x - x0) / (x1 - x0) * plot.Width);
            float Y(double y) => (float)(plot.Bottom - (y - y0) / (y1 - y0) * plot.Height);
            using var grid = new SKPaint { Color = Grid, StrokeWidth = 1, IsAntialias = false };
            foreach (double t in NiceTicks(y0, y1, 6))
            {
                canvas.DrawLine(plot.Left, Y(t), plot.Right, Y(t), grid);
                ink.Text(canvas, Format(t), plot.Left - 7, Y(t) + 4, SKTextAlign.Right);
            }
            foreach (double t in NiceTicks(x0, x1, 8).Where(t => Math.Abs(t - Math.Round(t)) < 1e-9))
                ink.Text(canvas, Format(t), X(t), plot.Bottom + 16, SKTextAlign.Center);
            canvas.DrawRect(plot, frame);
            ink.Text(canvas, "epoch", plot.MidX, height - 8, SKTextAlign.Center);
            ink.Text(canvas, yLabel, 14, plot.MidY, SKTextAlign.Center, rotate: true);
            canvas.Save();
            canvas.ClipRect(plot);
            for (int k = 0; k < series.Count; k++)
            {
                var (xs, mean, std) = series[k].Band;
                var color = Palette[k % Palette.Length];
                using var band = new SKPaint { Color = color.WithAlpha(48), Style = SKPaintStyle.Fill, IsAntialias = true };
                using var line = new SKPaint { Color = color, Style = SKPaintStyle.Stroke, StrokeWidth = 2, IsAntialias = true };
                using var area = new SKPath();
                using var path = new SKPath();
                for (int i = 0; i < xs.Length; i++)
                {
                    if (i == 0) { area.MoveTo(X(xs[i]), Y(mean[i] + std[i])); path.MoveTo(X(xs[i]), Y(mean[i])); }
                    else { area.LineTo(X(xs[i]), Y(mean[i] + std[i])); path.LineTo(X(xs[i]), Y(mean[i])); }
                }
                for (int i = xs.Length - 1; i >= 0; i--) area.LineTo(X(xs[i]), Y(mean[i] - std[i]));
                area.Close();
                canvas.DrawPath(area, band);
                canvas.DrawPath(path, line);
            }
            canvas.Restore();
            for (int k = 0; k < series.Count; k++)
            {
                using var key = new SKPaint { Color = Palette[k % Palette.Length], Style = SKPaintStyle.Fill };
                float y = plot.Top + 10 + 20 * k;
                canvas.DrawRect(new SKRect(plot.Right + 14, y - 6, plot.Right + 30, y + 4), key);
                ink.Text(canvas, series[k].Name, plot.Right + 36, y + 3, SKTextAlign.Left);
            }
        });
    }

    private static void Panel(SKCanvas canvas, PlotInk ink, SKRect area, string title, string xLabel, string yLabel,
        double[] xs, double[] ys, SKColor color, (double Lo, double Hi)? fixedRange)
    {
        var plot = new SKRect(area.Left + 64, area.Top + 30, area.Right - 16, area.Bottom - 44);
        ink.Title(canvas, title, plot.Left, area.Top + 20);
        var pts = xs.Zip(ys).Where(p => double.IsFinite(p.Second)).ToArray();
        double x0 = xs.Length > 0 ? xs.Min() : 0, x1 = xs.Length > 0 ? xs.Max() : 1;
        if (x1 <= x0) x1 = x0 + 1;
        var (y0, y1) = fixedRange ?? (pts.Length > 0 ? (pts.Min(p => p.Second), pts.Max(p => p.Second)) : (0, 1));
        if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
        double pad = 0.05 * (y1 - y0);
        y0 -= pad; y1 += pad;
        float X(double x) => (float)(plot.Left + (x - x0) / (x1 - x0) * plot.Width);
        float Y(double y) => (float)(plot.Bottom - (y - y0) / (y1 - y0) * plot.Height);

        using var grid = new SKPaint { Color = Grid, StrokeWidth = 1, IsAntialias = false };
        using var frame = new SKPaint { Color = Ink, Style = SKPaintStyle.Stroke, StrokeWidth = 1, IsAntialias = false };
        foreach (double t in NiceTicks(y0, y1, 6))
        {
            float y = Y(t);
            canvas.DrawLine(plot.Left, y, plot.Right, y, grid);
            canvas.DrawLine(plot.Left - 4, y, plot.Left, y, frame);
            ink.Text(canvas, Format(t), plot.Left - 7, y + 4, SKTextAlign.Right);
        }
        foreach (double t in NiceTicks(x0, x1, 7).Where(t => Math.Abs(t - Math.Round(t)) < 1e-9))
        {
            float x = X(t);
            canvas.DrawLine(x, plot.Top, x, plot.Bottom, grid);
            canvas.DrawLine(x, plot.Bottom, x, plot.Bottom + 4, frame);
            ink.Text(canvas, Format(t), x, plot.Bottom + 16, SKTextAlign.Center);
        }
        canvas.DrawRect(plot, frame);
        ink.Text(canvas, xLabel, plot.MidX, area.Bottom - 8, SKTextAlign.Center);
        ink.Text(canvas, yLabel, area.Left + 14, plot.MidY, SKTextAlign.Center, rotate: true);
        if (pts.Length == 0) { ink.Text(canvas, "no data yet", plot.MidX, plot.MidY, SKTextAlign.Center); return; }

        using var line = new SKPaint { Color = color, Style = SKPaintStyle.Stroke, StrokeWidth = 2, IsAntialias = true };
        using var dot = new SKPaint { Color = color, Style = SKPaintStyle.Fill, IsAntialias = true };
        canvas.Save();
        canvas.ClipRect(plot);
        using (var path = new SKPath())
        {
            path.MoveTo(X(pts[0].First), Y(pts[0].Second));
            foreach (var (x, y) in pts.Skip(1)) path.LineTo(X(x), Y(y));
            canvas.DrawPath(path, line);
        }
        if (pts.Length <= 60) foreach (var (x, y) in pts) canvas.DrawCircle(X(x), Y(y), 2.5f, dot);
        canvas.Restore();
    }

    /// <summary>Round tick values (1, 2 or 5 × 10^k apart) inside [lo, hi], about <paramref name="target"/> of them.</summary>
    public static IReadOnlyList<double> NiceTicks(double lo, double hi, int target)
    {
        if (!(hi > lo) || target < 1) return double.IsFinite(lo) ? [lo] : [];
        double raw = (hi - lo) / target, mag = Math.Pow(10, Math.Floor(Math.Log10(raw))), step = mag;
        foreach (double m in (double[])[1, 2, 5, 10]) { step = m * mag; if (step >= raw) break; }
        var ticks = new List<double>();
        for (double t = Math.Ceiling(lo / step - 1e-9) * step; t <= hi + 1e-9 * step; t += step)
            ticks.Add(Math.Abs(t) < 1e-12 * step ? 0 : t);
        return ticks;
    }

    private static string Format(double v) => v.ToString(Math.Abs(v) >= 1e4 || (v != 0 && Math.Abs(v) < 1e-3) ? "0.##E0" : "0.####", CultureInfo.InvariantCulture);

    private static void CheckSize(int width, int height)
    {
        if (width < 200 || height < 150 || width > 8192 || height > 8192)
            throw new ArgumentOutOfRangeException(nameof(width), $"plot size must be within 200×150 … 8192×8192, got {width}×{height}");
    }

    private static byte[] Render(int width, int height, Action<SKCanvas, PlotInk> draw)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        using (var ink = new PlotInk())
        {
            canvas.Clear(SKColors.White);
            draw(canvas, ink);
        }
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100) ?? throw new InvalidOperationException("plot: the PNG encoder returned nothing");
        return encoded.ToArray();
    }

    /// <summary>Labels: DejaVu Sans when installed, else the default typeface.</summary>
    private sealed class PlotInk : IDisposable
    {
        private readonly SKFont _font, _titleFont;
        private readonly SKPaint _paint = new() { Color = Ink, IsAntialias = true };

        public PlotInk()
        {
            var regular = SKFontManager.Default.MatchFamily("DejaVu Sans") ?? SKTypeface.Default;
            var bold = SKFontManager.Default.MatchFamily("DejaVu Sans", SKFontStyle.Bold) ?? regular;
            _font = new SKFont(regular, 11);
            _titleFont = new SKFont(bold, 13);
        }

        public void Text(SKCanvas canvas, string s, float x, float y, SKTextAlign align, bool rotate = false)
        {
            if (!rotate) { canvas.DrawText(s, x, y, align, _font, _paint); return; }
            canvas.Save();
            canvas.RotateDegrees(-90, x, y);
            canvas.DrawText(s, x, y + 4, align, _font, _paint);
            canvas.Restore();
        }

        public void Title(SKCanvas canvas, string s, float x, float y) => canvas.DrawText(s, x, y, SKTextAlign.Left, _titleFont, _paint);

        public void Dispose() { _font.Dispose(); _titleFont.Dispose(); _paint.Dispose(); }
    }
}
