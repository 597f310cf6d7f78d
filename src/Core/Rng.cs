namespace RlMixup.Core;

/// <summary>
/// The engine's seeded random number generator: xoshiro256** seeded through splitmix64.
/// One instance feeds initialisation (and later shuffling, mixing and sampling) so that a run is
/// reproducible from its seed. The state is four ulongs and can be saved and restored exactly.
/// </summary>
public sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;

    public Rng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextULong()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [lo, hi).</summary>
    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n) without modulo bias (Lemire's method).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), "n must be positive");
        ulong bound = (ulong)n;
        UInt128 m = (UInt128)NextULong() * bound;
        ulong low = (ulong)m;
        if (low < bound)
        {
            ulong threshold = (0UL - bound) % bound;
            while (low < threshold) { m = (UInt128)NextULong() * bound; low = (ulong)m; }
        }
        return (int)(m >> 64);
    }

    /// <summary>Standard normal by the Box–Muller transform (one value per call, no cached spare).</summary>
    public double Normal()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>A uniformly random permutation of 0..n-1 (Fisher–Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) { int j = NextInt(i + 1); (p[i], p[j]) = (p[j], p[i]); }
        return p;
    }

    /// <summary>
    /// Gamma(shape, 1) by Marsaglia and Tsang (2000): for shape ≥ 1, d = shape − 1/3, c = 1/√(9d),
    /// repeat v = (1 + c·z)³ with z ~ N(0,1) until log u &lt; z²/2 + d − d·v + d·log v, return d·v.
    /// For shape &lt; 1 the boost Gamma(shape) = Gamma(shape + 1)·u^(1/shape) applies.
    /// </summary>
    public double Gamma(double shape)
    {
        if (!(shape > 0) || double.IsInfinity(shape)) throw new ArgumentOutOfRangeException(nameof(shape), $"gamma shape must be positive and finite, got {shape}");
        if (shape < 1)
        {
            double u = 1.0 - NextDouble(); // (0, 1]
            return Gamma(shape + 1) * Math.Pow(u, 1.0 / shape);
        }
        double d = shape - 1.0 / 3.0, c = 1.0 / Math.Sqrt(9 * d);
        while (true)
        {
            double z, v;
            do { z = Normal(); v = 1 + c * z; } while (v <= 0);
            v = v * v * v;
            double u = 1.0 - NextDouble();
            if (Math.Log(u) < 0.5 * z * z + d - d * v + d * Math.Log(v)) return d * v;
        }
    }

    /// <summary>Beta(a, b) as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b).</summary>
    public double Beta(double a, double b)
    {
        double x = Gamma(a), y = Gamma(b);
        return x + y > 0 ? x / (x + y) : (NextDouble() < a / (a + b) ? 1.0 : 0.0);
    }

    /// <summary>Dirichlet(α) as normalised independent gammas, written into <paramref name="dst"/>.</summary>
    public void Dirichlet(ReadOnlySpan<double> alpha, Span<double> dst)
    {
        if (alpha.Length != dst.Length || alpha.Length == 0) throw new ArgumentException("dirichlet: alpha and output must have the same, positive length");
        double sum = 0;
        for (int i = 0; i < alpha.Length; i++) sum += dst[i] = Gamma(alpha[i]);
        if (sum > 0) for (int i = 0; i < dst.Length; i++) dst[i] /= sum;
        else { dst.Clear(); dst[NextInt(dst.Length)] = 1; } // all gammas underflowed: a vertex, as the limit
    }

    public ulong[] GetState() => [_s0, _s1, _s2, _s3];

    public void SetState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 4) throw new ArgumentException("an Rng state is 4 ulongs");
        if ((state[0] | state[1] | state[2] | state[3]) == 0) throw new ArgumentException("an all-zero Rng state is invalid");
        (_s0, _s1, _s2, _s3) = (state[0], state[1], state[2], state[3]);
    }
}
