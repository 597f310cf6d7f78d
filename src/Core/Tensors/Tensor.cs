namespace RlMixup.Core;

/// <summary>
/// A float32 tensor: a contiguous, row-major (NCHW) view of a buffer owned by a backend.
/// Views (<see cref="View"/>, <see cref="Reshape"/>) share the buffer; only the tensor that
/// allocated the buffer frees it.
/// </summary>
public sealed class Tensor : IDisposable
{
    private bool _ownsBuffer;

    internal Tensor(DeviceBuffer buffer, int offset, Shape shape, bool ownsBuffer)
    {
        if (offset < 0 || (long)offset + shape.Size > buffer.Length)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"view of shape {shape} at offset {offset} does not fit a buffer of {buffer.Length} floats");
        Buffer = buffer;
        Offset = offset;
        Shape = shape;
        _ownsBuffer = ownsBuffer;
    }

    public Shape Shape { get; }
    public IBackend Backend => Buffer.Owner;
    /// <summary>The backend's storage; backends downcast it to their own buffer type.</summary>
    public DeviceBuffer Buffer { get; }
    /// <summary>Offset of element 0 in the buffer, in floats.</summary>
    public int Offset { get; }
    public int Length => Shape.Size;

    /// <summary>
    /// A reusable workspace slot (layer outputs and gradients, loss buffers): returns
    /// <paramref name="t"/> when it already has <paramref name="shape"/>; else, when t owns a buffer
    /// large enough, a tensor of the new shape at the start of that same buffer, which takes over
    /// ownership (t becomes a plain view); else a fresh allocation, disposing t. A slot thus grows to
    /// the largest shape it has held and never reallocates when sizes alternate, as the agent's
    /// layers do between acting on one observation and updating on a minibatch of 100 (a
    /// reallocation there costed ~0.5 s per switch, fresh pages being faulted in). The contents
    /// after a shape change are unspecified: callers overwrite them.
    /// </summary>
    public static Tensor Ensure([System.Diagnostics.CodeAnalysis.NotNull] ref Tensor? t, IBackend backend, Shape shape)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (t != null && ReferenceEquals(t.Backend, backend))
        {
            if (t.Shape == shape) return t;
            if (t._ownsBuffer && t.Offset == 0 && shape.Size <= t.Buffer.Length)
            {
                var moved = new Tensor(t.Buffer, 0, shape, ownsBuffer: true);
                t._ownsBuffer = false;
                return t = moved;
            }
        }
        t?.Dispose();
        return t = backend.Allocate(shape);
    }

    /// <summary>A view of <paramref name="shape"/> starting <paramref name="offset"/> floats into this tensor.</summary>
    public Tensor View(int offset, Shape shape)
    {
        if (offset < 0 || (long)offset + shape.Size > Length)
            throw new ShapeMismatchException($"view of shape {shape} at offset {offset} does not fit inside a tensor of shape {Shape}");
        return new Tensor(Buffer, Offset + offset, shape, ownsBuffer: false);
    }

    /// <summary>The same elements under another shape of equal size.</summary>
    public Tensor Reshape(Shape shape)
    {
        if (shape.Size != Length)
            throw new ShapeMismatchException($"cannot reshape a tensor of shape {Shape} to {shape}: sizes differ");
        return new Tensor(Buffer, Offset, shape, ownsBuffer: false);
    }

    /// <summary>Host memory of a CPU tensor. Throws for device tensors: use <see cref="CopyTo"/>.</summary>
    public Span<float> Span => Buffer is CpuBuffer cpu
        ? cpu.Data.AsSpan(Offset, Length)
        : throw new InvalidOperationException($"tensor lives on {Backend.Name}; copy it to the host with CopyTo/ToArray");

    public void CopyFrom(ReadOnlySpan<float> src)
    {
        if (src.Length != Length)
            throw new ShapeMismatchException($"copy into a tensor of shape {Shape} ({Length} floats) from {src.Length} floats");
        Backend.Upload(this, src);
    }

    public void CopyTo(Span<float> dst)
    {
        if (dst.Length != Length)
            throw new ShapeMismatchException($"copy from a tensor of shape {Shape} ({Length} floats) into {dst.Length} floats");
        Backend.Download(this, dst);
    }

    public float[] ToArray()
    {
        var a = new float[Length];
        CopyTo(a);
        return a;
    }

    public override string ToString() => $"Tensor{Shape} on {Backend.Name}";

    public void Dispose()
    {
        if (_ownsBuffer) Buffer.Dispose();
    }
}

/// <summary>Memory owned by a backend. The CPU backend uses a managed array; CUDA uses device memory.</summary>
public abstract class DeviceBuffer(IBackend owner, long length) : IDisposable
{
    public IBackend Owner { get; } = owner;
    /// <summary>Capacity in floats.</summary>
    public long Length { get; } = length;
    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>Host memory for the CPU backend.</summary>
public sealed class CpuBuffer(IBackend owner, float[] data) : DeviceBuffer(owner, data.Length)
{
    public float[] Data { get; } = data;
}
