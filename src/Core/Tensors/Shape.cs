using System.Collections.Immutable;

namespace RlMixup.Core;

/// <summary>
/// An immutable tensor shape. Tensors are contiguous and row-major, so a 4-D shape is NCHW.
/// Printed as "(2, 3, 32, 32)" so that error messages can name both sides of a mismatch.
/// </summary>
public readonly struct Shape : IEquatable<Shape>
{
    private readonly ImmutableArray<int> _dims;

    public Shape(params int[] dims)
    {
        foreach (int d in dims)
            if (d < 0) throw new ArgumentException($"shape dimensions must be non-negative, got {Format(dims)}");
        _dims = [.. dims];
        long size = 1;
        foreach (int d in dims) size *= d;
        if (size > int.MaxValue) throw new ArgumentException($"shape {Format(dims)} has more than 2^31-1 elements");
        Size = (int)size;
    }

    /// <summary>Number of elements.</summary>
    public int Size { get; }
    public int Rank => _dims.IsDefault ? 0 : _dims.Length;
    public int this[int axis] => _dims[axis < 0 ? axis + Rank : axis];
    public ReadOnlySpan<int> Dims => _dims.AsSpan();

    // NCHW accessors for rank-4 shapes; (N, F) for rank-2.
    public int N => _dims[0];
    public int C => _dims[1];
    public int H => _dims[2];
    public int W => _dims[3];

    public bool Equals(Shape other) => Dims.SequenceEqual(other.Dims);
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (int d in Dims) h.Add(d);
        return h.ToHashCode();
    }
    public static bool operator ==(Shape a, Shape b) => a.Equals(b);
    public static bool operator !=(Shape a, Shape b) => !a.Equals(b);

    public override string ToString() => Format(Dims);

    private static string Format(ReadOnlySpan<int> dims)
    {
        if (dims.Length == 1) return $"({dims[0]},)";
        return "(" + string.Join(", ", dims.ToArray()) + ")";
    }

    public static implicit operator Shape(int[] dims) => new(dims);
}

/// <summary>Thrown when tensors passed to an op do not fit together. The message names both shapes.</summary>
public sealed class ShapeMismatchException(string message) : ArgumentException(message);

/// <summary>Shape checks shared by every backend, so that CPU and CUDA reject the same inputs with the same words.</summary>
public static class Check
{
    /// <summary>Requires <paramref name="actual"/> to equal <paramref name="expected"/>.</summary>
    public static void Same(string op, string what, Shape actual, Shape expected)
    {
        if (actual != expected)
            throw new ShapeMismatchException($"{op}: {what} has shape {actual} but {expected} was expected");
    }

    public static void Rank(string op, string what, Shape s, int rank)
    {
        if (s.Rank != rank)
            throw new ShapeMismatchException($"{op}: {what} has shape {s} but a rank-{rank} tensor was expected");
    }

    /// <summary>Requires dimension <paramref name="axisA"/> of a to equal dimension <paramref name="axisB"/> of b.</summary>
    public static void Dim(string op, string whatA, Shape a, int axisA, string whatB, Shape b, int axisB)
    {
        if (a[axisA] != b[axisB])
            throw new ShapeMismatchException(
                $"{op}: {whatA} {a} and {whatB} {b} do not match (dimension {axisA} is {a[axisA]}, dimension {axisB} is {b[axisB]})");
    }

    public static void SameBackend(string op, Tensor a, Tensor b)
    {
        if (!ReferenceEquals(a.Backend, b.Backend))
            throw new ArgumentException($"{op}: tensors live on different backends ({a.Backend.Name} and {b.Backend.Name})");
    }
}
