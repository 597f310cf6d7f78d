// Build script: dotnet tool restore && dotnet cake --target=Test
// Targets: Build, Test, Bench (Bench runs BenchmarkDotNet; pass --bench-filter='*Conv*' to narrow it),
// PackTool (the .NET tool package in artifacts/tool: dotnet tool install --global --add-source artifacts/tool RlMixup),
// PublishGpu (a self-contained NativeAOT rlmixup for linux-x64 in artifacts/gpu: copy that folder to a
// GPU machine, which needs the NVIDIA driver and the CUDA libraries but no .NET).
var target = Argument("target", "Test");
var configuration = Argument("configuration", "Release");
var benchFilter = Argument("bench-filter", "*");

Task("Build")
    .Does(() =>
{
    DotNetBuild("RlMixup.sln", new DotNetBuildSettings { Configuration = configuration });
});

Task("Test")
    .IsDependentOn("Build")
    .Does(() =>
{
    DotNetTest("RlMixup.sln", new DotNetTestSettings { Configuration = configuration, NoBuild = true });
});

Task("Bench")
    .IsDependentOn("Build")
    .Does(() =>
{
    DotNetRun("bench/RlMixup.Bench.csproj", new ProcessArgumentBuilder().Append("--filter").AppendQuoted(benchFilter),
        new DotNetRunSettings { Configuration = configuration, NoBuild = true });
});

Task("PackTool")
    .Does(() =>
{
    var output = MakeAbsolute(Directory("artifacts/tool"));
    CleanDirectory(output);
    DotNetPack("src/Engine/RlMixup.Engine.csproj", new DotNetPackSettings { Configuration = "Release", OutputDirectory = output });
});

// The NativeAOT binary embeds the runtime, the engine and the PTX kernels (resources of RlMixup.Core);
// past this size (the whole folder: binary and libSkiaSharp.so) something unintended came in.
const long MaxGpuBinaryBytes = 30L * 1024 * 1024;

Task("PublishGpu")
    .Does(() =>
{
    var output = MakeAbsolute(Directory("artifacts/gpu"));
    CleanDirectory(output);
    DotNetPublish("src/Engine/RlMixup.Engine.csproj", new DotNetPublishSettings
    {
        Configuration = "Release",
        Runtime = "linux-x64",
        OutputDirectory = output,
        MSBuildSettings = new DotNetMSBuildSettings()
            .WithProperty("PublishAot", "true")
            .WithProperty("InvariantGlobalization", "true")
            // NativeAOT compiles for a fixed instruction set, not the machine it runs on: without
            // this the CPU paths (the self-test's reference, data loading) take the scalar fallback.
            // x86-64-v3 (AVX2, FMA) is on every current GPU server's CPU.
            .WithProperty("IlcInstructionSet", "x86-64-v3")
            // The package ships without the separate symbol file (16 MB of rlmixup.dbg): the GPU
            // machine has no debugger to read it, and the carry is limited.
            .WithProperty("DebugType", "none")
            .WithProperty("StripSymbols", "true"),
    });
    foreach (var dbg in GetFiles(output.FullPath + "/*.dbg")) DeleteFile(dbg);
    var binary = output.CombineWithFilePath("rlmixup");
    if (!FileExists(binary)) throw new Exception($"PublishGpu: {binary} was not produced");
    // The software device (tests/SoftwareDevice) simulates CUDA for CI; it must never reach a GPU machine.
    var simulated = GetFiles(output.FullPath + "/libswdev*").Concat(GetFiles(output.FullPath + "/libcuda*")).Concat(GetFiles(output.FullPath + "/libcu*"));
    if (simulated.Any()) throw new Exception($"PublishGpu: the package holds {string.Join(", ", simulated)}; the software device and CUDA libraries never go into it");
    // The GPU machine has no .git: the package says which commit it was built from (and whether the
    // tree had changes not committed), for docs/gpu-runs.md and gpu-check's summary.
    System.IO.File.WriteAllText(output.CombineWithFilePath("COMMIT").FullPath, GitDescription() + "\n");
    long size = GetFiles(output.FullPath + "/*").Sum(f => FileSize(f));
    Information($"PublishGpu: {output} holds {size / 1048576.0:0.0} MiB (limit {MaxGpuBinaryBytes / 1048576} MiB): {string.Join(", ", GetFiles(output.FullPath + "/*").Select(f => f.GetFilename()))}");
    if (size >= MaxGpuBinaryBytes)
        throw new Exception($"PublishGpu: {output} holds {size / 1048576.0:0.0} MiB, over the {MaxGpuBinaryBytes / 1048576} MiB limit");
});

// "COMMIT_SHA (committed)" or "COMMIT_SHA plus changes not committed"; "unknown" without git.
string GitDescription()
{
    string Git(string args)
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("git", args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var p = System.Diagnostics.Process.Start(psi);
            string text = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return p.ExitCode == 0 ? text : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }
    string sha = Git("rev-parse HEAD");
    if (sha == null) return "unknown (not built from a git checkout)";
    string dirty = Git("status --porcelain --untracked-files=no");
    return string.IsNullOrEmpty(dirty) ? $"{sha} (committed)" : $"{sha} plus changes not committed";
}

RunTarget(target);
