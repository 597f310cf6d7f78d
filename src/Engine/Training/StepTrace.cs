using System.Globalization;
using RlMixup.Core;
using RlMixup.Core.IO;
using RlMixup.Engine.Data;
using RlMixup.Models;

using RlMixup.Engine.Runs;

namespace RlMixup.Engine.Training;

/// <summary>
/// Records what the first steps of a training run consumed and produced, so that an independent
/// PyTorch program (scripts/replay_torch.py) can replay them from the same weights on the same
/// batches and compare step by step.
///
/// The trace folder holds one safetensors file per step, <c>step_000001.safetensors</c>, …:
/// <list type="bullet">
/// <item><c>x</c> (B,3,H,W) the clean augmented batch, <c>targets</c> (B,K) its one-hot labels,
///   <c>indices</c> (B) I64 the images' positions in the training set, <c>crop</c> (B,3) I64 each
///   image's augmentation: the shift (dy, dx) (output pixel (y, x) reads source pixel (y+dy, x+dx),
///   zero outside) and the flip (1: mirrored after the crop);</item>
/// <item><c>mixed</c> and <c>mixed_targets</c>: what the classifier trained on;</item>
/// <item>the mix's draws: <c>partner</c> (B) I64, <c>lambda</c> (the Beta or Dirichlet weights),
///   <c>box</c> I64 (y0, x0, y1, x1) for CutMix, and for the saliency policies <c>maps</c> (B,p,p),
///   <c>actions</c> I64 and <c>masks</c> (B,p,p);</item>
/// <item>metadata: <c>step</c>, <c>loss</c> (the step's mean loss, round-trip formatted), <c>lr</c>,
///   <c>momentum</c>, <c>weight_decay</c>, <c>nesterov</c>, <c>policy</c>,
///   <c>saliency_updates_bn_stats</c>, <c>full</c>.</item>
/// </list>
/// At a <em>full</em> step the file also holds the classifier's state before the step (the saliency
/// pass included) and after the optimiser: <c>before.&lt;name&gt;</c> and <c>after.&lt;name&gt;</c> for every
/// parameter and batch-norm buffer, <c>momentum_before.&lt;name&gt;</c> and <c>momentum_after.&lt;name&gt;</c>
/// for every parameter, <c>grad.&lt;name&gt;</c>, the step's gradient, and <c>relu.0</c>, <c>relu.1</c>, …
/// U8, 1 where each ReLU of the training forward passed its input (block by block, bn1's then bn2's):
/// the decisions the backward used. Names are PyTorch's.
/// </summary>
public sealed class StepTrace
{
    private readonly HashSet<long> _full;
    private readonly List<SafeTensor> _pending = [];

    /// <param name="folder">The trace folder (created).</param>
    /// <param name="steps">Steps 1..steps are recorded.</param>
    /// <param name="fullSteps">Steps that also record the classifier's state and gradients.</param>
    public StepTrace(string folder, int steps, IEnumerable<long> fullSteps)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), $"trace steps must be at least 1, got {steps}");
        Folder = folder;
        Steps = steps;
        _full = [.. fullSteps.Where(s => s >= 1 && s <= steps)];
        Directory.CreateDirectory(folder);
        // A trace folder holds one trace: steps left by an earlier, longer one would be replayed too.
        foreach (var old in Directory.GetFiles(folder, "step_*.safetensors")) File.Delete(old);
    }

    public string Folder { get; }
    public int Steps { get; }
    public IReadOnlyCollection<long> FullSteps => _full;

    public bool Records(long step) => step <= Steps;
    public bool IsFull(long step) => _full.Contains(step);

    public static string FileName(long step) => $"step_{step:D6}.safetensors";

    /// <summary>Before the step's saliency pass and mix: the state the step starts from (full steps only).</summary>
    internal void Before(long step, ParameterStore store, Sgd sgd)
    {
        _pending.Clear();
        if (!IsFull(step)) return;
        AddState("before.", store, withBuffers: true);
        AddMomentum("momentum_before.", store, sgd);
    }

    /// <summary>After the optimiser step: the batch, the mix, the loss, and at full steps the gradient and the new state.</summary>
    internal void After(long step, Batch batch, MixedBatch mixed, double loss, Sgd sgd, ParameterStore store, PreActResNet18 model, RunSpec config)
    {
        var t = _pending;
        t.Add(Floats("x", batch.X));
        t.Add(Floats("targets", batch.Targets));
        t.Add(SafeTensor.FromInt64("indices", [batch.Indices.Length], [.. batch.Indices.Select(i => (long)i)]));
        if (!batch.Augment.IsEmpty)
        {
            var crops = new long[3 * batch.Augment.Length];
            var a = batch.Augment.Span;
            for (int i = 0; i < a.Length; i++) (crops[3 * i], crops[3 * i + 1], crops[3 * i + 2]) = (a[i].Dy, a[i].Dx, a[i].Flip ? 1 : 0);
            t.Add(SafeTensor.FromInt64("crop", [a.Length, 3], crops));
        }
        t.Add(Floats("mixed", mixed.Images));
        t.Add(Floats("mixed_targets", mixed.Targets));
        if (mixed.Draws is { } d)
        {
            if (d.Partner != null) t.Add(SafeTensor.FromInt64("partner", [d.Partner.Length], [.. d.Partner.Select(i => (long)i)]));
            if (d.Lambda != null) t.Add(SafeTensor.FromFloats("lambda", [d.Lambda.Length], d.Lambda));
            if (d.Box is { } b) t.Add(SafeTensor.FromInt64("box", [4], [b.Y0, b.X0, b.Y1, b.X1]));
            if (d.Masks != null) t.Add(Floats("masks", d.Masks));
        }
        if (mixed.Observation != null) t.Add(Floats("maps", mixed.Observation));
        if (mixed.Actions != null) t.Add(SafeTensor.FromInt64("actions", [mixed.Actions.Length], [.. mixed.Actions.Select(a => (long)a)]));
        if (IsFull(step))
        {
            int k = 0;
            foreach (var r in model.ReluOutputs) t.Add(Positive($"relu.{k++}", r));
            foreach (var p in store.Parameters) t.Add(Floats("grad." + p.Name, p.Grad));
            AddState("after.", store, withBuffers: true);
            AddMomentum("momentum_after.", store, sgd);
        }
        var meta = new Dictionary<string, string>
        {
            ["step"] = step.ToString(CultureInfo.InvariantCulture),
            ["loss"] = loss.ToString("R", CultureInfo.InvariantCulture),
            ["lr"] = sgd.LearningRate.ToString("R", CultureInfo.InvariantCulture),
            ["momentum"] = sgd.Momentum.ToString("R", CultureInfo.InvariantCulture),
            ["weight_decay"] = sgd.WeightDecay.ToString("R", CultureInfo.InvariantCulture),
            ["nesterov"] = sgd.Nesterov ? "true" : "false",
            ["policy"] = Names.Of(config.Mix.Policy),
            ["val_from_train"] = config.Data.ValFromTrain?.ToString(CultureInfo.InvariantCulture) ?? "",
            ["saliency_updates_bn_stats"] = config.Mix.SaliencyUpdatesBnStats ? "true" : "false",
            ["full"] = IsFull(step) ? "true" : "false",
        };
        Safetensors.WriteAtomic(Path.Combine(Folder, FileName(step)), t, meta);
        _pending.Clear();
    }

    private void AddState(string prefix, ParameterStore store, bool withBuffers)
    {
        foreach (var p in store.All)
            if (withBuffers || p.Kind == TensorKind.Parameter) _pending.Add(Floats(prefix + p.Name, p.Value));
    }

    private void AddMomentum(string prefix, ParameterStore store, Sgd sgd)
    {
        var m = sgd.MomentumBuffer.ToArray();
        foreach (var p in store.Parameters)
            _pending.Add(SafeTensor.FromFloats(prefix + p.Name, p.Shape.Dims.ToArray(), m.AsSpan(p.Offset, p.Shape.Size)));
    }

    /// <summary>U8 (same shape): 1 where t &gt; 0. For a ReLU's output, the decision its backward used.</summary>
    private static SafeTensor Positive(string name, Tensor t)
    {
        var v = t.ToArray();
        var bytes = new byte[v.Length];
        for (int i = 0; i < v.Length; i++) bytes[i] = v[i] > 0 ? (byte)1 : (byte)0;
        return new SafeTensor(name, "U8", [.. t.Shape.Dims.ToArray().Select(d => (long)d)], bytes);
    }

    private static SafeTensor Floats(string name, Tensor t) => SafeTensor.FromFloats(name, t.Shape.Dims.ToArray(), t.ToArray());
}
