using BenchmarkDotNet.Attributes;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.Mixup;

namespace RlMixup.Bench;

/// <summary>
/// The CPU mix-up ops (the reference the CUDA kernels are checked against) at the training shape:
/// batch 100, 3×32×32, p = 16, K = 100, in GB/s. The byte counts are the compulsory traffic of each
/// op: every input read once and every output written once, in fp32, so that a fused kernel and
/// this reference are measured on the same scale (the CPU's scratch pass and the partner's second
/// read of x are not counted):
///   SaliencyMaps     g (B,3,H,W) read + maps (B,p,p) written                          = 1,331,200 B
///   PercentileMasks  maps read + masks (B,p,p) + thresholds (B) written               =   205,200 B
///   MaskMix          x, masks, targets (B,K) read + mixed, soft labels, fractions (B,3) = 2,641,200 B
///   InputMixup       x, targets read + mixed, soft labels written                      = 2,537,600 B
///   CutMix           as InputMixup                                                     = 2,537,600 B
/// </summary>
[Config(typeof(Config))]
public class MixupBenchmarks
{
    // ~0.3–5 ms per op: 400 calls per iteration keep an iteration above 100 ms.
    private sealed class Config() : ShortInProcessConfig(400, RateColumn.GigabytesPerSecond(c => Bytes(c.Descriptor.WorkloadMethod.Name)));

    public const int B = 100, C = 3, H = 32, W = 32, P = 16, K = 100;

    public static double Bytes(string op)
    {
        const double image = B * C * H * W * 4.0, cells = B * P * P * 4.0, labels = B * K * 4.0;
        return op switch
        {
            nameof(SaliencyMaps) => image + cells,
            nameof(PercentileMasks) => cells + cells + B * 4.0,
            nameof(MaskMix) => image + cells + labels + image + labels + B * 3 * 4.0,
            nameof(InputMixup) or nameof(CutMix) => image + labels + image + labels,
            _ => throw new ArgumentException($"no byte count for {op}"),
        };
    }

    private CpuBackend _b = null!;
    private Tensor _x = null!, _g = null!, _targets = null!, _maps = null!, _masks = null!, _thresholds = null!;
    private Tensor _mixed = null!, _mixedTargets = null!, _fractions = null!;
    private float[] _percentiles = null!, _lambda1 = null!;
    private int[] _perm = null!;
    private CutBox _box;

    [GlobalSetup]
    public void Setup()
    {
        _b = new CpuBackend();
        var rng = new Rng(23);
        var image = new Shape(B, C, H, W);
        _x = Normal(image, rng);
        _g = Normal(image, rng);
        _targets = _b.Allocate(new Shape(B, K));
        _targets.CopyFrom(Enumerable.Range(0, B * K).Select(i => i % K == i / K * 7 % K ? 1f : 0f).ToArray());
        _maps = _b.Allocate(new Shape(B, P, P));
        _masks = _b.Allocate(_maps.Shape);
        _thresholds = _b.Allocate(new Shape(B));
        _mixed = _b.Allocate(image);
        _mixedTargets = _b.Allocate(_targets.Shape);
        _fractions = _b.Allocate(new Shape(B, 3));
        _percentiles = [.. Enumerable.Range(0, B).Select(_ => 11f * rng.NextInt(10))];
        _perm = rng.Permutation(B);
        _lambda1 = [(float)rng.Beta(0.5, 0.5)];
        _box = CutBox.Sample(rng, rng.Beta(1, 1), H, W);

        // Check before timing: maps and soft labels are distributions, and the mix runs on real masks.
        SaliencyMaps();
        PercentileMasks();
        MaskMix();
        RequireDistributions(_maps.ToArray(), P * P, "saliency maps");
        RequireDistributions(_mixedTargets.ToArray(), K, "mask-mix soft labels");
        InputMixup();
        RequireDistributions(_mixedTargets.ToArray(), K, "input-mixup soft labels");
        CutMix();
        RequireDistributions(_mixedTargets.ToArray(), K, "cutmix soft labels");
    }

    private Tensor Normal(Shape s, Rng rng)
    {
        var t = _b.Allocate(s);
        t.CopyFrom(Enumerable.Range(0, s.Size).Select(_ => (float)rng.Normal()).ToArray());
        return t;
    }

    private static void RequireDistributions(float[] rows, int width, string what)
    {
        for (int r = 0; r < rows.Length / width; r++)
        {
            double sum = 0;
            for (int k = 0; k < width; k++) sum += rows[r * width + k];
            if (Math.Abs(sum - 1) > 1e-4) throw new InvalidOperationException($"{what}: row {r} sums to {sum}, not 1");
        }
    }

    [Benchmark] public void SaliencyMaps() => _b.SaliencyMaps(_maps, _g);
    [Benchmark] public void PercentileMasks() => _b.PercentileMasks(_masks, _thresholds, _maps, _percentiles);
    [Benchmark] public void MaskMix() => _b.MaskMix(_mixed, _mixedTargets, _fractions, _x, _targets, _masks, _perm, _lambda1);
    [Benchmark] public void InputMixup() => _b.InputMixup(_mixed, _mixedTargets, _x, _targets, _perm, _lambda1[0]);
    [Benchmark] public void CutMix() => _b.CutMix(_mixed, _mixedTargets, _x, _targets, _perm, _box);
}
