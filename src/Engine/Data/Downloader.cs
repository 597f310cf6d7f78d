using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace RlMixup.Engine.Data;

/// <summary>
/// An official dataset archive: its file name under the base URL, its published MD5, the folder it
/// extracts to, and a check that the extracted folder is readable.
/// </summary>
public sealed record DatasetArchive(string Name, string FileName, string Md5, string Folder, Action<string> Validate)
{
    /// <summary>https://www.cs.toronto.edu/~kriz/cifar.html: 170,052,171 bytes.</summary>
    public static readonly DatasetArchive Cifar10 = new("cifar10", "cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530", "cifar-10-batches-bin", dir => Dataset.LoadCifar10(dir));

    /// <summary>https://www.cs.toronto.edu/~kriz/cifar.html: 168,513,733 bytes.</summary>
    public static readonly DatasetArchive Cifar100 = new("cifar100", "cifar-100-binary.tar.gz",
        "03b5dce01913d631647c71ecec9e9cb8", "cifar-100-binary", dir => Dataset.LoadCifar100(dir));

    public static DatasetArchive Find(string name) => name.ToLowerInvariant() switch
    {
        "cifar10" => Cifar10,
        "cifar100" => Cifar100,
        _ => throw new DataFormatException($"nothing to download for '{name}' (expected cifar10 or cifar100; synthetic is built in)"),
    };
}

/// <summary>
/// Fetches a dataset archive into the data folder, checks its MD5, extracts it in-process into a
/// temporary folder beside the target, validates the result with the CIFAR reader and only then moves
/// it into place with one <see cref="Directory.Move(string, string)"/>, so a dataset folder is
/// either complete or absent. An archive dropped into the data folder by hand is used instead of
/// downloading (verified and extracted the same way, and kept). Every failure is one
/// <see cref="DataFormatException"/> line, and nothing half-written is left behind.
/// </summary>
public sealed class Downloader(HttpClient? http = null)
{
    public const string OfficialBaseUrl = "https://www.cs.toronto.edu/~kriz/";

    /// <summary>Where archives are fetched from (tests point it at a local server).</summary>
    public string BaseUrl { get; init; } = OfficialBaseUrl;

    private readonly HttpClient _http = http ?? new HttpClient { Timeout = TimeSpan.FromMinutes(30) };

    /// <summary>
    /// Makes <c>dataRoot/archive.Folder</c> exist and hold the dataset; returns that folder.
    /// <paramref name="progress"/> gets (bytes so far, total bytes when known) while downloading.
    /// </summary>
    public async Task<string> FetchAsync(DatasetArchive archive, string dataRoot, Action<long, long?>? progress = null,
        CancellationToken cancel = default)
    {
        Directory.CreateDirectory(dataRoot);
        string target = Path.Combine(dataRoot, archive.Folder);
        if (Directory.Exists(target))
        {
            archive.Validate(target); // throws, naming the bad file, when a previous folder is damaged
            return target;
        }

        string local = Path.Combine(dataRoot, archive.FileName);
        if (File.Exists(local))
        {
            string md5 = await Md5Async(local, cancel);
            if (md5 != archive.Md5)
                throw new DataFormatException($"{local}: MD5 {md5} differs from the published {archive.Md5} (incomplete or wrong file; delete it and download again)");
            ExtractInto(local, local, dataRoot, archive);
            return target;
        }

        string part = Path.Combine(dataRoot, $".{archive.FileName}.{Guid.NewGuid():N}.part");
        try
        {
            string md5 = await DownloadAsync(BaseUrl.TrimEnd('/') + "/" + archive.FileName, part, archive, dataRoot, progress, cancel);
            if (md5 != archive.Md5)
                throw new DataFormatException($"{archive.FileName}: downloaded archive has MD5 {md5}, not the published {archive.Md5}; {HandHint(archive, dataRoot)}");
            ExtractInto(part, archive.FileName, dataRoot, archive);
            return target;
        }
        finally
        {
            TryDelete(part);
        }
    }

    private async Task<string> DownloadAsync(string url, string file, DatasetArchive archive, string dataRoot,
        Action<long, long?>? progress, CancellationToken cancel)
    {
        try
        {
            using var response = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancel);
            if (!response.IsSuccessStatusCode)
                throw new HttpRequestException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            long? total = response.Content.Headers.ContentLength;
            using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
            await using (var input = await response.Content.ReadAsStreamAsync(cancel))
            await using (var output = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                var buf = new byte[1 << 16];
                long done = 0;
                progress?.Invoke(0, total);
                int read;
                while ((read = await input.ReadAsync(buf, cancel)) > 0)
                {
                    md5.AppendData(buf, 0, read);
                    await output.WriteAsync(buf.AsMemory(0, read), cancel);
                    done += read;
                    progress?.Invoke(done, total);
                }
                if (total is long t && done != t)
                    throw new IOException($"connection closed after {done} of {t} bytes");
            }
            return Convert.ToHexStringLower(md5.GetHashAndReset());
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !cancel.IsCancellationRequested)
        {
            string reason = e is TaskCanceledException ? "timed out" : OneLine(e.Message);
            throw new DataFormatException($"could not download {url} ({reason}); {HandHint(archive, dataRoot)}");
        }
    }

    /// <summary>What to do by hand, in one line.</summary>
    public static string HandHint(DatasetArchive archive, string dataRoot) =>
        $"fetch {OfficialBaseUrl}{archive.FileName} by hand and put it in {Path.GetFullPath(dataRoot)} " +
        $"(it is verified against MD5 {archive.Md5} and extracted on the next download), or extract it there so that " +
        $"{Path.Combine(Path.GetFullPath(dataRoot), archive.Folder)} exists; `demo` needs no data";

    /// <summary>
    /// Extracts <paramref name="tarGz"/> into a temporary folder, validates, then moves the dataset
    /// folder into place. Errors name the archive as <paramref name="shownAs"/> and files by their path inside it.
    /// </summary>
    private static void ExtractInto(string tarGz, string shownAs, string dataRoot, DatasetArchive archive)
    {
        string temp = Path.Combine(dataRoot, $".extract-{archive.Folder}-{Guid.NewGuid():N}");
        string target = Path.Combine(dataRoot, archive.Folder);
        try
        {
            Directory.CreateDirectory(temp);
            try
            {
                Extract(tarGz, temp);
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException or FormatException)
            {
                throw new DataFormatException($"{shownAs}: archive is damaged or truncated ({OneLine(e.Message)}); delete it and download again");
            }
            string extracted = Path.Combine(temp, archive.Folder);
            if (!Directory.Exists(extracted))
                throw new DataFormatException($"{shownAs}: archive does not contain the folder {archive.Folder}/");
            try
            {
                archive.Validate(extracted);
            }
            catch (DataFormatException e)
            {
                throw new DataFormatException($"{shownAs}: {e.Message.Replace(temp + Path.DirectorySeparatorChar, "")}");
            }
            Directory.Move(extracted, target);
        }
        finally
        {
            TryDeleteDirectory(temp);
        }
    }

    /// <summary>Extracts the regular files and folders of a .tar.gz under <paramref name="dir"/>; refuses paths that leave it.</summary>
    public static void Extract(string tarGz, string dir)
    {
        string root = Path.GetFullPath(dir) + Path.DirectorySeparatorChar;
        using var file = File.OpenRead(tarGz);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gz);
        while (tar.GetNextEntry() is { } entry)
        {
            string path = Path.GetFullPath(Path.Combine(root, entry.Name));
            if (!path.StartsWith(root, StringComparison.Ordinal))
                throw new InvalidDataException($"entry '{entry.Name}' points outside the extraction folder");
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    Directory.CreateDirectory(path);
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    using (var output = File.Create(path))
                        entry.DataStream?.CopyTo(output);
                    break;
                default:
                    break; // links, devices and the like are not part of a dataset
            }
        }
    }

    public static async Task<string> Md5Async(string file, CancellationToken cancel = default)
    {
        await using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(await MD5.HashDataAsync(stream, cancel));
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();

    private static void TryDelete(string file)
    {
        try { if (File.Exists(file)) File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A one-line text progress bar, e.g. <c>[##########..........]  50.0%  85.0/170.1 MB</c>.</summary>
public static class ProgressBar
{
    public static string Render(long done, long? total, int width = 30)
    {
        const double mb = 1024.0 * 1024.0;
        if (total is not long t || t <= 0) return $"{done / mb,7:F1} MB";
        double f = Math.Clamp((double)done / t, 0, 1);
        int filled = (int)Math.Round(f * width);
        return $"[{new string('#', filled)}{new string('.', width - filled)}] {100 * f,5:F1}%  {done / mb:F1}/{t / mb:F1} MB";
    }

    /// <summary>A progress callback that redraws the bar in place on <paramref name="writer"/> (at most every 1%).</summary>
    public static Action<long, long?> Console(TextWriter writer, int width = 30)
    {
        int last = -1;
        return (done, total) =>
        {
            int pct = total is long t && t > 0 ? (int)(100 * done / t) : (int)(done >> 20);
            if (pct == last) return;
            last = pct;
            writer.Write("\r" + Render(done, total, width));
            if (total is long t2 && done >= t2) writer.WriteLine();
        };
    }
}
