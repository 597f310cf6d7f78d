using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;

namespace RlMixup.Tests;

/// <summary>
/// <see cref="Tensor.Ensure"/>, the workspace slot of layers and losses: it reuses its buffer for
/// any shape that fits, moves ownership with it, and frees exactly once when it must grow.
/// </summary>
public class TensorWorkspaceTests
{
    private sealed class CountingBuffer(IBackend owner, long length) : DeviceBuffer(owner, length)
    {
        public int Disposals;
        public override void Dispose() { Disposals++; base.Dispose(); }
    }

    [Test]
    public void SlotReusesItsBufferForSmallerShapesAndFreesOnceWhenItGrows()
    {
        using var cpu = new CpuBackend(1);
        var buffer = new CountingBuffer(cpu, 100);
        Tensor? t = new Tensor(buffer, 0, new Shape(10, 10), ownsBuffer: true);
        var first = t;

        Assert.That(Tensor.Ensure(ref t, cpu, new Shape(10, 10)), Is.SameAs(first), "same shape: same tensor");

        var smaller = Tensor.Ensure(ref t, cpu, new Shape(1, 4, 5));
        Assert.That(t, Is.SameAs(smaller));
        Assert.That(smaller.Buffer, Is.SameAs(buffer), "a smaller shape lives in the same buffer");
        Assert.That(smaller.Shape, Is.EqualTo(new Shape(1, 4, 5)));
        first.Dispose();
        Assert.That(buffer.Disposals, Is.Zero, "the old tensor handed its ownership over");

        var back = Tensor.Ensure(ref t, cpu, new Shape(10, 10));
        Assert.That(back.Buffer, Is.SameAs(buffer), "alternating sizes never reallocate");
        smaller.Dispose();
        Assert.That(buffer.Disposals, Is.Zero);

        var grown = Tensor.Ensure(ref t, cpu, new Shape(11, 10));
        Assert.That(grown.Buffer, Is.Not.SameAs(buffer));
        Assert.That(grown.Length, Is.EqualTo(110));
        Assert.That(buffer.Disposals, Is.EqualTo(1), "growing frees the old buffer once");
        grown.Dispose();
    }

    [Test]
    public void SlotNeverTakesOverAViewOrAnotherBackendsTensor()
    {
        using var cpu = new CpuBackend(1);
        using var other = new CpuBackend(1);
        using var owner = cpu.Allocate(new Shape(100));
        Tensor? view = owner.View(0, new Shape(50));
        var fresh = Tensor.Ensure(ref view, cpu, new Shape(10));
        Assert.That(fresh.Buffer, Is.Not.SameAs(owner.Buffer), "a view does not own its buffer, so the slot allocates");

        Tensor? foreign = other.Allocate(new Shape(100));
        var mine = Tensor.Ensure(ref foreign, cpu, new Shape(100));
        Assert.That(mine.Backend, Is.SameAs(cpu));
        fresh.Dispose();
        mine.Dispose();
    }
}
