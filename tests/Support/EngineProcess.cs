using System.Diagnostics;
using NUnit.Framework;

namespace RlMixup.Tests;

/// <summary>Runs the built engine (rlmixup.dll) as a child process, with the environment changed as given.</summary>
public static class EngineProcess
{
    public static (int ExitCode, string Stdout, string Stderr) Run(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        using var p = Start(environment, args);
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(300_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"rlmixup {string.Join(' ', args)} did not finish in 300 s");
        }
        return (p.ExitCode, stdout, stderr.Result);
    }

    /// <summary>Starts the built engine on <paramref name="args"/> with stdout and stderr redirected (the caller reads or drains them).</summary>
    public static Process Start(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        string dll = typeof(Engine.Cli).Assembly.Location;
        if (!File.Exists(Path.ChangeExtension(dll, ".runtimeconfig.json"))) Assert.Ignore($"{dll} has no runtimeconfig beside it: it cannot be started on its own");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment)
            if (v == null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        return Process.Start(psi)!;
    }
}
