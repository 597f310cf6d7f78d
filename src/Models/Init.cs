using System.Numerics;
using RlMixup.Core;

namespace RlMixup.Models;

/// <summary>How a model tensor is initialised. Draws come from the store's single seeded Rng.</summary>
public abstract record Init
{
    public abstract void Fill(Span<float> dst, Shape shape, Rng rng);

    public static Init Constant(float value) => new ConstantInit(value);

    /// <summary>
    /// PyTorch's default for Conv2d/Linear weights: kaiming_uniform_(a=√5), i.e. U(−b, b) with
    /// b = gain·√(3/fan_in), gain = √(2/(1+5)) — which simplifies to b = 1/√fan_in.
    /// fan_in = in_channels·kH·kW for conv (OIHW), in_features for linear.
    /// </summary>
    public static Init KaimingUniform(int fanIn) => new UniformInit(1.0 / Math.Sqrt(fanIn));

    /// <summary>PyTorch's default for Conv2d/Linear biases: U(−1/√fan_in, 1/√fan_in).</summary>
    public static Init BiasUniform(int fanIn) => new UniformInit(1.0 / Math.Sqrt(fanIn));

    /// <summary>
    /// PyTorch's orthogonal_(gain), as Stable-Baselines3 initialises its policies: the tensor is viewed
    /// as (rows = dim 0, cols = the rest), so a conv weight (O,C,kH,kW) is (O, C·kH·kW); it becomes
    /// gain·Q with Q having orthonormal rows (rows ≤ cols) or orthonormal columns (rows &gt; cols).
    /// </summary>
    public static Init Orthogonal(double gain) => new OrthogonalInit(gain);
}

public sealed record ConstantInit(float Value) : Init
{
    public override void Fill(Span<float> dst, Shape shape, Rng rng) => dst.Fill(Value);
}

public sealed record UniformInit(double Bound) : Init
{
    public override void Fill(Span<float> dst, Shape shape, Rng rng)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)rng.Uniform(-Bound, Bound);
    }
}

/// <summary>
/// Orthogonal init computed on the host in double. Following torch.nn.init.orthogonal_: draw a
/// (rows × cols) standard-normal matrix, transpose it when it is wide, take the QR factorisation of
/// the tall (m × n, m ≥ n) matrix and make the diagonal of R positive by flipping the signs of Q's
/// columns; transpose back and scale by gain. Gram–Schmidt yields R with a positive diagonal by
/// construction, i.e. exactly the sign-fixed Q, so it is used here: modified Gram–Schmidt, whose loss
/// of orthogonality is ~ε·κ(A); Gaussian matrices are well conditioned (κ ≈ (√m+√n)/(√m−√n) when
/// tall), so QᵀQ = I holds far below float32 resolution.
/// </summary>
public sealed record OrthogonalInit(double Gain) : Init
{
    public override void Fill(Span<float> dst, Shape shape, Rng rng)
    {
        if (shape.Rank < 2) throw new ArgumentException($"orthogonal init needs a tensor of rank ≥ 2, got {shape}");
        int rows = shape[0], cols = shape.Size / rows;
        var g = new double[rows * cols]; // (rows, cols), row-major, drawn in that order
        for (int i = 0; i < g.Length; i++) g[i] = rng.Normal();
        bool wide = rows < cols;
        int m = wide ? cols : rows, n = wide ? rows : cols; // the tall matrix A (m × n)
        // Columns of A as contiguous vectors: column j of A is row j of g when wide, column j of g otherwise.
        var q = new double[n][];
        for (int j = 0; j < n; j++)
        {
            var col = new double[m];
            for (int i = 0; i < m; i++) col[i] = wide ? g[j * cols + i] : g[i * cols + j];
            q[j] = col;
        }
        for (int j = 0; j < n; j++)
        {
            var v = q[j];
            for (int k = 0; k < j; k++) Axpy(v, -Dot(q[k], v), q[k]);
            double norm = Math.Sqrt(Dot(v, v));
            if (norm == 0) throw new InvalidOperationException("orthogonal init: a rank-deficient Gaussian draw");
            for (int i = 0; i < m; i++) v[i] /= norm;
        }
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                dst[r * cols + c] = (float)(Gain * (wide ? q[r][c] : q[c][r]));
    }

    private static double Dot(double[] a, double[] b)
    {
        var acc = Vector<double>.Zero;
        int i = 0, w = Vector<double>.Count;
        for (; i <= a.Length - w; i += w) acc += new Vector<double>(a, i) * new Vector<double>(b, i);
        double s = Vector.Sum(acc);
        for (; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>y += alpha·x.</summary>
    private static void Axpy(double[] y, double alpha, double[] x)
    {
        var va = new Vector<double>(alpha);
        int i = 0, w = Vector<double>.Count;
        for (; i <= y.Length - w; i += w) (new Vector<double>(y, i) + va * new Vector<double>(x, i)).CopyTo(y, i);
        for (; i < y.Length; i++) y[i] += alpha * x[i];
    }
}
