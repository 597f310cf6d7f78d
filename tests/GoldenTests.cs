using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.IO;
using RlMixup.Models;
using RlMixup.Tests.Reference;

namespace RlMixup.Tests;

/// <summary>
/// The engine against PyTorch 1.13 (tests/golden/make_golden.py): a width-4 PreActResNet18 with
/// fixed weights and inputs, one training-mode forward and backward, then an eval-mode forward;
/// and five SGD-Nesterov and five Adam steps.
/// </summary>
public class GoldenTests
{
    private static string GoldenPath(string file) => Path.Combine(TestContext.CurrentContext.TestDirectory, "golden", file);

    // Tolerances. Both sides compute in float32 but sum in different orders (im2col GEMM vs
    // PyTorch's direct/oneDNN convolution, double vs float BN statistics). Each output of this
    // network is a chain of ~20 reductions over up to 4608 terms; float32 rounding (ε = 6e-8) grows
    // about as √K·ε per reduction and is amplified through BN's 1/σ, giving relative differences of
    // 1e-6..1e-5 in practice. rtol 1e-4 leaves a margin of 10×; atol covers values that are
    // near zero because of cancellation. A wrong layer (stride, padding, shortcut, BN variance) is
    // off by 1e-2 or more, so these bounds still catch every real defect.
    private const double Rtol = 1e-4, Atol = 2e-5;

    [Test]
    public void PreActResNet18MatchesPyTorch()
    {
        var g = TensorFile.Read(GoldenPath("preactresnet18_w4.bin"));
        var b = new CpuBackend(2);
        var store = new ParameterStore();
        var model = new PreActResNet18(store, width: 4, classes: 10);
        store.Materialize(b, new Rng(0));

        int loaded = 0;
        foreach (var t in store.All)
        {
            var src = g["init." + t.Name];
            Assert.That(src.Shape, Is.EqualTo(t.Shape.Dims.ToArray()), t.Name);
            t.Value.CopyFrom(src.Data);
            loaded++;
        }
        Assert.That(loaded, Is.EqualTo(g.Keys.Count(k => k.StartsWith("init.", StringComparison.Ordinal))),
            "every PyTorch state-dict entry has a twin in the engine");

        var x = Load(b, g["x"]);
        var targets = Load(b, g["targets"]);
        var logits = model.Forward(x, Mode.Train);
        FiniteDiff.Validate("logits", logits.ToArray(), FiniteDiff.ToDouble(g["logits"].Data), Atol, Rtol);

        var loss = new SoftTargetLoss();
        float l = loss.Forward(logits, targets);
        Assert.That(l, Is.EqualTo(g["loss"].Data[0]).Within(Rtol * Math.Abs(g["loss"].Data[0])), "loss");

        store.ZeroGrad();
        var dx = model.Backward(loss.Backward(), weightGrads: true, inputGrad: true)!;
        FiniteDiff.Validate("dx", dx.ToArray(), FiniteDiff.ToDouble(g["dx"].Data), Atol * 1e-2, Rtol);
        int grads = 0;
        foreach (var p in store.Parameters)
        {
            // Gradient magnitudes differ per tensor; scale atol by the tensor's largest expected entry.
            var e = g["grad." + p.Name].Data;
            FiniteDiff.Validate("grad." + p.Name, p.Grad.ToArray(), FiniteDiff.ToDouble(e), 1e-4 * e.Max(Math.Abs), Rtol * 10);
            grads++;
        }
        Assert.That(grads, Is.EqualTo(54));

        foreach (var buf in store.Buffers)
            FiniteDiff.Validate("after." + buf.Name, buf.Value.ToArray(), FiniteDiff.ToDouble(g["after." + buf.Name].Data), 1e-6, Rtol);

        var evalLogits = model.Forward(x, Mode.Eval);
        FiniteDiff.Validate("eval_logits", evalLogits.ToArray(), FiniteDiff.ToDouble(g["eval_logits"].Data), Atol, Rtol);
    }

    [Test]
    public void OptimisersMatchPyTorch()
    {
        var g = TensorFile.Read(GoldenPath("optimizers.bin"));
        float Hp(string name) => g[name].Data[0];
        var b = new CpuBackend(1);

        var store = new ParameterStore();
        store.Add("p", new Shape(g["p0"].Data.Length), Init.Constant(0));
        store.Materialize(b, new Rng(0));

        var param = store["p"];
        param.Value.CopyFrom(g["p0"].Data);
        var sgd = new Sgd(store, Hp("sgd.lr"), Hp("sgd.momentum"), Hp("sgd.weight_decay"), nesterov: true);
        for (int k = 1; k <= 5; k++)
        {
            param.Grad.CopyFrom(g["grad." + k].Data);
            sgd.Step();
            FiniteDiff.Validate($"sgd step {k}", param.Value.ToArray(), FiniteDiff.ToDouble(g["sgd.step" + k].Data), 1e-6, 1e-5);
        }

        param.Value.CopyFrom(g["p0"].Data);
        var adam = new Adam(store, Hp("adam.lr"), Hp("adam.beta1"), Hp("adam.beta2"), Hp("adam.eps"), Hp("adam.weight_decay"));
        for (int k = 1; k <= 5; k++)
        {
            param.Grad.CopyFrom(g["grad." + k].Data);
            adam.Step();
            FiniteDiff.Validate($"adam step {k}", param.Value.ToArray(), FiniteDiff.ToDouble(g["adam.step" + k].Data), 1e-6, 1e-5);
        }
    }

    private static Tensor Load(IBackend b, NamedArray a)
    {
        var t = b.Allocate(new Shape(a.Shape));
        t.CopyFrom(a.Data);
        return t;
    }
}
