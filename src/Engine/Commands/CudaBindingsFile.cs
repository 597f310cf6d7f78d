using RlMixup.Core.Cuda.Native;
using RlMixup.Core.IO;

namespace RlMixup.Engine.Commands;

/// <summary><c>info --bindings FILE</c>: the CUDA search plan and bound symbols (<see cref="CudaSearchPlan"/>), to a file or stdout.</summary>
public static class CudaBindingsFile
{
    public static void Write(string path)
    {
        if (path == "-")
        {
            using var buffer = new MemoryStream();
            CudaSearchPlan.Write(buffer);
            Console.Out.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
            return;
        }
        try { AtomicFile.Write(path, CudaSearchPlan.Write); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--bindings {path}: {e.Message}");
        }
    }
}
