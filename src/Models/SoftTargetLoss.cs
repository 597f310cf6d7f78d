using RlMixup.Core;

namespace RlMixup.Models;

/// <summary>
/// Cross-entropy against soft targets, averaged over the batch:
/// loss = mean_i( −Σ_c y_ic · log_softmax(z_i)_c ). Owns its buffers; Forward then Backward.
/// </summary>
public sealed class SoftTargetLoss
{
    private Tensor? _logp, _losses, _dz, _targets;
    private float[] _hostLosses = [];

    /// <summary>Computes the per-sample losses; returns their mean (this reads the losses back to the host).</summary>
    public float Forward(Tensor logits, Tensor targets)
    {
        var b = logits.Backend;
        Check.Same("soft cross-entropy", "targets", targets.Shape, logits.Shape);
        int n = logits.Shape[0];
        Tensor.Ensure(ref _logp, b, logits.Shape);
        Tensor.Ensure(ref _dz, b, logits.Shape);
        Tensor.Ensure(ref _losses, b, new Shape(n));
        if (_hostLosses.Length != n) _hostLosses = new float[n];
        b.LogSoftmaxForward(_logp, logits);
        b.SoftCrossEntropyForward(_losses, _logp, targets);
        _targets = targets;
        _losses.CopyTo(_hostLosses);
        double sum = 0;
        foreach (float l in _hostLosses) sum += l;
        return (float)(sum / n);
    }

    /// <summary>The per-sample losses of the last Forward.</summary>
    public ReadOnlySpan<float> Losses => _hostLosses;

    /// <summary>Log-probabilities (N, K) of the last Forward.</summary>
    public Tensor LogProbs => _logp ?? throw new InvalidOperationException("loss: Forward first");

    /// <summary>∂(mean loss)/∂logits.</summary>
    public Tensor Backward()
    {
        var logp = LogProbs;
        logp.Backend.SoftCrossEntropyBackward(_dz!, logp, _targets!, 1f / logp.Shape[0]);
        return _dz!;
    }
}
