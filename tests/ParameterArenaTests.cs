using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.Mixup;
using RlMixup.Models;

namespace RlMixup.Tests;

/// <summary>
/// The parameter arena on a backend whose buffers are not <see cref="CpuBuffer"/>s (as a device
/// backend's are not): materialising, carving views, zeroing gradients and reading values back
/// must go through the backend's memory ops only.
/// </summary>
public class ParameterArenaTests
{
    private sealed class OpaqueBuffer(IBackend owner, long length) : DeviceBuffer(owner, length)
    {
        public readonly float[] Memory = new float[length];
    }

    /// <summary>Implements only the memory ops (and SGD's flat pass); every compute op throws.</summary>
    private sealed class MemoryOnlyBackend : IBackend
    {
        public string Name => "opaque";
        public int Allocations;
        public void Dispose() { }
        public Tensor Allocate(Shape shape) { Allocations++; return new Tensor(new OpaqueBuffer(this, shape.Size), 0, shape, ownsBuffer: true); }
        private Span<float> Mem(Tensor t) => ((OpaqueBuffer)t.Buffer).Memory.AsSpan(t.Offset, t.Length);
        public void Upload(Tensor dst, ReadOnlySpan<float> src) => src.CopyTo(Mem(dst));
        public void Download(Tensor src, Span<float> dst) => Mem(src).CopyTo(dst);
        public void Fill(Tensor t, float value) => Mem(t).Fill(value);
        public void Copy(Tensor dst, Tensor src) => Mem(src).CopyTo(Mem(dst));
        private static Exception No() => new NotSupportedException("memory-only backend");
        public void Add(Tensor y, Tensor a, Tensor b) => throw No();
        public void Axpy(Tensor y, float alpha, Tensor x) => throw No();
        public void Scale(Tensor y, float alpha) => throw No();
        public void ReluForward(Tensor y, Tensor x) => throw No();
        public void ReluBackward(Tensor dx, Tensor y, Tensor dy) => throw No();
        public void TanhForward(Tensor y, Tensor x) => throw No();
        public void TanhBackward(Tensor dx, Tensor y, Tensor dy) => throw No();
        public void Gemm(Tensor c, Tensor a, bool transA, Tensor b, bool transB, float alpha = 1, float beta = 0) => throw No();
        public void LinearForward(Tensor y, Tensor x, Tensor w, Tensor? b) => throw No();
        public void LinearBackward(Tensor? dx, Tensor? dw, Tensor? db, Tensor dy, Tensor x, Tensor w) => throw No();
        public void Conv2dForward(Tensor y, Tensor x, Tensor w, Conv2dSpec spec) => throw No();
        public void Conv2dBackwardData(Tensor dx, Tensor dy, Tensor w, Conv2dSpec spec) => throw No();
        public void Conv2dBackwardFilter(Tensor dw, Tensor x, Tensor dy, Conv2dSpec spec) => throw No();
        public void AddChannelBias(Tensor y, Tensor bias) => throw No();
        public void ChannelBiasBackward(Tensor dbias, Tensor dy) => throw No();
        public void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, float momentum, float eps, bool updateRunning) => throw No();
        public void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float eps) => throw No();
        public void BatchNormBackward(Tensor dx, Tensor? dgamma, Tensor? dbeta, Tensor dy, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, float eps) => throw No();
        public void GlobalAvgPoolForward(Tensor y, Tensor x) => throw No();
        public void GlobalAvgPoolBackward(Tensor dx, Tensor dy) => throw No();
        public void LogSoftmaxForward(Tensor logp, Tensor z) => throw No();
        public void LogSoftmaxBackward(Tensor dz, Tensor logp, Tensor dlogp) => throw No();
        public void SoftCrossEntropyForward(Tensor losses, Tensor logp, Tensor targets) => throw No();
        public void SoftCrossEntropyBackward(Tensor dz, Tensor logp, Tensor targets, float scale) => throw No();
        public void SgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lr, float momentum, float weightDecay, bool nesterov)
        {
            var p = Mem(param); var g = Mem(grad);
            for (int i = 0; i < p.Length; i++) p[i] -= lr * g[i];
        }
        public void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, int step, float lr, float beta1, float beta2, float eps, float weightDecay) => throw No();
        public void SaliencyMaps(Tensor maps, Tensor inputGrad) => throw No();
        public void PercentileMasks(Tensor masks, Tensor thresholds, Tensor maps, ReadOnlySpan<float> percentiles) => throw No();
        public void MaskMix(Tensor mixed, Tensor mixedTargets, Tensor fractions, Tensor x, Tensor targets, Tensor masks, ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1) => throw No();
        public void InputMixup(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, float lambda) => throw No();
        public void CutMix(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, CutBox box) => throw No();
    }

    [Test]
    public void ArenaViewsWorkOnABackendWithoutHostBuffers()
    {
        var device = new MemoryOnlyBackend();
        var onDevice = new ParameterStore();
        _ = new PreActResNet18(onDevice, width: 4, classes: 10);
        onDevice.Materialize(device, new Rng(7));
        var onCpu = new ParameterStore();
        _ = new PreActResNet18(onCpu, width: 4, classes: 10);
        onCpu.Materialize(new CpuBackend(1), new Rng(7));

        Assert.That(device.Allocations, Is.EqualTo(3), "one arena each for parameters, gradients and buffers");
        foreach (var t in onDevice.All)
        {
            Assert.That(t.Value.Buffer, Is.SameAs(t.Kind == TensorKind.Parameter ? onDevice.Values!.Buffer : onDevice.BufferValues!.Buffer), t.Name);
            Assert.That(t.Value.Offset, Is.EqualTo(t.Offset));
            Assert.That(t.Value.ToArray(), Is.EqualTo(onCpu[t.Name].Value.ToArray()), $"{t.Name} differs from the CPU arena");
            Assert.Throws<InvalidOperationException>(() => _ = t.Value.Span, "host spans exist only for CPU tensors");
        }

        // Gradients: a write through one view lands at its offset in the arena; ZeroGrad clears the arena.
        var last = onDevice.Parameters.Last();
        last.Grad.CopyFrom(Enumerable.Repeat(2f, last.Shape.Size).ToArray());
        var grads = onDevice.Grads!.ToArray();
        Assert.That(grads.AsSpan(last.Offset, last.Shape.Size).ToArray(), Is.All.EqualTo(2f));
        Assert.That(grads.AsSpan(0, last.Offset).ToArray(), Is.All.Zero);
        Assert.That(grads.AsSpan(last.Offset + last.Shape.Size).ToArray(), Is.All.Zero, "the alignment gap after the last tensor");
        float before = last.Value.ToArray()[0];
        new Sgd(onDevice, lr: 0.5f).Step();
        Assert.That(last.Value.ToArray()[0], Is.EqualTo(before - 1f));
        onDevice.ZeroGrad();
        Assert.That(onDevice.Grads!.ToArray(), Is.All.Zero);
    }

    [Test]
    public void EveryTensorStartsOn256Bytes()
    {
        var store = new ParameterStore();
        _ = new PreActResNet18(store, width: 3, classes: 7);
        Assert.That(store.All.Select(t => t.Offset % ParameterStore.AlignmentFloats), Is.All.Zero);
        Assert.That(store.ParameterCount, Is.EqualTo(store.Parameters.Sum(p => p.Shape.Size)), "the count excludes the gaps");
        Assert.That(store.ArenaLength, Is.GreaterThan(store.ParameterCount).And.EqualTo(
            (store.Parameters.Last().Offset + store.Parameters.Last().Shape.Size + 63) / 64 * 64));
        store.Materialize(new CpuBackend(1), new Rng(1));
        Assert.That(store.Values!.Length, Is.EqualTo(store.ArenaLength));
        Assert.That(store.Parameters.SelectMany(p => Enumerable.Range(p.Offset, p.Shape.Size)).Distinct().Count(), Is.EqualTo(store.ParameterCount), "no overlap");
    }
}
