using System.Text.RegularExpressions;
using NUnit.Framework;

namespace RlMixup.Tests;

/// <summary>
/// Every public and internal entry point of <see cref="RlMixup.Core.Cuda.CudaBackend"/> makes the
/// backend's context current on the calling thread (<c>Enter()</c>) before anything else, because a
/// driver, cuBLAS or cuDNN call made on a thread where another context (or none) is current fails or,
/// worse, runs on the wrong device. This cannot be observed without a GPU, so it is read from the
/// sources: the first statement of each such method must be <c>Enter();</c>, except for the members
/// listed in <see cref="Exempt"/>, each with the reason it makes no device call or binds the context itself.
/// </summary>
public partial class CudaContextDisciplineTests
{
    private static readonly Dictionary<string, string> Exempt = new()
    {
        ["CudaBackend"] = "the constructor retains the primary context and makes it current (CudaContext.RetainPrimary)",
        ["Dispose"] = "binds the context itself and must not throw on a disposed or faulted one (checked below)",
        ["Ptr"] = "address arithmetic on a tensor's block: no device call",
        ["Release"] = "returns a block to the caching allocator's free list: no device call",
    };

    private static string CudaDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RlMixup.sln"))) return Path.Combine(dir.FullName, "src", "Core", "Cuda");
        Assert.Ignore("RlMixup.sln is not above the test directory: cannot find src/Core/Cuda");
        return "";
    }

    /// <summary>(name, first statement of the body, whole body) of each public/internal instance method of class <paramref name="cls"/>.</summary>
    internal static List<(string Name, string First, string Body)> EntryPoints(string source, string cls)
    {
        var result = new List<(string, string, string)>();
        // top-level type declarations split the file; keep the parts that declare the class
        var types = TypeDeclaration().Matches(source).ToList();
        for (int i = 0; i < types.Count; i++)
        {
            if (types[i].Groups[1].Value != cls) continue;
            int end = i + 1 < types.Count ? types[i + 1].Index : source.Length;
            var body = source[types[i].Index..end];
            foreach (Match m in MethodHead().Matches(body))
            {
                if (m.Groups["static"].Success) continue;
                int open = body.IndexOf("\n    {\n", m.Index + m.Length - 1, StringComparison.Ordinal);
                int arrow = body.IndexOf("=>", m.Index, StringComparison.Ordinal);
                int semicolon = body.IndexOf(';', m.Index);
                if (open < 0 || (arrow >= 0 && arrow < open && arrow < semicolon)) { result.Add((m.Groups["name"].Value, "(expression body)", "")); continue; }
                int close = body.IndexOf("\n    }\n", open, StringComparison.Ordinal);
                var block = body[(open + 7)..(close < 0 ? body.Length : close)];
                var first = block.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0 && !l.StartsWith("//", StringComparison.Ordinal)) ?? "";
                result.Add((m.Groups["name"].Value, first, block));
            }
        }
        return result;
    }

    [Test]
    public void EveryEntryPointOfTheCudaBackendEntersItsContextFirst()
    {
        var dir = CudaDir();
        var methods = Directory.GetFiles(dir, "CudaBackend*.cs").SelectMany(f => EntryPoints(File.ReadAllText(f), "CudaBackend")).ToList();
        Assert.That(methods.Select(m => m.Name), Does.Contain("Describe").And.Contain("Synchronize").And.Contain("Upload").And.Contain("Download")
            .And.Contain("GatherAugment").And.Contain("UploadBytes").And.Contain("BatchNormBackward"), "the reader finds the entry points");
        Assert.That(methods, Has.Count.GreaterThan(40));
        Assert.Multiple(() =>
        {
            foreach (var (name, first, _) in methods)
                if (!Exempt.ContainsKey(name))
                    Assert.That(first, Is.EqualTo("Enter();"), $"CudaBackend.{name}: the first statement must make the context current");
        });
        var dispose = methods.Single(m => m.Name == "Dispose").Body;
        Assert.That(dispose, Does.Contain("_context.MakeCurrent()"), "Dispose makes the context current before synchronising");
        Assert.That(dispose, Does.Contain("Teardown = true"), "Dispose frees the device blocks through the quiet teardown path");
        Assert.That(Exempt.Keys, Is.SubsetOf(methods.Select(m => m.Name)), "every exemption names a real member");
    }

    [Test]
    public void TheReaderSeesMethodsWithoutEnter()
    {
        const string source = """
            namespace X;

            public sealed class Other
            {
                public void Outside()
                {
                    DoIt();
                }
            }

            public sealed partial class CudaBackend : IBackend
            {
                public void Good(Tensor y)
                {
                    Enter();
                    Launch(y);
                }

                public void Bad(Tensor y, Tensor x,
                    float alpha)
                {
                    // a comment first
                    OpChecks.Unary("op", y, x);
                    Enter();
                }

                internal int Arrow(int a) => a + 1;
                private void Hidden() { }
                public static ulong Pure(ulong p) => p;
            }
            """;
        var methods = EntryPoints(source, "CudaBackend");
        Assert.That(methods.Select(m => (m.Name, m.First)), Is.EqualTo(new[]
        {
            ("Good", "Enter();"), ("Bad", "OpChecks.Unary(\"op\", y, x);"), ("Arrow", "(expression body)"),
        }));
    }

    [GeneratedRegex(@"^(?:public|internal)\s[^\n{]*?\b(?:class|struct|record|interface)\s+(\w+)", RegexOptions.Multiline)]
    private static partial Regex TypeDeclaration();

    // a member at class indentation: modifiers, a return type, the name and its opening parenthesis
    [GeneratedRegex(@"^    (?:public|internal)(?<static>\s+static)?(?:\s+(?:override|sealed|unsafe|new|virtual|async))*\s+(?:[\w<>\[\]?,.() ]+\s+)?(?<name>\w+)\s*\(", RegexOptions.Multiline)]
    private static partial Regex MethodHead();
}
