namespace RlMixup.Core.IO;

/// <summary>
/// Integers and doubles stored exactly in float32 tensors (the RLMT format holds only float32):
/// each 64-bit word is split into four 16-bit limbs, least significant first, each exact as a float.
/// </summary>
public static class ExactFloats
{
    public static float[] ToLimbs(ReadOnlySpan<ulong> words)
    {
        var limbs = new float[words.Length * 4];
        for (int w = 0; w < words.Length; w++)
            for (int k = 0; k < 4; k++) limbs[w * 4 + k] = (ushort)(words[w] >> (16 * k));
        return limbs;
    }

    public static ulong[] FromLimbs(ReadOnlySpan<float> limbs, string name)
    {
        if (limbs.Length % 4 != 0) throw new InvalidDataException($"checkpoint: '{name}' holds {limbs.Length} limbs, not a multiple of 4");
        var words = new ulong[limbs.Length / 4];
        for (int w = 0; w < words.Length; w++)
            for (int k = 0; k < 4; k++)
            {
                float v = limbs[w * 4 + k];
                if (!(v >= 0 && v <= ushort.MaxValue && v == MathF.Floor(v)))
                    throw new InvalidDataException($"checkpoint: '{name}' holds {v}, not a 16-bit limb");
                words[w] |= (ulong)v << (16 * k);
            }
        return words;
    }

    public static float[] FromLong(long v) => ToLimbs([(ulong)v]);
    public static long ToLong(ReadOnlySpan<float> limbs, string name) => (long)FromLimbs(limbs, name)[0];
    public static float[] FromDouble(double v) => ToLimbs([BitConverter.DoubleToUInt64Bits(v)]);
    public static double ToDouble(ReadOnlySpan<float> limbs, string name) => BitConverter.UInt64BitsToDouble(FromLimbs(limbs, name)[0]);
}
