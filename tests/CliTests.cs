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

    [TestCase("train")]
    [TestCase("experiment")]
    [TestCase("resume")]
    [TestCase("eval")]
    [TestCase("visualize")]
    [TestCase("bench")]
    [TestCase("demo")]
    public void HelpWorksEvenWithoutTheRequiredArguments(string command)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        int code;
        try { code = Cli.Run([command, "--help"]); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        Assert.That((code, e.ToString()), Is.EqualTo((0, "")));
        Assert.That(o.ToString(), Does.Contain("Usage:").And.Contain(command));
    }
}
