using System.Diagnostics;
using NUnit.Framework;

namespace RlMixup.Tests;

/// <summary>
/// scripts/gpu-check.sh's own logic, with a fake engine and a fake compute-sanitizer (shell scripts
/// that log how they were called): a failing self-test is rerun on exactly its failing checks,
/// blocking and under the sanitizer with the caching allocator off; a step that hangs is cut by the
/// one deadline and the results still come back, in two files, the summary last. The real engine on
/// the software device goes through the same script in .ci/run.
/// </summary>
[NonParallelizable]
public class GpuCheckScriptTests
{
    private string _dir = "";

    [SetUp]
    public void Folder()
    {
        if (!File.Exists("/bin/bash") || !File.Exists("/usr/bin/timeout")) Assert.Ignore("needs bash and coreutils' timeout");
        _dir = Path.Combine(Path.GetTempPath(), "rlmixup-gpucheck-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(_dir, "bin"));
        Directory.CreateDirectory(Path.Combine(_dir, "out"));
    }

    [TearDown]
    public void Clean()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    // The fake engine: records each call with the variables the script sets, and answers like the engine.
    private const string FakeEngine = """
        #!/bin/bash
        echo "$* | blocking=${CUDA_LAUNCH_BLOCKING:-} no_caching=${RLMIXUP_CUDA_NO_CACHING:-}" >> "$CALLS"
        json=""; prev=""
        for a in "$@"; do [ "$prev" = --json ] && json=$a; prev=$a; done
        case "$1" in
          info)
            if [ "${2:-}" = --bindings ]; then echo '{"dir_variable":"RLMIXUP_CUDA_LIB_DIR","libraries":[]}' > "$3"; exit 0; fi
            echo "driver       CUDA 13.0 (/fake/libcuda.so.1)"; echo "backend cuda available: cuda:0 (Fake GPU)" ;;
          selftest)
            [ -n "${HANG:-}" ] && exec sleep 600
            case " $* " in *" --filter "*) echo "selftest: all 3 checks passed"; exit 0 ;; esac
            {
              echo '{"type":"header","checks":3}'
              echo '{"type":"row","check":"Fill","pass":true,"detail":""}'
              echo '{"type":"row","check":"Gemm NN: c","pass":false,"detail":""}'
              echo '{"type":"row","check":"determinism: candidate twice, same seed","pass":false,"detail":"Upload/Download on views: whole[3] differs between two runs"}'
              echo '{"type":"summary","passed":false,"context_lost":null}'
            } > "$json"
            echo "Gemm NN: c   (13,37)   1.0  5.0  atol 2E-5·S  FAIL"; echo "selftest: 2 of 3 checks FAILED: Gemm NN: c"; exit 1 ;;
          bench) echo "total        12.5   12.0   13.0   one RL-Mixup step"; [ -n "$json" ] && echo '{}' > "$json" ;;
        esac
        exit 0
        """;

    private const string FakeSanitizer = """
        #!/bin/bash
        echo "sanitizer $1 $2 | no_caching=${RLMIXUP_CUDA_NO_CACHING:-}" >> "$CALLS"
        shift 6
        exec "$@"
        """;

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, "bin", name);
        File.WriteAllText(path, text.ReplaceLineEndings("\n") + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private (int Code, string Output, double Seconds) RunScript(int deadline, params (string, string)[] extra)
    {
        string root = PythonTorch.RepoRootOrIgnore();
        var psi = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(root, "scripts", "gpu-check.sh"));
        psi.ArgumentList.Add(Path.Combine(_dir, "out"));
        psi.Environment["RLMIXUP"] = Write("rlmixup", FakeEngine);
        psi.Environment["CALLS"] = Path.Combine(_dir, "calls.txt");
        psi.Environment["DEADLINE"] = deadline.ToString();
        psi.Environment["PATH"] = $"{Path.Combine(_dir, "bin")}:{Environment.GetEnvironmentVariable("PATH")}";
        psi.Environment["PYTHON"] = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        psi.Environment["TMPDIR"] = _dir;
        // The test process points its own CUDA backend at the software device; the script's engine is the fake.
        psi.Environment.Remove("RLMIXUP_CUDA_NO_CACHING");
        psi.Environment.Remove("RLMIXUP_CUDA_LIB_DIR");
        foreach (var (k, v) in extra) psi.Environment[k] = v;
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit((deadline + 60) * 1000)) { p.Kill(true); Assert.Fail("gpu-check.sh did not end"); }
        return (p.ExitCode, output + err.Result, clock.Elapsed.TotalSeconds);
    }

    private string[] OutFiles() =>
        [.. new DirectoryInfo(Path.Combine(_dir, "out")).GetFiles().OrderBy(f => f.LastWriteTimeUtc).ThenBy(f => f.Name == "summary.txt").Select(f => f.Name)];

    [Test]
    public void AFailingSelftestIsRerunOnItsFailingChecksBlockingAndUnderTheSanitizer()
    {
        Write("compute-sanitizer", FakeSanitizer);
        var (code, output, _) = RunScript(200);
        Assert.That(code, Is.EqualTo(0), output);
        string[] calls = File.ReadAllLines(Path.Combine(_dir, "calls.txt"));
        Assert.Multiple(() =>
        {
            // The failing rows' ops, and the op a determinism row names; both modes failed, both rerun.
            const string filter = "--filter Gemm NN,Upload/Download on views";
            foreach (var (mode, flag) in new[] { ("tf32", ""), ("fp32", "--no-tf32 ") })
            {
                Assert.That(calls, Has.One.Match($@"^selftest --device cuda {flag}{filter} --json \S+/rerun-blocking-{mode}\.jsonl \| blocking=1 no_caching=$"));
                Assert.That(calls, Has.One.EqualTo($"selftest --device cuda {flag}{filter} | blocking= no_caching=1"), "the memcheck rerun");
            }
            Assert.That(calls, Has.Exactly(2).StartWith("sanitizer --tool memcheck | no_caching=1"));
            Assert.That(OutFiles(), Is.EqualTo(new[] { "gpu-check.tar.gz", "summary.txt" }), "two files, the summary last");
            string summary = File.ReadAllText(Path.Combine(_dir, "out", "summary.txt"));
            Assert.That(summary, Does.Contain("selftest-tf32    rc=1").And.Contain("rerun-blocking-tf32").And.Contain("rerun-memcheck-fp32"));
            Assert.That(summary, Does.Contain("Gemm NN: c   (13,37)").And.Contain("FAIL"), "the failing rows are in the summary");
            Assert.That(summary, Does.Contain("compare          skipped:"));
        });
        var listing = Run("tar", "-tzf", Path.Combine(_dir, "out", "gpu-check.tar.gz"));
        Assert.That(listing, Does.Contain("./selftest-tf32.jsonl").And.Contain("./probe.log").And.Contain("./rerun-memcheck-tf32.log").And.Contain("./steps.txt"));
    }

    [Test]
    public void AHangingStepIsCutAndTheResultsComeBackBeforeTheDeadline()
    {
        const int deadline = 45;
        var (code, output, seconds) = RunScript(deadline, ("HANG", "1"));
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(seconds, Is.LessThan(deadline), output);
        string summary = File.ReadAllText(Path.Combine(_dir, "out", "summary.txt"));
        Assert.Multiple(() =>
        {
            Assert.That(summary, Does.Match(@"selftest-tf32    rc=124 .*TIMEOUT after \d+s"));
            Assert.That(summary, Does.Match(@"selftest-fp32    skipped: \d+s left of the deadline, it needs 20s"));
            Assert.That(summary, Does.Contain("bench            skipped:"));
            Assert.That(OutFiles(), Is.EqualTo(new[] { "gpu-check.tar.gz", "summary.txt" }));
        });
    }

    private static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string s = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return s;
    }
}
