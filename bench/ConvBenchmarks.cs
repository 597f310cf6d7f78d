using BenchmarkDotNet.Attributes;
using RlMixup.Core;
using RlMixup.Core.Cpu;

namespace RlMixup.Bench;

/// <summary>
/// The CPU convolution at PreActResNet18's layer shapes, batch 100, 32×32 input: forward,
/// backward-data and backward-filter. Reports GFLOP/s (2·N·O·C·kH·kW·Ho·Wo per call).
/// </summary>
[Config(typeof(Config))]
public class ConvBenchmarks
{
    private sealed class Config() : ShortInProcessConfig(RateColumn.Gflops(c => Flops((int)c.Parameters["Width"], (string)c.Parameters["Layer"])));

    /// <summary>name: (in channels ×w, out channels ×w, kernel, stride, input size). Channel counts scale with width.</summary>
    public static readonly Dictionary<string, (int Cin, int Cout, int K, int Stride, int Size)> Layers = new()
    {
        ["stem"] = (0, 1, 3, 1, 32),        // Cin 0 means 3 input channels
        ["layer1.conv"] = (1, 1, 3, 1, 32),
        ["layer2.0.conv1"] = (1, 2, 3, 2, 32),
        ["layer2.0.shortcut"] = (1, 2, 1, 2, 32),
        ["layer2.conv"] = (2, 2, 3, 1, 16),
        ["layer3.conv"] = (4, 4, 3, 1, 8),
        ["layer4.conv"] = (8, 8, 3, 1, 4),
    };

    [Params(16, 64)] public int Width { get; set; }
    [ParamsSource(nameof(LayerNames))] public string Layer { get; set; } = "layer1.conv";
    public static IEnumerable<string> LayerNames => Layers.Keys;
    public const int Batch = 100;

    private CpuBackend _b = null!;
    private Tensor _x = null!, _w = null!, _y = null!, _dx = null!, _dw = null!;
    private Conv2dSpec _spec;

    [GlobalSetup]
    public void Setup()
    {
        _b = new CpuBackend();
        var (cin, cout, k, stride, size) = Layers[Layer];
        int inC = cin == 0 ? 3 : cin * Width, outC = cout * Width;
        _spec = new Conv2dSpec(stride, k / 2);
        var rng = new Rng(5);
        _x = Random(new Shape(Batch, inC, size, size), rng);
        _w = Random(new Shape(outC, inC, k, k), rng);
        _y = _b.Allocate(_spec.OutputShape(_x.Shape, _w.Shape));
        _dx = _b.Allocate(_x.Shape);
        _dw = _b.Allocate(_w.Shape);
    }

    private Tensor Random(Shape s, Rng rng)
    {
        var t = _b.Allocate(s);
        var v = new float[s.Size];
        for (int i = 0; i < v.Length; i++) v[i] = (float)rng.Uniform(-1, 1);
        t.CopyFrom(v);
        return t;
    }

    public static double Flops(int width, string layer)
    {
        var (cin, cout, k, stride, size) = Layers[layer];
        int inC = cin == 0 ? 3 : cin * width, outC = cout * width;
        int o = (size + 2 * (k / 2) - k) / stride + 1;
        return 2.0 * Batch * outC * inC * k * k * o * o;
    }

    [Benchmark] public void Forward() => _b.Conv2dForward(_y, _x, _w, _spec);
    [Benchmark] public void BackwardData() => _b.Conv2dBackwardData(_dx, _y, _w, _spec);
    [Benchmark] public void BackwardFilter() => _b.Conv2dBackwardFilter(_dw, _x, _y, _spec);
}

/// <summary>One full PreActResNet18 training step at batch 100 (forward, loss, backward, SGD), in images/s.</summary>
[Config(typeof(Config))]
public class TrainStepBenchmarks
{
    private sealed class Config() : ShortInProcessConfig(RateColumn.ImagesPerSecond(Batch));

    [Params(16, 64)] public int Width { get; set; }
    public const int Batch = 100;
    private Action _step = null!;

    [GlobalSetup]
    public void Setup()
    {
        var b = new CpuBackend();
        var store = new RlMixup.Models.ParameterStore();
        var model = new RlMixup.Models.PreActResNet18(store, Width, 100);
        store.Materialize(b, new Rng(0));
        var sgd = new RlMixup.Models.Sgd(store, 0.1f);
        var rng = new Rng(1);
        var x = b.Allocate(new Shape(Batch, 3, 32, 32));
        x.CopyFrom(Enumerable.Range(0, x.Length).Select(_ => (float)rng.Normal()).ToArray());
        var t = b.Allocate(new Shape(Batch, 100));
        t.CopyFrom(Enumerable.Range(0, t.Length).Select(i => i % 100 == i / 100 % 100 ? 1f : 0f).ToArray());
        var loss = new RlMixup.Models.SoftTargetLoss();
        _step = () =>
        {
            store.ZeroGrad();
            loss.Forward(model.Forward(x, RlMixup.Models.Mode.Train), t);
            model.Backward(loss.Backward());
            sgd.Step();
        };
    }

    [Benchmark] public void TrainStep() => _step();
}
