using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Models;

namespace RlMixup.Tests;

public class ModelTests
{
    [Test]
    public void ParameterNamesAndCountsMatchThePyTorchModule()
    {
        var store = new ParameterStore();
        _ = new PreActResNet18(store, width: 64, classes: 10);
        // 11,171,146 trainable parameters is the well-known size of CIFAR-10 PreActResNet18.
        Assert.That(store.ParameterCount, Is.EqualTo(11_171_146));
        Assert.That(store.Buffers.Sum(b => b.Shape.Size), Is.EqualTo(2 * 3392));
        Assert.That(store["conv1.weight"].Shape, Is.EqualTo(new Shape(64, 3, 3, 3)));
        Assert.That(store["layer1.0.bn1.running_var"].Kind, Is.EqualTo(TensorKind.Buffer));
        Assert.That(store["layer2.0.shortcut.0.weight"].Shape, Is.EqualTo(new Shape(128, 64, 1, 1)));
        Assert.That(store["layer4.1.conv2.weight"].Shape, Is.EqualTo(new Shape(512, 512, 3, 3)));
        Assert.That(store["linear.weight"].Shape, Is.EqualTo(new Shape(10, 512)));
        Assert.That(store.Contains("layer1.0.shortcut.0.weight"), Is.False);
        Assert.That(store.Contains("layer2.1.shortcut.0.weight"), Is.False);
        Assert.That(store.Contains("bn.weight"), Is.False, "no final BN by default");
    }

    [Test]
    public void InitialisationIsReproducibleFromTheSeedAndFollowsPyTorchDefaults()
    {
        float[] Init(ulong seed)
        {
            var store = new ParameterStore();
            _ = new PreActResNet18(store, width: 4, classes: 10);
            store.Materialize(new CpuBackend(1), new Rng(seed));
            return store.Values!.ToArray();
        }
        Assert.That(Init(7), Is.EqualTo(Init(7)));
        Assert.That(Init(7), Is.Not.EqualTo(Init(8)));

        var s = new ParameterStore();
        _ = new PreActResNet18(s, width: 4, classes: 10);
        s.Materialize(new CpuBackend(1), new Rng(1));
        var w = s["layer1.0.conv1.weight"].Value.ToArray();
        float bound = 1f / MathF.Sqrt(4 * 9);
        Assert.That(w.Max(), Is.LessThanOrEqualTo(bound).And.GreaterThan(0.8f * bound));
        Assert.That(w.Min(), Is.GreaterThanOrEqualTo(-bound).And.LessThan(-0.8f * bound));
        Assert.That(s["layer1.0.bn1.weight"].Value.ToArray(), Is.All.EqualTo(1f));
        Assert.That(s["layer1.0.bn1.bias"].Value.ToArray(), Is.All.EqualTo(0f));
        Assert.That(s["layer1.0.bn1.running_var"].Value.ToArray(), Is.All.EqualTo(1f));
    }

    [Test]
    public void ForwardAndBackwardRunAtSmallWidth()
    {
        var b = new CpuBackend(2);
        var store = new ParameterStore();
        var model = new PreActResNet18(store, width: 2, classes: 3);
        store.Materialize(b, new Rng(3));
        var x = b.Allocate(new Shape(2, 3, 16, 12));
        var rng = new Rng(4);
        x.CopyFrom(Enumerable.Range(0, x.Length).Select(_ => (float)rng.Normal()).ToArray());
        var logits = model.Forward(x, Mode.Train);
        Assert.That(logits.Shape, Is.EqualTo(new Shape(2, 3)));
        var targets = b.Allocate(new Shape(2, 3));
        targets.CopyFrom([1, 0, 0, 0.25f, 0.75f, 0]);
        var loss = new SoftTargetLoss();
        float l = loss.Forward(logits, targets);
        Assert.That(float.IsFinite(l) && l > 0);
        store.ZeroGrad();
        var dx = model.Backward(loss.Backward(), weightGrads: true, inputGrad: true);
        Assert.That(dx!.Shape, Is.EqualTo(x.Shape));
        Assert.That(store.Grads!.ToArray().Any(g => g != 0));

        // The saliency pass: the data gradient alone, identical, and the gradient arena untouched.
        var before = store.Grads.ToArray();
        var dxAgain = model.Backward(loss.Backward(), weightGrads: false, inputGrad: true)!.ToArray();
        Assert.That(store.Grads.ToArray(), Is.EqualTo(before));
        Assert.That(dxAgain, Is.EqualTo(dx.ToArray()));
        Assert.That(model.Backward(loss.Backward(), weightGrads: false, inputGrad: false), Is.Null);
    }
}
