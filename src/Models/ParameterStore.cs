using RlMixup.Core;

namespace RlMixup.Models;

public enum TensorKind
{
    /// <summary>Trained: lives in the parameter arena and has a twin in the gradient arena.</summary>
    Parameter,
    /// <summary>State that is not trained, such as batch-norm running statistics.</summary>
    Buffer,
}

/// <summary>A named model tensor: a view into the parameter (or buffer) arena, plus its gradient view.</summary>
public sealed class NamedTensor(string name, Shape shape, TensorKind kind, Init init, int offset)
{
    public string Name { get; } = name;
    public Shape Shape { get; } = shape;
    public TensorKind Kind { get; } = kind;
    public Init Init { get; } = init;
    /// <summary>Offset in its arena, in floats.</summary>
    public int Offset { get; } = offset;
    public Tensor Value => _value ?? throw new InvalidOperationException($"'{Name}' is not materialised yet: call ParameterStore.Materialize");
    public Tensor Grad => _grad ?? throw new InvalidOperationException($"'{Name}' has no gradient (kind {Kind}, or not materialised)");
    internal Tensor? _value, _grad;
}

/// <summary>
/// The parameter arena (after llm.c's malloc_and_point_parameters). Layers register their tensors
/// by name while the model is built; <see cref="Materialize"/> then makes ONE allocation for all
/// parameters, one mirror for their gradients and one for the buffers, carves views out of them and
/// initialises the values from a single seeded <see cref="Rng"/> in registration order. Optimisers
/// step the whole arena in one flat pass.
/// </summary>
public sealed class ParameterStore
{
    private readonly List<NamedTensor> _all = [];
    private readonly Dictionary<string, NamedTensor> _byName = [];
    private int _paramCount, _paramArena, _bufferArena;

    /// <summary>
    /// Every tensor starts at a multiple of this many floats (256 bytes) in its arena: the alignment
    /// cuMemAlloc gives a whole allocation, which vectorised GPU kernels and cuDNN/cuBLAS may assume
    /// of each operand. The gaps are zeros with zero gradients and stay zero.
    /// </summary>
    public const int AlignmentFloats = 64;

    public IReadOnlyList<NamedTensor> All => _all;
    public IEnumerable<NamedTensor> Parameters => _all.Where(t => t.Kind == TensorKind.Parameter);
    public IEnumerable<NamedTensor> Buffers => _all.Where(t => t.Kind == TensorKind.Buffer);
    /// <summary>The number of trained values (without the alignment gaps).</summary>
    public int ParameterCount => _paramCount;
    /// <summary>The length of the parameter arena (and of the gradient and optimiser-state arenas that mirror it), gaps included.</summary>
    public int ArenaLength => Math.Max(1, _paramArena);
    public bool IsMaterialized => Values != null;

    /// <summary>All parameters, flat (<see cref="ArenaLength"/>, alignment gaps included). Null until materialised.</summary>
    public Tensor? Values { get; private set; }
    /// <summary>Gradients, same layout as <see cref="Values"/>.</summary>
    public Tensor? Grads { get; private set; }
    /// <summary>All buffers, flat (aligned like the parameters).</summary>
    public Tensor? BufferValues { get; private set; }

    public NamedTensor Add(string name, Shape shape, Init init, TensorKind kind = TensorKind.Parameter)
    {
        if (IsMaterialized) throw new InvalidOperationException($"cannot add '{name}': the store is already materialised");
        if (_byName.ContainsKey(name)) throw new ArgumentException($"duplicate tensor name '{name}'");
        ref int arena = ref kind == TensorKind.Parameter ? ref _paramArena : ref _bufferArena;
        int offset = Align(arena);
        var t = new NamedTensor(name, shape, kind, init, offset);
        arena = Align(offset + shape.Size);
        if (kind == TensorKind.Parameter) _paramCount += shape.Size;
        _all.Add(t);
        _byName.Add(name, t);
        return t;
    }

    private static int Align(int floats) => checked((floats + AlignmentFloats - 1) / AlignmentFloats * AlignmentFloats);

    public NamedTensor this[string name] =>
        _byName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"no model tensor named '{name}'");

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Allocates the arenas on <paramref name="backend"/> and initialises every tensor from <paramref name="rng"/>.</summary>
    public void Materialize(IBackend backend, Rng rng)
    {
        if (IsMaterialized) throw new InvalidOperationException("the store is already materialised");
        // An empty arena still gets one (unused) float: a zero-length device allocation does not exist.
        var hostParams = new float[Math.Max(1, _paramArena)];
        var hostBuffers = new float[Math.Max(1, _bufferArena)];
        foreach (var t in _all)
        {
            var dst = (t.Kind == TensorKind.Parameter ? hostParams : hostBuffers).AsSpan(t.Offset, t.Shape.Size);
            t.Init.Fill(dst, t.Shape, rng);
        }
        Values = backend.Allocate(new Shape(hostParams.Length));
        Grads = backend.Allocate(new Shape(hostParams.Length));
        BufferValues = backend.Allocate(new Shape(hostBuffers.Length));
        Values.CopyFrom(hostParams);
        BufferValues.CopyFrom(hostBuffers);
        foreach (var t in _all)
        {
            if (t.Kind == TensorKind.Parameter)
            {
                t._value = Values.View(t.Offset, t.Shape);
                t._grad = Grads.View(t.Offset, t.Shape);
            }
            else t._value = BufferValues.View(t.Offset, t.Shape);
        }
    }

    public void ZeroGrad() => Grads!.Backend.Fill(Grads, 0f);
}
