using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using RlMixup.Engine.Training;

namespace RlMixup.Engine.Runs;

/// <summary>
/// config.json: a <see cref="RunSpec"/> in snake_case (System.Text.Json source generation, so it works
/// under NativeAOT), choices in their CLI spelling (<see cref="Names"/>), doubles written so that they
/// read back to the same bits. A run's config.json also carries a "recorded" object (the data as
/// loaded, the device, the versions, the start time) that describes the run and is ignored on reading,
/// so a run's config.json is also a valid --config for a new run. Reading refuses an unknown key, a
/// value of the wrong type and a value out of range, each with one line.
/// </summary>
public static class RunSpecJson
{
    public const string RecordedKey = "recorded";

    public static string Serialize(RunSpec spec, IReadOnlyDictionary<string, object?>? recorded = null)
    {
        var node = JsonSerializer.SerializeToNode(spec, RunSpecJsonContext.Default.RunSpec)!.AsObject();
        if (recorded != null) node[RecordedKey] = Reports.RunConfig.ToNode(recorded);
        return node.ToJsonString(RunSpecJsonContext.Default.Options) + "\n";
    }

    /// <summary>Parses a config.json; <paramref name="source"/> names it in the error line.</summary>
    public static RunSpec Deserialize(string json, string source)
    {
        RunSpec? spec;
        try
        {
            var node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (node is not JsonObject obj) throw new CliException($"{source}: not a JSON object");
            obj.Remove(RecordedKey);
            spec = obj.Deserialize(RunSpecJsonContext.Default.RunSpec);
        }
        catch (JsonException e)
        {
            throw new CliException($"{source}: {Describe(e)}");
        }
        return (spec ?? throw new CliException($"{source}: null is not a run configuration")).Validated(source);
    }

    public static void Write(string path, RunSpec spec, IReadOnlyDictionary<string, object?>? recorded = null) =>
        Reports.MixupFigure.WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(Serialize(spec, recorded)));

    public static RunSpec Read(string path)
    {
        if (!File.Exists(path)) throw new CliException($"{path}: no such file");
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CliException($"{path}: cannot read ({e.Message})"); }
        return Deserialize(text, path);
    }

    /// <summary>An integer of a config.json's "recorded" object, or null when the file, the object or the key is missing.</summary>
    public static long? ReadRecorded(string path, string key)
    {
        try
        {
            return File.Exists(path) && JsonNode.Parse(File.ReadAllText(path)) is JsonObject o && o[RecordedKey] is JsonObject r
                && r[key] is JsonValue v && v.TryGetValue(out long x) ? x : null;
        }
        catch (Exception e) when (e is JsonException or IOException) { return null; }
    }

    /// <summary>System.Text.Json's message on one line, the key named in config.json's own terms.</summary>
    private static string Describe(JsonException e)
    {
        string message = e.Message.Split('\n')[0].Trim();
        string? path = e.Path is { Length: > 2 } p ? p.TrimStart('$', '.') : null;
        const string unmapped = "could not be mapped to any .NET member";
        if (message.Contains(unmapped, StringComparison.Ordinal))
        {
            int a = message.IndexOf('\'') + 1, b = a > 0 ? message.IndexOf('\'', a) : -1;
            string key = b > a ? message[a..b] : "?";
            string full = path == null ? key : path == key || path.EndsWith("." + key, StringComparison.Ordinal) ? path : path + "." + key;
            return $"unknown key '{full}'";
        }
        if (message.StartsWith("The JSON value could not be converted", StringComparison.Ordinal))
            return $"{path ?? "the file"}: a value of the wrong type for this key";
        int cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut > 0) message = message[..cut];
        return path != null ? $"{path}: {message}" : message;
    }
}

/// <summary>Writes and reads an enum as its <see cref="Names"/> spelling; anything else is one clear error.</summary>
public sealed class NamedEnumConverter<T> : JsonConverter<T> where T : struct, Enum
{
    public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String) throw new JsonException($"expected one of {string.Join(", ", Names.All<T>())}, got a {reader.TokenType}");
        string? s = reader.GetString();
        return Names.TryParse<T>(s, out var v) ? v : throw new JsonException($"'{s}' is not one of {string.Join(", ", Names.All<T>())}");
    }

    public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(Names.Of(value));
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    NumberHandling = JsonNumberHandling.Strict,
    Converters = [typeof(NamedEnumConverter<MixPolicy>), typeof(NamedEnumConverter<RewardKind>), typeof(NamedEnumConverter<RewardForm>)])]
[JsonSerializable(typeof(RunSpec))]
internal sealed partial class RunSpecJsonContext : JsonSerializerContext;
