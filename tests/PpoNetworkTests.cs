// The agent's actor-critic: structure and init at the paper's size, and the gradient of every
// parameter (conv biases and the shared features' summed gradient included) against float64 finite
// differences of a RefOps composition, at a tiny size.
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Models;
using RlMixup.Tests.Reference;
using static RlMixup.Tests.Reference.FiniteDiff;

namespace RlMixup.Tests;

public class PpoNetworkTests
{
    [Test]
    public void PaperSizeStructure()
    {
        var store = new ParameterStore();
        _ = new ActorCritic(store, inChannels: 100, actionDims: 100, actionClasses: 10);
        string[] names =
        [
            "features_extractor.cnn.0.weight", "features_extractor.cnn.0.bias", "features_extractor.cnn.2.weight",
            "features_extractor.cnn.2.bias", "features_extractor.cnn.4.weight", "features_extractor.cnn.4.bias",
            "features_extractor.linear.0.weight", "features_extractor.linear.0.bias",
            "mlp_extractor.policy_net.0.weight", "mlp_extractor.policy_net.0.bias", "mlp_extractor.policy_net.2.weight", "mlp_extractor.policy_net.2.bias",
            "mlp_extractor.value_net.0.weight", "mlp_extractor.value_net.0.bias", "mlp_extractor.value_net.2.weight", "mlp_extractor.value_net.2.bias",
            "action_net.weight", "action_net.bias", "value_net.weight", "value_net.bias",
        ];
        Assert.That(store.All.Select(t => t.Name), Is.EqualTo(names));
        Assert.That(store["features_extractor.cnn.0.weight"].Shape, Is.EqualTo(new Shape(200, 100, 3, 3)));
        Assert.That(store["features_extractor.cnn.4.weight"].Shape, Is.EqualTo(new Shape(400, 300, 3, 3)));
        Assert.That(store["features_extractor.linear.0.weight"].Shape, Is.EqualTo(new Shape(512, 400)));
        Assert.That(store["action_net.weight"].Shape, Is.EqualTo(new Shape(1000, 64)));
        Assert.That(store["value_net.weight"].Shape, Is.EqualTo(new Shape(1, 256)));

    }

    /// <summary>
    /// SB3's ortho_init on the paper's heads (B = 100: a 1000 × 64 action head) behind a narrower
    /// extractor: at full width the Gram–Schmidt of the 400 × 2700 conv takes seconds in a Debug build.
    /// </summary>
    [Test]
    public void InitIsOrthogonalWithSb3GainsAndZeroBiases()
    {
        var store = new ParameterStore();
        var net = new ActorCritic(store, 100, 100, 10, ActorCriticSizes.Paper with { ConvChannels = [20, 30, 40] });
        using var b = new CpuBackend(2);
        store.Materialize(b, new Rng(1));
        foreach (var t in store.Parameters.Where(t => t.Name.EndsWith(".bias")))
            Assert.That(t.Value.ToArray().All(v => v == 0), $"{t.Name} starts at 0");
        // squared norms gain² (√2 → 2, 0.01 → 1e-4, 1 → 1) of the rows of wide weights and the columns of
        // tall ones (the action head, 1000 × 64)
        Assert.That(RowNormSq(store["features_extractor.cnn.2.weight"], 7), Is.EqualTo(2.0).Within(1e-5));
        Assert.That(RowNormSq(store["mlp_extractor.policy_net.2.weight"], 5), Is.EqualTo(2.0).Within(1e-5));
        Assert.That(ColumnNormSq(store["action_net.weight"], 3), Is.EqualTo(1e-4).Within(1e-9));
        Assert.That(RowNormSq(store["value_net.weight"], 0), Is.EqualTo(1.0).Within(1e-5));

        var x = b.Allocate(new Shape(2, 100, 16, 16));
        x.CopyFrom(Data.Uniform(x.Length, new Random(2), 0, 0.01));
        var (logits, values) = net.Forward(x);
        Assert.That(logits.Shape, Is.EqualTo(new Shape(2, 1000)));
        Assert.That(values.Shape, Is.EqualTo(new Shape(2, 1)));
        // the 0.01 gain makes the initial policy nearly uniform: every logit is small
        Assert.That(logits.ToArray().Max(Math.Abs), Is.LessThan(0.1f));
    }

    private static double RowNormSq(NamedTensor t, int row)
    {
        int cols = t.Shape.Size / t.Shape[0];
        return t.Value.ToArray().Skip(row * cols).Take(cols).Sum(v => (double)v * v);
    }

    private static double ColumnNormSq(NamedTensor t, int col)
    {
        int cols = t.Shape.Size / t.Shape[0];
        var a = t.Value.ToArray();
        double s = 0;
        for (int r = 0; r < t.Shape[0]; r++) s += (double)a[r * cols + col] * a[r * cols + col];
        return s;
    }

    private const int N = 2, C = 2, H = 7, W = 7, D = 2, K = 3;
    private static readonly ActorCriticSizes Tiny = new([3, 4, 2], 4, [3, 3], [2]);

    /// <summary>Float64 twin of ActorCritic.Forward, from the parameters by name.</summary>
    private static (double[] Logits, double[] Values) RefForward(Dictionary<string, double[]> p, double[] x)
    {
        int c = C, h = H, w = W;
        var a = x;
        for (int i = 0; i < Tiny.ConvChannels.Length; i++)
        {
            int o = Tiny.ConvChannels[i];
            string n = $"features_extractor.cnn.{2 * i}";
            a = RefOps.Conv2d(a, N, c, h, w, p[n + ".weight"], o, 3, 3, 1, 1, 0, 0);
            h -= 2; w -= 2; c = o;
            a = RefOps.Relu(RefOps.AddChannelBias(a, p[n + ".bias"], N, c, h * w));
        }
        var f = RefOps.Tanh(RefOps.Linear(RefOps.GlobalAvgPool(a, N, c, h * w), p["features_extractor.linear.0.weight"], p["features_extractor.linear.0.bias"], N, c, Tiny.Features));
        double[] Mlp(string name, int[] hidden, double[] v)
        {
            int inF = Tiny.Features;
            for (int i = 0; i < hidden.Length; i++)
            {
                v = RefOps.Tanh(RefOps.Linear(v, p[$"{name}.{2 * i}.weight"], p[$"{name}.{2 * i}.bias"], N, inF, hidden[i]));
                inF = hidden[i];
            }
            return v;
        }
        var pi = Mlp("mlp_extractor.policy_net", Tiny.PolicyHidden, f);
        var vf = Mlp("mlp_extractor.value_net", Tiny.ValueHidden, f);
        return (RefOps.Linear(pi, p["action_net.weight"], p["action_net.bias"], N, Tiny.PolicyHidden[^1], D * K),
                RefOps.Linear(vf, p["value_net.weight"], p["value_net.bias"], N, Tiny.ValueHidden[^1], 1));
    }

    [Test]
    public void EveryParameterGradientMatchesFiniteDifferences()
    {
        using var b = new CpuBackend(2);
        var store = new ParameterStore();
        var net = new ActorCritic(store, C, D, K, Tiny);
        store.Materialize(b, new Rng(9));
        var rng = new Random(17);
        // random biases and weights of order 1 instead of the init (zero biases, 0.01 action head), so that
        // a mis-wired bias or a lost half of the shared gradient shows
        store.Values!.CopyFrom(Data.Uniform(store.ArenaLength, rng, -0.8, 0.8));
        var p = store.Parameters.ToDictionary(t => t.Name, t => ToDouble(t.Value.ToArray()));
        var xf = Data.Uniform(N * C * H * W, rng, -1, 1);
        var r1f = Data.Uniform(N * D * K, rng);
        var r2f = Data.Uniform(N, rng);
        double[] r1 = ToDouble(r1f), r2 = ToDouble(r2f), xd = ToDouble(xf);

        var x = b.Allocate(new Shape(N, C, H, W)); x.CopyFrom(xf);
        var (logits, values) = net.Forward(x);
        var (refLogits, refValues) = RefForward(p, xd);
        Validate("logits", logits.ToArray(), refLogits, 1e-5, 1e-4);
        Validate("values", values.ToArray(), refValues, 1e-5, 1e-4);

        var dl = b.Allocate(new Shape(N, D * K)); dl.CopyFrom(r1f);
        var dv = b.Allocate(new Shape(N, 1)); dv.CopyFrom(r2f);
        store.ZeroGrad();
        net.Backward(dl, dv);
        foreach (var t in store.Parameters)
        {
            var saved = p[t.Name];
            var expected = Gradient(v =>
            {
                p[t.Name] = v;
                var (l, vv) = RefForward(p, xd);
                p[t.Name] = saved;
                return Dot(r1, l) + Dot(r2, vv);
            }, (double[])saved.Clone());
            // float32 forward and backward through ≤ 6 layers of fan-in ≤ 36: a few 1e-6 of absolute error
            Validate($"d {t.Name}", t.Grad.ToArray(), expected, 2e-5, 1e-4);
        }
    }
}
