using System.Globalization;
using System.Text.Json;

namespace RlMixup.Engine.Reports;

/// <summary>
/// <c>config.json</c>: every hyper-parameter, the seed, the device and the versions, written
/// atomically as an indented JSON object in the order given. Values may be null, strings, booleans,
/// numbers (non-finite ones become strings), enums (by name), nested string-keyed dictionaries and
/// sequences; anything else is written with its invariant string form.
/// </summary>
public static class RunConfig
{
    public static void Write(string path, IEnumerable<KeyValuePair<string, object?>> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            Value(w, values.ToList());
        ms.WriteByte((byte)'\n');
        MixupFigure.WriteAtomically(path, ms.ToArray());
    }

    /// <summary>The values as a JSON object node, written as <see cref="Write"/> writes them.</summary>
    public static System.Text.Json.Nodes.JsonNode ToNode(IEnumerable<KeyValuePair<string, object?>> values)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms)) Value(w, values.ToList());
        return System.Text.Json.Nodes.JsonNode.Parse(ms.ToArray())!;
    }

    /// <summary>Reads a written config back (a detached JSON element).</summary>
    public static JsonElement Read(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }

    /// <summary>The versions and the machine: engine version, .NET runtime, OS, architecture, core count, start time.</summary>
    public static Dictionary<string, object?> Environment() => new()
    {
        ["engine_version"] = EngineVersion().Version,
        ["git_commit"] = EngineVersion().Commit,
        ["dotnet"] = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
        ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        ["arch"] = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString(),
        ["processor_count"] = System.Environment.ProcessorCount,
        ["started_utc"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// The engine's version and the git commit it was built from (the SDK appends it to the
    /// informational version when the build runs in a git checkout; null otherwise).
    /// </summary>
    public static (string Version, string? Commit) EngineVersion()
    {
        string info = typeof(RunConfig).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";
        int plus = info.IndexOf('+');
        return plus < 0 ? (info, null) : (info[..plus], info[(plus + 1)..]);
    }

    private static void Value(Utf8JsonWriter w, object? v)
    {
        switch (v)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case Enum e: w.WriteStringValue(e.ToString()); break;
            case int or long or short or byte or sbyte or ushort or uint: w.WriteNumberValue(Convert.ToInt64(v, CultureInfo.InvariantCulture)); break;
            case ulong u: w.WriteNumberValue(u); break;
            case float or double or decimal:
                double d = Convert.ToDouble(v, CultureInfo.InvariantCulture);
                if (double.IsFinite(d)) w.WriteNumberValue(d); else w.WriteStringValue(d.ToString(CultureInfo.InvariantCulture));
                break;
            case IEnumerable<KeyValuePair<string, object?>> map:
                w.WriteStartObject();
                foreach (var (k, x) in map) { w.WritePropertyName(k); Value(w, x); }
                w.WriteEndObject();
                break;
            case System.Collections.IDictionary dict:
                w.WriteStartObject();
                foreach (System.Collections.DictionaryEntry de in dict)
                {
                    w.WritePropertyName(Convert.ToString(de.Key, CultureInfo.InvariantCulture)!);
                    Value(w, de.Value);
                }
                w.WriteEndObject();
                break;
            case System.Collections.IEnumerable seq:
                w.WriteStartArray();
                foreach (var x in seq) Value(w, x);
                w.WriteEndArray();
                break;
            case IFormattable f: w.WriteStringValue(f.ToString(null, CultureInfo.InvariantCulture)); break;
            default: w.WriteStringValue(v.ToString()); break;
        }
    }
}
