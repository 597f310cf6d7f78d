using System.Text.Json;
using NUnit.Framework;
using RlMixup.Core;
using RlMixup.Core.Cpu;
using RlMixup.Core.Mixup;
using RlMixup.Engine;
using RlMixup.Engine.SelfTest;

using RlMixup.Engine.Runs;
using RlMixup.Engine.Commands;

namespace RlMixup.Tests;

/// <summary>The backend self-test harness: it passes the CPU against itself and catches a wrong op.</summary>
public class SelfTestTests
{
    /// <summary>How a wrapped CPU backend misbehaves in one op.</summary>
    // Side: perturbs a secondary output instead of the first (batch norm's running mean, dgamma)
    private enum Fault { Perturb, Throw, Side, Scale }

    /// <summary>
    /// The CPU backend with one op made wrong: its output perturbed (<c>relative</c> times the output's
    /// largest magnitude added to the middle element; with <see cref="Fault.Scale"/>, every element
    /// scaled by 1 + <c>relative</c>, as a wrong alpha would) from the <c>fromCall</c>-th call on, or
    /// the op throwing.
    /// </summary>
    private sealed class FaultyBackend(string op, Fault fault = Fault.Perturb, float relative = 1e-2f, int fromCall = 1) : IBackend
    {
        private readonly CpuBackend _cpu = new(2);
        private int _calls;
        private bool _perturbing;   // the perturbation's own download and upload are not calls of the op
        public string Name => $"cpu with a faulty {op}";
        public void Dispose() => _cpu.Dispose();

        private void After(string name, Tensor output)
        {
            if (name != op || fault is not (Fault.Perturb or Fault.Side or Fault.Scale) || _perturbing || ++_calls < fromCall) return;
            _perturbing = true;
            var v = output.ToArray();
            if (fault == Fault.Scale)
                for (int j = 0; j < v.Length; j++) v[j] *= 1 + relative;
            else v[v.Length / 2] += relative * v.Max(MathF.Abs);
            output.CopyFrom(v);
            _perturbing = false;
        }

        private void Before(string name)
        {
            if (name == op && fault == Fault.Throw) throw new InvalidOperationException($"{op} is broken\non purpose");
        }

        // Tensors are owned by this backend (as on a real device, so layers that call x.Backend come
        // here too) and handed to the CPU backend as views of the same memory.
        public Tensor Allocate(Shape shape) => new(new CpuBuffer(this, new float[shape.Size]), 0, shape, ownsBuffer: true);
        private Tensor I(Tensor t) => new(new CpuBuffer(_cpu, ((CpuBuffer)t.Buffer).Data), t.Offset, t.Shape, ownsBuffer: false);
        private Tensor? N(Tensor? t) => t == null ? null : I(t);
        public void Upload(Tensor dst, ReadOnlySpan<float> src) { Before("Upload"); _cpu.Upload(I(dst), src); After("Upload", dst); }
        public void Download(Tensor src, Span<float> dst) { Before("Download"); _cpu.Download(I(src), dst); }
        public void Fill(Tensor t, float value) { Before("Fill"); _cpu.Fill(I(t), value); After("Fill", t); }
        public void Copy(Tensor dst, Tensor src) { Before("Copy"); _cpu.Copy(I(dst), I(src)); After("Copy", dst); }
        public void Add(Tensor y, Tensor a, Tensor b) { Before("Add"); _cpu.Add(I(y), I(a), I(b)); After("Add", y); }
        public void Axpy(Tensor y, float alpha, Tensor x) { Before("Axpy"); _cpu.Axpy(I(y), alpha, I(x)); After("Axpy", y); }
        public void Scale(Tensor y, float alpha) { Before("Scale"); _cpu.Scale(I(y), alpha); After("Scale", y); }
        public void ReluForward(Tensor y, Tensor x) { Before("ReluForward"); _cpu.ReluForward(I(y), I(x)); After("ReluForward", y); }
        public void ReluBackward(Tensor dx, Tensor y, Tensor dy) { Before("ReluBackward"); _cpu.ReluBackward(I(dx), I(y), I(dy)); After("ReluBackward", dx); }
        public void TanhForward(Tensor y, Tensor x) { Before("TanhForward"); _cpu.TanhForward(I(y), I(x)); After("TanhForward", y); }
        public void TanhBackward(Tensor dx, Tensor y, Tensor dy) { Before("TanhBackward"); _cpu.TanhBackward(I(dx), I(y), I(dy)); After("TanhBackward", dx); }
        public void Gemm(Tensor c, Tensor a, bool transA, Tensor b, bool transB, float alpha = 1, float beta = 0) { Before("Gemm"); _cpu.Gemm(I(c), I(a), transA, I(b), transB, alpha, beta); After("Gemm", c); }
        public void LinearForward(Tensor y, Tensor x, Tensor w, Tensor? b) { Before("LinearForward"); _cpu.LinearForward(I(y), I(x), I(w), N(b)); After("LinearForward", y); }
        public void LinearBackward(Tensor? dx, Tensor? dw, Tensor? db, Tensor dy, Tensor x, Tensor w) { Before("LinearBackward"); _cpu.LinearBackward(N(dx), N(dw), N(db), I(dy), I(x), I(w)); if (dw != null) After("LinearBackward", dw); }
        public void Conv2dForward(Tensor y, Tensor x, Tensor w, Conv2dSpec spec) { Before("Conv2dForward"); _cpu.Conv2dForward(I(y), I(x), I(w), spec); After("Conv2dForward", y); }
        public void Conv2dBackwardData(Tensor dx, Tensor dy, Tensor w, Conv2dSpec spec) { Before("Conv2dBackwardData"); _cpu.Conv2dBackwardData(I(dx), I(dy), I(w), spec); After("Conv2dBackwardData", dx); }
        public void Conv2dBackwardFilter(Tensor dw, Tensor x, Tensor dy, Conv2dSpec spec) { Before("Conv2dBackwardFilter"); _cpu.Conv2dBackwardFilter(I(dw), I(x), I(dy), spec); After("Conv2dBackwardFilter", dw); }
        public void AddChannelBias(Tensor y, Tensor bias) { Before("AddChannelBias"); _cpu.AddChannelBias(I(y), I(bias)); After("AddChannelBias", y); }
        public void ChannelBiasBackward(Tensor dbias, Tensor dy) { Before("ChannelBiasBackward"); _cpu.ChannelBiasBackward(I(dbias), I(dy)); After("ChannelBiasBackward", dbias); }
        public void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, float momentum, float eps, bool updateRunning)
        { Before("BatchNormForwardTraining"); _cpu.BatchNormForwardTraining(I(y), I(x), I(gamma), I(beta), I(runningMean), I(runningVar), I(saveMean), I(saveInvStd), momentum, eps, updateRunning); After("BatchNormForwardTraining", y); }
        public void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float eps)
        { Before("BatchNormForwardInference"); _cpu.BatchNormForwardInference(I(y), I(x), I(gamma), I(beta), I(runningMean), I(runningVar), eps); After("BatchNormForwardInference", fault == Fault.Side ? runningMean : y); }
        public void BatchNormBackward(Tensor dx, Tensor? dgamma, Tensor? dbeta, Tensor dy, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, float eps)
        { Before("BatchNormBackward"); _cpu.BatchNormBackward(I(dx), N(dgamma), N(dbeta), I(dy), I(x), I(gamma), I(saveMean), I(saveInvStd), eps); if (fault != Fault.Side) After("BatchNormBackward", dx); else if (dgamma != null) After("BatchNormBackward", dgamma); }
        public void GlobalAvgPoolForward(Tensor y, Tensor x) { Before("GlobalAvgPoolForward"); _cpu.GlobalAvgPoolForward(I(y), I(x)); After("GlobalAvgPoolForward", y); }
        public void GlobalAvgPoolBackward(Tensor dx, Tensor dy) { Before("GlobalAvgPoolBackward"); _cpu.GlobalAvgPoolBackward(I(dx), I(dy)); After("GlobalAvgPoolBackward", dx); }
        public void LogSoftmaxForward(Tensor logp, Tensor z) { Before("LogSoftmaxForward"); _cpu.LogSoftmaxForward(I(logp), I(z)); After("LogSoftmaxForward", logp); }
        public void LogSoftmaxBackward(Tensor dz, Tensor logp, Tensor dlogp) { Before("LogSoftmaxBackward"); _cpu.LogSoftmaxBackward(I(dz), I(logp), I(dlogp)); After("LogSoftmaxBackward", dz); }
        public void SoftCrossEntropyForward(Tensor losses, Tensor logp, Tensor targets) { Before("SoftCrossEntropyForward"); _cpu.SoftCrossEntropyForward(I(losses), I(logp), I(targets)); After("SoftCrossEntropyForward", losses); }
        public void SoftCrossEntropyBackward(Tensor dz, Tensor logp, Tensor targets, float scale) { Before("SoftCrossEntropyBackward"); _cpu.SoftCrossEntropyBackward(I(dz), I(logp), I(targets), scale); After("SoftCrossEntropyBackward", dz); }
        public void SgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lr, float momentum, float weightDecay, bool nesterov)
        { Before("SgdStep"); _cpu.SgdStep(I(param), I(grad), I(momentumBuffer), lr, momentum, weightDecay, nesterov); After("SgdStep", param); }
        public void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, int step, float lr, float beta1, float beta2, float eps, float weightDecay)
        { Before("AdamStep"); _cpu.AdamStep(I(param), I(grad), I(m), I(v), step, lr, beta1, beta2, eps, weightDecay); After("AdamStep", param); }
        public void SaliencyMaps(Tensor maps, Tensor inputGrad) { Before("SaliencyMaps"); _cpu.SaliencyMaps(I(maps), I(inputGrad)); After("SaliencyMaps", maps); }
        public void PercentileMasks(Tensor masks, Tensor thresholds, Tensor maps, ReadOnlySpan<float> percentiles)
        { Before("PercentileMasks"); _cpu.PercentileMasks(I(masks), I(thresholds), I(maps), percentiles); After("PercentileMasks", thresholds); }
        public void MaskMix(Tensor mixed, Tensor mixedTargets, Tensor fractions, Tensor x, Tensor targets, Tensor masks, ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1)
        { Before("MaskMix"); _cpu.MaskMix(I(mixed), I(mixedTargets), I(fractions), I(x), I(targets), I(masks), perm, lambda1); After("MaskMix", mixed); }
        public void InputMixup(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, float lambda)
        { Before("InputMixup"); _cpu.InputMixup(I(mixed), I(mixedTargets), I(x), I(targets), perm, lambda); After("InputMixup", mixed); }
        public void CutMix(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, CutBox box)
        { Before("CutMix"); _cpu.CutMix(I(mixed), I(mixedTargets), I(x), I(targets), perm, box); After("CutMix", mixed); }
    }

    private static IReadOnlyList<SelfTestCase> Cases(params string[] ops) => [.. SelfTestCases.All().Where(c => ops.Contains(c.Op))];

    [Test]
    public void CpuAgainstCpuPassesEveryRowWithZeroError()
    {
        using var candidate = new CpuBackend(2);
        using var reference = new CpuBackend(2);
        var report = BackendSelfTest.Run(candidate, reference, tf32: false, seed: 3);
        Assert.That(report.Passed, Is.True);
        Assert.That(report.Rows.Select(r => r.Worst), Is.All.EqualTo(0.0), "the same code on the same inputs gives the same bits");
        Assert.That(report.Rows.Last().Check, Does.StartWith("determinism"));
        Assert.That(report.Rows.Last().Detail, Does.EndWith("values bitwise identical"));
        var checks = report.Rows.Select(r => r.Check).ToList();
        Assert.That(checks, Does.Contain("PreActResNet18 step: weight gradients").And.Contain("RL-Mixup transform: mixed images"));

        // Every op of the interface has a row of its own (Synchronize computes nothing: every check's download waits on it).
        var ops = typeof(IBackend).GetMethods().Select(m => m.Name).Where(n => n is not ("Allocate" or "get_Name" or "Dispose" or "Synchronize")).Distinct();
        foreach (string op in ops)
            Assert.That(checks, Has.Some.Matches<string>(c => c!.Split(' ', '/', ':').Contains(op)), $"no self-test row for IBackend.{op}");
        // the CUDA backend's own op (the batch gather through the device batch source), and a row per
        // batch-norm gradient, per kind of running-statistics check
        Assert.That(checks, Does.Contain("GatherAugment: images").And.Contain("GatherAugment: targets"));
        Assert.That(checks, Does.Contain("BatchNormBackward: dx").And.Contain("BatchNormBackward: dgamma").And.Contain("BatchNormBackward: dbeta"));
        var exact = report.Rows.Where(r => r.Tolerance.IsExact).Select(r => r.Check + " " + r.Shape).ToList();
        Assert.That(exact, Has.Some.StartsWith("BatchNormForwardInference (4,6,5,7): running statistics and every input untouched"));
        Assert.That(exact, Has.Some.StartsWith("BatchNormForwardTraining (4,6,5,7), updateRunning off"));
        Assert.That(exact, Has.Some.StartsWith("Allocate "));
    }

    [Test]
    public void CpuAgainstCpuThroughTheCommandPassesAndWritesJsonLines()
    {
        string json = Path.Combine(Path.GetTempPath(), $"selftest-{Guid.NewGuid():N}.jsonl");
        var output = new StringWriter();
        var old = Console.Out;
        Console.SetOut(output);
        int rc;
        try { rc = Cli.Run(["selftest", "--device", "cpu", "--json", json]); }
        finally { Console.SetOut(old); }
        try
        {
            Assert.That(rc, Is.EqualTo(0), output.ToString());
            Assert.That(output.ToString(), Does.Contain("selftest: all ").And.Contain("checks passed").And.Not.Contain("FAIL"));
            var lines = File.ReadAllLines(json).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.That(lines.Select(l => l.GetProperty("type").GetString()).Distinct(), Is.EqualTo(new[] { "header", "row", "summary" }));
            Assert.That(lines[0].GetProperty("checks").GetInt32(), Is.EqualTo(SelfTestCases.All().Count));
            Assert.That(lines.Count(l => l.GetProperty("type").GetString() == "row"), Is.GreaterThan(60));
            Assert.That(lines[^1].GetProperty("passed").GetBoolean(), Is.True);
            Assert.That(lines[^1].GetProperty("context_lost").ValueKind, Is.EqualTo(JsonValueKind.Null));
        }
        finally { File.Delete(json); }
    }

    [Test]
    public void APerturbedOpFailsItsRowAndTheExitCodeIsNonZero()
    {
        using var candidate = new FaultyBackend("TanhForward");
        using var reference = new CpuBackend(2);
        var log = new StringWriter();
        int rc = SelfTestCommand.Execute(candidate, reference, tf32: false, seed: 0, log, cases: Cases("TanhForward", "TanhBackward", "Add"));
        Assert.That(rc, Is.EqualTo(1));
        string text = log.ToString();
        Assert.That(text.Split('\n').Single(l => l.StartsWith("TanhForward")), Does.EndWith("FAIL"));
        Assert.That(text.Split('\n').Single(l => l.StartsWith("TanhBackward")), Does.EndWith("PASS"));
        Assert.That(text.Split('\n').Single(l => l.StartsWith("Add")), Does.EndWith("PASS"));
        Assert.That(text, Does.Contain("1 of 4 checks FAILED: TanhForward"));
    }

    [Test]
    public void AWrongConvolutionFailsItsRowAndTheNetworkStep()
    {
        using var candidate = new FaultyBackend("Conv2dBackwardFilter", relative: 0.1f);
        using var reference = new CpuBackend(2);
        var report = BackendSelfTest.Run(candidate, reference, tf32: true, seed: 0, Cases("Conv2dBackwardFilter", "Conv2dForward"));
        Assert.That(report.Passed, Is.False);
        Assert.That(report.Rows.Where(r => r.Check.StartsWith("Conv2dBackwardFilter")).Select(r => r.Pass), Is.All.False,
            "an error of 10% of the largest value exceeds even the TF32 tolerances");
        Assert.That(report.Rows.Where(r => r.Check.StartsWith("Conv2dForward")).Select(r => r.Pass), Is.All.True);
        // The network step is bounded normwise (one ReLU decision that float noise flips must pass), so
        // one wrong element is the per-op rows' to catch; a wrong scale on every call is the step's.
        report = BackendSelfTest.Run(candidate, reference, tf32: false, seed: 0, Cases("PreActResNet18 step"));
        Assert.That(report.Rows.Single(r => r.Check == "PreActResNet18 step: weight gradients").Pass, Is.True);
        using var scaled = new FaultyBackend("Conv2dBackwardFilter", Fault.Scale, relative: 0.1f);
        report = BackendSelfTest.Run(scaled, reference, tf32: false, seed: 0, Cases("PreActResNet18 step"));
        Assert.That(report.Rows.Single(r => r.Check == "PreActResNet18 step: weight gradients").Pass, Is.False);
        Assert.That(report.Rows.Single(r => r.Check == "PreActResNet18 step: loss").Pass, Is.True, "the forward pass is untouched");
        report = BackendSelfTest.Run(scaled, reference, tf32: true, seed: 0, Cases("PreActResNet18 step"));
        Assert.That(report.Rows.Single(r => r.Check == "PreActResNet18 step: weight gradients").Pass, Is.True,
            "10% is within TF32's normwise bound on a whole step: the per-op rows hold TF32 convolutions tightly");
    }

    [Test]
    public void InferenceThatTouchesTheRunningStatisticsFailsTheUntouchedRowOnly()
    {
        using var candidate = new FaultyBackend("BatchNormForwardInference", Fault.Side, relative: 1e-6f);
        using var reference = new CpuBackend(2);
        var report = BackendSelfTest.Run(candidate, reference, tf32: false, seed: 0, Cases("BatchNormForwardInference"));
        var rows = report.Rows.Where(r => r.Check.StartsWith("BatchNormForwardInference")).ToList();
        Assert.That(rows, Has.Count.EqualTo(2));
        Assert.That(rows.Single(r => r.Tolerance.IsExact).Pass, Is.False, "even a change of 1e-6 of the largest value is caught");
        Assert.That(rows.Single(r => !r.Tolerance.IsExact).Pass, Is.True, "y itself is right");
    }

    [Test]
    public void AWrongBatchNormGammaGradientFailsItsOwnRow()
    {
        using var candidate = new FaultyBackend("BatchNormBackward", Fault.Side);
        using var reference = new CpuBackend(2);
        var report = BackendSelfTest.Run(candidate, reference, tf32: false, seed: 0, Cases("BatchNormForwardTraining", "BatchNormBackward"));
        var backward = report.Rows.Where(r => r.Check.StartsWith("BatchNormBackward")).ToList();
        var dgamma = backward.Where(r => r.Check == "BatchNormBackward: dgamma").ToList();
        var others = backward.Except(dgamma).ToList();
        Assert.That(dgamma, Has.Count.EqualTo(2), "the two cases with parameter gradients");
        Assert.That(dgamma.Select(r => r.Pass), Is.All.False);
        Assert.That(others.Select(r => r.Check).Distinct(), Is.EquivalentTo(new[] { "BatchNormBackward: dx", "BatchNormBackward: dbeta" }));
        Assert.That(others.Select(r => r.Pass), Is.All.True, "dx, dbeta and the dx-only case are right");
    }

    [Test]
    public void AnErrorWithinTheToleranceStillPasses()
    {
        using var candidate = new FaultyBackend("Add", relative: 5e-7f);
        using var reference = new CpuBackend(2);
        var report = BackendSelfTest.Run(candidate, reference, tf32: false, seed: 0, Cases("Add"));
        var add = report.Rows.Single(r => r.Check == "Add");
        Assert.That(add.MaxAbsError, Is.GreaterThan(0));
        Assert.That(add.Worst, Is.GreaterThan(0).And.LessThanOrEqualTo(1));
        Assert.That(report.Passed, Is.True);
    }

    [Test]
    public void AnOpThatThrowsIsAFailRowNamingTheError()
    {
        using var candidate = new FaultyBackend("Scale", Fault.Throw);
        using var reference = new CpuBackend(2);
        var report = BackendSelfTest.Run(candidate, reference, tf32: false, seed: 0, Cases("Scale", "Add"));
        var scales = report.Rows.Where(r => r.Check == "Scale").ToList();
        Assert.That(scales, Has.Count.EqualTo(2), "Scale on (4097) and beyond the grid cap");
        Assert.That(scales.Select(r => r.Pass), Is.All.False);
        Assert.That(scales.Select(r => r.Detail), Is.All.EqualTo("InvalidOperationException: Scale is broken on purpose"));
        Assert.That(report.Rows.Single(r => r.Check == "Add").Pass, Is.True);
    }

    [Test]
    public void AnOpThatDiffersBetweenRunsFailsOnlyTheDeterminismRow()
    {
        // Right on the first call, wrong from the second: the comparison passes, the rerun differs.
        using var candidate = new FaultyBackend("Axpy", fromCall: 3);
        using var reference = new CpuBackend(2);
        var report = BackendSelfTest.Run(candidate, reference, tf32: false, seed: 0, Cases("Axpy", "Axpy on views"));
        Assert.That(report.Rows.Where(r => r.Check.StartsWith("Axpy")).Select(r => r.Pass), Is.All.True);
        var det = report.Rows.Single(r => r.Check.StartsWith("determinism"));
        Assert.That(det.Pass, Is.False);
        Assert.That(det.Detail, Does.StartWith("Axpy: y["));
    }

    [Test]
    public void CompareScalesTheAbsoluteToleranceByTheLargestReferenceValue()
    {
        var tol = new Tolerance(1e-3, 0);
        Assert.That(BackendSelfTest.Compare([100f, 0.1f], [100f, 0.2f], tol).Worst, Is.EqualTo(1.0).Within(1e-4), "0.1 off against 1e-3·100");
        Assert.That(BackendSelfTest.Compare([1f, 0.1f], [1f, 0.2f], tol).Worst, Is.EqualTo(100.0).Within(1e-2));
        Assert.That(BackendSelfTest.Compare([float.NaN], [float.NaN], tol).Worst, Is.EqualTo(0.0));
        Assert.That(BackendSelfTest.Compare([float.NaN], [1f], tol).Worst, Is.EqualTo(double.PositiveInfinity));
        Assert.That(BackendSelfTest.Compare([1f, 2f], [1f], tol).Worst, Is.EqualTo(double.PositiveInfinity), "length mismatch");
        Assert.That(BackendSelfTest.Compare([1.0000001f], [1f], Tolerance.Exact).Worst, Is.EqualTo(double.PositiveInfinity));
    }

    [Test]
    public void EachRowIsWrittenAsItsCheckFinishes()
    {
        // The writer is read while the run is in progress: when the third check starts, the rows of
        // the first two are already in the table and in the JSON-lines file.
        string json = Path.Combine(Path.GetTempPath(), $"selftest-{Guid.NewGuid():N}.jsonl");
        var log = new StringWriter();
        string? tableSoFar = null, fileSoFar = null;
        var probe = new SelfTestCase("Probe", "(1)", Tolerance.Exact, c =>
        {
            tableSoFar ??= log.ToString();
            fileSoFar ??= ReadShared(json);
            c.Record("y", [1f]);
        });
        try
        {
            using var candidate = new CpuBackend(1);
            using var reference = new CpuBackend(1);
            int rc = SelfTestCommand.Execute(candidate, reference, tf32: false, seed: 0, log, json, [.. Cases("Fill", "Copy"), probe]);
            Assert.That(rc, Is.EqualTo(0), log.ToString());
            Assert.That(tableSoFar!.Split('\n').Count(l => l.EndsWith("PASS")), Is.EqualTo(2), tableSoFar);
            Assert.That(fileSoFar!.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, Is.EqualTo(3), "header and two rows");
        }
        finally { File.Delete(json); }
    }

    private static string ReadShared(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(f).ReadToEnd();
    }

    /// <summary>A backend whose device faults in one op: the op throws the driver's sticky error, and so does every synchronisation after it.</summary>
    private sealed class FaultingBackend(string op) : IBackend
    {
        private readonly FaultyBackend _inner = new("none");
        private bool _faulted;
        public string Name => $"cpu whose {op} faults";
        public void Dispose() => _inner.Dispose();
        private static RlMixup.Core.Cuda.Native.CudaException Sticky() =>
            new("CUDA driver", "cuStreamSynchronize(stream)", "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered");
        private void Check(string name)
        {
            if (name == op) _faulted = true;
            if (_faulted) throw Sticky();
        }
        public void Synchronize() { if (_faulted) throw Sticky(); }
        public Tensor Allocate(Shape shape) => _inner.Allocate(shape);
        public void Upload(Tensor dst, ReadOnlySpan<float> src) { Check("Upload"); _inner.Upload(dst, src); }
        public void Download(Tensor src, Span<float> dst) { Check("Download"); _inner.Download(src, dst); }
        public void Fill(Tensor t, float value) { Check("Fill"); _inner.Fill(t, value); }
        public void Copy(Tensor dst, Tensor src) { Check("Copy"); _inner.Copy(dst, src); }
        public void Add(Tensor y, Tensor a, Tensor b) { Check("Add"); _inner.Add(y, a, b); }
        public void Axpy(Tensor y, float alpha, Tensor x) { Check("Axpy"); _inner.Axpy(y, alpha, x); }
        public void Scale(Tensor y, float alpha) { Check("Scale"); _inner.Scale(y, alpha); }
        public void ReluForward(Tensor y, Tensor x) => throw new NotSupportedException();
        public void ReluBackward(Tensor dx, Tensor y, Tensor dy) => throw new NotSupportedException();
        public void TanhForward(Tensor y, Tensor x) => throw new NotSupportedException();
        public void TanhBackward(Tensor dx, Tensor y, Tensor dy) => throw new NotSupportedException();
        public void Gemm(Tensor c, Tensor a, bool transA, Tensor b, bool transB, float alpha = 1, float beta = 0) => throw new NotSupportedException();
        public void LinearForward(Tensor y, Tensor x, Tensor w, Tensor? b) => throw new NotSupportedException();
        public void LinearBackward(Tensor? dx, Tensor? dw, Tensor? db, Tensor dy, Tensor x, Tensor w) => throw new NotSupportedException();
        public void Conv2dForward(Tensor y, Tensor x, Tensor w, Conv2dSpec spec) => throw new NotSupportedException();
        public void Conv2dBackwardData(Tensor dx, Tensor dy, Tensor w, Conv2dSpec spec) => throw new NotSupportedException();
        public void Conv2dBackwardFilter(Tensor dw, Tensor x, Tensor dy, Conv2dSpec spec) => throw new NotSupportedException();
        public void AddChannelBias(Tensor y, Tensor bias) => throw new NotSupportedException();
        public void ChannelBiasBackward(Tensor dbias, Tensor dy) => throw new NotSupportedException();
        public void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, float momentum, float eps, bool updateRunning) => throw new NotSupportedException();
        public void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float eps) => throw new NotSupportedException();
        public void BatchNormBackward(Tensor dx, Tensor? dgamma, Tensor? dbeta, Tensor dy, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, float eps) => throw new NotSupportedException();
        public void GlobalAvgPoolForward(Tensor y, Tensor x) => throw new NotSupportedException();
        public void GlobalAvgPoolBackward(Tensor dx, Tensor dy) => throw new NotSupportedException();
        public void LogSoftmaxForward(Tensor logp, Tensor z) => throw new NotSupportedException();
        public void LogSoftmaxBackward(Tensor dz, Tensor logp, Tensor dlogp) => throw new NotSupportedException();
        public void SoftCrossEntropyForward(Tensor losses, Tensor logp, Tensor targets) => throw new NotSupportedException();
        public void SoftCrossEntropyBackward(Tensor dz, Tensor logp, Tensor targets, float scale) => throw new NotSupportedException();
        public void SgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, float lr, float momentum, float weightDecay, bool nesterov) => throw new NotSupportedException();
        public void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, int step, float lr, float beta1, float beta2, float eps, float weightDecay) => throw new NotSupportedException();
        public void SaliencyMaps(Tensor maps, Tensor inputGrad) => throw new NotSupportedException();
        public void PercentileMasks(Tensor masks, Tensor thresholds, Tensor maps, ReadOnlySpan<float> percentiles) => throw new NotSupportedException();
        public void MaskMix(Tensor mixed, Tensor mixedTargets, Tensor fractions, Tensor x, Tensor targets, Tensor masks, ReadOnlySpan<int> perm, ReadOnlySpan<float> lambda1) => throw new NotSupportedException();
        public void InputMixup(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, float lambda) => throw new NotSupportedException();
        public void CutMix(Tensor mixed, Tensor mixedTargets, Tensor x, Tensor targets, ReadOnlySpan<int> perm, CutBox box) => throw new NotSupportedException();
    }

    [Test]
    public void AStickyDeviceErrorStopsTheRunNamingTheCheckThatCausedIt()
    {
        using var candidate = new FaultingBackend("Axpy");
        using var reference = new CpuBackend(1);
        var log = new StringWriter();
        string json = Path.Combine(Path.GetTempPath(), $"selftest-{Guid.NewGuid():N}.jsonl");
        try
        {
            int rc = SelfTestCommand.Execute(candidate, reference, tf32: false, seed: 0, log, json, Cases("Fill", "Axpy", "Copy", "Scale"));
            string text = log.ToString();
            Assert.That(rc, Is.EqualTo(SelfTestCommand.ContextLostExitCode), text);
            Assert.That(text.Split('\n').Single(l => l.StartsWith("Fill")), Does.Contain("PASS"));
            Assert.That(text.Split('\n').Single(l => l.StartsWith("Axpy ")), Does.Contain("FAIL").And.Contain("CUDA_ERROR_ILLEGAL_ADDRESS"));
            // The checks run in the table's order: Fill, Copy, Axpy, then the two Scale checks, which never run.
            Assert.That(text, Does.Contain("selftest: context lost after Axpy ((4097)): CUDA_ERROR_ILLEGAL_ADDRESS; 2 check(s) not run"));
            Assert.That(text, Does.Not.Contain("Scale ").And.Not.Contain("determinism"), "nothing after the fault runs");
            var summary = JsonDocument.Parse(File.ReadAllLines(json)[^1]).RootElement;
            Assert.That(summary.GetProperty("context_lost").GetString(), Does.StartWith("context lost after Axpy"));
            Assert.That(summary.GetProperty("checks_not_run").GetInt32(), Is.EqualTo(2));
        }
        finally { File.Delete(json); }
    }

    [Test]
    public void AFaultSeenOnlyAtTheNextSynchronisationIsPinnedOnTheCheckThatCausedIt()
    {
        // The check itself returns normally (its outputs read before the fault surfaced), but the
        // synchronisation after it reports the sticky error: the check is the one that failed.
        using var candidate = new FaultingBackend("Fill");
        using var reference = new CpuBackend(1);
        var report = BackendSelfTest.Run(candidate, reference, false, 0, [new SelfTestCase("Late fault", "(1)", Tolerance.Exact, c =>
        {
            var t = c.Zeros(new Shape(1));
            c.Record("y", [0f]);
            try { c.B.Fill(t, 1f); } catch (RlMixup.Core.Cuda.Native.CudaException) { }
        }), .. Cases("Copy")]);
        Assert.That(report.ContextLost, Does.StartWith("context lost after Late fault ((1))"));
        Assert.That(report.Rows.Single().Pass, Is.False);
        Assert.That(report.Rows.Single().Detail, Does.StartWith("the device faulted"));
        Assert.That(report.CasesNotRun, Is.EqualTo(1));
    }

    [Test]
    public void FilterSelectsChecksByNameOrWildcardAndTheirInputsDoNotChange()
    {
        var all = SelfTestCases.All();
        Assert.That(all.Where(c => c.Matches("gemm")).Select(c => c.Op), Is.Not.Empty.And.All.StartWith("Gemm"));
        Assert.That(all.Where(c => c.Matches("Conv2dForward,batchnormbackward")).Select(c => c.Op).Distinct(),
            Is.EquivalentTo(new[] { "Conv2dForward", "BatchNormBackward" }));
        Assert.That(all.Where(c => c.Matches("Scale (4097)*")).Count(), Is.EqualTo(1));
        Assert.That(all.Where(c => c.Matches("*views*")).Select(c => c.Op), Does.Contain("Copy on views").And.Contain("Axpy on views"));
        Assert.That(all.Where(c => c.Matches("nothing like this")), Is.Empty);

        // A check's inputs depend on the seed and the check alone, so a filtered rerun sees the inputs the full run saw.
        var tanh = all.First(c => c.Op == "TanhForward");
        Assert.That(tanh.Seed(5), Is.EqualTo(SelfTestCases.All().First(c => c.Op == "TanhForward").Seed(5)));
        Assert.That(tanh.Seed(5), Is.Not.EqualTo(tanh.Seed(6)));
        Assert.That(all.Select(c => c.Seed(0)).Distinct().Count(), Is.EqualTo(all.Select(c => (c.Op, c.Shape)).Distinct().Count()));
    }

    [Test]
    public void AFilterThatMatchesNothingIsOneErrorLine()
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var err = new StringWriter();
        Console.SetOut(new StringWriter());
        Console.SetError(err);
        int rc;
        try { rc = Cli.Run(["selftest", "--device", "cpu", "--filter", "NoSuchCheck"]); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(err.ToString().Trim(), Does.StartWith("error: --filter NoSuchCheck: no check matches").And.Not.Contain("\n"));
    }
}
