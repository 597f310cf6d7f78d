namespace RlMixup.Engine;

/// <summary>The command line. Commands are added as the engine grows.</summary>
public static class Cli
{
    public static int Run(string[] args)
    {
        Console.WriteLine("rlmixup");
        return 0;
    }
}
