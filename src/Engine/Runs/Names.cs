using System.Text.Json;

namespace RlMixup.Engine.Runs;

/// <summary>
/// The one spelling of every named choice (policies, rewards, reward forms), on the command line, in
/// config.json, in run folder names and in reports alike: the enum member's name in lower kebab case
/// (InputMixup → input-mixup, GradSim → grad-sim, Cutmix → cutmix).
/// </summary>
public static class Names
{
    public static string Of<T>(T value) where T : struct, Enum => JsonNamingPolicy.KebabCaseLower.ConvertName(value.ToString());

    /// <summary>Every spelling of <typeparamref name="T"/>, in declaration order.</summary>
    public static IReadOnlyList<string> All<T>() where T : struct, Enum => [.. Enum.GetValues<T>().Select(Of)];

    public static bool TryParse<T>(string? text, out T value) where T : struct, Enum
    {
        foreach (var v in Enum.GetValues<T>())
            if (string.Equals(Of(v), text, StringComparison.Ordinal)) { value = v; return true; }
        value = default;
        return false;
    }

    /// <summary>The value spelled <paramref name="text"/>; otherwise a <see cref="CliException"/> naming <paramref name="what"/> and the choices.</summary>
    public static T Parse<T>(string? text, string what) where T : struct, Enum =>
        TryParse<T>(text, out var v) ? v : throw new CliException($"{what}: '{text}' is not one of {string.Join(", ", All<T>())}");
}
