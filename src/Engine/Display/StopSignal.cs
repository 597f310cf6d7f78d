using System.Runtime.InteropServices;

namespace RlMixup.Engine.Display;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM for a training command. The first signal is caught: it sets
/// <see cref="Token"/>, which the run observes after every step, and calls the first-signal
/// callback. A second signal gets the default handling, so the process ends at once; the last
/// checkpoint stays valid because every file is replaced by an atomic rename.
/// </summary>
public sealed class StopSignal : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly Action? _onFirst, _beforeExit;
    private int _count;

    /// <param name="onFirst">Runs on the first signal (on a thread-pool thread): say that the run is stopping.</param>
    /// <param name="beforeExit">Runs on the second signal, just before the process ends (e.g. restore the cursor).</param>
    public StopSignal(Action? onFirst = null, Action? beforeExit = null)
    {
        (_onFirst, _beforeExit) = (onFirst, beforeExit);
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            try { _registrations.Add(PosixSignalRegistration.Create(signal, Handle)); }
            catch (PlatformNotSupportedException) { }
        }
    }

    public CancellationToken Token => _cts.Token;

    private void Handle(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _count) == 1)
        {
            context.Cancel = true;
            _cts.Cancel();
            _onFirst?.Invoke();
        }
        else
        {
            _beforeExit?.Invoke();
            context.Cancel = false; // the default: terminate now
        }
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _cts.Dispose();
    }
}
