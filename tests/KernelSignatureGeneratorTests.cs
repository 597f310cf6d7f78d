using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using NUnit.Framework;
using RlMixup.Core.Cuda;
using RlMixup.Generators;

namespace RlMixup.Tests;

/// <summary>
/// The generator that turns src/Kernels' declarations into KernelCatalog.Entry: run here on sample
/// sources through Roslyn's generator driver, and on the real sources by the build (the catalog the
/// engine uses is its output).
/// </summary>
public class KernelSignatureGeneratorTests
{
    sealed class Text(string path, string text) : AdditionalText
    {
        public override string Path { get; } = path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
    }

    static (string Source, ImmutableArray<Diagnostic> Diagnostics) Run(params (string Path, string Text)[] files)
    {
        var compilation = CSharpCompilation.Create("probe", [], [MetadataReference.CreateFromFile(typeof(object).Assembly.Location)]);
        var driver = CSharpGeneratorDriver.Create([new KernelSignatureGenerator().AsSourceGenerator()],
            [.. files.Select(f => (AdditionalText)new Text(f.Path, f.Text))]);
        var result = driver.RunGenerators(compilation).GetRunResult();
        var generated = result.Results.Single();
        return (string.Concat(generated.GeneratedSources.Select(s => s.SourceText.ToString())), generated.Diagnostics);
    }

    const string Header = """
        #pragma once
        #define K_MAX_THREADS 1024
        #define KERNELS_DEVICE 1
        """;

    [Test]
    public void DeclarationsBecomeCatalogEntries()
    {
        var (source, diagnostics) = Run(("/k/common.cuh", Header), ("/k/demo.cu", """
            #include "common.cuh"
            #define DEMO_MAX 64 // limit
            // extern "C" __global__ void commented_out(float* x);
            extern "C" __global__ void __launch_bounds__(K_MAX_THREADS, 1) scale_rows(float* y,        // (N, K)
                                                                                   const float* __restrict__ x,
                                                                                   int N, size_t K, float alpha) { }
            extern "C"
            __global__ void gather_labels(int* out, const unsigned char* labels, int n) { }
            __device__ float helper(float x) { return x; }
            """));
        Assert.That(diagnostics, Is.Empty);
        Assert.That(source, Does.Contain("""public static readonly KernelInfo ScaleRows = new("demo", "scale_rows", new KernelParam[] { new KernelParam("y", KernelParamKind.F32Ptr), new KernelParam("x", KernelParamKind.F32Ptr), new KernelParam("N", KernelParamKind.I32), new KernelParam("K", KernelParamKind.U64), new KernelParam("alpha", KernelParamKind.F32) });"""));
        Assert.That(source, Does.Contain("""public static readonly KernelInfo GatherLabels = new("demo", "gather_labels", new KernelParam[] { new KernelParam("out", KernelParamKind.I32Ptr), new KernelParam("labels", KernelParamKind.U8Ptr), new KernelParam("n", KernelParamKind.I32) });"""));
        Assert.That(source, Does.Not.Contain("commented_out").And.Not.Contain("helper"));
        Assert.That(source, Does.Contain("public const int K_MAX_THREADS = 1024;").And.Contain("public const int DEMO_MAX = 64;"));
        Assert.That(source, Does.Not.Contain("KERNELS_DEVICE"), "the mode switches of common.cuh are not limits");
    }

    [TestCase("extern \"C\" __global__ void k(double* x) { }", "type 'double*'")]
    [TestCase("extern \"C\" __global__ void k(long n) { }", "type 'long'")]
    [TestCase("__global__ void k(float* x) { }", "is not extern \"C\"")]
    [TestCase("template <int B> __global__ void k(float* x) { }", "template")]
    [TestCase("extern \"C\" __global__ void k(float*) { }", "has no name")]
    public void WhatCannotBeACatalogEntryIsABuildError(string declaration, string expected)
    {
        var (_, diagnostics) = Run(("/k/bad.cu", declaration));
        Assert.That(diagnostics.Select(d => (d.Id, d.Severity, d.GetMessage())), Has.One.Matches<(string Id, DiagnosticSeverity Severity, string Message)>(
            d => d.Id == "RLMX001" && d.Severity == DiagnosticSeverity.Error && d.Message.Contains(expected)));
    }

    [Test]
    public void TheEnginesCatalogIsGeneratedFromItsSources()
    {
        // A few entries of the real catalog, as the build generated them from src/Kernels.
        Assert.That(KernelCatalog.Entry.SgdStep.Module, Is.EqualTo("optim"));
        Assert.That(KernelCatalog.Entry.SgdStep.Parameters.Select(p => (p.Name, p.Kind)), Is.EqualTo(new[]
        {
            ("param", KernelParamKind.F32Ptr), ("grad", KernelParamKind.F32Ptr), ("momentum_buf", KernelParamKind.F32Ptr), ("n", KernelParamKind.U64),
            ("lr", KernelParamKind.F32), ("momentum", KernelParamKind.F32), ("weight_decay", KernelParamKind.F32), ("nesterov", KernelParamKind.I32),
        }));
        Assert.That(KernelCatalog.All, Has.Count.EqualTo(28));
        Assert.That(KernelCatalog.MaxThreads, Is.EqualTo(KernelCatalog.SourceConstants.K_MAX_THREADS).And.EqualTo(1024));
    }
}
