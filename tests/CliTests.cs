using NUnit.Framework;
using RlMixup.Engine;

namespace RlMixup.Tests;

public class CliTests
{
    [Test]
    public void InfoNamesVersionBackendsAndCpuFeatures()
    {
        var lines = Cli.InfoLines().ToList();
        Assert.That(lines[0], Does.StartWith("rlmixup "));
        Assert.That(lines, Has.Some.StartsWith("backend cpu  available"));
        Assert.That(lines, Has.Some.StartsWith("backend cuda"));
        Assert.That(lines, Has.Some.StartsWith("cpu features"));
    }

    [Test]
    public void UnknownArgumentsGiveExitCode2AndOneErrorLine()
    {
        var err = new StringWriter();
        var old = Console.Error;
        Console.SetError(err);
        try { Assert.That(Cli.Run(["--no-such-flag"]), Is.EqualTo(2)); }
        finally { Console.SetError(old); }
        Assert.That(err.ToString(), Does.Contain("error: Unrecognized command or argument '--no-such-flag'"));
    }
}
