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
