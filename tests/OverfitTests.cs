using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Data;
using RlMixup.Engine.Training;
using RlMixup.Models;

namespace RlMixup.Tests;

public class OverfitTests
{
    /// <summary>
    /// A narrow PreActResNet18 must memorise 32 real CIFAR-10 images: 100% train accuracy and a
    /// near-zero loss within a bounded number of full-batch SGD steps. A broken backward pass,
    /// optimiser or BN never gets there.
    /// </summary>
    [Test]
    public void NarrowModelMemorises32RealImages()
    {
        string dir = SharedData.Cifar10SubsetOrIgnore();
        var data = CifarBinary.ReadCifar10Train(dir, limit: 32);
        const int n = 32, classes = 10, maxSteps = 150;
        var b = new CpuBackend();
        var store = new ParameterStore();
        var model = new PreActResNet18(store, width: 8, classes: classes);
        store.Materialize(b, new Rng(42));

        var x = b.Allocate(new Shape(n, 3, 32, 32));
        var xs = new float[x.Length];
        Normalisation.ToFloat(data, Enumerable.Range(0, n).ToArray(), xs);
        x.CopyFrom(xs);
        var oneHot = new float[n * classes];
        for (int i = 0; i < n; i++) oneHot[i * classes + data.Labels[i]] = 1f;
        var targets = b.Allocate(new Shape(n, classes));
        targets.CopyFrom(oneHot);

        var loss = new SoftTargetLoss();
        var sgd = new Sgd(store, lr: 0.05f, momentum: 0.9f, weightDecay: 0f, nesterov: true);
        float l = float.NaN, first = float.NaN;
        int step, correct = 0;
        for (step = 1; step <= maxSteps; step++)
        {
            var logits = model.Forward(x, Mode.Train);
            l = loss.Forward(logits, targets);
            if (step == 1) first = l;
            // Train accuracy as a training log reports it: the training-mode logits of this batch.
            correct = Accuracy.CountCorrect(logits.ToArray(), data.Labels.AsSpan(0, n), classes);
            if (correct == n && l < 0.02f) break;
            store.ZeroGrad();
            model.Backward(loss.Backward());
            sgd.Step();
        }
        TestContext.Out.WriteLine($"steps {step}, first loss {first:F4}, final loss {l:F5}, train accuracy {correct}/{n}");
        Assert.That(correct, Is.EqualTo(n), $"train accuracy after {maxSteps} steps");
        Assert.That(l, Is.LessThan(0.02f), "train loss");
    }
}
