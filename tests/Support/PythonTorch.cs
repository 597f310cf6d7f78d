using System.Diagnostics;
using NUnit.Framework;

namespace RlMixup.Tests;

/// <summary>
/// Runs the repository's PyTorch scripts with Debian's /usr/bin/python3 (python3-torch, which
/// .ci/run installs), or ignores the test with the reason when that interpreter or torch is absent.
/// </summary>
public static class PythonTorch
{
    public const string Python = "/usr/bin/python3";
    private static string? _unavailable;
    private static bool _probed;

    /// <summary>The repository root (the folder holding RlMixup.sln), or Assert.Ignore.</summary>
    public static string RepoRootOrIgnore()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RlMixup.sln"))) return dir.FullName;
        Assert.Ignore("RlMixup.sln is not above the test directory: the Python scripts of the repository are not reachable");
        return "";
    }

    /// <summary>Assert.Ignore unless /usr/bin/python3 imports torch and numpy.</summary>
    public static void RequireOrIgnore()
    {
        if (!_probed)
        {
            _probed = true;
            if (!File.Exists(Python)) _unavailable = $"{Python} not found";
            else
            {
                var (code, output) = Run(["-c", "import torch, numpy"], Path.GetTempPath(), 120);
                if (code != 0) _unavailable = $"{Python} cannot import torch and numpy: {output.Trim()}";
            }
        }
        if (_unavailable != null) Assert.Ignore(_unavailable + " (install Debian's python3-torch; .ci/run does)");
    }

    /// <summary>Runs python with the arguments; the exit code and stdout + stderr.</summary>
    public static (int Code, string Output) Run(IEnumerable<string> args, string workDir, int timeoutSeconds = 300)
    {
        var psi = new ProcessStartInfo(Python) { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "2";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            return (-1, $"timed out after {timeoutSeconds} s\n{stdout.Result}{stderr.Result}");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
