using NUnit.Framework;
using RlMixup.Core;

namespace RlMixup.Tests;

public class ShapeTests
{
    [Test]
    public void ShapeFormatsAndCompares()
    {
        var s = new Shape(2, 3, 4, 5);
        Assert.That(s.ToString(), Is.EqualTo("(2, 3, 4, 5)"));
        Assert.That(s.Size, Is.EqualTo(120));
        Assert.That(s == new Shape(2, 3, 4, 5));
        Assert.That(s != new Shape(2, 3, 5, 4));
    }
}
