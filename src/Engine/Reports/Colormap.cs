namespace RlMixup.Engine.Reports;

/// <summary>
/// Viridis, the perceptually uniform colormap of van der Walt and Smith (matplotlib's default),
/// as its nine colours at t = 0, 1/8, …, 1 with linear interpolation between them in sRGB. Nine stops
/// keep the lightness monotone and the hue path of the full 256-entry table to within a few levels,
/// plenty for a 16×16 heat map.
/// </summary>
public static class Colormap
{
    private static readonly (byte R, byte G, byte B)[] ViridisStops =
    [
        (68, 1, 84), (72, 40, 120), (62, 73, 137), (49, 104, 142), (38, 130, 142),
        (31, 158, 137), (53, 183, 121), (109, 205, 89), (253, 231, 37),
    ];

    /// <summary>The viridis colour of t in [0, 1]; values outside are clamped, NaN maps to 0.</summary>
    public static (byte R, byte G, byte B) Viridis(float t)
    {
        if (!(t > 0)) t = 0;
        if (t > 1) t = 1;
        float pos = t * (ViridisStops.Length - 1);
        int lo = Math.Min((int)pos, ViridisStops.Length - 2);
        float f = pos - lo;
        var (a, b) = (ViridisStops[lo], ViridisStops[lo + 1]);
        return (Lerp(a.R, b.R, f), Lerp(a.G, b.G, f), Lerp(a.B, b.B, f));
    }

    private static byte Lerp(byte a, byte b, float f) => (byte)MathF.Round(a + (b - a) * f);
}
