using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RlMixup.Tests;

/// <summary>
/// A minimal HTTP/1.1 server on 127.0.0.1 for download tests: GET of a registered path answers 200
/// with the body; a body registered with a larger declared length is cut off (the connection closes
/// early); anything else answers 404. One connection at a time, closed after each response.
/// </summary>
public sealed class LocalHttpServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Dictionary<string, (byte[] Body, long Declared)> _routes = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public LocalHttpServer()
    {
        _listener.Start();
        _loop = Task.Run(Serve);
    }

    public string BaseUrl => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/files/";
    public int Requests { get; private set; }

    public void Add(string name, byte[] body, long? declaredLength = null)
    {
        lock (_routes) _routes["/files/" + name] = (body, declaredLength ?? body.Length);
    }

    private async Task Serve()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            using (client)
            {
                try { await Answer(client.GetStream()); }
                catch (IOException) { }
            }
        }
    }

    private async Task Answer(NetworkStream stream)
    {
        var request = new StringBuilder();
        var buf = new byte[1];
        while (!request.ToString().EndsWith("\r\n\r\n") && await stream.ReadAsync(buf) == 1) request.Append((char)buf[0]);
        Requests++;
        string[] line = request.ToString().Split("\r\n")[0].Split(' ');
        (byte[] Body, long Declared) route;
        bool found;
        lock (_routes) found = _routes.TryGetValue(line.Length > 1 ? line[1] : "", out route);
        if (!found)
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
            return;
        }
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {route.Declared}\r\nConnection: close\r\n\r\n"));
        await stream.WriteAsync(route.Body);
        await stream.FlushAsync();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }
}
