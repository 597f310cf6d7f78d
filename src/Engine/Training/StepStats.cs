using System.Text;
using System.Text.Json;
using RlMixup.Core;
using RlMixup.Models;

namespace RlMixup.Engine.Training;

/// <summary>
/// Training-dynamics diagnostics, written every <see cref="Every"/> steps to <c>steps.jsonl</c> in
/// the run folder, one JSON object per line, measured after the backward pass and before the
/// optimiser step (the fields bench/reference/torch_train.py writes for the same recipe):
/// <c>step</c>, <c>lr</c>, <c>loss</c>, <c>grad_norm</c> (the L2 norm of every parameter gradient
/// together), <c>param_norms</c> (per layer: the L2 norm of its parameters, keyed by the PyTorch
/// module name), <c>bn_gamma_min</c> (the smallest |γ| of any batch norm) and
/// <c>dead_relu_fraction</c> (the share of ReLU channels that are zero for every image and position
/// of the batch); a NaN or infinite value is written as null. Used to compare how a run collapses,
/// not for training.
/// </summary>
public sealed class StepStats : IDisposable
{
    private readonly StreamWriter _out;

    /// <param name="append">Continue the file (a resumed run) instead of starting it afresh.</param>
    public StepStats(string path, int every, bool append = false)
    {
        if (every < 1) throw new ArgumentOutOfRangeException(nameof(every), $"step statistics need an interval of at least 1, got {every}");
        Every = every;
        _out = new StreamWriter(path, append, new UTF8Encoding(false));
    }

    public int Every { get; }

    public bool Records(long step) => step % Every == 0;

    public void Write(long step, double lr, double loss, ParameterStore store, PreActResNet18 model)
    {
        var grads = store.Grads!.ToArray();
        var values = store.Values!.ToArray();
        double g2 = 0;
        foreach (float g in grads) g2 += (double)g * g;
        var layers = new Dictionary<string, double>();
        double gammaMin = double.PositiveInfinity;
        foreach (var p in store.Parameters)
        {
            var v = values.AsSpan(p.Offset, p.Shape.Size);
            double s = 0;
            foreach (float x in v) s += (double)x * x;
            string layer = p.Name[..p.Name.LastIndexOf('.')];
            layers[layer] = layers.GetValueOrDefault(layer) + s;
            if (p.Name.EndsWith(".weight", StringComparison.Ordinal) && p.Shape.Rank == 1 && layer.Contains("bn", StringComparison.Ordinal))
                foreach (float x in v) gammaMin = Math.Min(gammaMin, Math.Abs(x));
        }
        long dead = 0, channels = 0;
        foreach (var t in model.ReluOutputs) (dead, channels) = Add(t, dead, channels);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("step", step);
            w.WriteNumber("lr", lr);
            Number(w, "loss", loss);
            Number(w, "grad_norm", Math.Sqrt(g2));
            w.WriteStartObject("param_norms");
            foreach (var (k, v) in layers) Number(w, k, Math.Sqrt(v));
            w.WriteEndObject();
            w.WriteNumber("bn_gamma_min", double.IsFinite(gammaMin) ? gammaMin : 0);
            w.WriteNumber("dead_relu_fraction", channels == 0 ? 0 : (double)dead / channels);
            w.WriteEndObject();
        }
        _out.WriteLine(Encoding.UTF8.GetString(ms.ToArray()));
        _out.Flush();
    }

    /// <summary>A number, or null when it is NaN or infinite (JSON has no such numbers; pandas reads null as NaN).</summary>
    private static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }

    private static (long Dead, long Channels) Add(Tensor t, long dead, long channels)
    {
        var a = t.ToArray();
        int n = t.Shape.N, c = t.Shape.C, hw = t.Shape.H * t.Shape.W;
        for (int ch = 0; ch < c; ch++)
        {
            bool alive = false;
            for (int i = 0; i < n && !alive; i++)
            {
                var plane = a.AsSpan((i * c + ch) * hw, hw);
                foreach (float x in plane) if (x > 0) { alive = true; break; }
            }
            if (!alive) dead++;
        }
        return (dead, channels + c);
    }

    public void Dispose() => _out.Dispose();
}
