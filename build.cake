// Build script: dotnet tool restore && dotnet cake --target=Test
// Targets: Build, Test, Bench (Bench runs BenchmarkDotNet; pass --bench-filter='*Conv*' to narrow it).
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

RunTarget(target);
