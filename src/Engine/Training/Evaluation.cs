using RlMixup.Core;
using RlMixup.Engine.Data;
using RlMixup.Models;

namespace RlMixup.Engine.Training;

/// <summary>What `eval` reports: top-1 and top-5 (shares of the images), the mean clean cross-entropy and the image count.</summary>
public sealed record EvalResult(int Images, int Correct1, int Correct5, double CrossEntropy)
{
    public double Top1 => Images == 0 ? 0 : (double)Correct1 / Images;
    public double Top5 => Images == 0 ? 0 : (double)Correct5 / Images;
}

/// <summary>
/// The classifier on a whole split, in eval mode (running BN statistics), without augmentation or
/// mixing, in batches. Top-1 counts as <see cref="Accuracy.CountCorrect"/> (and hence as the trainer's
/// test top-1); an image is a top-5 hit when its label ranks among the first min(5, K) logits, ties
/// ranked by class index as arg-max breaks them. The cross-entropy is −log softmax(logits)[label],
/// in double, averaged over the images.
/// </summary>
public static class Evaluation
{
    public static EvalResult Run(IBackend backend, PreActResNet18 model, ImageSet set, int batch)
    {
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), $"batch must be at least 1, got {batch}");
        var source = BatchSources.Create(backend, set);
        using var deviceData = source as IDisposable; // the dataset's device copy, on a GPU
        using var x = backend.Allocate(new Shape(batch, ImageSet.Channels, ImageSet.Height, ImageSet.Width));
        using var y = backend.Allocate(new Shape(batch, set.Classes));
        return Run(model, source, [.. Enumerable.Range(0, set.Count)], x, y);
    }

    /// <summary>
    /// The images <paramref name="indices"/> of <paramref name="source"/>, in batches as large as the
    /// buffers <paramref name="x"/> (B,3,H,W) and <paramref name="y"/> (B,K) the caller owns.
    /// </summary>
    public static EvalResult Run(PreActResNet18 model, IBatchSource source, int[] indices, Tensor x, Tensor y)
    {
        int batch = x.Shape.N, k = source.Classes, top = Math.Min(5, k);
        var logits = new float[batch * k];
        var labels = new byte[batch];
        int correct1 = 0, correct5 = 0;
        double ce = 0;
        for (int start = 0; start < indices.Length; start += batch)
        {
            int n = Math.Min(batch, indices.Length - start);
            var chunk = indices.AsSpan(start, n);
            Tensor xs = x, ys = y;
            if (n < batch) { xs = x.View(0, new Shape(n, ImageSet.Channels, ImageSet.Height, ImageSet.Width)); ys = y.View(0, new Shape(n, k)); }
            source.Fill(xs, ys, chunk, []);
            var rows = logits.AsSpan(0, n * k);
            model.Forward(xs, Mode.Eval).CopyTo(rows);
            for (int i = 0; i < n; i++) labels[i] = (byte)source.Label(chunk[i]);
            correct1 += Accuracy.CountCorrect(rows, labels.AsSpan(0, n), k);
            for (int i = 0; i < n; i++)
            {
                var row = rows.Slice(i * k, k);
                if (Rank(row, labels[i]) < top) correct5++;
                ce += CrossEntropy(row, labels[i]);
            }
        }
        return new EvalResult(indices.Length, correct1, correct5, indices.Length == 0 ? 0 : ce / indices.Length);
    }

    /// <summary>The 0-based rank of class c: classes with a larger logit, or an equal one and a smaller index, come first.</summary>
    public static int Rank(ReadOnlySpan<float> row, int c)
    {
        int rank = 0;
        for (int j = 0; j < row.Length; j++)
            if (row[j] > row[c] || (row[j] == row[c] && j < c)) rank++;
        return rank;
    }

    /// <summary>−log softmax(row)[c] in double (log-sum-exp shifted by the maximum).</summary>
    public static double CrossEntropy(ReadOnlySpan<float> row, int c)
    {
        double max = double.NegativeInfinity;
        foreach (float v in row) max = Math.Max(max, v);
        double sum = 0;
        foreach (float v in row) sum += Math.Exp(v - max);
        return max + Math.Log(sum) - row[c];
    }
}
