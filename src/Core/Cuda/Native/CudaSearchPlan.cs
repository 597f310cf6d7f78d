using System.Text.Json;

namespace RlMixup.Core.Cuda.Native;

/// <summary>
/// The engine's CUDA library search on this machine, as JSON, computed without loading anything:
/// per library the candidates in the order they would be tried, the folders searched, the
/// companions loaded first, the version call and the symbols the engine binds
/// (<see cref="NativeBindings.All"/>). <c>info --bindings</c> writes it; <c>scripts/cuda_preflight.py</c>
/// reads it on a GPU machine and opens each library with Python's ctypes, in the same order, so a
/// missing symbol or an unloadable file is found without the engine.
/// </summary>
public static class CudaSearchPlan
{
    public static void Write(Stream stream)
    {
        var env = NativeLibrarySearch.SearchEnvironment.Real;
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("dir_variable", NativeLibrarySearch.DirVariable);
        w.WriteStartArray("libraries");
        foreach (var spec in NativeLibraries.All)
        {
            w.WriteStartObject();
            w.WriteString("name", spec.ShortName);
            w.WriteString("display", spec.DisplayName);
            w.WriteString("file_variable", spec.FileVariable);
            w.WriteString("version_symbol", spec.Version?.Symbol);
            w.WriteString("needs", spec.Version?.Needed is { Length: > 0 } n ? n : null);
            w.WriteStartArray("candidates");
            foreach (var c in NativeLibrarySearch.Candidates(spec, env))
            {
                w.WriteStartObject();
                w.WriteString("path", c.Path);
                w.WriteString("folder", c.Folder);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("folders");
            foreach (var f in NativeLibrarySearch.SearchFolders(spec, env)) w.WriteStringValue(f);
            w.WriteEndArray();
            w.WriteStartArray("companions");
            foreach (var alternatives in spec.Companions(spec.SonameMajors[0]))
            {
                w.WriteStartArray();
                foreach (var a in alternatives) w.WriteStringValue(a);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteStartArray("symbols");
            foreach (var b in NativeBindings.All.Where(b => b.Library == spec.LogicalName)) w.WriteStringValue(b.EntryPoint);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
