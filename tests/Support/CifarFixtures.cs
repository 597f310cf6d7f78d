using System.Formats.Tar;
using System.IO.Compression;
using RlMixup.Engine.Data;

namespace RlMixup.Tests;

/// <summary>Tiny CIFAR binary files and archives built in memory or in a temporary folder.</summary>
public static class CifarFixtures
{
    /// <summary>Records with the given labels (each label is labelBytes bytes: coarse = label % 20 first for 2); pixel bytes follow a pattern.</summary>
    public static byte[] Records(int labelBytes, params int[] labels)
    {
        int record = labelBytes + ImageSet.ImageBytes;
        var bytes = new byte[labels.Length * record];
        for (int r = 0; r < labels.Length; r++)
        {
            if (labelBytes == 2) bytes[r * record] = (byte)(labels[r] % 20);
            bytes[r * record + labelBytes - 1] = (byte)labels[r];
            for (int p = 0; p < ImageSet.ImageBytes; p++) bytes[r * record + labelBytes + p] = (byte)(r * 7 + p);
        }
        return bytes;
    }

    public static string[] Cifar10Names => ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>The files of a CIFAR-10 binary folder: 5 training files of <paramref name="perFile"/> records, a test file of <paramref name="test"/>.</summary>
    public static Dictionary<string, byte[]> Cifar10Files(int perFile = 3, int test = 4)
    {
        var files = new Dictionary<string, byte[]>();
        for (int i = 1; i <= 5; i++) files[$"data_batch_{i}.bin"] = Records(1, [.. Enumerable.Range(0, perFile).Select(r => (r + i) % 10)]);
        files["test_batch.bin"] = Records(1, [.. Enumerable.Range(0, test).Select(r => r % 10)]);
        files["batches.meta.txt"] = System.Text.Encoding.ASCII.GetBytes(string.Join("\n", Cifar10Names) + "\n\n");
        return files;
    }

    public static string[] Cifar100Names => [.. Enumerable.Range(0, 100).Select(i => $"class{i}")];

    public static Dictionary<string, byte[]> Cifar100Files(int[] train, int[] test) => new()
    {
        ["train.bin"] = Records(2, train),
        ["test.bin"] = Records(2, test),
        ["fine_label_names.txt"] = System.Text.Encoding.ASCII.GetBytes(string.Join("\n", Cifar100Names) + "\n"),
    };

    public static void WriteAll(string dir, Dictionary<string, byte[]> files)
    {
        Directory.CreateDirectory(dir);
        foreach (var (name, bytes) in files) File.WriteAllBytes(Path.Combine(dir, name), bytes);
    }

    /// <summary>A .tar.gz holding <paramref name="files"/> under <paramref name="folder"/>/, as the official archives do.</summary>
    public static byte[] TarGz(string folder, Dictionary<string, byte[]> files)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gz, TarEntryFormat.Ustar, leaveOpen: true))
        {
            tar.WriteEntry(new UstarTarEntry(TarEntryType.Directory, folder + "/"));
            foreach (var (name, bytes) in files)
                tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, $"{folder}/{name}") { DataStream = new MemoryStream(bytes) });
        }
        return ms.ToArray();
    }

    /// <summary>A fresh temporary folder, removed by the caller.</summary>
    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlmixup-data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
